import { describe, expect, it } from 'vitest';
import { makeRgb, orientReference } from '../../test/helpers/images';
import { rectToStored, orientedSize } from './orientation';
import { axisWeights, pilBoxWeights, resizeCrop, resizeTurnedCrop } from './resize';
import type { Orientation, Rect, RgbImage } from './types';

/** Straightforward area average: integrates each output cell over the source pixels it covers. */
function referenceResize(img: RgbImage, crop: Rect, size: number): Float64Array {
  const out = new Float64Array(size * size * 3);
  const sx = crop.w / size, sy = crop.h / size;
  for (let oy = 0; oy < size; oy++)
    for (let ox = 0; ox < size; ox++) {
      const x0 = crop.x + ox * sx, x1 = x0 + sx, y0 = crop.y + oy * sy, y1 = y0 + sy;
      let area = 0;
      const sum = [0, 0, 0];
      for (let y = Math.floor(y0); y < y1; y++)
        for (let x = Math.floor(x0); x < x1; x++) {
          const a = (Math.min(x1, x + 1) - Math.max(x0, x)) * (Math.min(y1, y + 1) - Math.max(y0, y));
          if (a <= 0) continue;
          const p = (y * img.width + x) * 3;
          for (let c = 0; c < 3; c++) sum[c]! += img.data[p + c]! * a;
          area += a;
        }
      for (let c = 0; c < 3; c++) out[(oy * size + ox) * 3 + c] = sum[c]! / area;
    }
  return out;
}

const noise = (seed: number) => (x: number, y: number): [number, number, number] => {
  const h = (n: number) => ((Math.sin(n * 12.9898 + seed) * 43758.5453) % 1 + 1) % 1;
  return [Math.floor(h(x * 7 + y * 131) * 256), Math.floor(h(x * 17 + y * 7 + 3) * 256), Math.floor(h(x * 3 + y * 29 + 11) * 256)];
};

describe('axisWeights', () => {
  it('gives each output sample weights that sum to one', () => {
    const w = axisWeights(3.25, 97.5, 13, 120);
    for (let i = 0; i < 13; i++) {
      let s = 0;
      for (let k = w.offsets[i]!; k < w.offsets[i + 1]!; k++) s += w.weight[k]!;
      expect(s).toBeCloseTo(1, 5);
    }
  });

  it('averages exact pixel blocks when the scale is an integer', () => {
    const w = axisWeights(0, 8, 2, 8);
    expect(Array.from(w.index.subarray(0, w.offsets[2]))).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(Array.from(w.weight.subarray(0, 8))).toEqual(Array(8).fill(0.25));
  });
});

describe('pilBoxWeights (Pillow Image.BOX, as training resized)', () => {
  const taps = (w: ReturnType<typeof pilBoxWeights>, i: number) =>
    Array.from(w.index.subarray(w.offsets[i]!, w.offsets[i + 1]!)).map((p, k) => [p, Math.round(w.weight[w.offsets[i]! + k]! * 1000) / 1000]);

  it('averages whole pixels whose centres fall in the sample: 5 -> 3 takes 2, 1 and 2 pixels, not fractions', () => {
    const w = pilBoxWeights(0, 5, 3, 5);
    expect([taps(w, 0), taps(w, 1), taps(w, 2)]).toEqual([[[0, 0.5], [1, 0.5]], [[2, 1]], [[3, 0.5], [4, 0.5]]]);
  });

  it('counts padding outside the image in the mean, as black', () => {
    // A 4-pixel crop starting 2 pixels left of the image, halved: the first sample is all padding.
    const w = pilBoxWeights(-2, 4, 2, 10);
    expect([taps(w, 0), taps(w, 1)]).toEqual([[], [[0, 0.5], [1, 0.5]]]);
  });
});

describe('resizeCrop', () => {
  it("costs the image's pixels, not the crop's, for a crop far larger than the image (a caller's box may be any size)", () => {
    const img = makeRgb(40, 30, () => [90, 90, 90]);
    const huge = { x: -4e9, y: -4e9, w: 8e9, h: 8e9 };
    for (const rule of ['area', 'pil-box'] as const) {
      const out = resizeCrop(img, huge, 16, 1, undefined, rule);
      // The image is a speck at the centre of the black crop.
      expect(Math.max(...out)).toBeLessThanOrEqual(1);
    }
    expect(pilBoxWeights(-4e9, 8e9, 16, 40).index.length).toBeLessThan(16 * 50);
  });


  it('keeps a flat colour flat', () => {
    const img = makeRgb(50, 30, () => [10, 200, 77]);
    const out = resizeCrop(img, { x: 0, y: 0, w: 50, h: 30 }, 16, 1);
    for (let i = 0; i < out.length; i += 3) expect([out[i], out[i + 1], out[i + 2]]).toEqual([10, 200, 77]);
  });

  it('averages 2x2 blocks for an exact halving', () => {
    const img = makeRgb(4, 4, (x, y) => [x * 10 + y, 100, (x + y) * 20]);
    const out = resizeCrop(img, { x: 0, y: 0, w: 4, h: 4 }, 2, 1);
    // top-left block: x,y in {0,1}: r = (0+1+10+11)/4 = 5.5 -> 6 (round half up)
    expect(Array.from(out.subarray(0, 3))).toEqual([6, 100, 20]);
  });

  it('matches a direct area integration on fractional crops, down- and upscaling', () => {
    const img = makeRgb(97, 61, noise(1));
    for (const [crop, size] of [
      [{ x: 3.3, y: 2.7, w: 80.2, h: 50.9 }, 17],
      [{ x: 0, y: 0, w: 97, h: 61 }, 32],
      [{ x: 10.5, y: 20.25, w: 9.5, h: 7.75 }, 24], // upscaling
    ] as const) {
      const ref = referenceResize(img, crop, size);
      const out = resizeCrop(img, crop, size, 1);
      let worst = 0;
      for (let i = 0; i < out.length; i++) worst = Math.max(worst, Math.abs(out[i]! - ref[i]!));
      expect(worst).toBeLessThanOrEqual(0.51);
    }
  });

  it.each([1, 2, 3, 4, 5, 6, 7, 8] as Orientation[])('equals rotating the whole image first, orientation %i', (o) => {
    const stored = makeRgb(41, 23, noise(o));
    const shown = orientReference(stored, o);
    const size = orientedSize(41, 23, o);
    expect(size).toEqual({ width: shown.width, height: shown.height });
    const crop: Rect = { x: 2.5, y: 1.25, w: shown.width - 6, h: shown.height - 3.5 };
    const expected = resizeCrop(shown, crop, 12, 1);
    const fast = resizeCrop(stored, rectToStored(crop, 41, 23, o), 12, o);
    let worst = 0;
    for (let i = 0; i < fast.length; i++) worst = Math.max(worst, Math.abs(fast[i]! - expected[i]!));
    expect(worst).toBeLessThanOrEqual(1); // float summation order differs, rounding may flip by one
  });

  it('pads what lies outside the image with black, at the right scale (no squeezing)', () => {
    const img = makeRgb(10, 10, () => [200, 100, 50]);
    // A 20 px square from (-10, -5): the image fills its right half, rows 5..15.
    const out = resizeCrop(img, { x: -10, y: -5, w: 20, h: 20 }, 4, 1);
    const at = (x: number, y: number) => Array.from(out.subarray((y * 4 + x) * 3, (y * 4 + x) * 3 + 3));
    expect(at(0, 1)).toEqual([0, 0, 0]);
    expect(at(2, 1)).toEqual([200, 100, 50]);
    expect(at(3, 2)).toEqual([200, 100, 50]);
    expect(at(2, 3)).toEqual([0, 0, 0]);
    // Row 0 covers y -5..0 (outside), a sample half inside is half as bright.
    expect(at(2, 0)).toEqual([0, 0, 0]);
    const half = resizeCrop(img, { x: -5, y: 0, w: 10, h: 10 }, 1, 1);
    expect(Array.from(half)).toEqual([100, 50, 25]);
  });

  it('refuses a wrong output buffer and an empty crop', () => {
    const img = makeRgb(4, 4, () => [0, 0, 0]);
    expect(() => resizeCrop(img, { x: 0, y: 0, w: 4, h: 4 }, 2, 1, new Uint8Array(5))).toThrow(RangeError);
    expect(() => resizeCrop(img, { x: 0, y: 0, w: 0, h: 4 }, 2, 1)).toThrow(RangeError);
  });
});

describe('resizeTurnedCrop', () => {
  const smooth = (x: number, y: number): [number, number, number] => [128 + 100 * Math.sin(x / 9), 128 + 100 * Math.cos(y / 7), (x + y) % 256 > 127 ? 200 : 60];

  it('is close to the area average of the unturned crop when the angle is tiny', () => {
    const img = { ...makeRgb(120, 90, smooth), orientation: 1 as Orientation };
    const crop = { x: 10.5, y: 5.25, w: 80, h: 80 };
    const a = resizeCrop(img, crop, 20, 1), b = resizeTurnedCrop(img, crop, 1e-9, 20);
    let sum = 0;
    for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!);
    expect(sum / a.length).toBeLessThan(6);
  });

  it('turned by a quarter turn reads the picture turned the other way, through every EXIF orientation', () => {
    const upright = makeRgb(64, 64, noise(3));
    // Turning the crop clockwise by 90° reads what a viewer sees after turning the image counter-clockwise.
    const expected = resizeCrop(orientReference(upright, 8), { x: 0, y: 0, w: 64, h: 64 }, 16, 1);
    for (const o of [1, 3, 6, 8] as Orientation[]) {
      // Stored so that it displays as `upright` with tag o.
      const inverse = ({ 1: 1, 3: 3, 6: 8, 8: 6 } as const)[o as 1 | 3 | 6 | 8];
      const stored = { ...orientReference(upright, inverse), orientation: o };
      const got = resizeTurnedCrop(stored, { x: 0, y: 0, w: 64, h: 64 }, Math.PI / 2, 16);
      let sum = 0;
      for (let i = 0; i < got.length; i++) sum += Math.abs(got[i]! - expected[i]!);
      expect(sum / got.length, `orientation ${o}`).toBeLessThan(3);
    }
  });

  it('is black outside the image', () => {
    const img = { ...makeRgb(20, 20, () => [250, 250, 250]), orientation: 1 as Orientation };
    const out = resizeTurnedCrop(img, { x: -20, y: 0, w: 40, h: 40 }, 0.3, 8);
    expect(Array.from(out.subarray(0, 3))).toEqual([0, 0, 0]);
  });
});
