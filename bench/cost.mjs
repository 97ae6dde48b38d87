#!/usr/bin/env node
// `npm run bench`: client-timed latency of the API in workerd (wrangler dev, local), for the
// test fixture and for the default model in models/ when there is one.
//
//   npm run bench                       # fixture + default model, 100 requests each
//   npm run bench -- --n 200 --only default
//   npm run bench -- --models DIR       # any models/ tree (active.json + <name>/<version>/)
//   npm run bench -- --only default --json bench.json   # flat {measure: value} for the model card
//
// For each model: a fresh local R2 is seeded, `wrangler dev` starts on the bench entry
// (bench/lib/worker-entry.ts = the app + GET /_bench/infer), then
//   cold    first POST /v1/age after start (includes reading and verifying the model from R2
//           and creating the ORT session);
//   e2e     POST /v1/age?crop=image with a 640x480 JPEG (decode + crop + resize + inference + JSON;
//           no face detection: bench/photos.mjs measures the photo path);
//   infer   GET /_bench/infer (one model run on a fixed crop, no image work);
//   quality GET /_bench/quality?repeat=20 (capture quality measured 20 times on that crop) minus
//           a round trip, over 20: what `quality` adds per face, also as a share of inference;
//   heap    ORT's wasm memory after all requests (GET /v1/models);
//   detector  with the default model: finding the faces of a selfie and of a group of 12 at 1, 4
//           and 12 megapixels, half tiles only against half and quarter tiles (bench/lib/detector-cost.mjs).
// Requests are sequential (one isolate, one request at a time, as in production).
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createRequire } from 'node:module';
import { ROOT, UsageError, fail, parseOptions } from '../scripts/lib.mjs';
import { detectorCost, printDetectorCost } from './lib/detector-cost.mjs';
import { startBenchServer } from './lib/worker.mjs';

const require = createRequire(import.meta.url);
const jpeg = require('jpeg-js');

function parseArgs(argv) {
  const { values } = parseOptions(argv, { n: { type: 'string' }, only: { type: 'string' }, models: { type: 'string', multiple: true }, json: { type: 'string' } });
  const opts = { n: Number(values.n ?? 100), only: values.only, models: values.models ?? [], json: values.json };
  if (!(opts.n >= 10)) throw new UsageError('--n must be at least 10');
  if (opts.only && !['fixture', 'default'].includes(opts.only)) throw new UsageError('--only takes fixture or default');
  return opts;
}

/** A 640x480 test photo: UTKFace faces tiled (when ../shared/data is there), else a synthetic scene. */
function testJpeg() {
  const W = 640, H = 480;
  const rgba = Buffer.alloc(W * H * 4);
  const dir = join(ROOT, '..', 'shared', 'data', 'utkface', 'images');
  const faces = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.jpg')).slice(0, 12).map((f) => jpeg.decode(readFileSync(join(dir, f)), { useTArray: true })) : [];
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      const o = (y * W + x) * 4;
      if (faces.length) {
        const f = faces[(Math.floor(y / 200) * 4 + Math.floor(x / 200)) % faces.length];
        const i = ((y % 200) * f.width + (x % 200)) * 4;
        rgba[o] = f.data[i]; rgba[o + 1] = f.data[i + 1]; rgba[o + 2] = f.data[i + 2];
      } else {
        const n = (Math.sin(x * 0.37 + y * 0.11) * 43758.5453) % 1;
        rgba[o] = (x + 40 * n) & 255; rgba[o + 1] = (y * 0.5 + 60 * n) & 255; rgba[o + 2] = ((x + y) * 0.3) & 255;
      }
      rgba[o + 3] = 255;
    }
  return { bytes: jpeg.encode({ width: W, height: H, data: rgba }, 90).data, source: faces.length ? 'UTKFace faces tiled' : 'synthetic' };
}

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};
const ms = (v) => `${v.toFixed(1)} ms`;

async function timed(fn) {
  const t0 = performance.now();
  const res = await fn();
  const body = await res.text();
  const t = performance.now() - t0;
  if (!res.ok) throw new Error(`HTTP ${res.status}: ${body.slice(0, 300)}`);
  return { t, body };
}

async function benchModel(label, modelsDir, n, photo) {
  console.log(`\n## ${label}: seeding ${modelsDir}`);
  const { base, active, manifest, stop } = await startBenchServer(modelsDir);
  try {
    const post = () => fetch(`${base}/v1/age?crop=image`, { method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: photo });
    const cold = await timed(post);
    for (let i = 0; i < 5; i++) await timed(post);
    const e2e = [];
    for (let i = 0; i < n; i++) e2e.push((await timed(post)).t);
    const infer = [];
    for (let i = 0; i < n; i++) infer.push((await timed(() => fetch(`${base}/_bench/infer`))).t);
    const health = [];
    for (let i = 0; i < n; i++) health.push((await timed(() => fetch(`${base}/healthz`))).t);
    const QUALITY_REPEAT = 20;
    const quality = [];
    for (let i = 0; i < n; i++) quality.push((await timed(() => fetch(`${base}/_bench/quality?repeat=${QUALITY_REPEAT}`))).t);
    // The same upload refused after the body is read (top_k is checked before decoding): the
    // transport cost of the photo, to separate it from the image work.
    const upload = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      const res = await fetch(`${base}/v1/age?top_k=999`, { method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: photo });
      await res.text();
      if (res.status !== 400) throw new Error(`expected 400 for top_k=999, got ${res.status}`);
      upload.push(performance.now() - t0);
    }
    const models = JSON.parse((await timed(() => fetch(`${base}/v1/models`))).body);
    const result = {
      model: `${active.name}/${active.version}`,
      input: manifest.input.size,
      bytes: manifest.files.reduce((s, f) => s + f.bytes, 0),
      cold: cold.t,
      e2e50: pct(e2e, 50), e2e95: pct(e2e, 95),
      inf50: pct(infer, 50), inf95: pct(infer, 95),
      rt50: pct(health, 50),
      up50: pct(upload, 50),
      heapMiB: models.wasm_heap_bytes / 2 ** 20,
      requests: 6 + 4 * n,
    };
    result.quality50 = Math.max(0, pct(quality, 50) - result.rt50) / QUALITY_REPEAT;
    result.qualityShare = result.quality50 / Math.max(1e-9, result.inf50 - result.rt50);
    result.overhead50 = result.e2e50 - result.inf50;
    // decode + crop + resize + read-out + JSON: e2e minus inference minus the extra cost of uploading the photo.
    result.image50 = result.overhead50 - (result.up50 - result.rt50);
    console.log(JSON.stringify(result));
    return result;
  } finally {
    await stop();
  }
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const { bytes: photo, source } = testJpeg();
  const targets = [];
  if (!opts.only || opts.only === 'fixture') targets.push(['fixture', join(ROOT, 'test', 'fixtures', 'model')]);
  if (!opts.only || opts.only === 'default') {
    if (existsSync(join(ROOT, 'models', 'active.json'))) targets.push(['default', join(ROOT, 'models')]);
    else console.log('(no models/active.json: the default model is not benchmarked)');
  }
  if (opts.models.length) targets.splice(0, targets.length, ...opts.models.map((d) => [d, resolve(d)]));
  if (opts.json && targets.length !== 1) throw new UsageError('--json needs exactly one model: add --only default (or one --models DIR)');
  const rows = [];
  for (const [label, dir] of targets) rows.push({ label, ...(await benchModel(label, dir, opts.n, photo)) });
  const detecting = targets.some(([label]) => label === 'default') ? await detectorCost(join(ROOT, 'models')) : null;
  if (opts.json) writeJson(opts.json, rows[0], opts.n, source);
  console.log(`\nworkerd via wrangler dev (local), ${opts.n} sequential requests per series, client-timed; ` +
    `photo: 640x480 JPEG (${source}, ${(photo.length / 1024).toFixed(0)} KiB), whole image as the crop (crop=image).\n` +
    `overhead = e2e − inference; image work = overhead − (upload − round trip), i.e. decode + crop + resize + read-out + JSON, where ` +
    `upload = the same POST refused right after the body is read, round trip = GET /healthz.\n`);
  console.log('| model | S | files | cold start | e2e p50 | e2e p95 | inference p50 | inference p95 | overhead p50 | image work p50 | quality per face (of inference) | round trip p50 | upload p50 | wasm heap after requests |');
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(`| ${r.label}: ${r.model} | ${r.input} | ${(r.bytes / 1e6).toFixed(2)} MB | ${ms(r.cold)} | ${ms(r.e2e50)} | ${ms(r.e2e95)} | ${ms(r.inf50)} | ${ms(r.inf95)} | ${ms(r.overhead50)} | ${ms(r.image50)} | ${r.quality50.toFixed(2)} ms (${(100 * r.qualityShare).toFixed(1)}%) | ${ms(r.rt50)} | ${ms(r.up50)} | ${r.heapMiB.toFixed(1)} MiB (${r.requests} req) |`);
  }
  if (detecting) printDetectorCost(detecting);
}

function writeJson(path, r, n, source) {
  const flat = {
    model: r.model,
    'input size': `${r.input}x${r.input}`,
    'model files': `${(r.bytes / 1e6).toFixed(2)} MB`,
    'cold start (first request, model from R2)': ms(r.cold),
    'end-to-end p50 / p95 (640x480 JPEG)': `${ms(r.e2e50)} / ${ms(r.e2e95)}`,
    'inference p50 / p95': `${ms(r.inf50)} / ${ms(r.inf95)}`,
    'image work p50 (decode + crop + resize + JSON)': ms(r.image50),
    'capture quality per face (share of inference)': `${r.quality50.toFixed(2)} ms (${(100 * r.qualityShare).toFixed(1)}%)`,
    [`wasm heap after ${r.requests} requests`]: `${r.heapMiB.toFixed(1)} MiB`,
    setup: `wrangler dev (local workerd), ${n} sequential client-timed requests per series, photo: ${source}`,
  };
  writeFileSync(path, JSON.stringify(flat, null, 2) + '\n');
  console.log(`\nwrote ${path}`);
}

main().catch((err) => fail(err instanceof UsageError ? err.message : err.stack ?? String(err)));
