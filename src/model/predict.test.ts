import { describe, expect, it } from 'vitest';
import { encodeJpeg, makeRgb, orientReference, pattern } from '../../test/helpers/images';
import { decodeImage } from '../image/decode';
import type { Orientation } from '../image/types';
import type { Manifest } from '../registry/manifest';
import type { AgeModel, ModelOutput } from './age-model';
import { framedCrop } from '../image/crop';
import { rangeLevel } from './calibration';
import { estimateAge, TWO_AGES_REASON } from './predict';

const S = 24;
const manifest = {
  schema: 1, name: 'probe', version: '1',
  input: { name: 'image', size: S, dtype: 'uint8', layout: 'NHWC', color: 'RGB' },
  outputs: ['age', 'probs', 'global_age', 'local_age', 'box'],
  face_margin: 0.25, framing: { scale: 1.5, offset_x: 0, offset_y: 0 }, ages: { min: 0, max: 100 }, model: 'm.onnx', files: [],
} as unknown as Manifest;

/** A model that records the crop it is given and answers with a fixed, known distribution. */
function probeModel() {
  const seen: Uint8Array[] = [];
  const probs = new Float32Array(101);
  probs[30] = 0.5; probs[31] = 0.3; probs[65] = 0.2;
  const model: AgeModel = {
    manifest,
    async run(crop): Promise<ModelOutput> {
      seen.push(crop.slice());
      return { age: 0.5 * 30 + 0.3 * 31 + 0.2 * 65, probs, globalAge: 35.04, localAge: 37.96, box: new Float32Array([0.25, 0.5, 0.75, 1]) };
    },
    release: async () => undefined,
  };
  return { model, seen };
}

const limits = { maxPixels: 4_000_000, maxMemoryMB: 64 };

describe('rangeLevel: the range calibrated per band of the estimate', () => {
  const levels = [{ from: 0, to: 12, level: 0.7 }, { from: 13, to: 17, level: 0.85 }, { from: 60, to: null, level: 0.9 }];
  it('takes the band of the estimate rounded down to a whole year', () => {
    expect(rangeLevel(levels, 12.99)).toBe(0.7);
    expect(rangeLevel(levels, 13)).toBe(0.85);
    expect(rangeLevel(levels, 17.5)).toBe(0.85);
    expect(rangeLevel(levels, 99)).toBe(0.9);
  });
  it('reads 80% where no band or no calibration applies', () => {
    expect(rangeLevel(levels, 30)).toBe(0.8);
    expect(rangeLevel(undefined, 30)).toBe(0.8);
  });
  it('widens the served range where its band says so', async () => {
    // One bump (30, 31 and 40: no far age), estimate 32.3.
    const probs = new Float32Array(101);
    probs[30] = 0.5; probs[31] = 0.3; probs[40] = 0.2;
    const model: AgeModel = { manifest, release: async () => undefined, run: async () => ({ age: 32.3, probs, globalAge: 32.3, localAge: 32.3, box: new Float32Array([0, 0, 1, 1]) }) };
    const calibrated = { ...model, manifest: { ...manifest, range_levels: [{ from: 25, to: 39, level: 0.95 }] } as Manifest };
    const image = decodeImage(encodeJpeg(makeRgb(200, 100, pattern)), limits);
    const crop = { x: 20, y: 10, w: 120, h: 60 };
    const plain = await estimateAge(model, image, crop, 2);
    const wide = await estimateAge(calibrated, image, crop, 2);
    // The estimate is 32.3 (band 25-39): read at 95%, reported as the 80% range.
    expect(wide.range.level).toBe(0.8);
    expect(wide.range.low).toBeLessThan(plain.range.low);
    expect(wide.range.high).toBeGreaterThan(plain.range.high);
  });
});

describe('estimateAge', () => {
  it('reads the distribution out and maps the attention box to image pixels', async () => {
    const { model } = probeModel();
    const image = decodeImage(encodeJpeg(makeRgb(200, 100, pattern)), limits);
    const r = await estimateAge(model, image, { x: 20, y: 10, w: 120, h: 60 }, 2);
    expect(r.crop).toEqual({ x: 20, y: 10, w: 120, h: 60 });
    expect(r.attention).toEqual({ x: 50, y: 40, w: 60, h: 30 });
    expect(r).toMatchObject({
      age: 37.3, global_age: 35, local_age: 38,
      group: { label: '25-37', probability: 0.8 },
      top_k: [{ age: 30, probability: 0.5 }, { age: 31, probability: 0.3 }],
      // 20% at 65, 35 years from the peak: torn, the range runs from 20 years below the estimate
      // to 20 years past the far age (on the 5-year box a one-year spike is a plateau 63-67,
      // whose last year counts as its peak).
      range: { low: 17.3, high: 87, level: 0.8 },
    });
  });

  it('a distribution torn between two far ages: the range reaches over both and the answer says so', async () => {
    const image = decodeImage(encodeJpeg(makeRgb(200, 100, pattern)), limits);
    const answer = async (probs: Float32Array) => {
      let age = 0;
      for (let i = 0; i < probs.length; i++) age += i * probs[i]!;
      const model: AgeModel = { manifest, release: async () => undefined, run: async () => ({ age, probs, globalAge: age, localAge: age, box: new Float32Array([0, 0, 1, 1]) }) };
      return estimateAge(model, image, { x: 20, y: 10, w: 120, h: 60 }, 2);
    };
    const bumps = (...parts: [number, number, number][]) => {
      const p = new Float32Array(101);
      for (const [centre, sd, weight] of parts) for (let a = 0; a <= 100; a++) p[a]! += weight * Math.exp(-0.5 * ((a - centre) / sd) ** 2);
      const total = p.reduce((s, v) => s + v, 0);
      return p.map((v) => v / total);
    };
    // A child's answer with 6% of its mass at 75 (below the 90th percentile, so the central 80% misses it).
    const torn = await answer(bumps([12, 2, 0.94 / (2 * Math.sqrt(2 * Math.PI))], [75, 3, 0.06 / (3 * Math.sqrt(2 * Math.PI))]));
    expect(torn.range.low).toBe(0);                       // 20 years below the estimate (15.8), clamped
    expect(torn.range.high).toBe(95);                     // 20 years past the far age
    expect(torn.age).toBeCloseTo(0.94 * 12 + 0.06 * 75, 0);
    expect(torn.quality.reasons).toContain(TWO_AGES_REASON);
    // One bump: the central interval, and no such reason.
    const one = await answer(bumps([40, 4, 1]));
    expect(one.range.high).toBeLessThan(47);
    expect(one.quality.reasons).not.toContain(TWO_AGES_REASON);
  });

  it('pads a crop that leaves the image with black instead of squashing it into the image', async () => {
    // A face box in the top-left corner: its framed crop reaches past two edges.
    const image = decodeImage(encodeJpeg(makeRgb(96, 64, () => [200, 200, 200]), { quality: 100 }), limits);
    const crop = framedCrop({ x: 0, y: 0, w: 32, h: 32 }, manifest.framing!);
    expect(crop).toEqual({ x: -8, y: -8, w: 48, h: 48 });
    const { model, seen } = probeModel();
    await estimateAge(model, image, crop, 0);
    const px = (x: number, y: number) => seen[0]![(y * S + x) * 3]!;
    // Out of the image (the first 8 of 48 px = 4 of 24 samples): black; inside: the grey.
    expect(px(0, 0)).toBe(0);
    expect(px(3, 12)).toBe(0);
    expect(px(12, 3)).toBe(0);
    expect(Math.abs(px(12, 12) - 200)).toBeLessThanOrEqual(2);
    expect(Math.abs(px(23, 23) - 200)).toBeLessThanOrEqual(2);
    // The face keeps its shape: a square box stays a square crop of the square input.
    expect(crop.w).toBe(crop.h);
  });

  /**
   * The model input for a `crop` of 2S x 2S displayed pixels, built without the code under test:
   * each input pixel is the mean of a 2x2 block of the displayed picture (black outside it).
   * At an integer scale the area average and training's PIL BOX resize are both exactly that.
   */
  function blockMeans(shown: { width: number; height: number; data: Uint8Array }, crop: { x: number; y: number }): Float64Array {
    const out = new Float64Array(S * S * 3);
    for (let oy = 0; oy < S; oy++)
      for (let ox = 0; ox < S; ox++)
        for (let c = 0; c < 3; c++) {
          let sum = 0;
          for (const [dx, dy] of [[0, 0], [1, 0], [0, 1], [1, 1]] as const) {
            const x = crop.x + 2 * ox + dx, y = crop.y + 2 * oy + dy;
            if (x >= 0 && y >= 0 && x < shown.width && y < shown.height) sum += shown.data[(y * shown.width + x) * 3 + c]!;
          }
          out[(oy * S + ox) * 3 + c] = sum / 4;
        }
    return out;
  }

  const worstDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
    let worst = 0;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
    return worst;
  };

  it.each([2, 3, 4, 5, 6, 7, 8] as Orientation[])(
    'feeds the model the displayed picture for EXIF orientation %i, in the middle and past each corner',
    async (o) => {
      // What the camera stored, and what a viewer shows after applying the tag (test helper,
      // not the server's orientation code). The picture is not symmetric, so a wrong flip or
      // turn moves every pixel.
      const stored = decodeImage(encodeJpeg(makeRgb(90, 60, pattern), { orientation: o }), limits);
      expect(stored.orientation).toBe(o);
      const shown = orientReference(stored, o);
      const { width: W, height: H } = shown;
      expect([W, H]).toEqual(o >= 5 ? [60, 90] : [90, 60]);
      const side = 2 * S;
      // The middle, and crops reaching 8 px past the top-left and the bottom-right corners.
      for (const at of [{ x: 10, y: 7 }, { x: -8, y: -8 }, { x: W - side + 8, y: H - side + 8 }]) {
        const { model, seen } = probeModel();
        await estimateAge(model, stored, { ...at, w: side, h: side }, 5);
        const expected = blockMeans(shown, at);
        expect(worstDiff(seen[0]!, expected), `crop at ${at.x},${at.y}`).toBeLessThanOrEqual(1);
        // Past an edge the input is black, on the side the displayed picture says.
        const px = (x: number, y: number) => seen[0]![(y * S + x) * 3]! + seen[0]![(y * S + x) * 3 + 1]! + seen[0]![(y * S + x) * 3 + 2]!;
        if (at.x < 0) expect([px(0, 12), px(3, 12), px(12, 0), px(12, 3)]).toEqual([0, 0, 0, 0]);
        if (at.x > 10) expect([px(S - 1, 12), px(S - 4, 12), px(12, S - 1), px(12, S - 4)]).toEqual([0, 0, 0, 0]);
        expect(px(12, 12)).toBeGreaterThan(0);
      }
      // And it is not what the stored pixels look like unrotated.
      const { model, seen } = probeModel();
      await estimateAge(model, stored, { x: 10, y: 7, w: side, h: side }, 5);
      const naive = blockMeans(stored, { x: 10, y: 7 });
      let diff = 0;
      for (let i = 0; i < naive.length; i++) diff += Math.abs(seen[0]![i]! - naive[i]!);
      expect(diff / naive.length).toBeGreaterThan(5);
    },
  );

  it('feeds the whole image when the crop is the image', async () => {
    const img = decodeImage(encodeJpeg(makeRgb(48, 48, pattern)), limits);
    const { model, seen } = probeModel();
    const r = await estimateAge(model, img, { x: 0, y: 0, w: 48, h: 48 }, 5);
    expect(r.crop).toEqual({ x: 0, y: 0, w: 48, h: 48 });
    expect(worstDiff(seen[0]!, blockMeans(img, { x: 0, y: 0 }))).toBeLessThanOrEqual(1);
  });
});
