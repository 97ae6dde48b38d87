import { describe, expect, it } from 'vitest';
import { captureLogs } from '../../test/helpers/logs';
import type { AgeModel } from '../model/age-model';
import type { Manifest } from './manifest';
import { ModelRegistry, ModelUnavailableError, type Loader } from './registry';
import { sha256Hex } from './sha256';

/** An in-memory stand-in for the one R2 method the registry uses. */
class FakeBucket {
  objects = new Map<string, { bytes: Uint8Array; etag: string }>();
  gets: string[] = [];
  private n = 0;
  put(key: string, value: string | Uint8Array) {
    const bytes = typeof value === 'string' ? new TextEncoder().encode(value) : value;
    this.objects.set(key, { bytes, etag: `e${++this.n}` });
  }
  delete(key: string) {
    this.objects.delete(key);
  }
  async get(key: string) {
    this.gets.push(key);
    const o = this.objects.get(key);
    if (!o) return null;
    return {
      etag: o.etag,
      text: async () => new TextDecoder().decode(o.bytes),
      arrayBuffer: async () => o.bytes.slice().buffer,
    };
  }
}

async function publish(bucket: FakeBucket, name: string, version: string, body = `onnx:${name}/${version}`, opts: { tamper?: boolean; activate?: boolean } = {}) {
  const bytes = new TextEncoder().encode(body);
  const manifest = {
    schema: 1, name, version,
    input: { name: 'image', size: 16, dtype: 'uint8', layout: 'NHWC', color: 'RGB' },
    outputs: ['age', 'probs', 'global_age', 'local_age', 'box'],
    face_margin: 0.4, ages: { min: 0, max: 100 }, model: 'model.onnx',
    files: [{ path: 'model.onnx', role: 'model', sha256: await sha256Hex(bytes), bytes: bytes.length }],
    metrics: { mae: 5 },
  };
  bucket.put(`models/${name}/${version}/manifest.json`, JSON.stringify(manifest));
  bucket.put(`models/${name}/${version}/model.onnx`, opts.tamper ? new TextEncoder().encode(body.replace(/.$/, 'X')) : bytes);
  if (opts.activate !== false) bucket.put('models/active.json', JSON.stringify({ name, version }));
}

/** A loader that "loads" the model bytes as text and remembers what happened. */
function fakeLoader(failFor: string[] = []) {
  const log: string[] = [];
  const loader: Loader<AgeModel> = async (manifest: Manifest, files) => {
    const id = `${manifest.name}/${manifest.version}`;
    const text = new TextDecoder().decode(files.get(manifest.model));
    if (failFor.includes(id)) {
      log.push(`fail ${id}`);
      throw new Error(`cannot load ${id}`);
    }
    log.push(`load ${id}`);
    const model: AgeModel = {
      manifest,
      run: async () => ({ age: 30, probs: new Float32Array(101), globalAge: 30, localAge: 30, box: new Float32Array(4) }),
      release: async () => void log.push(`release ${id} (${text})`),
    };
    return model;
  };
  return { loader, log };
}

function setup(opts: { refreshMs?: number; failFor?: string[]; clock?: { t: number } } = {}) {
  const bucket = new FakeBucket();
  const { loader, log } = fakeLoader(opts.failFor);
  const clock = opts.clock ?? { t: 1_000_000 };
  const registry = new ModelRegistry(bucket, { prefix: 'models/', refreshMs: opts.refreshMs ?? 0, loader, now: () => clock.t });
  return { bucket, registry, log, clock };
}

async function use(registry: ModelRegistry) {
  const lease = await registry.acquire();
  lease.release();
  return { id: `${lease.model.manifest.name}/${lease.model.manifest.version}`, fallback: lease.fallback };
}

describe('ModelRegistry', () => {
  const logged = captureLogs();

  it('loads the version named by active.json', async () => {
    const { bucket, registry, log } = setup();
    await publish(bucket, 'm', '1');
    expect(await use(registry)).toEqual({ id: 'm/1', fallback: false });
    expect(log).toEqual(['load m/1']);
    const s = registry.status();
    expect(s.active).toMatchObject({ name: 'm', version: '1' });
    expect(s.active?.manifest.metrics).toEqual({ mae: 5 });
    expect([s.fallback, s.load_error]).toEqual([false, null]);
  });

  it('refuses a file whose sha256 does not match the manifest', async () => {
    const { bucket, registry, log } = setup();
    await publish(bucket, 'm', '1', 'onnx-bytes', { tamper: true });
    await expect(registry.acquire()).rejects.toThrow(ModelUnavailableError);
    await expect(registry.acquire()).rejects.toThrow(/sha256 mismatch/);
    expect(log).toEqual([]);
    expect(registry.status().load_error).toMatchObject({ name: 'm', version: '1' });
    expect(logged.of('model_load_failed')).toEqual([{ event: 'model_load_failed', request_id: null, model: 'm/1', message: expect.stringMatching(/sha256 mismatch/) }]);
  });

  it('refuses a file whose size does not match, and a manifest for another version', async () => {
    const { bucket, registry } = setup();
    await publish(bucket, 'm', '1');
    bucket.put('models/m/1/model.onnx', 'short');
    await expect(registry.acquire()).rejects.toThrow(/5 bytes, the manifest says/);
    await publish(bucket, 'm', '2');
    bucket.put('models/active.json', JSON.stringify({ name: 'm', version: '3' }));
    bucket.put('models/m/3/manifest.json', new TextDecoder().decode(bucket.objects.get('models/m/2/manifest.json')!.bytes));
    await expect(registry.acquire()).rejects.toThrow(/describes m\/2, expected m\/3/);
  });

  it('hot-swaps when active.json changes and releases the old session first', async () => {
    const { bucket, registry, log } = setup();
    await publish(bucket, 'm', '1');
    expect((await use(registry)).id).toBe('m/1');
    await publish(bucket, 'm', '2');
    expect(await use(registry)).toEqual({ id: 'm/2', fallback: false });
    expect(log).toEqual(['load m/1', 'release m/1 (onnx:m/1)', 'load m/2']);
  });

  it('keeps serving the last good model when the new one fails verification', async () => {
    const { bucket, registry, log } = setup();
    await publish(bucket, 'm', '1');
    await use(registry);
    await publish(bucket, 'm', '2', 'other', { tamper: true });
    expect(await use(registry)).toEqual({ id: 'm/1', fallback: true });
    const s = registry.status();
    expect(s).toMatchObject({ active: { name: 'm', version: '1' }, requested: { name: 'm', version: '2' }, fallback: true });
    expect(s.load_error?.message).toMatch(/m\/2: model.onnx sha256 mismatch/);
    expect(log).toEqual(['load m/1']); // the good session was never released
  });

  it('reloads the last good model when the new session cannot be created', async () => {
    const { bucket, registry, log } = setup({ failFor: ['m/2'] });
    await publish(bucket, 'm', '1');
    await use(registry);
    await publish(bucket, 'm', '2');
    expect(await use(registry)).toEqual({ id: 'm/1', fallback: true });
    expect(log).toEqual(['load m/1', 'release m/1 (onnx:m/1)', 'fail m/2', 'load m/1']);
    expect(registry.status().load_error?.message).toBe('cannot load m/2');
  });

  it('does not retry a failed version until active.json is written again', async () => {
    const { bucket, registry, log } = setup({ failFor: ['m/2'] });
    await publish(bucket, 'm', '1');
    await use(registry);
    await publish(bucket, 'm', '2');
    await use(registry);
    await use(registry);
    await use(registry);
    expect(log.filter((l) => l === 'fail m/2')).toHaveLength(1);
    bucket.put('models/active.json', JSON.stringify({ name: 'm', version: '2' })); // new etag
    await use(registry);
    expect(log.filter((l) => l === 'fail m/2')).toHaveLength(2);
  });

  it('recovers once active.json points back to a good version', async () => {
    const { bucket, registry } = setup();
    await publish(bucket, 'm', '1');
    await use(registry);
    await publish(bucket, 'm', '2', 'x', { tamper: true });
    await use(registry);
    bucket.put('models/active.json', JSON.stringify({ name: 'm', version: '1' }));
    expect(await use(registry)).toEqual({ id: 'm/1', fallback: false });
    expect(registry.status().load_error).toBeNull();
  });

  it('falls back to history.json in a fresh isolate whose active version is broken', async () => {
    const { bucket, registry } = setup();
    await publish(bucket, 'm', '1');
    await publish(bucket, 'm', '2', 'y', { tamper: true });
    bucket.put('models/history.json', JSON.stringify({ entries: [{ name: 'm', version: '1' }, { name: 'm', version: '2' }] }));
    expect(await use(registry)).toEqual({ id: 'm/1', fallback: true });
    expect(registry.status()).toMatchObject({ requested: { version: '2' }, fallback: true, load_error: { version: '2' } });
  });

  it('tries at most three history entries, newest first, skipping the broken active one, repeats and garbage', async () => {
    const { bucket, registry, log } = setup({ failFor: ['m/2', 'm/3', 'm/4'] });
    for (const v of ['1', '2', '3', '4']) await publish(bucket, 'm', v, undefined, { activate: false });
    await publish(bucket, 'm', '9', 'z', { tamper: true });
    const entries = [{ name: 'm', version: '1' }, { name: 'm', version: '2' }, { name: 'm', version: '3' }, { name: 'm', version: '9' },
      { name: 'm', version: '4' }, { name: 'm', version: '4' }, { name: '../x', version: '1' }, { nonsense: true }];
    bucket.put('models/history.json', JSON.stringify({ entries }));
    await expect(registry.acquire()).rejects.toThrow(ModelUnavailableError);
    // m/1 would load, but it is the fourth candidate: a broken history must not make one
    // request download every version ever published.
    expect(log).toEqual(['fail m/4', 'fail m/3', 'fail m/2']);
    expect(logged.of('model_fallback_failed').map((l) => l.model)).toEqual(['m/4', 'm/3', 'm/2']);
    expect(bucket.gets.filter((k) => k.endsWith('model.onnx'))).toEqual(['models/m/9/model.onnx', 'models/m/4/model.onnx', 'models/m/3/model.onnx', 'models/m/2/model.onnx']);
    expect(registry.status()).toMatchObject({ active: null, requested: { version: '9' }, load_error: { version: '9' } });
  });

  it('takes the third history entry when the first two fail', async () => {
    const { bucket, registry, log } = setup({ failFor: ['m/2', 'm/3'] });
    for (const v of ['1', '2', '3']) await publish(bucket, 'm', v, undefined, { activate: false });
    await publish(bucket, 'm', '9', 'z', { tamper: true });
    bucket.put('models/history.json', JSON.stringify({ entries: ['1', '2', '3'].map((version) => ({ name: 'm', version })) }));
    expect(await use(registry)).toEqual({ id: 'm/1', fallback: true });
    expect(log).toEqual(['fail m/3', 'fail m/2', 'load m/1']);
  });

  it('answers 503 (no crash) when history.json is missing or not JSON', async () => {
    for (const history of [undefined, '{not json', '[]', '{"entries": 5}']) {
      const { bucket, registry, log } = setup();
      await publish(bucket, 'm', '9', 'z', { tamper: true });
      if (history !== undefined) bucket.put('models/history.json', history);
      await expect(registry.acquire()).rejects.toThrow(/sha256 mismatch/);
      expect(log).toEqual([]);
    }
  });

  it('keeps the model when active.json disappears or is garbage, and reports it', async () => {
    const { bucket, registry } = setup();
    await publish(bucket, 'm', '1');
    await use(registry);
    bucket.delete('models/active.json');
    expect((await use(registry)).id).toBe('m/1');
    expect(registry.status().load_error?.message).toMatch(/active.json not found/);
    bucket.put('models/active.json', '{"name": "../x", "version": "1"}');
    expect((await use(registry)).id).toBe('m/1');
    expect(registry.status().load_error?.message).toMatch(/invalid name/);
  });

  it('reads active.json at most once per refresh interval', async () => {
    const clock = { t: 0 };
    const { bucket, registry } = setup({ refreshMs: 30_000, clock });
    await publish(bucket, 'm', '1');
    await use(registry);
    await publish(bucket, 'm', '2');
    clock.t += 29_000;
    expect((await use(registry)).id).toBe('m/1');
    expect(bucket.gets.filter((k) => k === 'models/active.json')).toHaveLength(1);
    clock.t += 1_000;
    expect((await use(registry)).id).toBe('m/2');
  });

  it('waits for in-flight requests before releasing a swapped-out session', async () => {
    const { bucket, registry, log } = setup();
    await publish(bucket, 'm', '1');
    const held = await registry.acquire();
    await publish(bucket, 'm', '2');
    const swapping = registry.acquire();
    await new Promise((r) => setTimeout(r, 20));
    expect(log).toEqual(['load m/1']); // not released while `held` is in use
    held.release();
    const next = await swapping;
    next.release();
    expect(next.model.manifest.version).toBe('2');
    expect(log).toEqual(['load m/1', 'release m/1 (onnx:m/1)', 'load m/2']);
  });

  it('without any good model, goes back to R2 at most every few seconds', async () => {
    const clock = { t: 0 };
    const { bucket, registry } = setup({ refreshMs: 30_000, clock });
    await publish(bucket, 'm', '1', 'z', { tamper: true });
    await expect(registry.acquire()).rejects.toThrow(/sha256 mismatch/);
    clock.t += 1_000;
    await expect(registry.acquire()).rejects.toThrow(/sha256 mismatch/);
    expect(bucket.gets.filter((k) => k === 'models/active.json')).toHaveLength(1);
    await publish(bucket, 'm', '2');
    clock.t += 4_000;
    expect((await use(registry)).id).toBe('m/2');
  });

  it('serves another kind of model with its own manifest parser, named in its errors', async () => {
    const bucket = new FakeBucket();
    const parse = (text: string) => {
      const m = JSON.parse(text);
      if (m.kind !== 'face_detector') throw new Error('not a detector manifest');
      return m;
    };
    type Det = { manifest: { name: string; version: string; model: string; files: []; kind: string }; release(): Promise<void> };
    const registry = new ModelRegistry<Det>(bucket, {
      prefix: 'models/detectors/', refreshMs: 0, parse, what: 'face detector',
      loader: async (manifest) => ({ manifest, release: async () => undefined }) as unknown as Det,
    });
    await expect(registry.acquire()).rejects.toThrow(/^No face detector could be loaded: models\/detectors\/active.json not found/);
    await publish(bucket, 'd', '1');
    bucket.put('models/detectors/active.json', JSON.stringify({ name: 'd', version: '1' }));
    // The age model's manifest is not a detector's: refused by the parser given.
    await expect(registry.acquire()).rejects.toThrow(/not found|not a detector/);
    const bytes = new TextEncoder().encode('onnx');
    bucket.put('models/detectors/d/2/manifest.json', JSON.stringify({ kind: 'face_detector', name: 'd', version: '2', model: 'm.onnx', files: [{ path: 'm.onnx', role: 'model', sha256: await sha256Hex(bytes), bytes: 4 }] }));
    bucket.put('models/detectors/d/2/m.onnx', bytes);
    bucket.put('models/detectors/active.json', JSON.stringify({ name: 'd', version: '2' }));
    const lease = await registry.acquire();
    expect(lease.model.manifest.kind).toBe('face_detector');
    lease.release();
  });

  it('loads once for concurrent first requests', async () => {
    const { bucket, registry, log } = setup();
    await publish(bucket, 'm', '1');
    await Promise.all([use(registry), use(registry), use(registry)]);
    expect(log).toEqual(['load m/1']);
  });
});
