import { badRequest } from '../errors';
import type { Rect } from './types';

/** Parses `box=x,y,w,h` (image pixels, numbers); undefined when absent. */
export function parseBox(raw: string | null | undefined): Rect | undefined {
  if (raw === null || raw === undefined || raw.trim() === '') return undefined;
  const parts = raw.split(',').map((s) => s.trim());
  const nums = parts.map((s) => (/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(s) ? Number(s) : NaN));
  if (nums.length !== 4 || nums.some((n) => !Number.isFinite(n))) {
    throw badRequest('box must be four numbers "x,y,w,h" in image pixels.');
  }
  const [x, y, w, h] = nums as [number, number, number, number];
  if (w <= 0 || h <= 0) throw badRequest('box width and height must be positive.');
  return { x, y, w, h };
}

/**
 * The crop that goes to the model, in displayed-image pixels: the whole image without a box
 * (as in training), otherwise the box grown by `margin` of its width on the left and right and
 * of its height above and below, clamped to the image.
 */
export function faceCrop(box: Rect | undefined, width: number, height: number, margin: number): Rect {
  if (!box) return { x: 0, y: 0, w: width, h: height };
  const x0 = Math.max(0, box.x - margin * box.w);
  const y0 = Math.max(0, box.y - margin * box.h);
  const x1 = Math.min(width, box.x + box.w + margin * box.w);
  const y1 = Math.min(height, box.y + box.h + margin * box.h);
  if (x1 - x0 < 1 || y1 - y0 < 1 || box.x >= width || box.y >= height || box.x + box.w <= 0 || box.y + box.h <= 0) {
    throw badRequest(`box ${box.x},${box.y},${box.w},${box.h} does not overlap the ${width}x${height} image.`);
  }
  return { x: x0, y: y0, w: x1 - x0, h: y1 - y0 };
}

/** Maps the model's attention box, (x0, y0, x1, y1) in [0, 1] of the crop, to image pixels. */
export function attentionToImage(box: ArrayLike<number>, crop: Rect): Rect {
  const clamp = (v: number) => Math.min(1, Math.max(0, Number.isFinite(v) ? v : 0));
  const [x0, y0, x1, y1] = [clamp(box[0]!), clamp(box[1]!), clamp(box[2]!), clamp(box[3]!)];
  const ax = Math.min(x0, x1), bx = Math.max(x0, x1);
  const ay = Math.min(y0, y1), by = Math.max(y0, y1);
  return { x: crop.x + ax * crop.w, y: crop.y + ay * crop.h, w: (bx - ax) * crop.w, h: (by - ay) * crop.h };
}
