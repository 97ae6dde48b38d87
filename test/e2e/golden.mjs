// The golden answers: what both tiers of models/active.json answer on a fixed set of UTKFace test
// faces and of photos composed from them, asked through the running worker (wrangler dev, local).
// A restructure that changes no behaviour must leave them byte-identical.
//
//   chips   each face sent as a chip (crop=image) and with the box its training framing implies
//           (box=), with over=18 (and once with false_accept=0.02), to both tiers; plus the 400s
//           of the parameters the route checks;
//   photos  photos composed from test faces by bench/lib/compose-photos.mjs, the faces detected.
//
// The photos sit in a file of their own: a change to detection or framing changes them on
// purpose, and only they are written again (node scripts/golden.mjs --part photos).
//
// Only file names and answers are committed (test/fixtures/golden/), never an image: the faces
// are read from ../shared/data/utkface, and the test skips, saying so, where it is absent.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { composeFaces, framingOf, truthBox } from '../../bench/lib/compose-photos.mjs';
import { utkfaceTestRows } from '../../bench/lib/utkface.mjs';
import { ROOT, readVersionDir, startLocalWorker } from '../../scripts/lib.mjs';
import { seed } from '../../scripts/models.mjs';

export const UTKFACE = join(ROOT, '..', 'shared', 'data', 'utkface');
export const MODELS = join(ROOT, 'models');
export const FIXTURES = join(ROOT, 'test', 'fixtures', 'golden');
export const PARTS = ['chips', 'photos'];
export const fixturePath = (part) => join(FIXTURES, `${part}.json`);

/** Why the golden answers cannot be asked here, or undefined when they can. */
export function missingData() {
  if (!existsSync(join(UTKFACE, 'labels.csv')) || !existsSync(join(UTKFACE, 'images'))) return `UTKFace is not at ${UTKFACE}`;
  return undefined;
}

/** The worker as `npm start` serves models/ (both tiers), on a fresh local R2. */
export const startWorker = () => startLocalWorker({ seedInto: (dir) => seed(MODELS, dir, () => {}), logLevel: 'warn', prefix: 'age-edge-golden-' });

const TIERS = () => Object.keys(JSON.parse(readFileSync(join(MODELS, 'active.json'), 'utf8')).tiers).sort();
const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

/** What of a face's answer is golden: the estimate and its check (a photo's also where the face is). */
const chipFace = (f) => ({ age: f.age, range: f.range, over: f.over, quality: f.quality });
const photoFace = (f) => ({ box: f.box, score: f.score, crop: f.crop, roll: f.roll, ...chipFace(f) });

/** One request: its query, and the answer's golden part (or the whole error body). */
async function ask(base, query, bytes, face) {
  const res = await fetch(`${base}/v1/age?${query}`, { method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: bytes });
  const body = await res.json();
  if (res.status !== 200) return { query, status: res.status, error: { code: body.error.code, message: body.error.message } };
  // Through JSON, as the fixture is: a field the answer leaves out is no key at all.
  return JSON.parse(JSON.stringify({ query, status: 200, model: `${body.model.name}/${body.model.version}`, faces_detected: body.faces_detected, faces: body.faces.map(face) }));
}

// ---- the inputs: chosen once by the generator, then read back from the fixture ----------------

/** The chips' inputs: `n` test faces spread through the split, each with its framing's box. */
export function chipInputs(n = 16) {
  const active = JSON.parse(readFileSync(join(MODELS, 'active.json'), 'utf8'));
  const { manifest } = readVersionDir(join(MODELS, active.name, active.version));
  return utkfaceTestRows(UTKFACE, n).rows.map(({ file }) => {
    const side = 200; // UTKFace's chips are 200x200
    const b = truthBox(framingOf(manifest), side / 2, side / 2, side, 0);
    return { file, box: [b.x, b.y, b.w, b.h].map((v) => v.toFixed(1)).join(',') };
  });
}

/** The queries each chip is sent with, for every tier. */
function chipQueries(box, tiers) {
  return tiers.flatMap((tier) => [`model=${tier}&crop=image&over=18`, `model=${tier}&box=${box}&over=18`, `model=${tier}&crop=image&over=18&false_accept=0.02`]);
}

/** The parameters the route refuses, each with its 400 (sent with the first chip). */
const REFUSED = [
  'crop=image&box=10,10,50,50',
  'box=10,10,50',
  'box=150,150,100,100',
  'box=250,250,20,20',
  'over=18,x',
  'over=1,2,3,4,5,6',
  'crop=image&false_accept=0.02',
  'crop=image&over=18&false_accept=0.5',
  'crop=image&over=18&false_accept=2',
  'crop=image&model=huge',
  'crop=image&top_k=99',
  'max_faces=0',
];

/** Every chip's answers (`inputs`: [{file, box}]). */
export async function askChips(base, inputs) {
  const tiers = TIERS();
  const faces = [];
  for (const { file, box } of inputs) {
    const bytes = readFileSync(join(UTKFACE, 'images', file));
    const answers = [];
    for (const query of chipQueries(box, tiers)) answers.push(await ask(base, query, bytes, chipFace));
    faces.push({ file, box, answers });
  }
  const first = readFileSync(join(UTKFACE, 'images', inputs[0].file));
  const refused = [];
  for (const query of REFUSED) refused.push(await ask(base, query, first, chipFace));
  return { faces, refused };
}

/** The photos' inputs: compose-photos.mjs's photos of the first `faces` test faces of a seeded
 *  shuffle (the face file names and each photo's sha256 say which photos they were). */
export function composedPhotos({ faces = 12, seed: shuffle = 50 } = {}) {
  const active = JSON.parse(readFileSync(join(MODELS, 'active.json'), 'utf8'));
  const { manifest } = readVersionDir(join(MODELS, active.name, active.version));
  const { photos } = composeFaces({ split: 'test', faces, seed: shuffle }, framingOf(manifest));
  return [...photos].map((p) => ({ kind: p.kind, bytes: p.bytes, sha256: sha256(p.bytes), files: p.faces.map((f) => f.face.file) }));
}

/** Every photo's answers, faces detected, for every tier. */
export async function askPhotos(base, photos) {
  const tiers = TIERS();
  const out = [];
  for (const p of photos) {
    const answers = [];
    for (const tier of tiers) answers.push(await ask(base, `model=${tier}&max_faces=10&over=18`, p.bytes, photoFace));
    out.push({ kind: p.kind, sha256: p.sha256, files: p.files, answers });
  }
  return out;
}
