import { env } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { encodeJpeg, makeRgb, pattern } from './helpers/images';
import { captureLogs } from './helpers/logs';
import { ModelRegistry, type ModelStore } from '../src/registry/registry';
import { sharedAgeLoader } from '../src/registry/shared';
import { expectError, FIXTURE, fixtureModel, json, post, publishFixture, worker } from './helpers/worker';

const photo = encodeJpeg(makeRgb(160, 120, pattern));
const logs = captureLogs();
const name = FIXTURE.name;

/** active.json with a default and the two tiers (docs/model-contract.md). */
async function activateTiers(def: string, fast: string, accurate: string) {
  await env.MODELS.put('models/active.json', JSON.stringify({ name, version: def, default: 'accurate', tiers: { fast: { name, version: fast }, accurate: { name, version: accurate } } }));
}

async function served(model?: string) {
  const res = await post(photo, { query: `crop=image${model === undefined ? '' : `&model=${model}`}` });
  expect(res.status).toBe(200);
  return (await json(res)).model as { name: string; version: string; tier: string | null; fallback: boolean };
}

// One isolate, one bucket: these steps build on each other, in order.
describe('model tiers chosen per request (model=)', () => {
  it('serves the default without model=, and each tier with model=fast / model=accurate', async () => {
    await publishFixture('1', { activate: false });
    await publishFixture('2', { activate: false });
    await activateTiers('1', '2', '1');
    expect(await served()).toEqual({ name, version: '1', tier: null, fallback: false });
    expect(await served('fast')).toEqual({ name, version: '2', tier: 'fast', fallback: false });
    expect(await served('accurate')).toEqual({ name, version: '1', tier: 'accurate', fallback: false });
  });

  it('answers 400 for an unknown tier, before decoding the image', async () => {
    const message = await expectError(await post(new Uint8Array([1, 2, 3]), { query: 'model=turbo' }), 400, 'bad_request');
    expect(message).toMatch(/model must be one of "fast", "accurate"/);
  });

  it('shows every tier in /v1/models', async () => {
    const body = await json(await worker.fetch('http://localhost/v1/models'));
    expect(body).toMatchObject({
      active: { version: '1' },
      tiers: { fast: { active: { version: '2' }, requested: { version: '2' }, fallback: false }, accurate: { active: { version: '1' }, fallback: false } },
    });
  });

  it('keeps serving a tier\'s last good version when its new one fails, without touching the others', async () => {
    const { model } = await fixtureModel();
    const tampered = model.slice();
    tampered[tampered.length - 1] = tampered.at(-1)! ^ 0xff;
    await publishFixture('bad-sha', { modelBytes: tampered, staleSha: true, activate: false });
    await activateTiers('1', 'bad-sha', '1');
    expect(await served('fast')).toEqual({ name, version: '2', tier: 'fast', fallback: true });
    expect(await served()).toEqual({ name, version: '1', tier: null, fallback: false });
    const body = await json(await worker.fetch('http://localhost/v1/models'));
    expect(body.tiers.fast).toMatchObject({ active: { version: '2' }, requested: { version: 'bad-sha' }, fallback: true, load_error: { version: 'bad-sha' } });
    expect(body.tiers.fast.load_error.message).toMatch(/sha256 mismatch/);
    expect(logs.of('model_load_failed').filter((e) => e.model === `${name}/bad-sha`)).toEqual([expect.objectContaining({ message: expect.stringMatching(/sha256 mismatch/) })]);
  });

  it('keeps a tier\'s last good version when active.json stops naming the tier', async () => {
    await env.MODELS.put('models/active.json', JSON.stringify({ name, version: '1' }));
    expect(await served()).toEqual({ name, version: '1', tier: null, fallback: false });
    // The fast tier keeps its last good version (a tier dropped from active.json is a failure
    // to read it, like a broken version) and says why.
    expect(await served('fast')).toEqual({ name, version: '2', tier: 'fast', fallback: true });
    const body = await json(await worker.fetch('http://localhost/v1/models'));
    expect(body.tiers.fast.load_error.message).toMatch(/names no "fast" tier/);
  });
});

describe('a tier registry in a fresh isolate', () => {
  // A small in-memory store and loader: what the registry does with history.json per tier.
  const store = (files: Record<string, unknown>): ModelStore => ({
    async get(key) {
      if (!(key in files)) return null;
      const text = JSON.stringify(files[key]);
      return { etag: String(text.length), text: async () => text, arrayBuffer: async () => new TextEncoder().encode(text).buffer as ArrayBuffer };
    },
  });
  const registry = (files: Record<string, unknown>, tier?: string) =>
    new ModelRegistry<{ manifest: { name: string; version: string; model: string; files: [] }; release(): Promise<void> }>(store(files), {
      prefix: 'm/',
      refreshMs: 0,
      ...(tier ? { tier } : {}),
      parse: (text) => JSON.parse(text),
      loader: async (manifest: { name: string; version: string; model: string; files: [] }) => ({ manifest, release: async () => undefined }),
    });
  const man = (version: string) => ({ name: 'x', version, model: 'g.onnx', files: [] });
  const files = {
    'm/active.json': { name: 'x', version: '1', tiers: { fast: { name: 'x', version: 'gone' }, accurate: { name: 'x', version: '1' } } },
    'm/history.json': { entries: [{ name: 'x', version: '1' }, { name: 'x', version: '3', tier: 'fast' }, { name: 'x', version: '1', tier: 'accurate' }] },
    'm/x/1/manifest.json': man('1'),
    'm/x/3/manifest.json': man('3'),
  };

  it('falls back only to history entries of its own tier', async () => {
    const lease = await registry(files, 'fast').acquire();
    expect({ version: lease.model.manifest.version, fallback: lease.fallback }).toEqual({ version: '3', fallback: true });
    lease.release();
  });

  it('the default registry still follows the top-level name and version', async () => {
    const lease = await registry(files).acquire();
    expect({ version: lease.model.manifest.version, fallback: lease.fallback }).toEqual({ version: '1', fallback: false });
    lease.release();
  });
});

describe('sharedAgeLoader', () => {
  it('loads a version once for every registry that names it, and releases it after the last', async () => {
    let loads = 0;
    let releases = 0;
    const load = sharedAgeLoader(async (manifest) => {
      loads++;
      return { manifest, run: async () => { throw new Error('not run'); }, release: async () => { releases++; } };
    });
    const manifest = { name: 'x', version: '1' } as Parameters<typeof load>[0];
    const a = await load(manifest, new Map());
    const b = await load(manifest, new Map());
    expect(loads).toBe(1);
    await a.release();
    await a.release();
    expect(releases).toBe(0);
    await b.release();
    expect(releases).toBe(1);
    await (await load(manifest, new Map())).release();
    expect(loads).toBe(2);
  });
});
