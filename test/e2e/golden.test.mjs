// The golden test: both tiers' answers (age, range, P(age >= 18) and its decision, quality; a
// photo's detected faces too) on fixed UTKFace test faces and composed photos must equal,
// byte for byte, those scripts/golden.mjs wrote (test/fixtures/golden/). A change that means to
// change no behaviour must keep them; one that changes answers on purpose writes its part again.
// Run by scripts/test.sh (node --test). Skips, saying so, without ../shared/data/utkface.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { askChips, askPhotos, composedPhotos, fixturePath, missingData, startWorker } from './golden.mjs';

const missing = missingData();
if (missing) console.log(`# SKIP golden answers: ${missing} (the test faces are read from it)`);
const read = (part) => JSON.parse(readFileSync(fixturePath(part), 'utf8'));

let worker;
before(async () => {
  if (!missing) worker = await startWorker();
});
after(async () => {
  await worker?.stop();
});

/** Byte-identical: the same JSON text (deepEqual first, for a readable difference). */
function sameAnswers(actual, expected, what) {
  assert.deepStrictEqual(actual, expected, `${what}: the answers changed (node scripts/golden.mjs --part … writes them again when that is meant)`);
  assert.equal(JSON.stringify(actual), JSON.stringify(expected), what);
}

test('chips (crop=image and box=) and refused parameters: both tiers answer as recorded', { skip: missing }, async () => {
  const expected = read('chips');
  const actual = await askChips(worker.base, expected.faces.map(({ file, box }) => ({ file, box })));
  assert.ok(expected.faces.length >= 16 && expected.refused.length >= 10);
  for (let i = 0; i < expected.faces.length; i++) sameAnswers(actual.faces[i], expected.faces[i], expected.faces[i].file);
  sameAnswers(actual.refused, expected.refused, 'refused parameters');
});

test('composed photos, faces detected: both tiers answer as recorded', { skip: missing }, async () => {
  const expected = read('photos');
  const photos = composedPhotos(expected.compose);
  // The same photos first: a change to compose-photos.mjs is not a change of the answers.
  assert.deepEqual(photos.map((p) => [p.sha256, p.files]), expected.photos.map((p) => [p.sha256, p.files]), 'compose-photos.mjs composes other photos now: write the photos part again');
  const actual = await askPhotos(worker.base, photos);
  assert.ok(actual.flatMap((p) => p.answers).some((a) => a.faces?.length > 0), 'some faces are detected');
  for (let i = 0; i < expected.photos.length; i++) sameAnswers(actual[i], expected.photos[i], `photo ${i} (${expected.photos[i].files.join(' ')})`);
});
