import { ImageError } from './errors';

export type DecodeLimits = {
  /** Largest width * height accepted. */
  maxPixels: number;
  /** Cap on what one decode may allocate, in MiB (jpeg-js's own; a PNG's estimate). */
  maxMemoryMB: number;
};

/** Refuses an image over the pixel limit from the size its header declares, before decoding. */
export function checkPixels(width: number, height: number, limits: DecodeLimits): number {
  const pixels = width * height;
  if (pixels > limits.maxPixels) {
    throw new ImageError(
      'too_large',
      `The image is ${width}x${height} (${pixels} pixels); at most ${limits.maxPixels} pixels are accepted. Downscale it before sending.`,
    );
  }
  return pixels;
}
