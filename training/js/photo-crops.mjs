#!/usr/bin/env node
// Training faces cut by the photo path itself: every face of a UTKFace split pasted into the
// photos `npm run bench:photos` measures on (bench/lib/compose-photos.mjs, another seed, other faces),
// found by the served detector in workerd and cut exactly as POST /v1/age cuts it for the active
// model (POST /_bench/crops: framing, roll, resize). training/data.py (load_photo_crops) reads them.
//
//   node training/js/photo-crops.mjs --split train --out .cache/photo-crops/train-s2 [--seed 2] [--models DIR] [--faces N]
//
// Writes OUT.u8, uint8 [N, S, S, 3] RGB for the split's N faces in labels.csv order (zeros where
// no detection matched the face: IoU < 0.5), and OUT.json: the files, which faces matched, the
// model, detector and seed. UTKFace-derived: keep it under .cache/, never in git.
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { ROOT, UsageError, fail, parseOptions, readVersionDir } from '../../scripts/lib.mjs';
import { seed } from '../../scripts/models.mjs';
import { composeFaces, framingOf, matchFaces, splitRows } from '../../bench/lib/compose-photos.mjs';
import { startBenchWorker } from '../../bench/lib/worker.mjs';

function parseArgs(argv) {
  const { values } = parseOptions(argv, { split: { type: 'string' }, seed: { type: 'string' }, models: { type: 'string' }, out: { type: 'string' }, faces: { type: 'string' } });
  const opts = {
    split: values.split ?? 'train',
    seed: Number(values.seed ?? 2),
    models: values.models === undefined ? join(ROOT, 'models') : resolve(values.models),
    out: values.out === undefined ? undefined : resolve(values.out),
    faces: values.faces === undefined ? undefined : Number(values.faces),
  };
  if (!opts.out) throw new UsageError('usage: photo-crops.mjs --split train|val|test --out PATH [--seed N] [--models DIR] [--faces N]');
  if (opts.split === 'test' && opts.seed === 1) throw new UsageError('seed 1 on test is the photo benchmark itself: train on other photos');
  return opts;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const active = JSON.parse(readFileSync(join(opts.models, 'active.json'), 'utf8'));
  const { manifest } = readVersionDir(join(opts.models, active.name, active.version));
  const framing = framingOf(manifest);
  const size = manifest.input.size;
  // Composing takes about as long as workerd takes to cut: a thread composes while workerd cuts.
  const composer = new Worker(new URL(import.meta.url), { workerData: { split: opts.split, faces: opts.faces, seed: opts.seed, framing } });
  const photos = inOrder(composer);
  const { count: composed } = await photos.next().then((r) => r.value);
  const files = splitRows(opts.split).map((r) => r.file);
  const row = new Map(files.map((f, i) => [f, i]));
  const meta = new Array(files.length).fill(null); // per face: how it went into its photo, null where not found

  mkdirSync(dirname(opts.out), { recursive: true });
  const tmp = `${opts.out}.u8.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w');
  writeSync(fd, Buffer.alloc(1), 0, 1, files.length * size * size * 3 - 1); // the whole file, zeros
  console.log(`${composed} ${opts.split} faces into photos (seed ${opts.seed}); workerd with ${active.name}/${active.version} cuts them`);
  const { base, stop } = await startBenchWorker((persist) => seed(opts.models, persist, () => {}));
  const t0 = Date.now();
  let done = 0, photosSeen = 0;
  try {
    for await (const photo of photos) {
      const res = await fetch(`${base}/_bench/crops`, { method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: photo.bytes });
      if (!res.ok) throw new Error(`/_bench/crops: HTTP ${res.status} ${await res.text()}`);
      const body = await res.json();
      if (body.size !== size) throw new Error(`/_bench/crops cut ${body.size} px faces, the model reads ${size}`);
      for (const [i, j, v] of matchFaces(photo.faces, body.faces)) {
        const p = photo.faces[i], k = row.get(p.file);
        writeSync(fd, Buffer.from(body.faces[j].pixels, 'base64'), 0, size * size * 3, k * size * size * 3);
        meta[k] = { side: p.side, angle: Math.round((p.angle * 1800) / Math.PI) / 10, recompress: p.recompress, iou: Math.round(v * 1000) / 1000 };
      }
      done += photo.faces.length;
      if (++photosSeen % 500 === 0) console.log(`${done}/${composed} faces, ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    }
  } finally {
    closeSync(fd);
    await composer.terminate();
    await stop();
  }
  renameSync(tmp, `${opts.out}.u8`);
  const count = meta.filter(Boolean).length;
  writeFileSync(`${opts.out}.json`, JSON.stringify({
    command: `node training/js/photo-crops.mjs ${process.argv.slice(2).join(' ')}`,
    split: opts.split, seed: opts.seed, size, model: `${active.name}/${active.version}`, framing,
    faces: files.length, composed, matched: count, seconds: Math.round((Date.now() - t0) / 1000), files, crops: meta,
  }) + '\n');
  console.log(`${count} of ${composed} composed faces found and cut (${files.length} in the split); wrote ${opts.out}.u8 and .json`);
}

/** The composer's messages as an async stream: first { count }, then each photo. */
async function* inOrder(worker) {
  const queue = [];
  let wake = null, ended = false, failed = null;
  worker.on('message', (m) => { queue.push(m); wake?.(); });
  worker.on('error', (e) => { failed = e; wake?.(); });
  worker.on('exit', () => { ended = true; wake?.(); });
  for (;;) {
    if (queue.length) {
      const m = queue.shift();
      if (m.end) return;
      yield m;
    } else if (failed) throw failed;
    else if (ended) throw new Error('the composing thread stopped early');
    else await new Promise((r) => (wake = r));
  }
}

function compose({ split, faces: count, seed: photoSeed, framing }) {
  const { faces, photos } = composeFaces({ split, faces: count, seed: photoSeed }, framing);
  parentPort.postMessage({ count: faces.length });
  for (const photo of photos) {
    parentPort.postMessage({
      bytes: photo.bytes,
      faces: photo.faces.map((p) => ({ file: p.face.file, side: p.side, angle: p.face.angle, recompress: p.face.recompress, truth: p.truth })),
    });
  }
  parentPort.postMessage({ end: true });
}

if (isMainThread) main().catch((err) => fail(err instanceof UsageError ? err.message : err.stack ?? String(err)));
else compose(workerData);
