// What finding the faces costs by photo size (`npm run bench`): a selfie (one face of half the
// short side) and a group of 12 faces of 6 % of the long side, at 1, 4 and 12 megapixels, with
// the half tiles only (before) and with the quarter tiles too (served), in one run, so the two
// compare. The bench worker accepts 12.6 megapixels (served: MAX_PIXELS 4,000,000). The faces
// are UTKFace test chips (../shared/data/utkface); without them the rows are left out, loudly.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../../scripts/lib.mjs';
import { seed } from '../../scripts/models.mjs';
import { background, chipBytes, decode, encode, paste, resizeSquare, splitRows } from './compose-photos.mjs';
import { rng } from './stats.mjs';
import { startBenchWorker } from './worker.mjs';

export const PHOTO_SIZES = [[1155, 866], [2309, 1732], [4000, 3000]];

function selfie(chips, width, height) {
  const canvas = background('gradient', width, height, rng(8));
  paste(canvas, resizeSquare(decode(chips[0]), Math.round(Math.min(width, height) / 2)), width * 0.45, height * 0.5, 0);
  return encode(canvas, 90);
}

function group(chips, width, height, n = 12) {
  const canvas = background('gradient', width, height, rng(9));
  const side = Math.round(Math.max(width, height) * 0.06 * 1.086);
  for (let i = 0; i < n; i++) paste(canvas, resizeSquare(decode(chips[i % chips.length]), side), (width / (n / 2)) * ((i % (n / 2)) + 0.5), height * (0.35 + 0.3 * Math.floor(i / (n / 2))), 0);
  return encode(canvas, 90);
}

async function post(base, path, bytes) {
  const t0 = performance.now();
  const res = await fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: bytes });
  const body = await res.json();
  if (!res.ok) throw new Error(`HTTP ${res.status} from ${path}: ${JSON.stringify(body)}`);
  return { t: performance.now() - t0, body };
}

/** Rows {size, megapixels, kind, levels, found, decode_ms, detect_ms, request_ms} (best of `repeat`), or null without UTKFace. */
export async function detectorCost(modelsDir, repeat = 5) {
  if (!existsSync(join(ROOT, '..', 'shared', 'data', 'utkface', 'labels.csv'))) {
    console.log('!! ../shared/data/utkface not found: the detector cost by photo size was NOT measured !!');
    return null;
  }
  const chips = splitRows('test').slice(0, 12).map((r) => chipBytes(r.file));
  const photos = PHOTO_SIZES.flatMap(([w, h]) => [
    { size: `${w}x${h}`, megapixels: (w * h) / 1e6, kind: 'selfie', bytes: selfie(chips, w, h) },
    { size: `${w}x${h}`, megapixels: (w * h) / 1e6, kind: 'group of 12', bytes: group(chips, w, h) },
  ]);
  const rows = [];
  for (const levels of [1, 2]) {
    const { base, stop } = await startBenchWorker((persist) => seed(modelsDir, persist, () => {}), { MAX_PIXELS: '12600000', JPEG_MAX_MEMORY_MB: '512', MAX_BODY_BYTES: String(32 << 20), DETECTOR_TILES: String(levels) });
    try {
      await post(base, '/v1/age', photos[0].bytes);
      for (const p of photos) {
        const best = async (path) => {
          let fastest;
          for (let i = 0; i < repeat; i++) {
            const r = await post(base, path, p.bytes);
            if (!fastest || r.t < fastest.t) fastest = r;
          }
          return fastest;
        };
        const dec = await best('/_bench/decode');
        const det = await best('/_bench/detect');
        const req = await best('/v1/age');
        rows.push({ size: p.size, megapixels: p.megapixels, kind: p.kind, levels, found: det.body.faces.length, decode_ms: dec.t, detect_ms: det.t - dec.t, request_ms: req.t, aged: req.body.faces.length });
      }
    } finally {
      await stop();
    }
  }
  return rows;
}

export function printDetectorCost(rows) {
  console.log('\nFinding the faces, by photo size (best of 5 each; detector = /_bench/detect − /_bench/decode; request = POST /v1/age with the default max_faces 5):\n');
  console.log('| photo | megapixels | kind | tile levels | faces found | decode | detector | request |\n|---|---|---|---|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.size} | ${r.megapixels.toFixed(1)} | ${r.kind} | ${r.levels === 1 ? '1 (half tiles: before)' : '2 (half + quarter: served)'} | ${r.found} | ${r.decode_ms.toFixed(0)} ms | ${r.detect_ms.toFixed(0)} ms | ${r.request_ms.toFixed(0)} ms |`);
}
