import { describe, expect, it } from 'vitest';
import { encodeJpeg, makeRgb, orientReference, pattern } from '../../test/helpers/images';
import { decodeImage } from '../image/decode';
import { resizeCrop } from '../image/resize';
import type { Orientation } from '../image/types';
import type { Manifest } from '../registry/manifest';
import type { AgeModel, ModelOutput } from './age-model';
import { predictAge } from './predict';

const S = 24;
const manifest = {
  schema: 1, name: 'probe', version: '1',
  input: { name: 'image', size: S, dtype: 'uint8', layout: 'NHWC', color: 'RGB' },
  outputs: ['age', 'probs', 'global_age', 'local_age', 'box'],
  face_margin: 0.25, ages: { min: 0, max: 100 }, model: 'm.onnx', files: [],
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

describe('predictAge', () => {
  it('reads the distribution out and maps the attention box to image pixels', async () => {
    const { model } = probeModel();
    const image = decodeImage(encodeJpeg(makeRgb(200, 100, pattern)), limits);
    const r = await predictAge(model, image, { x: 40, y: 20, w: 80, h: 40 }, 2, false);
    expect(r.crop).toEqual({ x: 20, y: 10, w: 120, h: 60 });
    expect(r.attention).toEqual({ x: 50, y: 40, w: 60, h: 30 });
    expect(r).toMatchObject({
      age: 37.3, global_age: 35, local_age: 38,
      group: { label: '25-37', probability: 0.8 },
      top_k: [{ age: 30, probability: 0.5 }, { age: 31, probability: 0.3 }],
      range: { low: 29.7, high: 65, level: 0.8 },
      image: { width: 200, height: 100, orientation: 1 },
      model: { name: 'probe', version: '1', fallback: false },
    });
  });

  it.each([2, 3, 4, 5, 6, 7, 8] as Orientation[])(
    'feeds the model the displayed picture for EXIF orientation %i',
    async (o) => {
      // What the camera stored, and what a viewer shows after applying the tag.
      const stored = decodeImage(encodeJpeg(makeRgb(90, 60, pattern), { orientation: o }), limits);
      expect(stored.orientation).toBe(o);
      const shown = orientReference(stored, o);
      const box = { x: 15, y: 10, w: 30, h: 36 };
      const { model, seen } = probeModel();
      const r = await predictAge(model, stored, box, 5, false);
      expect(r.image).toEqual({ width: shown.width, height: shown.height, orientation: o });
      const expected = resizeCrop(shown, r.crop, S, 1);
      let worst = 0;
      for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(seen[0]![i]! - expected[i]!));
      expect(worst).toBeLessThanOrEqual(1);
      // And it is not what the stored pixels look like unrotated.
      const naive = resizeCrop(stored, r.crop, S, 1);
      let diff = 0;
      for (let i = 0; i < naive.length; i++) diff += Math.abs(seen[0]![i]! - naive[i]!);
      expect(diff / naive.length).toBeGreaterThan(5);
    },
  );

  it('feeds the whole image when no box is given', async () => {
    const img = decodeImage(encodeJpeg(makeRgb(48, 48, pattern)), limits);
    const { model, seen } = probeModel();
    const r = await predictAge(model, img, undefined, 5, true);
    expect(r.crop).toEqual({ x: 0, y: 0, w: 48, h: 48 });
    expect(r.model.fallback).toBe(true);
    expect(Array.from(seen[0]!)).toEqual(Array.from(resizeCrop(img, { x: 0, y: 0, w: 48, h: 48 }, S, 1)));
  });
});
