#!/usr/bin/env node
// `npm run bench:photos`: the photo path measured in workerd (wrangler dev, local), on photos
// composed from UTKFace `test` faces (../shared/data/utkface; nothing composed is kept).
//
//   npm run bench:photos                         # default model in models/, 200 faces
//   npm run bench:photos -- --faces 100 --models DIR --json out.json
//   npm run bench:photos -- --no-tiles           # the detector's whole-image pass only
//   npm run bench:photos -- --faces 1000 --no-cost  # accuracy only (the timings need an idle machine)
//
// The photos are bench/lib/compose-photos.mjs's (test chips at 60-400 px, some turned or recompressed,
// 1-4 to a 640x480 JPEG). Then:
//   detection  every photo is posted without a box; a detection matches a face when their IoU
//              is >= 0.5. Ground truth box: where the detector's box is on the chip, from the
//              age model's framing (side = chip / scale, centre moved by the offsets), carried
//              through the paste (resize, turn, place). Recall and mean IoU per size band,
//              false faces per photo (plus photos with no face at all);
//   age        MAE of the matched faces through the photo path, against the same faces sent as
//              chips (crop=image: the training framing exactly), against the same faces as they
//              went into the photo (resized, recompressed; upright, lossless PNG, crop=image),
//              and with their true box given; the differences with 95% paired-bootstrap intervals;
//   cost       detector ms per photo (POST /_bench/detect minus /_bench/decode, each the best of
//              3), request ms for 640x480 and 1920x1080 photos with 1 and 4 faces, wasm heap.
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ROOT, UsageError, fail, readVersionDir } from '../scripts/lib.mjs';
import { seed } from '../scripts/models.mjs';
import { BANDS, background, composeFaces, decode, emptyPhotos, encode, framingOf, matchFaces, paste, resizeSquare } from './lib/compose-photos.mjs';
import { pairedBootstrap, rng } from './lib/stats.mjs';
import { startBenchWorker } from './lib/worker.mjs';

function parseArgs(argv) {
  const opts = { faces: 200, models: join(ROOT, 'models'), json: undefined, tiles: true, seed: 1, n: 20, cost: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--faces') opts.faces = Number(argv[++i]);
    else if (a === '--models') opts.models = resolve(argv[++i]);
    else if (a === '--json') opts.json = argv[++i];
    else if (a === '--no-tiles') opts.tiles = false;
    else if (a === '--no-cost') opts.cost = false;
    else if (a === '--seed') opts.seed = Number(argv[++i]);
    else if (a === '--n') opts.n = Number(argv[++i]);
    else throw new UsageError(`unknown option ${a}`);
  }
  if (!(opts.faces >= 8)) throw new UsageError('--faces must be at least 8');
  return opts;
}

/** A photo of a given size with `n` faces of the first test chips, for the cost rows. */
function costPhoto(faces, width, height, n) {
  const canvas = background('gradient', width, height, rng(7));
  const side = Math.round(Math.min(width / 4, height / 2) * 0.8);
  for (let i = 0; i < n; i++) paste(canvas, resizeSquare(decode(faces[i].bytes), side), (width / 4) * (i + 0.5), height / 2, 0);
  return encode(canvas, 90);
}

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
};
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

async function postJpeg(base, path, bytes, type = 'image/jpeg') {
  const t0 = performance.now();
  const res = await fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': type }, body: bytes });
  const body = await res.json();
  return { t: performance.now() - t0, status: res.status, body };
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const active = JSON.parse(readFileSync(join(opts.models, 'active.json'), 'utf8'));
  const { manifest } = readVersionDir(join(opts.models, active.name, active.version));
  const framing = framingOf(manifest);
  console.log(`composing photos from ${opts.faces} UTKFace test faces…`);
  const { faces, photos: made, r } = composeFaces({ split: 'test', faces: opts.faces, seed: opts.seed, degraded: true }, framing);
  const photos = [...made];
  const empty = emptyPhotos(r);
  const placed = photos.flatMap((p) => p.faces);
  console.log(`${photos.length} photos with ${placed.length} faces, ${empty.length} without; starting workerd with ${active.name}/${active.version}`);
  const { base, stop } = await startBenchWorker((persist) => seed(opts.models, persist, () => {}), { DETECTOR_TILES: String(opts.tiles) });
  try {
    // Warm up both sessions.
    await postJpeg(base, '/v1/age', photos[0].bytes);
    let falseFaces = 0, falseEmpty = 0;
    for (const photo of photos) {
      const r = await postJpeg(base, '/v1/age?max_faces=10', photo.bytes);
      const found = r.status === 200 ? r.body.faces : [];
      if (r.status !== 200 && r.body.error?.code !== 'no_face') throw new Error(`HTTP ${r.status}: ${JSON.stringify(r.body)}`);
      const matches = matchFaces(photo.faces, found);
      for (const [i, j, v] of matches) photo.faces[i].match = { iou: v, age: found[j].age, score: found[j].score, crop: found[j].crop, roll: found[j].roll };
      falseFaces += found.length - matches.length;
      for (const p of photo.faces) {
        const t = p.truth;
        const boxed = await postJpeg(base, `/v1/age?box=${[t.x, t.y, t.w, t.h].map((v) => v.toFixed(2)).join(',')}`, photo.bytes);
        p.boxAge = boxed.body.faces[0].age;
      }
    }
    for (const photo of empty) {
      const r = await postJpeg(base, '/v1/age?max_faces=10', photo.bytes);
      if (r.status === 200) falseEmpty += r.body.faces.length;
    }
    for (const p of placed) {
      p.chipAge = (await postJpeg(base, '/v1/age?crop=image', p.face.bytes)).body.faces[0].age;
      p.degradedAge = (await postJpeg(base, '/v1/age?crop=image', p.face.degraded, 'image/png')).body.faces[0].age;
    }

    const detectMs = [];
    for (const photo of opts.cost ? photos : []) {
      const best = async (path) => {
        let t = Infinity;
        for (let i = 0; i < 3; i++) t = Math.min(t, (await postJpeg(base, path, photo.bytes)).t);
        return t;
      };
      detectMs.push((await best('/_bench/detect')) - (await best('/_bench/decode')));
    }
    const cost = [];
    for (const [w, h] of opts.cost ? [[640, 480], [1920, 1080]] : [])
      for (const n of [1, 4]) {
        const bytes = costPhoto(faces, w, h, n);
        const first = await postJpeg(base, '/v1/age', bytes);
        const ts = [];
        for (let i = 0; i < opts.n; i++) ts.push((await postJpeg(base, '/v1/age', bytes)).t);
        cost.push({ size: `${w}x${h}`, faces: n, found: first.body.faces?.length ?? 0, kib: bytes.length / 1024, p50: pct(ts, 50), p95: pct(ts, 95) });
      }
    const models = await (await fetch(`${base}/v1/models`)).json();
    report(opts, { active, framing, photos, empty, placed, falseFaces, falseEmpty, detectMs, cost, heap: models.wasm_heap_bytes, detector: models.detector.active });
  } finally {
    await stop();
  }
}

function report(opts, r) {
  const rows = BANDS.map(([lo, hi], b) => {
    const inBand = r.placed.filter((p) => p.face.band === b);
    const hit = inBand.filter((p) => p.match);
    return { band: `${lo}–${hi} px`, faces: inBand.length, recall: hit.length / inBand.length, iou: hit.length ? mean(hit.map((p) => p.match.iou)) : NaN };
  });
  const hit = r.placed.filter((p) => p.match);
  const mae = (xs, f) => mean(xs.map((p) => Math.abs(f(p) - p.face.age)));
  const subsets = [
    ['all matched faces', hit],
    ['upright, not recompressed', hit.filter((p) => !p.face.angle && !p.face.recompress)],
    ['turned ±5–30°', hit.filter((p) => p.face.angle)],
    ['recompressed (q 30–60)', hit.filter((p) => p.face.recompress)],
  ];
  // The framing itself: the crop the server read against the square the chip was pasted as
  // (centre, side, turn), which is exactly how the training chip frames that face.
  const framingOf = (xs) => {
    const err = xs.map((p) => {
      const c = p.match.crop;
      return {
        centre: Math.hypot(c.x + c.w / 2 - p.cx, c.y + c.h / 2 - p.cy) / p.side,
        side: Math.abs(Math.log(c.w / p.side)),
        roll: Math.abs(p.match.roll - (p.face.angle * 180) / Math.PI),
      };
    });
    return { centre_error: mean(err.map((e) => e.centre)), side_log_error: mean(err.map((e) => e.side)), roll_error_degrees: mean(err.map((e) => e.roll)) };
  };
  const gap = (xs, f) => pairedBootstrap(xs.map((p) => p.match.age), xs.map(f), xs.map((p) => p.face.age), 2000, 11).ci95;
  const ageRows = subsets.map(([label, xs]) => ({
    label, n: xs.length, photo: mae(xs, (p) => p.match.age), chip: mae(xs, (p) => p.chipAge), photo_minus_chip_ci95: gap(xs, (p) => p.chipAge),
    degraded: mae(xs, (p) => p.degradedAge), photo_minus_degraded_ci95: gap(xs, (p) => p.degradedAge), box: mae(xs, (p) => p.boxAge),
    framing: framingOf(xs),
  }));
  const out = {
    command: ['npm run bench:photos', ...(opts.faces !== 200 || !opts.tiles || !opts.cost ? ['--'] : []), ...(opts.faces !== 200 ? [`--faces ${opts.faces}`] : []),
      ...(opts.tiles ? [] : ['--no-tiles']), ...(opts.cost ? [] : ['--no-cost'])].join(' '),
    model: `${r.active.name}/${r.active.version}`, detector: `${r.detector?.name}/${r.detector?.version}`, tiles: opts.tiles, framing: r.framing,
    photos: r.photos.length, faces: r.placed.length, empty_photos: r.empty.length,
    detection: rows, recall: hit.length / r.placed.length, mean_iou: mean(hit.map((p) => p.match.iou)),
    false_faces_per_photo: r.falseFaces / r.photos.length, false_faces_per_empty_photo: r.falseEmpty / r.empty.length,
    age: ageRows,
    detector_ms: { p50: pct(r.detectMs, 50), p95: pct(r.detectMs, 95) },
    requests: r.cost, wasm_heap_mib: r.heap / 2 ** 20,
    // Per face, so two models' runs (the same photos for a seed) can be compared face by face.
    per_face: r.placed.map((p) => ({ file: p.face.file, age: p.face.age, side: p.side, turned: Boolean(p.face.angle), recompressed: Boolean(p.face.recompress),
      photo: p.match?.age ?? null, chip: p.chipAge, as_pasted: p.degradedAge, true_box: p.boxAge })),
  };
  const f = (v, d = 2) => (Number.isFinite(v) ? v.toFixed(d) : '–');
  console.log(`\n${out.photos} photos 640x480 with ${out.faces} UTKFace test faces (+${out.empty_photos} without a face); ${out.model}, detector ${out.detector}, tiles ${opts.tiles ? 'on' : 'off'}, framing scale ${r.framing.scale} offset (${r.framing.offset_x}, ${r.framing.offset_y})\n`);
  console.log('| face size (chip side) | faces | recall (IoU ≥ 0.5) | mean IoU |\n|---|---|---|---|');
  for (const x of rows) console.log(`| ${x.band} | ${x.faces} | ${f(x.recall, 3)} | ${f(x.iou, 3)} |`);
  console.log(`| all | ${out.faces} | ${f(out.recall, 3)} | ${f(out.mean_iou, 3)} |`);
  console.log(`\nfalse faces per photo: ${f(out.false_faces_per_photo, 3)} (photos with faces), ${f(out.false_faces_per_empty_photo, 3)} (photos without)\n`);
  const ci = ([lo, hi]) => `[${f(lo)}, ${f(hi)}]`;
  console.log('| faces (matched) | n | MAE photo path | MAE as chips (crop=image) | photo − chip (95% CI) | MAE as pasted, upright (crop=image) | photo − as pasted (95% CI) | MAE with the true box |\n|---|---|---|---|---|---|---|---|');
  for (const a of ageRows) {
    console.log(`| ${a.label} | ${a.n} | ${f(a.photo)} | ${f(a.chip)} | ${f(a.photo - a.chip)} ${ci(a.photo_minus_chip_ci95)} | ${f(a.degraded)} | ${f(a.photo - a.degraded)} ${ci(a.photo_minus_degraded_ci95)} | ${f(a.box)} |`);
  }
  console.log('\n| faces (matched) | crop centre off (× chip side) | crop side off (mean \\|log ratio\\|) | roll off (degrees) |\n|---|---|---|---|');
  for (const a of ageRows) console.log(`| ${a.label} | ${f(a.framing.centre_error, 3)} | ${f(a.framing.side_log_error, 3)} | ${f(a.framing.roll_error_degrees, 1)} |`);
  if (opts.cost) {
    console.log(`\ndetector per photo (workerd, 640x480): p50 ${f(out.detector_ms.p50, 1)} ms, p95 ${f(out.detector_ms.p95, 1)} ms\n`);
    console.log('| photo | faces in it | faces found | JPEG | request p50 | request p95 |\n|---|---|---|---|---|---|');
    for (const c of r.cost) console.log(`| ${c.size} | ${c.faces} | ${c.found} | ${c.kib.toFixed(0)} KiB | ${f(c.p50, 1)} ms | ${f(c.p95, 1)} ms |`);
  }
  console.log(`\nwasm heap after the run: ${f(out.wasm_heap_mib, 1)} MiB`);
  if (opts.json) {
    writeFileSync(opts.json, JSON.stringify(out, null, 2) + '\n');
    console.log(`wrote ${opts.json}`);
  }
}

main().catch((err) => fail(err instanceof UsageError ? err.message : err.stack ?? String(err)));
