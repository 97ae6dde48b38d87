import { zlibSync } from 'fflate';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { encodeJpeg, makeRgb, pattern } from '../../test/helpers/images';
import { refusal } from '../../test/helpers/errors';
import { buildPng } from '../../test/helpers/png';
import { decodeImage, jpegDecoder } from './decode';
import { pngDecoder } from './png';

// Each decode limit must refuse before the step it protects. The decoders are spied on: a
// check moved after them would still refuse, but only once they had run (and allocated).
const limits = { maxPixels: 4_000_000, maxMemoryMB: 64 };

/** A JPEG that is only its header: SOI, a baseline frame of the given size (3 components), EOI. No tables, no scan. */
function jpegHeaderOnly(width: number, height: number): Uint8Array {
  const sof = [0xff, 0xc0, 0x00, 17, 8, height >> 8, height & 0xff, width >> 8, width & 0xff, 3, 1, 0x11, 0, 2, 0x11, 1, 3, 0x11, 1];
  return new Uint8Array([0xff, 0xd8, ...sof, 0xff, 0xd9]);
}

afterEach(() => vi.restoreAllMocks());

describe('JPEG limits come before jpeg-js', () => {
  it('a bomb header (65,000 x 65,000) is refused from the header alone, the decoder never called', () => {
    const decode = vi.spyOn(jpegDecoder, 'decode');
    const r = refusal(() => decodeImage(jpegHeaderOnly(65_000, 65_000), limits));
    expect(r).toEqual({ status: 413, message: expect.stringMatching(/^The image is 65000x65000 \(4225000000 pixels\); at most 4000000/) });
    expect(decode).not.toHaveBeenCalled();
    // One pixel over the limit is enough, and one at it reaches the decoder (the spy is wired).
    const jpeg = encodeJpeg(makeRgb(100, 50, pattern));
    expect(refusal(() => decodeImage(jpeg, { ...limits, maxPixels: 4999 }))?.status).toBe(413);
    expect(decode).not.toHaveBeenCalled();
    expect(refusal(() => decodeImage(jpeg, { ...limits, maxPixels: 5000 }))).toBeUndefined();
    expect(decode).toHaveBeenCalledTimes(1);
  });

  it('decode memory (JPEG_MAX_MEMORY_MB) is refused from the frame header, with no scan data at all', () => {
    // 1800 x 1800 is under the pixel limit; its component buffers alone need ~10 MiB. jpeg-js
    // checks its allocation budget when it reads the frame, before any entropy-coded data.
    const header = jpegHeaderOnly(1800, 1800);
    expect(refusal(() => decodeImage(header, { ...limits, maxMemoryMB: 4 }))).toEqual({
      status: 413,
      message: 'Decoding this image needs more memory than allowed; send a smaller image.',
    });
    // The same bytes under the default budget get past the frame and fail later, as the
    // broken image they are: so the 413 above is the budget's, not the missing scan's.
    expect(refusal(() => decodeImage(header, limits))?.status).not.toBe(413);
  });
});

describe('PNG limits come before inflating and decoding', () => {
  it('a bomb header (30,000 x 30,000 RGBA, no pixel data) is refused from IHDR, nothing inflated or decoded', () => {
    const inflate = vi.spyOn(pngDecoder, 'checkInflated');
    const decode = vi.spyOn(pngDecoder, 'decode');
    const png = buildPng({ width: 30_000, height: 30_000, depth: 8, colorType: 6, pixel: () => [], idat: new Uint8Array(0) });
    expect(refusal(() => decodeImage(png, limits))).toEqual({ status: 413, message: expect.stringMatching(/^The image is 30000x30000/) });
    expect(inflate).not.toHaveBeenCalled();
    expect(decode).not.toHaveBeenCalled();
  });

  it('decode memory is refused from IHDR, nothing inflated or decoded; under the budget both run', () => {
    const inflate = vi.spyOn(pngDecoder, 'checkInflated');
    const decode = vi.spyOn(pngDecoder, 'decode');
    // 1 MP of 16-bit RGBA: ~8 MB of samples and as much again of scanlines.
    const png = buildPng({ width: 1000, height: 1000, depth: 16, colorType: 6, pixel: () => [0, 0, 0, 0] });
    expect(refusal(() => decodeImage(png, { ...limits, maxMemoryMB: 8 }))).toEqual({
      status: 413,
      message: 'Decoding this image needs more memory than allowed; send a smaller image.',
    });
    expect(inflate).not.toHaveBeenCalled();
    expect(decode).not.toHaveBeenCalled();
    expect(refusal(() => decodeImage(png, limits))).toBeUndefined();
    expect([inflate.mock.calls.length, decode.mock.calls.length]).toEqual([1, 1]);
  });

  it('a zlib bomb under a small header stops while inflating, before the decoder', () => {
    const decode = vi.spyOn(pngDecoder, 'decode');
    const bomb = buildPng({ width: 64, height: 64, depth: 8, colorType: 0, pixel: () => [], idat: zlibSync(new Uint8Array(16 << 20)) });
    expect(refusal(() => decodeImage(bomb, limits))?.status).toBe(422);
    expect(decode).not.toHaveBeenCalled();
  });
});
