import { orientIndex, toStored } from './orientation';
import type { Orientation, Rect, RgbImage } from './types';

/**
 * Source pixels (and their weights) that make up each output sample along one axis.
 * Contributions of output i are `index/weight[offsets[i] .. offsets[i+1])`.
 */
type AxisWeights = { offsets: Int32Array; index: Int32Array; weight: Float32Array };

/**
 * Area averaging: output sample i covers [start + i·scale, start + (i+1)·scale) of the source
 * axis and averages the pixels under it, weighted by how much of each pixel it covers.
 * Fractional edges are honoured, so a crop need not fall on pixel boundaries. The part of a
 * sample outside [0, limit) counts as black: a crop that leaves the image is padded, never
 * squeezed back into it (the face keeps its aspect ratio, as in the training chips).
 */
export function axisWeights(start: number, length: number, size: number, limit: number): AxisWeights {
  const scale = length / size;
  // Taps lie inside the image: a huge crop (a caller's box may be any size that overlaps the
  // image) must not size these arrays by its own width.
  const cap = size * (Math.min(Math.ceil(scale), limit) + 2);
  const offsets = new Int32Array(size + 1);
  const index = new Int32Array(cap);
  const weight = new Float32Array(cap);
  let n = 0;
  for (let i = 0; i < size; i++) {
    offsets[i] = n;
    const a = start + i * scale;
    const b = a + scale;
    const first = n;
    for (let p = Math.max(0, Math.floor(a)); p < b && p < limit; p++) {
      const cover = Math.min(b, p + 1) - Math.max(a, p);
      if (cover <= 0) continue;
      index[n] = p;
      weight[n] = cover;
      n++;
    }
    for (let k = first; k < n; k++) weight[k] = weight[k]! / scale;
  }
  offsets[size] = n;
  return { offsets, index, weight };
}

/**
 * Pillow's `Image.BOX` resize of a crop at whole pixels, which made every training face
 * (training/data.py load_face): each source pixel whose centre falls in output sample i's
 * window counts once, and the sample is their plain mean. It differs from `axisWeights` when
 * the scale is not an integer (200 → 112 px: a mean 1 level on real faces, up to 56 on one
 * pixel), so the age model is fed this instead. Pillow's own arithmetic (resample.c
 * precompute_coeffs) is followed step for step so that ties at window edges fall alike.
 * `start` and `length` are whole pixels; the part outside [0, limit) is black, as PIL pads a
 * crop that leaves the image.
 */
export function pilBoxWeights(start: number, length: number, size: number, limit: number): AxisWeights {
  const scale = length / size;
  const filterscale = Math.max(scale, 1);
  const support = 0.5 * filterscale;
  const ss = 1 / filterscale;
  const cap = size * (Math.min(Math.ceil(2 * support), limit) + 2);
  const offsets = new Int32Array(size + 1);
  const index = new Int32Array(cap);
  const weight = new Float32Array(cap);
  let n = 0;
  for (let i = 0; i < size; i++) {
    offsets[i] = n;
    const center = (i + 0.5) * scale;
    let lo = Math.max(0, Math.trunc(center - support + 0.5));
    let hi = Math.min(length, Math.trunc(center + support + 0.5));
    // Pillow keeps the x in [lo, hi) whose t = (x - center + 0.5) / filterscale is in
    // (-0.5, 0.5]; t grows with x, so only the ends can fall out.
    const inside = (x: number) => {
      const t = (x - center + 0.5) * ss;
      return t > -0.5 && t <= 0.5;
    };
    while (lo < hi && !inside(lo)) lo++;
    while (hi > lo && !inside(hi - 1)) hi--;
    const first = n;
    // Padding outside [0, limit) is black: it counts in the mean but needs no tap.
    for (let p = Math.max(start + lo, 0); p < Math.min(start + hi, limit); p++) index[n++] = p;
    for (let k = first; k < n; k++) weight[k] = 1 / (hi - lo);
  }
  offsets[size] = n;
  return { offsets, index, weight };
}

/**
 * How `resizeCrop` weights the source pixels: 'area' by how much of each pixel a sample
 * covers (fractional crops honoured); 'pil-box' as training's Pillow resize did, which also
 * rounds the horizontal pass to whole levels as Pillow does.
 */
export type ResizeRule = 'area' | 'pil-box';

/**
 * Resizes the `crop` of `image` (stored coordinates) to size×size by area averaging and writes
 * it, turned to the displayed orientation, as uint8 RGB (NHWC without N) into `out`.
 * Work is O(crop pixels); the only allocations are O(size).
 */
export function resizeCrop(image: RgbImage, crop: Rect, size: number, orientation: Orientation, out: Uint8Array = new Uint8Array(size * size * 3), rule: ResizeRule = 'area'): Uint8Array {
  if (out.length !== size * size * 3) throw new RangeError('output buffer has the wrong size');
  if (!(crop.w > 0 && crop.h > 0)) throw new RangeError('empty crop');
  const weights = rule === 'pil-box' ? pilBoxWeights : axisWeights;
  const xs = weights(crop.x, crop.w, size, image.width);
  const ys = weights(crop.y, crop.h, size, image.height);
  const pass = rule === 'pil-box' ? (v: number) => Math.min(255, Math.round(v)) : (v: number) => v;
  const row = new Float32Array(size * 3); // one source row resampled horizontally
  const acc = new Float32Array(size * 3); // weighted sum of such rows for one output row
  const src = image.data;
  const stride = image.width * 3;
  for (let oy = 0; oy < size; oy++) {
    acc.fill(0);
    for (let ky = ys.offsets[oy]!; ky < ys.offsets[oy + 1]!; ky++) {
      const base = ys.index[ky]! * stride;
      const wy = ys.weight[ky]!;
      for (let ox = 0; ox < size; ox++) {
        let r = 0, g = 0, b = 0;
        for (let kx = xs.offsets[ox]!; kx < xs.offsets[ox + 1]!; kx++) {
          const p = base + xs.index[kx]! * 3;
          const w = xs.weight[kx]!;
          r += src[p]! * w;
          g += src[p + 1]! * w;
          b += src[p + 2]! * w;
        }
        const o = ox * 3;
        row[o] = pass(r);
        row[o + 1] = pass(g);
        row[o + 2] = pass(b);
      }
      for (let i = 0; i < acc.length; i++) acc[i] = acc[i]! + row[i]! * wy;
    }
    for (let ox = 0; ox < size; ox++) {
      const d = orientIndex(ox, oy, size, orientation) * 3;
      const s = ox * 3;
      out[d] = Math.min(255, Math.max(0, Math.round(acc[s]!)));
      out[d + 1] = Math.min(255, Math.max(0, Math.round(acc[s + 1]!)));
      out[d + 2] = Math.min(255, Math.max(0, Math.round(acc[s + 2]!)));
    }
  }
  return out;
}

/**
 * The square `crop` (displayed-image pixels) turned by `angle` radians about its centre,
 * resampled to size×size, as uint8 RGB in displayed orientation. For a face whose eyes are not
 * level: the training chips are aligned, so the model reads the face turned upright. Each
 * output pixel averages n×n bilinear samples spread over its footprint (n grows with the
 * downscale), close to the area average `resizeCrop` makes of an unturned crop; what lies
 * outside the image is black, as there.
 */
export function resizeTurnedCrop(image: RgbImage & { orientation: Orientation }, crop: Rect, angle: number, size: number): Uint8Array {
  if (!(crop.w > 0 && crop.h > 0)) throw new RangeError('empty crop');
  const out = new Uint8Array(size * size * 3);
  const n = Math.min(4, Math.max(1, Math.ceil(crop.w / size)));
  const cos = Math.cos(angle), sin = Math.sin(angle);
  const cx = crop.x + crop.w / 2, cy = crop.y + crop.h / 2;
  const W = image.width, H = image.height, src = image.data;
  const px = (x: number, y: number, c: number) => (x < 0 || y < 0 || x >= W || y >= H ? 0 : src[(y * W + x) * 3 + c]!);
  const acc = [0, 0, 0];
  for (let oy = 0; oy < size; oy++)
    for (let ox = 0; ox < size; ox++) {
      acc[0] = acc[1] = acc[2] = 0;
      for (let j = 0; j < n; j++)
        for (let i = 0; i < n; i++) {
          // Offset from the crop centre in the turned frame, then into the displayed image.
          const u = ((ox + (i + 0.5) / n) / size - 0.5) * crop.w;
          const v = ((oy + (j + 0.5) / n) / size - 0.5) * crop.h;
          const [sx, sy] = toStored(cx + cos * u - sin * v, cy + sin * u + cos * v, W, H, image.orientation);
          // Pixel centres sit at +0.5: bilinear between the four around the sample.
          const fx = sx - 0.5, fy = sy - 0.5;
          const x0 = Math.floor(fx), y0 = Math.floor(fy), ax = fx - x0, ay = fy - y0;
          for (let c = 0; c < 3; c++) {
            acc[c]! += (px(x0, y0, c) * (1 - ax) + px(x0 + 1, y0, c) * ax) * (1 - ay) + (px(x0, y0 + 1, c) * (1 - ax) + px(x0 + 1, y0 + 1, c) * ax) * ay;
          }
        }
      const o = (oy * size + ox) * 3;
      for (let c = 0; c < 3; c++) out[o + c] = Math.min(255, Math.max(0, Math.round(acc[c]! / (n * n))));
    }
  return out;
}
