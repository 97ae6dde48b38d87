// Photos composed from UTKFace chips (../shared/data/utkface; nothing composed is kept): the one
// definition of the scenes `npm run bench:photos` measures the photo path on (the test faces) and
// of those training/js/photo-crops.mjs cuts training faces from (the train and val faces).
//
// Each face is a chip resized to 60-400 px (four size bands, equally many faces each), some
// turned in the plane by up to ±30°, some JPEG-recompressed before pasting, pasted at a random
// free place of a 640x480 photo (1-4 faces per photo) on a plain, gradient, noise or textured
// background; the photo is a JPEG (quality 90, one in five at 50).
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { ROOT, UsageError } from '../../scripts/lib.mjs';
import { rng } from './stats.mjs';

import { encode as encodePng } from 'fast-png';

const require = createRequire(import.meta.url);
const jpeg = require('jpeg-js');

export const BANDS = [[60, 100], [100, 160], [160, 250], [250, 400]];
export const BACKGROUNDS = ['plain', 'gradient', 'noise', 'textured'];
export const W = 640, H = 480;

export const decode = (bytes) => jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true });
export const encode = (img, quality) => Buffer.from(jpeg.encode({ width: img.width, height: img.height, data: img.data }, quality).data);

/** Area-average resize of an RGBA image to side×side (the chips are square). */
export function resizeSquare(img, side) {
  const out = new Uint8Array(side * side * 4);
  const s = img.width / side;
  for (let oy = 0; oy < side; oy++)
    for (let ox = 0; ox < side; ox++) {
      const acc = [0, 0, 0];
      let area = 0;
      for (let y = Math.floor(oy * s); y < (oy + 1) * s; y++)
        for (let x = Math.floor(ox * s); x < (ox + 1) * s; x++) {
          const a = (Math.min((ox + 1) * s, x + 1) - Math.max(ox * s, x)) * (Math.min((oy + 1) * s, y + 1) - Math.max(oy * s, y));
          if (a <= 0) continue;
          const p = (y * img.width + x) * 4;
          for (let c = 0; c < 3; c++) acc[c] += img.data[p + c] * a;
          area += a;
        }
      const o = (oy * side + ox) * 4;
      for (let c = 0; c < 3; c++) out[o + c] = Math.round(acc[c] / area);
      out[o + 3] = 255;
    }
  return { width: side, height: side, data: out };
}

export function background(kind, width, height, r) {
  const data = new Uint8Array(width * height * 4);
  const c1 = [r() * 255, r() * 255, r() * 255], c2 = [r() * 255, r() * 255, r() * 255];
  const fx = 0.02 + r() * 0.1, fy = 0.02 + r() * 0.1, angle = r() * Math.PI;
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      let t;
      if (kind === 'plain') t = 0;
      else if (kind === 'gradient') t = (x * Math.cos(angle) + y * Math.sin(angle)) / Math.hypot(width, height) + 0.5;
      else if (kind === 'noise') t = r();
      else t = 0.5 + 0.25 * Math.sin(x * fx) * Math.cos(y * fy) + 0.25 * Math.sin((x + y) * fx * 0.37);
      t = Math.min(1, Math.max(0, t));
      const o = (y * width + x) * 4;
      for (let c = 0; c < 3; c++) data[o + c] = c1[c] * (1 - t) + c2[c] * t;
      data[o + 3] = 255;
    }
  return { width, height, data };
}

/** Pastes `chip` centred at (cx, cy), turned by `angle` (radians), bilinear. */
export function paste(canvas, chip, cx, cy, angle) {
  const c = chip.width, cos = Math.cos(angle), sin = Math.sin(angle);
  const half = (c * (Math.abs(cos) + Math.abs(sin))) / 2;
  for (let y = Math.floor(cy - half); y <= Math.ceil(cy + half); y++)
    for (let x = Math.floor(cx - half); x <= Math.ceil(cx + half); x++) {
      if (x < 0 || y < 0 || x >= canvas.width || y >= canvas.height) continue;
      const dx = x + 0.5 - cx, dy = y + 0.5 - cy;
      const u = cos * dx + sin * dy + c / 2 - 0.5, v = -sin * dx + cos * dy + c / 2 - 0.5;
      if (u < 0 || v < 0 || u > c - 1 || v > c - 1) continue;
      const x0 = Math.floor(u), y0 = Math.floor(v), x1 = Math.min(c - 1, x0 + 1), y1 = Math.min(c - 1, y0 + 1);
      const fu = u - x0, fv = v - y0;
      const o = (y * canvas.width + x) * 4;
      for (let k = 0; k < 3; k++) {
        const p = (yy, xx) => chip.data[(yy * c + xx) * 4 + k];
        canvas.data[o + k] = Math.round((p(y0, x0) * (1 - fu) + p(y0, x1) * fu) * (1 - fv) + (p(y1, x0) * (1 - fu) + p(y1, x1) * fu) * fv);
      }
    }
}

/** Where the detector's box lies on a chip pasted at (cx, cy), side c, turned by angle. */
export function truthBox(framing, cx, cy, c, angle) {
  const b = c / framing.scale;
  // On the chip the crop centre is the box centre moved by offset·b: the box centre is the other way.
  const ox = -framing.offset_x * b, oy = -framing.offset_y * b;
  const bx = cx + Math.cos(angle) * ox - Math.sin(angle) * oy, by = cy + Math.sin(angle) * ox + Math.cos(angle) * oy;
  return { x: bx - b / 2, y: by - b / 2, w: b, h: b };
}

export const iou = (a, b) => {
  const ix = Math.max(0, Math.min(a.x + a.w, b.x + b.w) - Math.max(a.x, b.x));
  const iy = Math.max(0, Math.min(a.y + a.h, b.y + b.h) - Math.max(a.y, b.y));
  return (ix * iy) / (a.w * a.h + b.w * b.h - ix * iy);
};


const DATA = join(ROOT, '..', 'shared', 'data', 'utkface');

/** A UTKFace chip's JPEG bytes. */
export const chipBytes = (file) => readFileSync(join(DATA, 'images', file));

/** `split`'s rows of UTKFace's labels.csv, in its order (training/datasets.py's): [{file, age}]. */
export function splitRows(split) {
  if (!existsSync(join(DATA, 'labels.csv'))) throw new UsageError(`${DATA}/labels.csv not found: the photos are composed from UTKFace's ${split} faces (../shared/data)`);
  const [header, ...lines] = readFileSync(join(DATA, 'labels.csv'), 'utf8').trim().split(/\r?\n/).map((l) => l.split(','));
  const col = (name) => header.indexOf(name);
  return lines.filter((f) => f[col('split')] === split).map((f) => ({ file: f[col('file')], age: Number(f[col('age')]) }));
}

/** The crop framing a manifest declares (its old `face_margin` as a square when it has none). */
export const framingOf = (manifest) => manifest.framing ?? { scale: 1 + 2 * manifest.face_margin, offset_x: 0, offset_y: 0 };

/** `split`'s faces (the first `faces` of them in a seeded shuffle; all when undefined), each with
 *  its size, turn and recompression drawn, and a generator of the photos they are pasted into.
 *  `degraded`: keep each face as it went into the photo (the bench's "as pasted" row). */
export function composeFaces({ split, faces: count, seed, degraded = false }, framing) {
  const r = rng(seed);
  const rows = splitRows(split);
  for (let i = rows.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [rows[i], rows[j]] = [rows[j], rows[i]];
  }
  const faces = rows.slice(0, count ?? rows.length).map((row, i) => {
    const [lo, hi] = BANDS[i % BANDS.length];
    return {
      ...row,
      band: i % BANDS.length,
      side: Math.round(lo * (hi / lo) ** r()),
      angle: r() < 0.35 ? (r() < 0.5 ? -1 : 1) * (5 + r() * 25) * (Math.PI / 180) : 0,
      recompress: r() < 0.3 ? Math.round(30 + r() * 30) : null,
      bytes: readFileSync(join(DATA, 'images', row.file)),
    };
  });
  return { faces, photos: photosOf(faces, r, framing, degraded), r };
}

function* photosOf(faces, r, framing, degraded) {
  let next = 0, made = 0;
  while (next < faces.length) {
    const want = Math.min(1 + Math.floor(r() * 4), faces.length - next);
    const kind = BACKGROUNDS[made % BACKGROUNDS.length];
    const canvas = background(kind, W, H, r);
    const placed = [];
    for (const face of faces.slice(next, next + want)) {
      let side = face.side;
      for (let attempt = 0; ; attempt++) {
        const reach = (side * (Math.abs(Math.cos(face.angle)) + Math.abs(Math.sin(face.angle)))) / 2;
        if (2 * reach <= Math.min(W, H)) {
          const cx = reach + r() * (W - 2 * reach), cy = reach + r() * (H - 2 * reach);
          const free = placed.every((p) => Math.abs(p.cx - cx) >= p.reach + reach || Math.abs(p.cy - cy) >= p.reach + reach);
          if (free) {
            placed.push({ face, cx, cy, reach, side });
            break;
          }
        }
        if (attempt > 0 && attempt % 40 === 0) side = Math.round(side * 0.9);
        if (attempt > 400) break; // no room left in this photo: the face goes to the next one
      }
    }
    for (const p of placed) {
      let chip = decode(p.face.bytes);
      if (p.face.recompress) chip = decode(encode(chip, p.face.recompress));
      const small = resizeSquare(chip, p.side);
      paste(canvas, small, p.cx, p.cy, p.face.angle);
      // The face as it went into the photo (resized, recompressed), upright and lossless: what
      // the model reads of it once the photo path has found, framed and turned it back.
      if (degraded) p.face.degraded = Buffer.from(encodePng({ width: small.width, height: small.height, data: small.data, channels: 4 }));
      p.face.side = p.side;
      p.face.band = BANDS.findIndex(([lo, hi]) => p.side >= lo && p.side < hi || (hi === 400 && p.side === 400));
      p.truth = truthBox(framing, p.cx, p.cy, p.side, p.face.angle);
    }
    next += placed.length;
    made++;
    yield { kind, bytes: encode(canvas, r() < 0.2 ? 50 : 90), faces: placed };
  }
}

/** Photos with no face at all (false detections), after the faces' photos, from the same stream. */
export function emptyPhotos(r) {
  return BACKGROUNDS.flatMap((kind) => Array.from({ length: 5 }, () => ({ kind, bytes: encode(background(kind, W, H, r), 90), faces: [] })));
}

/** Greedy matching of `found` detections to the photo's faces, best IoU first (IoU >= 0.5):
 *  [face index, detection index, IoU] triples. */
export function matchFaces(placed, found) {
  const pairs = [];
  placed.forEach((p, i) => found.forEach((f, j) => pairs.push({ i, j, v: iou(p.truth, f.box) })));
  pairs.sort((a, b) => b.v - a.v);
  const usedFace = new Set(), usedFound = new Set(), out = [];
  for (const { i, j, v } of pairs) {
    if (v < 0.5 || usedFound.has(j) || usedFace.has(i)) continue;
    usedFound.add(j);
    usedFace.add(i);
    out.push([i, j, v]);
  }
  return out;
}

// Group photos as people take them: 8-20 faces in rows, each 4-10 % of the photo's long side
// (its detector box), at 4-12 megapixels; some heads tilted up to ±35°; light that is uneven
// and coloured across the photo (a window on one side, a warm or cool lamp, stage light); a
// phone-like JPEG (quality 85-92). The faces are `split`'s chips, so each has its age.
export const GROUP_SIZES = [[2400, 1600], [1600, 2400], [3000, 2250], [4000, 3000], [3000, 4000]];
export const GROUP_LIGHTS = ['even', 'uneven', 'warm', 'cool', 'magenta'];

/** The light across a photo: RGB gains `a` on one side ramping to `b` on the other, at a random
 *  angle. even: one neutral brightness; uneven: neutral, one side half as bright; warm, cool,
 *  magenta: that colour of light, also falling off across the photo. */
function lightRamp(kind, r) {
  const base = 0.85 + r() * 0.2;
  const dark = kind === 'even' ? base : 0.45 + r() * 0.25;
  const tint = { warm: [1.15, 1.0, 0.72], cool: [0.78, 0.95, 1.2], magenta: [1.15, 0.75, 1.15] }[kind] ?? [1, 1, 1];
  return { a: tint.map((t) => t * base), b: tint.map((t) => t * dark), angle: r() * 2 * Math.PI };
}

function applyLight(canvas, light) {
  const { width, height, data } = canvas;
  const cos = Math.cos(light.angle), sin = Math.sin(light.angle), L = Math.hypot(width, height);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const t = Math.min(1, Math.max(0, ((x - width / 2) * cos + (y - height / 2) * sin) / L + 0.5));
      const o = (y * width + x) * 4;
      for (let c = 0; c < 3; c++) data[o + c] = Math.min(255, Math.round(data[o + c] * (light.a[c] * (1 - t) + light.b[c] * t)));
    }
}

/** `photos` group photos of `split`'s faces (seeded): [{kind, light, width, height, bytes, faces}],
 *  each face {face: {file, age, angle}, cx, cy, side, truth}, as composeFaces' placed faces. */
export function* composeGroups({ split, photos: count, seed }, framing) {
  const r = rng(seed);
  const rows = splitRows(split);
  for (let i = rows.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [rows[i], rows[j]] = [rows[j], rows[i]];
  }
  let next = 0;
  for (let p = 0; p < count; p++) {
    // Every size meets every light within 25 photos (5 sizes, 5 lights, the light shifted each round).
    const [width, height] = GROUP_SIZES[p % GROUP_SIZES.length];
    const light = GROUP_LIGHTS[(p + Math.floor(p / GROUP_SIZES.length)) % GROUP_LIGHTS.length];
    const n = 8 + Math.floor(r() * 13);
    const long = Math.max(width, height);
    // Rows of people across the middle of the frame, as a group stands.
    const perRow = Math.ceil(n / Math.ceil(n / 8));
    const rowsN = Math.ceil(n / perRow);
    const cellW = width / perRow, cellH = (height * 0.7) / rowsN;
    const canvas = background(BACKGROUNDS[p % BACKGROUNDS.length], width, height, r);
    const placed = [];
    for (let i = 0; i < n && next < rows.length; i++, next++) {
      const row = rows[next];
      const boxFrac = 0.04 + r() * 0.06;
      let side = Math.round(boxFrac * long * framing.scale);
      side = Math.min(side, Math.floor(Math.min(cellW, cellH) / 1.45));
      const angle = r() < 0.4 ? (r() < 0.5 ? -1 : 1) * (5 + r() * 30) * (Math.PI / 180) : 0;
      const cx = (i % perRow + 0.5 + (r() - 0.5) * 0.2) * cellW;
      const cy = height * 0.15 + (Math.floor(i / perRow) + 0.5 + (r() - 0.5) * 0.2) * cellH;
      const face = { ...row, angle, bytes: readFileSync(join(DATA, 'images', row.file)) };
      paste(canvas, resizeSquare(decode(face.bytes), side), cx, cy, angle);
      placed.push({ face, cx, cy, side, box_fraction: side / framing.scale / long, truth: truthBox(framing, cx, cy, side, angle) });
    }
    applyLight(canvas, lightRamp(light, r));
    yield { kind: `group ${width}x${height}`, light, width, height, bytes: encode(canvas, 85 + Math.floor(r() * 8)), faces: placed };
  }
}
