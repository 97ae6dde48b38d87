import { env } from 'cloudflare:test';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkAnswer, generateOne, leaksImage, makeSeeds, type FuzzCase } from './fuzz/cases.ts';
import { encodeJpeg, makeRgb, pattern } from './helpers/images';
import { logText } from './helpers/logs';
import { FIXTURE, fixtureFile, json, post, publishDetector, publishFixture, worker } from './helpers/worker';

// The seeded subset of `npm run fuzz` (docs/reliability.md), through the worker in workerd:
// every answer a 2xx or a 4xx in the one error shape, no input's bytes in any log line or
// error body, and a real face answered exactly as before once the run is over.
const SEED = 20261201;
const N = Number(env.FUZZ_N ?? '300');

const logged: string[] = [];
const originals = { log: console.log, info: console.info, warn: console.warn, error: console.error, debug: console.debug };

function request(c: FuzzCase): Request | undefined {
  let body: BodyInit | null = c.body;
  if (c.chunks && c.body) {
    const data = c.body;
    const sizes = c.chunks;
    let i = 0, at = 0;
    body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (i >= sizes.length) return controller.close();
        controller.enqueue(data.slice(at, at + sizes[i]!));
        at += sizes[i++]!;
      },
    }, { highWaterMark: 0 });
  }
  try {
    return new Request(`http://localhost${c.path}`, { method: c.method, headers: c.headers, body, ...(c.chunks ? { duplex: 'half' } : {}) } as RequestInit);
  } catch {
    return undefined; // a request the runtime itself will not build (e.g. a non-ASCII header): never sent
  }
}

async function realFace(): Promise<Uint8Array> {
  const labels = await fixtureFile('shared/utkface/labels.csv');
  if (labels) {
    const file = new TextDecoder().decode(labels).split(/\r?\n/).find((l) => l.endsWith(',test'))!.split(',')[0]!;
    const jpeg = await fixtureFile(`shared/utkface/images/${file}`);
    if (jpeg) return jpeg;
  }
  console.warn('real faces not found in ../shared/data: the after-fuzz check uses a generated photo');
  return encodeJpeg(makeRgb(200, 200, pattern));
}

let face: Uint8Array;
let before: string;

beforeAll(async () => {
  await publishFixture(FIXTURE.version);
  await publishDetector();
  face = await realFace();
  const res = await post(face, { query: 'crop=image' });
  expect(res.status).toBe(200);
  before = await res.text();
  for (const k of Object.keys(originals) as (keyof typeof originals)[]) {
    console[k] = (...args: unknown[]) => {
      logged.push(logText(args));
    };
  }
});

afterAll(() => Object.assign(console, originals));

describe(`seeded fuzz subset (${N} cases, seed ${SEED}; npm run fuzz runs 10,000+)`, () => {
  it('answers every hostile input with a 2xx or a 4xx in the error shape, leaking no image bytes', async () => {
    const seeds = makeSeeds();
    const heap0 = (await json(await worker.fetch('http://localhost/v1/models'))).wasm_heap_bytes as number;
    const tally = new Map<string, number>();
    const failures: string[] = [];
    let sent = 0;
    for (let id = 0; id < N; id++) {
      const c = generateOne(SEED, id, seeds, { maxBodyBytes: Number(env.MAX_BODY_BYTES) });
      const req = request(c);
      if (!req) continue;
      sent++;
      const seen = logged.length;
      const res = await worker.fetch(req);
      const text = await res.text();
      const bad = checkAnswer(c, res.status, res.headers.get('content-type'), text);
      const leak = [text, ...logged.slice(seen)].map((l) => leaksImage(l, c.body)).find(Boolean);
      if (bad || leak) failures.push(`case ${id} (${c.category}, ${c.method} ${c.path.slice(0, 80)}): ${bad ?? `leak: ${leak}`}`);
      let code = String(res.status);
      if (res.status >= 400 && c.method !== 'HEAD') code += ` ${(JSON.parse(text) as { error: { code: string } }).error.code}`;
      tally.set(code, (tally.get(code) ?? 0) + 1);
    }
    originals.log(`fuzz subset: ${sent} sent; ${[...tally].sort().map(([k, v]) => `${k}: ${v}`).join(', ')}; ${logged.length} log lines`);
    expect(failures).toEqual([]);
    expect(sent).toBeGreaterThan(N * 0.95);
    // The inputs reach the decoder and the face detector (no face in generated images is a
    // 422 no_face), not only the early refusals.
    expect((tally.get('200') ?? 0) + (tally.get('422 no_face') ?? 0)).toBeGreaterThan(N * 0.05);
    expect([...tally.keys()].filter((k) => k.startsWith('4')).length).toBeGreaterThanOrEqual(5);
    const heap1 = (await json(await worker.fetch('http://localhost/v1/models'))).wasm_heap_bytes as number;
    originals.log(`wasm heap: ${(heap0 / 2 ** 20).toFixed(1)} -> ${(heap1 / 2 ** 20).toFixed(1)} MiB`);
    expect(heap1).toBeLessThanOrEqual(heap0 + 16 * 2 ** 20);
  });

  it('serves the real face exactly as before the run', async () => {
    const res = await post(face, { query: 'crop=image' });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe(before);
  });
});
