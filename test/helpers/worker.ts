import { expect } from "vitest";
import { env } from 'cloudflare:test';
import { exports } from 'cloudflare:workers';
import { sha256Hex } from '../../src/registry/sha256';
import type { ErrorBody } from '../../src/schemas';

export const FIXTURE = { name: 'al-fixture', version: '1' } as const;

/** A file from test/fixtures or ../shared/data (served by vitest.config.mjs), or undefined if absent. */
export async function fixtureFile(path: string): Promise<Uint8Array | undefined> {
  const res = await env.FIXTURES.fetch(`http://fixtures/${path}`);
  if (res.status === 404) return undefined;
  if (!res.ok) throw new Error(`fixture ${path}: ${res.status} ${await res.text()}`);
  return new Uint8Array(await res.arrayBuffer());
}

type ManifestJson = { name: string; version: string; model: string; files: { path: string; sha256: string; bytes: number }[] } & Record<string, unknown>;

/** The contract fixture model (test/fixtures/model), as committed by the training side. */
export async function fixtureModel(): Promise<{ manifest: ManifestJson; model: Uint8Array }> {
  const manifestBytes = await fixtureFile(`fixtures/model/${FIXTURE.name}/${FIXTURE.version}/manifest.json`);
  if (!manifestBytes) throw new Error('test/fixtures/model/al-fixture/1/manifest.json is missing');
  const manifest = JSON.parse(new TextDecoder().decode(manifestBytes)) as ManifestJson;
  const model = await fixtureFile(`fixtures/model/${FIXTURE.name}/${FIXTURE.version}/${manifest.model}`);
  if (!model) throw new Error(`fixture model file ${manifest.model} is missing`);
  return { manifest, model };
}

/**
 * Puts the fixture into the test bucket as `name/version` (the manifest rewritten to match),
 * optionally with other model bytes (the manifest's sha256 is recomputed unless `staleSha`).
 */
export async function publishFixture(
  version: string,
  opts: { name?: string; activate?: boolean; modelBytes?: Uint8Array; staleSha?: boolean } = {},
): Promise<void> {
  const { manifest, model } = await fixtureModel();
  const name = opts.name ?? FIXTURE.name;
  const bytes = opts.modelBytes ?? model;
  const files = manifest.files.map((f) =>
    f.path === manifest.model && !opts.staleSha ? { ...f, bytes: bytes.byteLength } : f,
  );
  for (const f of files) if (f.path === manifest.model && !opts.staleSha) f.sha256 = await sha256Hex(bytes);
  const prefix = `models/${name}/${version}/`;
  await env.MODELS.put(prefix + manifest.model, bytes);
  await env.MODELS.put(prefix + 'manifest.json', JSON.stringify({ ...manifest, name, version, files }));
  if (opts.activate !== false) await activate(name, version);
}

type DetectorJson = { name: string; version: string; model: string } & Record<string, unknown>;

/** The committed face detector (models/detectors, as `npm start` seeds it): manifest text and model bytes. */
export async function shippedDetector(): Promise<{ manifest: DetectorJson; manifestText: string; model: Uint8Array }> {
  const active = await fixtureFile('models/detectors/active.json');
  if (!active) throw new Error('models/detectors/active.json is missing');
  const { name, version } = JSON.parse(new TextDecoder().decode(active)) as { name: string; version: string };
  const manifestText = new TextDecoder().decode((await fixtureFile(`models/detectors/${name}/${version}/manifest.json`))!);
  const manifest = JSON.parse(manifestText) as DetectorJson;
  const model = await fixtureFile(`models/detectors/${name}/${version}/${manifest.model}`);
  if (!model) throw new Error(`detector file ${manifest.model} is missing`);
  return { manifest, manifestText, model };
}

/** Puts the shipped detector into the test bucket (under DETECTORS_PREFIX) and activates it. */
export async function publishDetector(opts: { version?: string; modelBytes?: Uint8Array } = {}): Promise<{ name: string; version: string }> {
  const { manifest, model } = await shippedDetector();
  const version = opts.version ?? manifest.version;
  const bytes = opts.modelBytes ?? model;
  const files = (manifest.files as { path: string; sha256: string; bytes: number }[]).filter((f) => f.path === manifest.model);
  // Only the graph goes up (the notice and reference files are not loaded), with a manifest
  // that lists just it; a replaced graph keeps its stale sha256, so it is refused on load.
  const prefix = `models/detectors/${manifest.name}/${version}/`;
  await env.MODELS.put(prefix + manifest.model, bytes);
  await env.MODELS.put(prefix + 'manifest.json', JSON.stringify({ ...manifest, version, files }));
  await env.MODELS.put('models/detectors/active.json', JSON.stringify({ name: manifest.name, version }));
  return { name: manifest.name, version };
}

export async function activate(name: string, version: string): Promise<void> {
  await env.MODELS.put('models/active.json', JSON.stringify({ name, version }));
}

/** The worker under test, called through its own fetch handler inside workerd. */
export const worker = exports.default;

export function post(body: BodyInit | null, init: { type?: string | null; query?: string; headers?: Record<string, string> } = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (init.type !== null) headers.set('content-type', init.type ?? 'image/jpeg');
  return worker.fetch(`http://localhost/v1/age${init.query ? `?${init.query}` : ''}`, { method: 'POST', body, headers });
}

export async function json<T = Record<string, any>>(res: Response): Promise<T> {
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  return (await res.json()) as T;
}

export async function expectError(res: Response, status: number, code: string): Promise<string> {
  const body = await json<ErrorBody>(res);
  expect({ status: res.status, code: body.error?.code }).toEqual({ status, code });
  expect(typeof body.error.message).toBe('string');
  expect(body.error.message.length).toBeGreaterThan(10);
  expect(body.error.request_id).toBe(res.headers.get('x-request-id'));
  expect(Object.keys(body)).toEqual(['error']);
  return body.error.message;
}
