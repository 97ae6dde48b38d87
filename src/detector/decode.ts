import type { Rect } from '../image/types';
import type { AnchorSpec } from './manifest';

/**
 * BlazeFace's output decoding, as MediaPipe's face_detection graphs do it
 * (SsdAnchorsCalculator, TensorsToDetectionsCalculator, WEIGHTED NonMaxSuppression).
 * training/detector.py is the reference; `reference.json` of each converted detector holds
 * its answers and src/detector/decode.test.ts holds this code to them.
 */

/** A detection in [0, 1] of the detector's input: box corners, score, keypoints (x, y). */
export type RawDetection = { box: [number, number, number, number]; score: number; keypoints: [number, number][] };

/** A face found in a photo, in pixels of the image as displayed (after EXIF orientation). */
export type Detection = { box: Rect; score: number; keypoints: [number, number][] };

export const NUM_KEYPOINTS = 6;
const SCORE_CLIP = 100;
const VALUES = 4 + 2 * NUM_KEYPOINTS;

/** Anchor centres as [x0, y0, x1, y1, …] in [0, 1], in the order of the graph's outputs. */
export function anchors(spec: AnchorSpec, size: number): Float64Array {
  const out: number[] = [];
  const { strides } = spec;
  for (let i = 0; i < strides.length; ) {
    let j = i;
    while (j < strides.length && strides[j] === strides[i]) j++;
    // Layers that share a stride share one grid: their anchors sit together in each cell.
    const perCell = spec.per_layer * (j - i);
    const n = Math.ceil(size / strides[i]!);
    for (let y = 0; y < n; y++)
      for (let x = 0; x < n; x++)
        for (let k = 0; k < perCell; k++) out.push((x + spec.offset) / n, (y + spec.offset) / n);
    i = j;
  }
  return Float64Array.from(out);
}

/** Detections whose sigmoid score reaches the threshold, from raw [N, 16] regressors and [N] logits. */
export function decode(regressors: ArrayLike<number>, logits: ArrayLike<number>, anchorXY: Float64Array, size: number, threshold: number): RawDetection[] {
  const n = anchorXY.length / 2;
  if (logits.length !== n || regressors.length !== n * VALUES) {
    throw new RangeError(`expected ${n} anchors × ${VALUES} values, got ${regressors.length} regressors and ${logits.length} scores`);
  }
  const out: RawDetection[] = [];
  for (let i = 0; i < n; i++) {
    const logit = Math.min(SCORE_CLIP, Math.max(-SCORE_CLIP, logits[i]!));
    const score = 1 / (1 + Math.exp(-logit));
    if (!(score >= threshold)) continue;
    const ax = anchorXY[2 * i]!, ay = anchorXY[2 * i + 1]!;
    const r = (k: number) => regressors[i * VALUES + k]! / size;
    const cx = r(0) + ax, cy = r(1) + ay, w = r(2), h = r(3);
    const keypoints: [number, number][] = [];
    for (let k = 0; k < NUM_KEYPOINTS; k++) keypoints.push([r(4 + 2 * k) + ax, r(5 + 2 * k) + ay]);
    out.push({ box: [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], score, keypoints });
  }
  return out;
}

export function iou(a: readonly number[], b: readonly number[]): number {
  const ix = Math.max(0, Math.min(a[2]!, b[2]!) - Math.max(a[0]!, b[0]!));
  const iy = Math.max(0, Math.min(a[3]!, b[3]!) - Math.max(a[1]!, b[1]!));
  const inter = ix * iy;
  const union = (a[2]! - a[0]!) * (a[3]! - a[1]!) + (b[2]! - b[0]!) * (b[3]! - b[1]!) - inter;
  return union > 0 ? inter / union : 0;
}

/**
 * Weighted non-maximum suppression: the best remaining detection absorbs all that overlap it
 * by more than `threshold` (itself included); box and keypoints become their score-weighted
 * mean, the score stays the best one's. Averaging the many anchors that fire on one face
 * gives a steadier box than keeping the single best.
 */
export function weightedNms(dets: RawDetection[], threshold: number): RawDetection[] {
  let remaining = dets.map((_, i) => i).sort((a, b) => dets[b]!.score - dets[a]!.score || a - b);
  const out: RawDetection[] = [];
  while (remaining.length > 0) {
    const top = dets[remaining[0]!]!;
    const group: number[] = [];
    const rest: number[] = [];
    for (const i of remaining) (iou(top.box, dets[i]!.box) > threshold ? group : rest).push(i);
    let total = 0;
    const box = [0, 0, 0, 0];
    const kp = Array.from({ length: NUM_KEYPOINTS }, () => [0, 0] as [number, number]);
    for (const i of group) {
      const d = dets[i]!;
      total += d.score;
      for (let k = 0; k < 4; k++) box[k]! += d.box[k]! * d.score;
      for (let k = 0; k < NUM_KEYPOINTS; k++) {
        kp[k]![0] += d.keypoints[k]![0] * d.score;
        kp[k]![1] += d.keypoints[k]![1] * d.score;
      }
    }
    out.push({
      box: box.map((v) => v / total) as [number, number, number, number],
      score: top.score,
      keypoints: kp.map(([x, y]) => [x / total, y / total]),
    });
    remaining = rest;
  }
  return out;
}
