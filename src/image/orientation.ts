import type { Orientation, Rect } from './types';

/**
 * EXIF orientations are flips and quarter turns, so instead of rotating the full-resolution
 * image the server maps the crop rectangle from displayed ("oriented") coordinates to stored
 * ones, resizes the stored rectangle, and reorients only the small S×S result.
 */

/** Width and height of the image as displayed. */
export function orientedSize(width: number, height: number, o: Orientation): { width: number; height: number } {
  return o >= 5 ? { width: height, height: width } : { width, height };
}

/** Maps a point of the displayed image to the stored image (continuous pixel coordinates). */
export function toStored(u: number, v: number, W: number, H: number, o: Orientation): [number, number] {
  switch (o) {
    case 1: return [u, v];
    case 2: return [W - u, v];
    case 3: return [W - u, H - v];
    case 4: return [u, H - v];
    case 5: return [v, u];
    case 6: return [v, H - u];
    case 7: return [W - v, H - u];
    case 8: return [W - v, u];
  }
}

/** The stored-image rectangle that displays as `rect`; W and H are the stored size. */
export function rectToStored(rect: Rect, W: number, H: number, o: Orientation): Rect {
  const [ax, ay] = toStored(rect.x, rect.y, W, H, o);
  const [bx, by] = toStored(rect.x + rect.w, rect.y + rect.h, W, H, o);
  const x = Math.min(ax, bx);
  const y = Math.min(ay, by);
  return { x, y, w: Math.abs(bx - ax), h: Math.abs(by - ay) };
}

/**
 * Index of the displayed pixel that stored pixel (x, y) lands on, in an n×n square
 * (the resized crop), as `v * n + u`.
 */
export function orientIndex(x: number, y: number, n: number, o: Orientation): number {
  const m = n - 1;
  switch (o) {
    case 1: return y * n + x;
    case 2: return y * n + (m - x);
    case 3: return (m - y) * n + (m - x);
    case 4: return (m - y) * n + x;
    case 5: return x * n + y;
    case 6: return x * n + (m - y);
    case 7: return (m - x) * n + (m - y);
    case 8: return (m - x) * n + y;
  }
}
