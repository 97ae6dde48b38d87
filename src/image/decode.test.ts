import { describe, expect, it } from 'vitest';
import { encodeJpeg, makeRgb, pattern } from '../../test/helpers/images';
import { asApiError } from '../middleware/errors';
import { decodeImage } from './decode';
import { readJpegHeader } from './jpeg-header';

const limits = { maxPixels: 4_000_000, maxMemoryMB: 64 };

function statusOf(fn: () => unknown): number | undefined {
  try {
    fn();
  } catch (err) {
    const refusal = asApiError(err);
    if (refusal) return refusal.status;
    throw err;
  }
  return undefined;
}

describe('readJpegHeader', () => {
  it('reads size and orientation without decoding', () => {
    const jpeg = encodeJpeg(makeRgb(40, 24, pattern), { orientation: 6 });
    expect(readJpegHeader(jpeg)).toEqual({ width: 40, height: 24, orientation: 6 });
    expect(readJpegHeader(encodeJpeg(makeRgb(8, 8, pattern), { orientation: 3, littleEndian: true }))?.orientation).toBe(3);
    expect(readJpegHeader(encodeJpeg(makeRgb(8, 8, pattern)))?.orientation).toBe(1);
  });

  it('ignores an invalid orientation value', () => {
    expect(readJpegHeader(encodeJpeg(makeRgb(8, 8, pattern), { orientation: 9 as never }))?.orientation).toBe(1);
  });

  it('rejects truncated and foreign streams', () => {
    const jpeg = encodeJpeg(makeRgb(8, 8, pattern));
    expect(readJpegHeader(jpeg.subarray(0, 30))).toBeUndefined();
    expect(readJpegHeader(new Uint8Array([0xff, 0xd8, 0xff, 0xd9]))).toBeUndefined();
    expect(readJpegHeader(new TextEncoder().encode('hello'))).toBeUndefined();
  });
});

describe('decodeImage', () => {
  it('decodes to RGB close to the source', () => {
    const src = makeRgb(64, 48, () => [200, 40, 90]);
    const img = decodeImage(encodeJpeg(src, { quality: 95 }), limits);
    expect([img.width, img.height, img.data.length, img.orientation]).toEqual([64, 48, 64 * 48 * 3, 1]);
    for (let i = 0; i < img.data.length; i += 3) {
      expect(Math.abs(img.data[i]! - 200)).toBeLessThanOrEqual(4);
      expect(Math.abs(img.data[i + 1]! - 40)).toBeLessThanOrEqual(4);
      expect(Math.abs(img.data[i + 2]! - 90)).toBeLessThanOrEqual(4);
    }
  });

  it('refuses too many pixels with 413 before decoding', () => {
    const jpeg = encodeJpeg(makeRgb(100, 50, pattern));
    expect(statusOf(() => decodeImage(jpeg, { ...limits, maxPixels: 4999 }))).toBe(413);
    expect(statusOf(() => decodeImage(jpeg, { ...limits, maxPixels: 5000 }))).toBeUndefined();
  });

  it("turns jpeg-js's memory limit into 413", () => {
    const jpeg = encodeJpeg(makeRgb(600, 400, pattern));
    expect(statusOf(() => decodeImage(jpeg, { ...limits, maxMemoryMB: 1 }))).toBe(413);
  });

  it('answers 415 for other image formats and 422 for broken JPEGs and PNGs', () => {
    const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]);
    expect(statusOf(() => decodeImage(png, limits))).toBe(422);
    expect(statusOf(() => decodeImage(new TextEncoder().encode('GIF89a......'), limits))).toBe(415);
    expect(statusOf(() => decodeImage(new TextEncoder().encode('not an image at all'), limits))).toBe(422);
    const jpeg = encodeJpeg(makeRgb(32, 32, pattern));
    expect(statusOf(() => decodeImage(jpeg.subarray(0, 40), limits))).toBe(422);
    // A valid header followed by garbage entropy-coded data: jpeg-js must fail, not crash.
    const broken = jpeg.slice();
    const sos = broken.findIndex((b, i) => b === 0xff && broken[i + 1] === 0xda);
    broken.fill(0xff, sos + 2, sos + 6);
    expect(statusOf(() => decodeImage(broken, limits))).toBe(422);
  });
});
