/**
 * Capture quality of one face crop: what the crop itself shows (its size in source pixels,
 * exposure, sharpness, noise, how much of it is flat) and the detector's confidence, turned into
 * a score in 0..1 and reasons a person can act on. The same numbers as training/capture.py
 * (measure_quality, quality_score, face_quality), which the release fits the model's widening
 * and decision rule against: test/quality.test.ts holds the two together
 * (test/fixtures/parity/quality.json).
 */
import { resizeCrop } from '../image/resize';
import type { Rect, RgbImage } from '../image/types';
import type { Quality } from '../schemas';

export type { Quality };

const ANALYSIS_SIZE = 64;
const CENTRE: readonly [number, number] = [0.15, 0.85];
const FLAT_STEPS = 2;

const LIGHT_REASON = 'unusual light colour: use white light';
const POSE_REASON = 'head turned or tilted: face the camera';
/** Skin's mean chroma (Cb, Cr over luma) under white light: the median of `val` chips (capture.py SKIN_CHROMA). */
const SKIN_CHROMA: readonly [number, number] = [-0.1292, 0.1793];

/** [reason, bad, good]: each part of the score ramps from 0 at `bad` to 1 at `good`. */
const RAMPS = {
  face_px: ['too small: come closer', 24, 64],
  dark: ['too dark: add light', 0.12, 0.35],
  bright: ['too bright: avoid direct light', 0.97, 0.85],
  sharpness: ['blurred: hold still and focus', 0.28, 0.36],
  noise: ['grainy: add light', 0.3, 0.12],
  flat: ['face covered: remove sunglasses or mask', 0.18, 0.06],
  blockiness: ['compressed: send the original photo', 3.0, 1.5],
  detector_score: ['face unclear: face the camera', 0.5, 0.75],
  // Light of an unusual colour: the face's chroma across skin's direction, against it, far along it.
  light_hue: [LIGHT_REASON, 0.22, 0.12],
  light_blue: [LIGHT_REASON, -0.12, 0],
  light_red: [LIGHT_REASON, 0.75, 0.55],
  // A head turned or tilted further than the training faces (headPose).
  turned: [POSE_REASON, 0.55, 0.31],
  tilted_back: [POSE_REASON, 0.12, 0.28],
  bowed: [POSE_REASON, 0.95, 0.75],
} as const;
const REASON_BELOW = 0.5;

const round = (v: number, digits: number) => Math.round(v * 10 ** digits) / 10 ** digits;

export function analysisSize(facePx: number): number {
  return Math.max(16, Math.min(ANALYSIS_SIZE, Math.round(facePx)));
}

/**
 * The quality of a face from the model's input (uint8 RGB, size×size: the crop as the model
 * reads it, turned upright) shrunk by Pillow's BOX rule to at most 64 px, and `facePx`, the
 * crop's side in source pixels: capture.py input_quality. Reading the input rather than the
 * photo costs a 150 → 64 px resize, whatever the photo's size.
 */
export function measureQuality(input: Uint8Array, size: number, facePx: number, detectorScore: number | null, block: number | null, pose: HeadPose | null = null): Quality {
  const n = analysisSize(facePx);
  const rgb = n === size ? input : resizeCrop({ width: size, height: size, data: input }, { x: 0, y: 0, w: size, h: size }, n, 1, undefined, 'pil-box');
  const y = new Float64Array(n * n);
  for (let i = 0; i < n * n; i++) y[i] = 0.299 * rgb[i * 3]! + 0.587 * rgb[i * 3 + 1]! + 0.114 * rgb[i * 3 + 2]!;
  const m = { ...measures(y, n, facePx, detectorScore, block), ...lightColour(rgb, n), yaw: pose === null ? null : round(pose.yaw, 4), pitch: pose === null ? null : round(pose.pitch, 4) };
  return { ...m, ...score(m) };
}

export type HeadPose = { yaw: number; pitch: number };

/**
 * How far the head is turned and tilted, from the detector's keypoints (right eye, left eye, nose
 * tip, …; any roll): the nose tip's offset from the eyes' midpoint in the eyes' own frame, over
 * their distance (capture.py head_pose). yaw 0 faces the camera; pitch is about 0.56 for an
 * upright face, less tilted back, more bowed.
 */
export function headPose(keypoints: readonly (readonly [number, number])[]): HeadPose | null {
  if (keypoints.length < 3) return null;
  const [[rx, ry], [lx, ly], [nx, ny]] = keypoints as [[number, number], [number, number], [number, number]];
  const ex = (rx + lx) / 2, ey = (ry + ly) / 2;
  const dist = Math.max(Math.hypot(lx - rx, ly - ry), 1e-9);
  const ux = (lx - rx) / dist, uy = (ly - ry) / dist;
  const dx = nx - ex, dy = ny - ey;
  return { yaw: (dx * ux + dy * uy) / dist, pitch: (-dx * uy + dy * ux) / dist };
}

/**
 * The face centre's mean chroma over its luma, along and across skin's direction under white
 * light (capture.py light_colour): gray reads 0, 0; light of another colour moves it.
 */
export function lightColour(rgb: Uint8Array, n: number): { chroma_along: number; chroma_across: number } {
  const c0 = Math.floor(CENTRE[0] * n), c1 = Math.ceil(CENTRE[1] * n);
  let r = 0, g = 0, b = 0, count = 0;
  for (let y = c0; y < c1; y++) {
    for (let x = c0; x < c1; x++) { const o = (y * n + x) * 3; r += rgb[o]!; g += rgb[o + 1]!; b += rgb[o + 2]!; count++; }
  }
  r /= count; g /= count; b /= count;
  const luma = Math.max(0.299 * r + 0.587 * g + 0.114 * b, 1);
  const cb = (-0.168736 * r - 0.331264 * g + 0.5 * b) / luma, cr = (0.5 * r - 0.418688 * g - 0.081312 * b) / luma;
  const norm = Math.hypot(SKIN_CHROMA[0], SKIN_CHROMA[1]), ux = SKIN_CHROMA[0] / norm, uy = SKIN_CHROMA[1] / norm;
  return { chroma_along: round(cb * ux + cr * uy, 4), chroma_across: round(Math.abs(cb * uy - cr * ux), 4) };
}

type Measures = Omit<Quality, 'score' | 'reasons' | 'parts' | 'chroma_along' | 'chroma_across' | 'yaw' | 'pitch'>;

/** training/capture.py measure_quality on a luma image y (n×n, 0..255). */
export function measures(y: Float64Array, n: number, facePx: number, detectorScore: number | null, block: number | null = null): Measures {
  const c0 = Math.floor(CENTRE[0] * n), c1 = Math.ceil(CENTRE[1] * n);
  let sum = 0, sq = 0, count = 0;
  for (let r = c0; r < c1; r++) for (let c = c0; c < c1; c++) { const v = y[r * n + c]!; sum += v; count++; }
  const mean = sum / count;
  for (let r = c0; r < c1; r++) for (let c = c0; c < c1; c++) { const d = y[r * n + c]! - mean; sq += d * d; }
  const brightness = mean / 255;
  const contrast = Math.sqrt(sq / count) / 255;

  const h = Math.floor(n / 2);
  const half = new Float64Array(h * h);
  for (let r = 0; r < h; r++) {
    for (let c = 0; c < h; c++) {
      half[r * h + c] = (y[2 * r * n + 2 * c]! + y[2 * r * n + 2 * c + 1]! + y[(2 * r + 1) * n + 2 * c]! + y[(2 * r + 1) * n + 2 * c + 1]!) / 4;
    }
  }
  const e1 = gradientEnergy(y, n), e2 = gradientEnergy(half, h);
  const sharpness = e2 > 1e-9 ? e1 / e2 : 0;

  // Immerkaer's noise estimate over the centre.
  let lap = 0, lapCount = 0;
  for (let r = c0 + 1; r < c1 - 1; r++) {
    for (let c = c0 + 1; c < c1 - 1; c++) {
      const at = (dr: number, dc: number) => y[(r + dr) * n + c + dc]!;
      const k = at(-1, -1) - 2 * at(-1, 0) + at(-1, 1) - 2 * at(0, -1) + 4 * at(0, 0) - 2 * at(0, 1) + at(1, -1) - 2 * at(1, 0) + at(1, 1);
      lap += Math.abs(k);
      lapCount++;
    }
  }
  const noise = ((lap / lapCount) * Math.sqrt(Math.PI / 2)) / 6;

  let flatCount = 0;
  for (let r = c0; r < c1; r++) {
    for (let c = c0; c < c1; c++) {
      let lo = Infinity, hi = -Infinity;
      for (let dr = -2; dr <= 2; dr++) for (let dc = -2; dc <= 2; dc++) { const v = y[(r + dr) * n + c + dc]!; if (v < lo) lo = v; if (v > hi) hi = v; }
      if (hi - lo <= FLAT_STEPS) flatCount++;
    }
  }
  return {
    face_px: round(facePx, 1),
    brightness: round(brightness, 4),
    contrast: round(contrast, 4),
    sharpness: round(sharpness, 4),
    noise: round(noise, 3),
    flat: round(flatCount / count, 4),
    blockiness: block === null ? null : round(block, 4),
    detector_score: detectorScore === null ? null : round(detectorScore, 4),
  };
}

/**
 * How much a JPEG's 8×8 grid shows in `rect` (stored pixels, whole): the mean luma step across
 * block boundaries (columns and rows at multiples of 8 of the source image) over the mean step
 * elsewhere, each plus half a step (capture.py blockiness). About 1 without a grid, 1.1–1.4 for
 * a good JPEG, 2+ at quality 20. Reads about `lines` rows and columns, whatever the crop's size.
 */
export function blockiness(image: RgbImage, rect: Rect, lines = 64): number {
  const x0 = Math.max(0, rect.x), y0 = Math.max(0, rect.y);
  const x1 = Math.min(image.width, rect.x + rect.w), y1 = Math.min(image.height, rect.y + rect.h);
  if (x1 - x0 < 9 || y1 - y0 < 9) return 1;
  const lum = (x: number, y: number) => {
    const o = (y * image.width + x) * 3;
    return 0.299 * image.data[o]! + 0.587 * image.data[o + 1]! + 0.114 * image.data[o + 2]!;
  };
  const rs = Math.max(1, Math.floor((y1 - y0) / lines)), cs = Math.max(1, Math.floor((x1 - x0) / lines));
  let across = 0, nAcross = 0, within = 0, nWithin = 0;
  const add = (d: number, onGrid: boolean) => {
    if (onGrid) { across += d; nAcross++; } else { within += d; nWithin++; }
  };
  // Each pixel's luma once per line read (it is the right side of one step and the left of the next).
  for (let y = y0; y < y1; y += rs) {
    let prev = lum(x0, y);
    for (let x = x0 + 1; x < x1; x++) { const v = lum(x, y); add(Math.abs(v - prev), x % 8 === 0); prev = v; }
  }
  for (let x = x0; x < x1; x += cs) {
    let prev = lum(x, y0);
    for (let y = y0 + 1; y < y1; y++) { const v = lum(x, y); add(Math.abs(v - prev), y % 8 === 0); prev = v; }
  }
  return (across / nAcross + 0.5) / (within / nWithin + 0.5);
}

function gradientEnergy(y: Float64Array, n: number): number {
  const c0 = Math.floor(CENTRE[0] * n), c1 = Math.min(Math.ceil(CENTRE[1] * n), n - 1);
  let s = 0, count = 0;
  for (let r = c0; r < c1; r++) {
    for (let c = c0; c < c1; c++) {
      const dx = y[r * n + c + 1]! - y[r * n + c]!, dy = y[(r + 1) * n + c]! - y[r * n + c]!;
      s += dx * dx + dy * dy;
      count++;
    }
  }
  return s / count;
}

const ramp = (v: number, bad: number, good: number) => Math.min(1, Math.max(0, (v - bad) / (good - bad)));

/** training/capture.py quality_score: the product of the parts, and a reason for each weak part. */
export function score(m: Omit<Quality, 'score' | 'reasons' | 'parts'>): Pick<Quality, 'score' | 'parts' | 'reasons'> {
  const value: Record<keyof typeof RAMPS, number | null> = {
    face_px: m.face_px, dark: m.brightness, bright: m.brightness, sharpness: m.sharpness,
    // Grain counts against the face's own contrast (a dim, flat face hides behind less of it).
    noise: m.noise / Math.max(255 * m.contrast, 1), flat: m.flat, blockiness: m.blockiness, detector_score: m.detector_score,
    light_hue: m.chroma_across, light_blue: m.chroma_along, light_red: m.chroma_along,
    turned: m.yaw === null ? null : Math.abs(m.yaw), tilted_back: m.pitch, bowed: m.pitch,
  };
  const parts: Record<string, number> = {};
  const reasons: string[] = [];
  let total = 1;
  for (const [name, [reason, bad, good]] of Object.entries(RAMPS) as [keyof typeof RAMPS, (typeof RAMPS)[keyof typeof RAMPS]][]) {
    const v = value[name];
    if (v === null) continue;
    const part = round(ramp(v, bad, good), 4);
    parts[name] = part;
    total *= part;
    if (part < REASON_BELOW && !reasons.includes(reason)) reasons.push(reason);
  }
  return { score: round(total, 4), parts, reasons };
}
