#!/usr/bin/env node
// `npm run bench:photos`: the photo path measured in workerd (wrangler dev, local), on photos
// composed from UTKFace `test` faces (../shared/data/utkface; nothing composed is kept) and on
// real photos with no ages.
//
//   npm run bench:photos                         # default model in models/, 200 faces, 15 group photos, the real photos
//   npm run bench:photos -- --faces 100 --models DIR --json out.json
//   npm run bench:photos -- --tiles 1            # the detector's tile levels (0: the whole photo only; default: the server's)
//   npm run bench:photos -- --faces 1000 --no-cost  # accuracy only (the timings need an idle machine)
//   npm run bench:photos -- --groups 0 --no-real # the small composed photos only
//
// Sections:
//   composed   bench/lib/compose-photos.mjs's photos (test chips at 60-400 px, some turned or
//              recompressed, 1-4 to a 640x480 JPEG). Every photo is posted without a box; a
//              detection matches a face when their IoU is >= 0.5. Ground truth box: where the
//              detector's box is on the chip, from the age model's framing (side = chip / scale,
//              centre moved by the offsets), carried through the paste (resize, turn, place).
//              Recall and mean IoU per size band, false faces per photo (plus photos with no
//              face at all); MAE of the matched faces through the photo path against the same
//              faces sent as chips (crop=image: the training framing exactly), as they went into
//              the photo (resized, recompressed; upright, lossless PNG, crop=image) and with
//              their true box given, the differences with 95% paired-bootstrap intervals; how far
//              the crop lies from the pasted chip (centre, side, roll).
//   groups     composeGroups' group photos (8-20 test faces of 4-10 % of the long side, at 4-12
//              megapixels, a third of them tilted 5-35°, even, uneven, warm, cool or magenta
//              light, JPEG 85-92): recall by face size, photo size and light, false faces,
//              photo − chip and roll error, upright and tilted. The bench's worker accepts up to
//              12.6 megapixels and 20 faces a request (the served defaults: 4 and 10).
//   real       real photos (bench/lib/real-photos.mjs: face-api's six demo group photos, MIT;
//              scikit-image's astronaut, public domain): faces found against face-api's own SSD
//              detector, and each face's spread (largest answer minus smallest) over the photo
//              and 8 variants that should not change its age (cut 4 % from each side, scaled to
//              85 % and 115 %, JPEG 80, mirrored).
//   cost       detector ms per photo (POST /_bench/detect minus /_bench/decode, each the best of
//              3), request ms for 640x480 and 1920x1080 photos with 1 and 4 faces, wasm heap
//              (by photo size, 1-12 megapixels: `npm run bench`).
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ROOT, UsageError, fail, parseOptions, readVersionDir } from '../scripts/lib.mjs';
import { seed } from '../scripts/models.mjs';
import { BANDS, GROUP_LIGHTS, background, composeFaces, composeGroups, decode, emptyPhotos, encode, framingOf, iou, matchFaces, paste, resizeSquare } from './lib/compose-photos.mjs';
import { faceApiDetector } from './lib/peers.mjs';
import { realPhotos, rgb, variants } from './lib/real-photos.mjs';
import { pairedBootstrap, rng } from './lib/stats.mjs';
import { startBenchWorker } from './lib/worker.mjs';

function parseArgs(argv) {
  const { values } = parseOptions(argv, {
    faces: { type: 'string', default: '200' }, groups: { type: 'string', default: '15' }, models: { type: 'string' }, json: { type: 'string' },
    tiles: { type: 'string' }, 'no-tiles': { type: 'boolean' }, 'no-cost': { type: 'boolean' }, 'no-real': { type: 'boolean' },
    seed: { type: 'string', default: '1' }, n: { type: 'string', default: '20' },
  });
  const opts = {
    faces: Number(values.faces), groups: Number(values.groups), models: values.models ? resolve(values.models) : join(ROOT, 'models'), json: values.json,
    tiles: values['no-tiles'] ? '0' : values.tiles, cost: !values['no-cost'], real: !values['no-real'], seed: Number(values.seed), n: Number(values.n),
  };
  if (!(opts.faces >= 8)) throw new UsageError('--faces must be at least 8');
  if (!(Number.isInteger(opts.groups) && opts.groups >= 0)) throw new UsageError('--groups must be a whole number');
  if (opts.tiles !== undefined && !/^\d$/.test(opts.tiles)) throw new UsageError('--tiles takes the number of tile levels, 0-9');
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

/** The bench worker's settings: larger photos and more faces a request than served, so a group
 *  of 20 at 12 megapixels is answered whole; the tile levels when --tiles names them. */
const workerVars = (opts) => ({ MAX_PIXELS: '12600000', JPEG_MAX_MEMORY_MB: '512', MAX_BODY_BYTES: String(32 << 20), MAX_FACES_LIMIT: '20', ...(opts.tiles !== undefined ? { DETECTOR_TILES: opts.tiles } : {}) });

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
  const { base, stop } = await startBenchWorker((persist) => seed(opts.models, persist, () => {}), workerVars(opts));
  const chipAges = new Map();
  const chipAge = async (face) => {
    if (!chipAges.has(face.file)) chipAges.set(face.file, (await postJpeg(base, '/v1/age?crop=image', face.bytes)).body.faces[0].age);
    return chipAges.get(face.file);
  };
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
      p.chipAge = await chipAge(p.face);
      p.degradedAge = (await postJpeg(base, '/v1/age?crop=image', p.face.degraded, 'image/png')).body.faces[0].age;
    }

    const groups = opts.groups ? await groupSection(base, opts, framing, chipAge) : null;
    const real = opts.real ? await realSection(base) : null;

    const detectMs = [];
    const best = async (path, bytes) => {
      let t = Infinity;
      for (let i = 0; i < 3; i++) t = Math.min(t, (await postJpeg(base, path, bytes)).t);
      return t;
    };
    for (const photo of opts.cost ? photos : []) detectMs.push((await best('/_bench/detect', photo.bytes)) - (await best('/_bench/decode', photo.bytes)));
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
    report(opts, { active, framing, photos, empty, placed, falseFaces, falseEmpty, detectMs, cost, groups, real, heap: models.wasm_heap_bytes, detector: models.detector.active });
  } finally {
    await stop();
  }
}

/** Group photos: every face found (POST /_bench/detect), and the answers of the photo path (max_faces=20). */
async function groupSection(base, opts, framing, chipAge) {
  console.log(`composing ${opts.groups} group photos of test faces (4-12 megapixels)…`);
  const photos = [];
  for (const photo of composeGroups({ split: 'test', photos: opts.groups, seed: opts.seed + 100 }, framing)) {
    const detected = await postJpeg(base, '/_bench/detect', photo.bytes);
    if (detected.status !== 200) throw new Error(`HTTP ${detected.status}: ${JSON.stringify(detected.body)}`);
    const found = detected.body.faces;
    const matches = matchFaces(photo.faces, found);
    for (const [i, , v] of matches) photo.faces[i].found = v;
    const answered = await postJpeg(base, '/v1/age?max_faces=20', photo.bytes);
    const faces = answered.status === 200 ? answered.body.faces : [];
    for (const [i, j] of matchFaces(photo.faces, faces)) photo.faces[i].match = { age: faces[j].age, roll: faces[j].roll, crop: faces[j].crop };
    for (const p of photo.faces) if (p.match) p.chipAge = await chipAge(p.face);
    photos.push({ kind: photo.kind, light: photo.light, faces: photo.faces.map(({ face, side, box_fraction, found: f, match, chipAge: c }) => ({ file: face.file, age: face.age, angle: (face.angle * 180) / Math.PI, side, box_fraction, found: f ?? null, match, chipAge: c })), false_faces: found.length - matches.length });
    process.stdout.write('.');
  }
  console.log('');
  return photos;
}

/** Real photos: faces found by ours and by face-api's SSD, and each face's answers over the variants. */
async function realSection(base) {
  const photos = realPhotos();
  const ssd = await faceApiDetector();
  const out = [];
  for (const img of photos) {
    const theirs = await ssd({ width: img.width, height: img.height, data: rgb(img) });
    const answers = [];
    let original = [];
    for (const v of variants(img)) {
      const r = await postJpeg(base, '/v1/age?max_faces=20', v.bytes, v.type);
      const faces = r.status === 200 ? r.body.faces.map((f) => ({ age: f.age, box: v.back(f.box) })) : [];
      if (v.name === 'original') original = faces;
      answers.push({ variant: v.name, faces });
    }
    // Each face of the original photo, and its answer in every variant where a face lies on it.
    const perFace = original.map((f) => {
      const ages = answers.map(({ faces }) => faces.find((g) => iou(g.box, f.box) >= 0.5)?.age).filter((a) => a !== undefined);
      return { box: f.box, age: f.age, answers: ages.length, spread: Math.max(...ages) - Math.min(...ages) };
    });
    const agreed = original.filter((f) => theirs.some((b) => iou(b, f.box) >= 0.3)).length;
    out.push({ name: img.name, source: img.source, size: `${img.width}x${img.height}`, ours: original.length, face_api_ssd: theirs.length, both: agreed, faces: perFace });
    process.stdout.write('.');
  }
  console.log('');
  return out;
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
    command: ['npm run bench:photos --', ...process.argv.slice(2)].join(' ').replace(/ --$/, ''),
    model: `${r.active.name}/${r.active.version}`, detector: `${r.detector?.name}/${r.detector?.version}`, tiles: opts.tiles, framing: r.framing,
    photos: r.photos.length, faces: r.placed.length, empty_photos: r.empty.length,
    detection: rows, recall: hit.length / r.placed.length, mean_iou: mean(hit.map((p) => p.match.iou)),
    false_faces_per_photo: r.falseFaces / r.photos.length, false_faces_per_empty_photo: r.falseEmpty / r.empty.length,
    age: ageRows,
    detector_ms: { p50: pct(r.detectMs, 50), p95: pct(r.detectMs, 95) },
    requests: r.cost, wasm_heap_mib: r.heap / 2 ** 20,
    groups: r.groups && groupSummary(r.groups), group_photos: r.groups, real: r.real && realSummary(r.real), real_photos: r.real,
    // Per face, so two models' runs (the same photos for a seed) can be compared face by face.
    per_face: r.placed.map((p) => ({ file: p.face.file, age: p.face.age, side: p.side, turned: Boolean(p.face.angle), recompressed: Boolean(p.face.recompress),
      photo: p.match?.age ?? null, chip: p.chipAge, as_pasted: p.degradedAge, true_box: p.boxAge })),
  };
  const f = (v, d = 2) => (Number.isFinite(v) ? v.toFixed(d) : '–');
  console.log(`\n${out.photos} photos 640x480 with ${out.faces} UTKFace test faces (+${out.empty_photos} without a face); ${out.model}, detector ${out.detector}, tile levels ${opts.tiles ?? "the server's"}, framing scale ${r.framing.scale} offset (${r.framing.offset_x}, ${r.framing.offset_y})\n`);
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
  if (out.groups) printGroups(out.groups, f);
  if (out.real) printReal(out.real, out.real_photos, f);
  console.log(`\nwasm heap after the run: ${f(out.wasm_heap_mib, 1)} MiB`);
  if (opts.json) {
    writeFileSync(opts.json, JSON.stringify(out, null, 2) + '\n');
    console.log(`wrote ${opts.json}`);
  }
}

const FRACTION_BANDS = [[0.04, 0.05], [0.05, 0.07], [0.07, 0.1]];

/** Recall, false faces, photo − chip and roll error of the group photos, by face size, photo size, light and tilt. */
function groupSummary(photos) {
  const faces = photos.flatMap((p) => p.faces.map((x) => ({ ...x, kind: p.kind, light: p.light })));
  const recall = (xs) => ({ faces: xs.length, recall: xs.filter((x) => x.found).length / xs.length });
  const answered = (xs) => {
    const m = xs.filter((x) => x.match);
    if (!m.length) return { n: 0 };
    const photo = mean(m.map((x) => Math.abs(x.match.age - x.age))), chip = mean(m.map((x) => Math.abs(x.chipAge - x.age)));
    const tilted = m.filter((x) => Math.abs(x.angle) > 0);
    return {
      n: m.length, photo, chip, photo_minus_chip: photo - chip,
      photo_minus_chip_ci95: pairedBootstrap(m.map((x) => x.match.age), m.map((x) => x.chipAge), m.map((x) => x.age), 2000, 11).ci95,
      roll_error_degrees: tilted.length ? mean(tilted.map((x) => Math.abs(x.match.roll - x.angle))) : null,
      roll_error_all_degrees: mean(m.map((x) => Math.abs(x.match.roll - x.angle))),
    };
  };
  const by = (key, values) => values.map((v) => ({ [key]: v, ...recall(faces.filter((x) => x[key] === v)), ...answered(faces.filter((x) => x[key] === v)) }));
  return {
    photos: photos.length, faces: faces.length, false_faces_per_photo: mean(photos.map((p) => p.false_faces)),
    all: { ...recall(faces), ...answered(faces) },
    by_face_size: FRACTION_BANDS.map(([lo, hi]) => ({ band: `${Math.round(lo * 100)}–${Math.round(hi * 100)} %`, ...recall(faces.filter((x) => x.box_fraction >= lo && (x.box_fraction < hi || hi === 0.1))) })),
    by_photo: by('kind', [...new Set(faces.map((x) => x.kind))]),
    by_light: by('light', GROUP_LIGHTS.filter((l) => faces.some((x) => x.light === l))),
    upright: { ...recall(faces.filter((x) => !x.angle)), ...answered(faces.filter((x) => !x.angle)) },
    tilted: { ...recall(faces.filter((x) => x.angle)), ...answered(faces.filter((x) => x.angle)) },
  };
}

function printGroups(g, f) {
  const ci = (c) => (c ? `[${f(c[0])}, ${f(c[1])}]` : '');
  console.log(`\n${g.photos} group photos, ${g.faces} test faces (8-20 a photo): recall ${f(g.all.recall, 3)}, false faces per photo ${f(g.false_faces_per_photo, 2)}\n`);
  console.log('| face box (× long side) | faces | recall |\n|---|---|---|');
  for (const b of g.by_face_size) console.log(`| ${b.band} | ${b.faces} | ${f(b.recall, 3)} |`);
  console.log('\n| faces | n found | recall | n answered | MAE photo | MAE chip | photo − chip (95% CI) | roll off, tilted (°) |\n|---|---|---|---|---|---|---|---|');
  const row = (label, x) => console.log(`| ${label} | ${x.faces} | ${f(x.recall, 3)} | ${x.n} | ${f(x.photo)} | ${f(x.chip)} | ${f(x.photo_minus_chip)} ${ci(x.photo_minus_chip_ci95)} | ${f(x.roll_error_degrees, 1)} |`);
  row('all', g.all);
  row('upright', g.upright);
  row('tilted 5–35°', g.tilted);
  for (const x of g.by_photo) row(x.kind, x);
  for (const x of g.by_light) row(`${x.light} light`, x);
}

/** Faces found against face-api's SSD, and the spread of each face's answers over the variants. */
function realSummary(photos) {
  const faces = photos.flatMap((p) => p.faces.filter((x) => x.answers >= 2));
  const spreads = faces.map((x) => x.spread);
  return {
    photos: photos.length, ours: photos.reduce((a, p) => a + p.ours, 0), face_api_ssd: photos.reduce((a, p) => a + p.face_api_ssd, 0),
    most_apart: Math.max(...photos.map((p) => Math.abs(p.ours - p.face_api_ssd))),
    spread: { faces: faces.length, median: pct(spreads, 50), p90: pct(spreads, 90), worst: Math.max(...spreads), over_10: spreads.filter((v) => v > 10).length,
      in_every_variant: faces.filter((x) => x.answers === 9).length },
  };
}

function printReal(s, photos, f) {
  console.log(`\nreal photos (no ages): ${s.ours} faces found, face-api's SSD ${s.face_api_ssd}; at most ${s.most_apart} apart in one photo\n`);
  console.log('| photo | source | size | faces found | face-api SSD | both |\n|---|---|---|---|---|---|');
  for (const p of photos) console.log(`| ${p.name} | ${p.source} | ${p.size} | ${p.ours} | ${p.face_api_ssd} | ${p.both} |`);
  const x = s.spread;
  console.log(`\nspread of a face's answers over the photo and 8 variants (cut 4 % from each side, 85 %, 115 %, JPEG 80, mirrored): ${x.faces} faces, median ${f(x.median, 1)} y, 90th percentile ${f(x.p90, 1)} y, worst ${f(x.worst, 1)} y, ${x.over_10} over 10 y; found in all 9: ${x.in_every_variant}`);
}

main().catch((err) => fail(err instanceof UsageError ? err.message : err.stack ?? String(err)));
