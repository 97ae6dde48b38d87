#!/usr/bin/env node
// Two models on the same composed photos, face by face: from two `npm run bench:photos -- --json`
// runs with the same --faces and --seed (the same photos), the MAE of A minus B on the photo path
// and on the chips, over the faces both found, with 95% paired-bootstrap intervals.
//
//   node bench/photos-pair.mjs runs/photos-6.json runs/photos-5.json
//
// The JSONs hold per-face estimates and labels (derived from UTKFace): keep them out of git.
import { readFileSync } from 'node:fs';
import { UsageError, fail } from '../scripts/lib.mjs';
import { pairedBootstrap } from './lib/stats.mjs';

function main() {
  const [a, b] = process.argv.slice(2).map((f) => ({ file: f, run: JSON.parse(readFileSync(f, 'utf8')) }));
  if (!b) throw new UsageError('usage: photos-pair.mjs A.json B.json (two bench:photos --json runs)');
  for (const x of [a, b]) if (!Array.isArray(x.run.per_face)) throw new UsageError(`${x.file} has no per_face rows: rerun bench:photos with --json`);
  const key = (p) => `${p.file}|${p.side}`;
  const other = new Map(b.run.per_face.map((p) => [key(p), p]));
  if (a.run.command !== b.run.command || other.size !== a.run.per_face.length) throw new UsageError('the two runs are not over the same photos (same --faces and --seed)');
  const both = a.run.per_face.filter((p) => p.photo !== null && other.get(key(p))?.photo != null);
  const truth = both.map((p) => p.age);
  const mae = (xs) => xs.reduce((s, x, i) => s + Math.abs(x - truth[i]), 0) / xs.length;
  const f = (v) => (v >= 0 ? '+' : '') + v.toFixed(3);
  console.log(`${a.run.model} (A) against ${b.run.model} (B): ${both.length} faces found in both runs\n`);
  console.log('| path | MAE A | MAE B | A − B (95% CI) |\n|---|---|---|---|');
  for (const [label, field] of [['photo path', 'photo'], ['chips (crop=image)', 'chip'], ['as pasted (crop=image)', 'as_pasted']]) {
    const xa = both.map((p) => p[field]), xb = both.map((p) => other.get(key(p))[field]);
    const { mean, ci95 } = pairedBootstrap(xa, xb, truth, 10000, 5);
    console.log(`| ${label} | ${mae(xa).toFixed(3)} | ${mae(xb).toFixed(3)} | ${f(mean)} [${f(ci95[0])}, ${f(ci95[1])}] |`);
  }
}

try {
  main();
} catch (err) {
  fail(err instanceof UsageError ? err.message : err.stack ?? String(err));
}
