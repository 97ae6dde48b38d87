import type { Framing, Rect } from './types';

/** Parses `box=x,y,w,h` (image pixels, numbers); undefined when absent. A RangeError says what is
 *  wrong with it (src/schemas.ts makes its message the 400's). */
export function parseBox(raw: string | null | undefined): Rect | undefined {
  if (raw === null || raw === undefined || raw.trim() === '') return undefined;
  const parts = raw.split(',').map((s) => s.trim());
  const nums = parts.map((s) => (/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(s) ? Number(s) : NaN));
  if (nums.length !== 4 || nums.some((n) => !Number.isFinite(n))) {
    throw new RangeError('box must be four numbers "x,y,w,h" in image pixels.');
  }
  const [x, y, w, h] = nums as [number, number, number, number];
  if (w <= 0 || h <= 0) throw new RangeError('box width and height must be positive.');
  return { x, y, w, h };
}

/**
 * The age model's crop for a face box, in the same (displayed-image) pixels. Not clamped: the
 * part outside the image is padded black by the resize, so the face is never stretched.
 */
export function framedCrop(box: Rect, framing: Framing, roll = 0, keypoints?: [number, number][]): Rect {
  const s = Math.sqrt(box.w * box.h);
  const side = framing.scale * s;
  let cx0 = box.x + box.w / 2, cy0 = box.y + box.h / 2, fx = framing.offset_x, fy = framing.offset_y;
  if (framing.keypoints && keypoints && keypoints.length >= 4) {
    const [[rx, ry], [lx, ly], , [mx, my]] = keypoints as [[number, number], [number, number], [number, number], [number, number]];
    cx0 = ((rx + lx) / 2 + mx) / 2;
    cy0 = ((ry + ly) / 2 + my) / 2;
    fx = framing.keypoints.offset_x;
    fy = framing.keypoints.offset_y;
  }
  // The offsets are along the face's own axes: turned with it when its eyes are not level.
  const ox = fx * s, oy = fy * s;
  const cx = cx0 + Math.cos(roll) * ox - Math.sin(roll) * oy;
  const cy = cy0 + Math.sin(roll) * ox + Math.cos(roll) * oy;
  return { x: cx - side / 2, y: cy - side / 2, w: side, h: side };
}

/**
 * Below this tilt of the eye line the crop is not turned: on the training chips the detector's
 * eye line lies within −3.8…5.8° (p10–p90, `framing.measured` of version 3), so a smaller tilt
 * is one the model has seen.
 */
export const MIN_ROLL_DEGREES = 8;

/**
 * The angle (radians, clockwise in image coordinates) of the line from the right eye to the
 * left eye (the detector's first two keypoints), or 0 when it is under MIN_ROLL_DEGREES: the
 * turn that brings the face upright, as the aligned training chips are.
 */
export function eyeRoll(keypoints: [number, number][]): number {
  const [right, left] = keypoints;
  if (!right || !left) return 0;
  const roll = Math.atan2(left[1] - right[1], left[0] - right[0]);
  return Math.abs(roll) * (180 / Math.PI) < MIN_ROLL_DEGREES ? 0 : roll;
}

/** A similarity transform: x' = scale·R(angle)·x + (tx, ty), angle clockwise in image coordinates. */
export type Similarity = { scale: number; angle: number; tx: number; ty: number };

/**
 * The least-squares similarity that carries `template`'s points onto `points` (the same indices
 * of each): Umeyama's closed form in 2D, no reflection. training/framing.py `similarity` is the
 * same arithmetic.
 */
export function similarity(template: readonly (readonly [number, number])[], points: readonly (readonly [number, number])[], indices: readonly number[]): Similarity {
  let qx = 0, qy = 0, px = 0, py = 0;
  for (const i of indices) {
    qx += template[i]![0];
    qy += template[i]![1];
    px += points[i]![0];
    py += points[i]![1];
  }
  const n = indices.length;
  qx /= n; qy /= n; px /= n; py /= n;
  let a = 0, b = 0, norm = 0;
  for (const i of indices) {
    const ux = template[i]![0] - qx, uy = template[i]![1] - qy, vx = points[i]![0] - px, vy = points[i]![1] - py;
    a += ux * vx + uy * vy;
    b += ux * vy - uy * vx;
    norm += ux * ux + uy * uy;
  }
  a /= norm;
  b /= norm;
  return { scale: Math.hypot(a, b), angle: Math.atan2(b, a), tx: px - (a * qx - b * qy), ty: py - (b * qx + a * qy) };
}

/**
 * How the photo path frames a detected face: the crop and the turn that brings it upright. With a
 * framing that has a keypoint template, the crop is the training chip's own square carried onto
 * the face by the similarity fitted to its keypoints, so its centre, size and turn all follow the
 * face (a tilted-back head no longer gets a box over a shoulder); otherwise the box and the eye
 * line frame it. A turn under MIN_ROLL_DEGREES is not made: the chips' own eye lines spread that
 * much. training/framing.py `frame_face` is the same rule.
 */
export function frameFace(box: Rect, keypoints: [number, number][] | undefined, framing: Framing): { crop: Rect; roll: number } {
  const template = framing.keypoints?.template;
  const points = framing.keypoints?.template_points ?? [];
  if (!template || !keypoints || points.length < 2 || points.some((i) => !keypoints[i] || !template[i])) {
    const roll = keypoints ? eyeRoll(keypoints) : 0;
    return { crop: framedCrop(box, framing, roll, keypoints), roll };
  }
  const { scale, angle, tx, ty } = similarity(template, keypoints, points);
  const cx = scale * (Math.cos(angle) * 0.5 - Math.sin(angle) * 0.5) + tx;
  const cy = scale * (Math.sin(angle) * 0.5 + Math.cos(angle) * 0.5) + ty;
  const roll = Math.abs(angle) * (180 / Math.PI) < MIN_ROLL_DEGREES ? 0 : angle;
  return { crop: { x: cx - scale / 2, y: cy - scale / 2, w: scale, h: scale }, roll };
}

/** Whether a caller's box overlaps the image at all (past its edge is fine). */
export function boxOverlaps(box: Rect, width: number, height: number): boolean {
  return box.x < width && box.y < height && box.x + box.w > 0 && box.y + box.h > 0;
}

/** Maps the model's attention box, (x0, y0, x1, y1) in [0, 1] of the crop, to image pixels. */
export function attentionToImage(box: ArrayLike<number>, crop: Rect): Rect {
  const clamp = (v: number) => Math.min(1, Math.max(0, Number.isFinite(v) ? v : 0));
  const [x0, y0, x1, y1] = [clamp(box[0]!), clamp(box[1]!), clamp(box[2]!), clamp(box[3]!)];
  const ax = Math.min(x0, x1), bx = Math.max(x0, x1);
  const ay = Math.min(y0, y1), by = Math.max(y0, y1);
  return { x: crop.x + ax * crop.w, y: crop.y + ay * crop.h, w: (bx - ax) * crop.w, h: (by - ay) * crop.h };
}
