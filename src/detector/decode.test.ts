import { describe, expect, it } from 'vitest';
import { fixtureFile, shippedDetector } from '../../test/helpers/worker';
import { anchors, decode, iou, weightedNms, type RawDetection } from './decode';
import { parseDetectorManifest } from './manifest';

// reference.json is written by `python -m training detector convert` (training/detector.py):
// the anchors, and the detections that Python's decoding and weighted suppression make of
// raw outputs with planted faces. This code must give the same.
type Reference = {
  anchors: { count: number; xy: [number, number][] };
  decode: { seed: number; regressors: number[][]; classificators: number[]; detections: RawDetection[] }[];
};

async function reference() {
  const { manifest, manifestText } = await shippedDetector();
  const m = parseDetectorManifest(manifestText);
  const bytes = await fixtureFile(`models/detectors/${manifest.name}/${manifest.version}/reference.json`);
  if (!bytes) throw new Error('reference.json of the shipped detector is missing');
  return { m, ref: JSON.parse(new TextDecoder().decode(bytes)) as Reference };
}

describe('anchors', () => {
  it('match the reference grid of the shipped detector', async () => {
    const { m, ref } = await reference();
    const xy = anchors(m.anchors, m.input.size);
    expect(xy.length / 2).toBe(ref.anchors.count);
    let worst = 0;
    for (let i = 0; i < ref.anchors.count; i++) {
      worst = Math.max(worst, Math.abs(xy[2 * i]! - ref.anchors.xy[i]![0]), Math.abs(xy[2 * i + 1]! - ref.anchors.xy[i]![1]));
    }
    expect(worst).toBeLessThan(1e-8);
  });

  it('put layers of one stride in one grid (MediaPipe short range: 16×16×2 + 8×8×6)', () => {
    const xy = anchors({ strides: [8, 16, 16, 16], per_layer: 2, offset: 0.5 }, 128);
    expect(xy.length / 2).toBe(896);
    expect([xy[0], xy[1], xy[2], xy[3]]).toEqual([1 / 32, 1 / 32, 1 / 32, 1 / 32]);
    expect([xy[2 * 512], xy[2 * 512 + 1]]).toEqual([1 / 16, 1 / 16]);
    expect([xy[2 * 895], xy[2 * 895 + 1]]).toEqual([15 / 16, 15 / 16]);
  });
});

describe('decode and weighted NMS', () => {
  it('give the reference detections for planted faces', async () => {
    const { m, ref } = await reference();
    const xy = anchors(m.anchors, m.input.size);
    expect(ref.decode.length).toBeGreaterThanOrEqual(2);
    for (const c of ref.decode) {
      const got = weightedNms(decode(c.regressors.flat(), c.classificators, xy, m.input.size, m.score_threshold), m.nms_iou);
      expect(got.length, `seed ${c.seed}`).toBe(c.detections.length);
      expect(got.length).toBeGreaterThan(1);
      got.forEach((d, i) => {
        const want = c.detections[i]!;
        expect(Math.abs(d.score - want.score)).toBeLessThan(1e-9);
        for (let k = 0; k < 4; k++) expect(Math.abs(d.box[k]! - want.box[k]!)).toBeLessThan(1e-9);
        for (let k = 0; k < 6; k++) {
          expect(Math.abs(d.keypoints[k]![0] - want.keypoints[k]![0])).toBeLessThan(1e-9);
          expect(Math.abs(d.keypoints[k]![1] - want.keypoints[k]![1])).toBeLessThan(1e-9);
        }
      });
    }
  });

  it('merges overlapping boxes by score and keeps separate faces apart', () => {
    const det = (box: [number, number, number, number], score: number): RawDetection => ({ box, score, keypoints: Array.from({ length: 6 }, () => [box[0], box[1]]) });
    const out = weightedNms([det([0, 0, 1, 1], 0.6), det([0.1, 0, 1.1, 1], 0.9), det([2, 2, 3, 3], 0.7)], 0.3);
    expect(out).toHaveLength(2);
    expect(out[0]!.score).toBe(0.9);
    // (0.6·0 + 0.9·0.1) / 1.5 = 0.06
    expect(out[0]!.box[0]).toBeCloseTo(0.06, 12);
    expect(out[0]!.box[2]).toBeCloseTo(1.06, 12);
    out[1]!.box.forEach((v, k) => expect(v).toBeCloseTo([2, 2, 3, 3][k]!, 12));
    expect(iou([0, 0, 2, 2], [1, 1, 3, 3])).toBeCloseTo(1 / 7, 12);
  });

  it('drops scores under the threshold and refuses outputs of the wrong size', () => {
    const xy = anchors({ strides: [64], per_layer: 1, offset: 0.5 }, 128); // 2×2 = 4 anchors
    const reg = new Float32Array(4 * 16);
    reg[2] = reg[3] = 32; // anchor 0: a 32 px box at its centre
    const out = decode(reg, [3, -3, -100, -1000], xy, 128, 0.5);
    expect(out).toHaveLength(1);
    expect(out[0]!.box).toEqual([0.125, 0.125, 0.375, 0.375]);
    expect(out[0]!.score).toBeCloseTo(1 / (1 + Math.exp(-3)), 12);
    expect(() => decode(reg, [0, 0, 0], xy, 128, 0.5)).toThrow(/expected 4 anchors/);
  });
});
