#!/usr/bin/env node
// Writes the golden answers (test/fixtures/golden/chips.json, photos.json) from the running worker:
// what test/e2e/golden.test.mjs then expects, byte for byte. Write them again only when an answer
// changes on purpose, and only the part that did:
//
//   node scripts/golden.mjs                  # both parts
//   node scripts/golden.mjs --part photos    # the photos only (detection or framing changed)
//
// test/e2e/golden.mjs says what is asked.
import { mkdirSync, writeFileSync } from 'node:fs';
import { relative } from 'node:path';
import { PARTS, FIXTURES, askChips, askPhotos, chipInputs, composedPhotos, fixturePath, missingData, startWorker } from '../test/e2e/golden.mjs';
import { ROOT, UsageError, fail, parseOptions } from './lib.mjs';

const PHOTOS = { faces: 12, seed: 50 };

async function main() {
  const { values } = parseOptions(process.argv.slice(2), { part: { type: 'string' } });
  const parts = values.part === undefined ? PARTS : [values.part];
  if (!PARTS.includes(parts[0])) throw new UsageError(`--part must be one of ${PARTS.join(', ')}`);
  const missing = missingData();
  if (missing) throw new UsageError(`${missing}: the golden answers are asked on its test faces`);
  const worker = await startWorker();
  try {
    mkdirSync(FIXTURES, { recursive: true });
    for (const part of parts) {
      const fixture =
        part === 'chips'
          ? { about: 'node scripts/golden.mjs --part chips (test/e2e/golden.mjs)', ...(await askChips(worker.base, chipInputs())) }
          : { about: 'node scripts/golden.mjs --part photos (test/e2e/golden.mjs)', compose: PHOTOS, photos: await askPhotos(worker.base, composedPhotos(PHOTOS)) };
      writeFileSync(fixturePath(part), `${JSON.stringify(fixture, null, 1)}\n`);
      console.log(`wrote ${relative(ROOT, fixturePath(part))}`);
    }
  } finally {
    await worker.stop();
  }
}

main().catch((err) => fail(err instanceof UsageError ? err.message : err.stack));
