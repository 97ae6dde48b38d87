/** Interleaved 8-bit RGB pixels, row-major, `width * 3` bytes per row. */
export type RgbImage = { width: number; height: number; data: Uint8Array };

/** An axis-aligned rectangle in (fractional) pixels: the API's Rect (src/schemas.ts). */
export type { Rect } from '../schemas';

/** EXIF orientation tag value, 1 (as stored) to 8. */
export type Orientation = 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8;
