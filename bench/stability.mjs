#!/usr/bin/env node
// `npm run bench:stability`: one face, one answer? Each face is sent in views that should not
// change its age, and the benchmark reports how far its answers spread, for both tiers and
// face-api. A benchmark, not a test: its metric code (bench/lib/stability-metrics.ts) has the
// unit test.
//
//   npm run bench:stability                                   # 500 test faces, the real photos, both tiers, face-api
//   npm run bench:stability -- --md docs/stability-tables.md --svg docs/stability.svg --json runs/stability.json
//   npm run bench:stability -- --models DIR --label "9"       # another models/ tree
//   npm run bench:stability -- --faces 100 --no-face-api --no-real
//
// Labelled: `test` chips in the views of training/capture.py VIEWS (written once into
// .cache/stability/test-<faces>/ by `python -m training capture stability`; UTKFace-derived,
// never in git): reframed as a detector frames a face (shifted 6 %, zoomed ±10 %, tilted 15° and
// turned back to within 3°), under warm, cool and magenta casts and a coloured lamp from one
// side, gray, mirrored, JPEG 80. Each is posted to the served path (workerd, POST
// /v1/age?crop=image&over=18) and given to face-api's ageGenderNet (the same decoded pixels).
// Real photos, no ages: bench/lib/real-photos.mjs's photos (face-api's demo photos, NASA's
// astronaut) and PACKAGE_PHOTOS, each sent as it is and in 9 variants (cut 4 % from each side,
// scaled to 85 % and 115 %, JPEG 80, mirrored, gray) through the whole photo path (detector,
// framing, turn), and through face-api's own (SSD, landmarks, ageGenderNet). A face's answers are
// matched across variants by its box mapped back to the photo (IoU >= 0.5).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { CONTRACT, ROOT, UsageError, fail, parseOptions, python } from '../scripts/lib.mjs';
import { spawnSync } from 'node:child_process';
import { seed } from '../scripts/models.mjs';
import { iou } from './lib/compose-photos.mjs';
import { ensurePeers, faceApiPhotoAges, peers } from './lib/peers.mjs';
import { grayVariant, packagePhotos, realPhotos, rgb, variants } from './lib/real-photos.mjs';
import { decodeImage } from './lib/server-code.mjs';
import { CONFIDENT_WIDTH, FAR, faceSpread, stabilityReport } from './lib/stability-metrics.ts';
import { startBenchWorker } from './lib/worker.mjs';

const TIERS = [...CONTRACT.tiers].reverse();    // the accurate tier first, as the docs show it

function parseArgs(argv) {
  const { values } = parseOptions(argv, {
    faces: { type: 'string' }, data: { type: 'string' }, models: { type: 'string' }, label: { type: 'string' },
    md: { type: 'string' }, svg: { type: 'string' }, json: { type: 'string' }, 'no-face-api': { type: 'boolean' }, 'no-real': { type: 'boolean' },
  });
  const opts = {
    faces: Number(values.faces ?? 500),
    data: values.data === undefined ? join(ROOT, '..', 'shared', 'data', 'utkface') : resolve(values.data),
    models: values.models === undefined ? join(ROOT, 'models') : resolve(values.models),
    label: values.label, md: values.md, svg: values.svg, json: values.json,
    faceApi: !values['no-face-api'], real: !values['no-real'],
  };
  if (!(Number.isInteger(opts.faces) && opts.faces >= 0)) throw new UsageError('--faces must be a whole number (0: no labelled faces)');
  return opts;
}

/** The labelled views, written by training/capture.py if they are not there yet. */
function labelledImages(opts) {
  const dir = join(ROOT, '.cache', 'stability', `test-${opts.faces}`);
  if (!existsSync(join(dir, 'index.json'))) {
    console.log(`Writing ${opts.faces} test faces in every view into ${dir} (training/capture.py VIEWS)…`);
    const r = spawnSync(python(), ['-m', 'training', 'capture', 'stability', '--out', dir, '--faces', String(opts.faces), '--data-root', opts.data], { cwd: ROOT, stdio: 'inherit' });
    if (r.status !== 0) throw new Error('python -m training capture stability failed (run bash training/setup.sh first)');
  }
  return { dir, index: JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) };
}

async function post(base, query, bytes, type) {
  const res = await fetch(`${base}/v1/age?${query}`, { method: 'POST', headers: { 'content-type': type }, body: bytes });
  const body = await res.json();
  return { status: res.status, body };
}
const typeOf = (file) => (file.endsWith('.jpg') ? 'image/jpeg' : 'image/png');

/** Our answers for each labelled face in each view: [{truth, gender, race, answers: {view: {age, range, pass18, reasons}}}]. */
async function oursLabelled(base, { dir, index }, tier) {
  const faces = [];
  let model;
  const started = Date.now();
  for (const [i, face] of index.faces.entries()) {
    if (i && i % 100 === 0) console.log(`  ${tier}: ${i} of ${index.faces.length} faces (${((Date.now() - started) / 60000).toFixed(1)} min)`);
    const answers = {};
    for (const view of index.views) {
      const file = face.images[view];
      const { status, body } = await post(base, `crop=image&model=${tier}&over=18`, readFileSync(join(dir, file)), typeOf(file));
      if (status !== 200) throw new Error(`${file}: HTTP ${status} ${JSON.stringify(body)}`);
      model = `${body.model.name}/${body.model.version}`;
      const f = body.faces[0];
      answers[view] = { age: f.age, range: f.range, pass18: f.over[0].decision === null ? null : f.over[0].decision === 'pass', reasons: f.quality?.reasons ?? [] };
    }
    faces.push({ truth: face.age, answers });
  }
  return { name: `${tier}: ${model}`, model, faces };
}

async function faceApiLabelled({ dir, index }) {
  ensurePeers();
  const { rows } = await peers(['face-api']);
  const predict = rows[0].predict;
  const faces = [];
  for (const face of index.faces) {
    const answers = {};
    for (const view of index.views) {
      const image = decodeImage(readFileSync(join(dir, face.images[view])), { maxPixels: 4e6, maxMemoryMB: 256 });
      const age = await predict({ image });
      answers[view] = { age, range: null, pass18: age >= 18 };
    }
    faces.push({ truth: face.age, answers });
  }
  return { name: 'face-api ageGenderNet', model: 'face-api', faces };
}

/**
 * Each face found in a photo as sent, and its answer in every variant where a found face lies on
 * it (boxes mapped back to the photo, IoU >= 0.5). `find(variant)` -> [{box, age, range?}].
 */
async function photoFaces(photo, find) {
  const vs = [...variants(photo), grayVariant(photo)];
  const found = [];
  for (const v of vs) found.push({ variant: v.name, faces: (await find(v)).map((f) => ({ ...f, box: v.back(f.box) })) });
  return found[0].faces.map((f) => ({
    box: f.box,
    answers: Object.fromEntries(found.map(({ variant, faces }) => [variant, faces.find((g) => iou(g.box, f.box) >= 0.5)]).filter(([, g]) => g)
      .map(([variant, g]) => [variant, { age: g.age, range: g.range ?? null, pass18: g.pass18 ?? null }])),
  }));
}

async function oursReal(base, photos, tier) {
  const out = [];
  let model;
  for (const photo of photos) {
    const faces = await photoFaces(photo, async (v) => {
      const { status, body } = await post(base, `model=${tier}&max_faces=20&over=18`, v.bytes, v.type ?? 'image/jpeg');
      if (status !== 200) return [];
      model = `${body.model.name}/${body.model.version}`;
      return body.faces.map((f) => ({ box: f.box, age: f.age, range: f.range, pass18: f.over[0].decision === null ? null : f.over[0].decision === 'pass' }));
    });
    out.push({ photo: photo.name, source: photo.source, faces });
    process.stdout.write('.');
  }
  console.log('');
  return { name: `${tier}: ${model}`, model, photos: out };
}

async function faceApiReal(photos) {
  const detectAndAge = await faceApiPhotoAges();
  const out = [];
  for (const photo of photos) {
    const faces = await photoFaces(photo, async (v) => {
      const image = decodeImage(v.bytes, { maxPixels: 50e6, maxMemoryMB: 1024 });
      return (await detectAndAge(image)).map((f) => ({ ...f, pass18: f.age >= 18 }));
    });
    out.push({ photo: photo.name, source: photo.source, faces });
    process.stdout.write('.');
  }
  console.log('');
  return { name: 'face-api (SSD, landmarks, ageGenderNet)', model: 'face-api', photos: out };
}

const f1 = (v) => (Number.isFinite(v) ? v.toFixed(1) : '–');
const f2 = (v) => (Number.isFinite(v) ? v.toFixed(2) : '–');
const pct = (r) => (!r || Number.isNaN(r.rate) ? '–' : `${(100 * r.rate).toFixed(1)}% [${(100 * r.ci95[0]).toFixed(1)}, ${(100 * r.ci95[1]).toFixed(1)}] (${r.k}/${r.n})`);
const spreadCells = (s) => `${s.faces} | ${f1(s.median)} | ${f1(s.p90)} | ${f1(s.worst)} | ${s.over10}`;
const far = (rep) => (rep.ranged ? `${rep.confidentFar.length} of ${rep.ranged}` : 'no range');

function labelledTables(runs, index) {
  const views = index.views;
  const reports = runs.map((r) => stabilityReport(r.faces, views, index.groups));
  const groups = Object.keys(reports[0].spreadByGroup);
  const out = [`### UTKFace \`test\` faces in ${views.length} views (${index.faces.length} faces)`, '',
    `A face's spread: its largest answer minus its smallest over the ${views.length} views. Confident and far: an answer whose 80 % range is narrower than ${CONFIDENT_WIDTH} years and which lies more than ${FAR} years from the face's median answer.`, '',
    '| model | faces | median spread | 90th percentile | worst | over 10 y | decision at 18 flips between views | confident and far |', '|---|---|---|---|---|---|---|---|'];
  runs.forEach((r, i) => out.push(`| ${r.name} | ${spreadCells(reports[i].spread)} | ${pct(reports[i].flips18)} | ${far(reports[i])} |`));
  out.push('', `### The spread by kind of view (the clean face and the kind's views: ${groups.map((g) => `${g}: ${views.filter((v) => index.groups[v] === g).join(', ')}`).join('; ')})`, '',
    `| model | ${groups.map((g) => `${g}: median | 90th | worst`).join(' | ')} |`, `|---|${groups.map(() => '---|---|---').join('|')}|`);
  runs.forEach((r, i) => out.push(`| ${r.name} | ${groups.map((g) => { const s = reports[i].spreadByGroup[g]; return `${f1(s.median)} | ${f1(s.p90)} | ${f1(s.worst)}`; }).join(' | ')} |`));
  out.push('', '### MAE by view, and how far each view moves the answer from the clean face\'s (mean, years)', '',
    `| view | ${runs.map((r) => `${r.name}: MAE | move`).join(' | ')} |`, `|---|${runs.map(() => '---|---').join('|')}|`);
  for (const v of views) out.push(`| ${v} | ${reports.map((rep) => `${f2(rep.byView[v].mae?.value)} | ${f2(rep.byView[v].meanMove)}`).join(' | ')} |`);
  return { md: out.join('\n'), reports };
}

function realTables(runs, photos) {
  const views = ['original', ...variants(photos[0]).slice(1).map((v) => v.name), 'gray'];
  const reports = runs.map((r) => stabilityReport(r.photos.flatMap((p) => p.faces), views));
  const out = [`### Real photos, no ages (${photos.length} photos; each as sent and in ${views.length - 1} variants)`, '',
    `Each model finds the faces itself. A face is one found in the photo as sent; its spread is over the variants where a face is found on it (IoU ≥ 0.5 once mapped back).`, '',
    '| model | faces | median spread | 90th percentile | worst | over 10 y | confident and far | answers per face (mean) |', '|---|---|---|---|---|---|---|---|'];
  runs.forEach((r, i) => out.push(`| ${r.name} | ${spreadCells(reports[i].spread)} | ${far(reports[i])} | ${f1(reports[i].answers / reports[i].faces)} |`));
  out.push('', '| photo | source | ' + runs.map((r) => `${r.name}: faces | worst spread`).join(' | ') + ' |', `|---|---|${runs.map(() => '---|---').join('|')}|`);
  photos.forEach((p, k) => out.push(`| ${p.name} | ${p.source} | ${runs.map((r) => { const fs = r.photos[k].faces; const s = stabilityReport(fs, views).spread; return `${fs.length} | ${f1(s.worst)}`; }).join(' | ')} |`));
  const rights = [...new Set(photos.filter((p) => p.rights).map((p) => `${p.source}: ${p.rights}`))];
  if (rights.length) out.push('', 'Whose photos: the packages\' licences let the benchmark fetch and read them; none is kept in git.', '', ...rights.map((r) => `- ${r}.`));
  return { md: out.join('\n'), reports };
}

/** Each model's per-face spreads as a cumulative curve, labelled faces and real photos side by side. */
function svg(panels) {
  const W = 760, H = 330, L = 50, T = 40, PW = 320, PH = 230, GAP = 60, MAX = 30;
  const colours = ['#d9480f', '#1f7ae0', '#777777', '#2b8a3e', '#862e9c'];
  const out = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`, `<text x="${W / 2}" y="18" text-anchor="middle" font-size="14">Share of faces whose answers spread by at most x years</text>`];
  panels.forEach(({ title, runs }, p) => {
    const x0 = L + p * (PW + GAP);
    const X = (v) => x0 + (Math.min(v, MAX) / MAX) * PW, Y = (q) => T + PH * (1 - q);
    out.push(`<text x="${x0}" y="${T - 8}">${title}</text>`, `<rect x="${x0}" y="${T}" width="${PW}" height="${PH}" fill="none" stroke="#999"/>`);
    for (let v = 0; v <= MAX; v += 5) out.push(`<text x="${X(v)}" y="${T + PH + 14}" text-anchor="middle">${v}</text>`);
    for (let q = 0; q <= 1; q += 0.25) out.push(`<text x="${x0 - 4}" y="${Y(q) + 4}" text-anchor="end">${q}</text>`, `<line x1="${x0}" y1="${Y(q)}" x2="${x0 + PW}" y2="${Y(q)}" stroke="#eee"/>`);
    runs.forEach(({ name, spreads }, j) => {
      const s = [...spreads].sort((a, b) => a - b);
      const pts = s.map((v, i) => `${X(v).toFixed(1)},${Y((i + 1) / s.length).toFixed(1)}`).join(' ');
      out.push(`<polyline fill="none" stroke="${colours[j % colours.length]}" stroke-width="2" points="${X(0)},${Y(0)} ${pts}"/>`);
      if (p === 0) out.push(`<rect x="${L + j * 240}" y="${H - 22}" width="10" height="10" fill="${colours[j % colours.length]}"/><text x="${L + j * 240 + 14}" y="${H - 13}">${name}</text>`);
    });
    out.push(`<text x="${x0 + PW / 2}" y="${T + PH + 28}" text-anchor="middle">spread (years; ${MAX}+ at the edge)</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const started = Date.now();
  const labelled = opts.faces > 0 ? labelledImages(opts) : null;
  const photos = opts.real ? [...realPhotos(), ...(await packagePhotos())] : [];
  console.log(`${labelled ? `${labelled.index.faces.length} faces x ${labelled.index.views.length} views; ` : ''}${photos.length} real photos; workerd with ${opts.models}`);
  const chipRuns = [], photoRuns = [];
  // Real photos up to 4000 x 3000 and 20 faces, as bench:photos sends its group photos.
  const { base, stop } = await startBenchWorker((persist) => seed(opts.models, persist, () => {}), { MAX_PIXELS: '12600000', JPEG_MAX_MEMORY_MB: '512', MAX_BODY_BYTES: String(32 << 20), MAX_FACES_LIMIT: '20' });
  try {
    for (const tier of TIERS) {
      if (labelled) chipRuns.push(await oursLabelled(base, labelled, tier));
      if (photos.length) photoRuns.push(await oursReal(base, photos, tier));
      console.log(`${tier} done (${((Date.now() - started) / 60000).toFixed(1)} min)`);
    }
  } finally {
    await stop();
  }
  if (opts.label) for (const r of [...chipRuns, ...photoRuns]) r.name = `${r.name} (${opts.label})`;
  if (opts.faceApi && labelled) chipRuns.push(await faceApiLabelled(labelled));
  if (opts.faceApi && photos.length) photoRuns.push(await faceApiReal(photos));
  const minutes = ((Date.now() - started) / 60000).toFixed(1);
  const parts = [`<!-- written by: npm run bench:stability -- --faces ${opts.faces}${opts.real ? '' : ' --no-real'}${opts.faceApi ? '' : ' --no-face-api'}${opts.label ? ` --label "${opts.label}"` : ''} (${minutes} min on ${cpus().length} × ${cpus()[0]?.model.trim() ?? 'CPU'}) -->`];
  const chips = labelled && labelledTables(chipRuns, labelled.index);
  const real = photos.length ? realTables(photoRuns, photos) : null;
  if (chips) parts.push(chips.md, '');
  if (real) parts.push(real.md, '');
  const worst = [...(chips ? chipRuns.map((r, i) => chips.reports[i].confidentFar.map((c) => `${r.name}: test face ${c.face} (age ${labelled.index.faces[c.face].age}), ${c.view}: ${c.age} (range ${c.range.low}–${c.range.high}) against its median ${f1(c.median)}`)) : []),
    ...(real ? photoRuns.map((r, i) => real.reports[i].confidentFar.map((c) => `${r.name}: real face ${c.face}, ${c.view}: ${c.age} (range ${c.range.low}–${c.range.high}) against its median ${f1(c.median)}`)) : [])].flat();
  parts.push(`Confident and far answers: ${worst.length}${worst.length ? `\n\n${worst.slice(0, 12).map((w) => `- ${w}`).join('\n')}${worst.length > 12 ? `\n- … and ${worst.length - 12} more` : ''}` : '.'}`);
  const md = parts.join('\n');
  console.log(md);
  if (opts.md) writeFileSync(opts.md, md + '\n');
  if (opts.svg) {
    const panels = [];
    if (chips) panels.push({ title: `UTKFace test faces, ${labelled.index.views.length} views`, runs: chipRuns.map((r) => ({ name: r.name, spreads: r.faces.map((f) => faceSpread(f)) })) });
    if (real) panels.push({ title: `Real photos, ${photos.length} photos x 10`, runs: photoRuns.map((r) => ({ name: r.name, spreads: r.photos.flatMap((p) => p.faces).map((f) => faceSpread(f)).filter(Number.isFinite) })) });
    writeFileSync(opts.svg, svg(panels));
  }
  if (opts.json) writeFileSync(opts.json, JSON.stringify({ faces: opts.faces, views: labelled?.index.views ?? [], chips: chipRuns, real: photoRuns }) + '\n');
}

main().catch(fail);
