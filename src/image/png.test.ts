import { zlibSync } from 'fflate';
import { encode } from 'fast-png';
import { describe, expect, it } from 'vitest';
import { refusal } from '../../test/helpers/errors';
import { buildPng } from '../../test/helpers/png';
import { decodeImage } from './decode';
import { inflatedSize, readPngHeader } from './png';

const limits = { maxPixels: 4_000_000, maxMemoryMB: 64 };

const rgbAt = (img: { width: number; data: Uint8Array }, x: number, y: number) => Array.from(img.data.subarray((y * img.width + x) * 3, (y * img.width + x) * 3 + 3));

describe('PNG decoding', () => {
  it('reads 8-bit RGB exactly', () => {
    const data = new Uint8Array(6 * 4 * 3).map((_, i) => (i * 37) % 256);
    const img = decodeImage(encode({ width: 6, height: 4, data, channels: 3, depth: 8 }), limits);
    expect(img).toMatchObject({ width: 6, height: 4, orientation: 1 });
    expect(Array.from(img.data)).toEqual(Array.from(data));
  });

  it('composites alpha on white', () => {
    // Opaque red, transparent blue, half-transparent black.
    const data = new Uint8Array([255, 0, 0, 255, 0, 0, 255, 0, 0, 0, 0, 128]);
    const img = decodeImage(encode({ width: 3, height: 1, data, channels: 4, depth: 8 }), limits);
    expect(rgbAt(img, 0, 0)).toEqual([255, 0, 0]);
    expect(rgbAt(img, 1, 0)).toEqual([255, 255, 255]);
    expect(rgbAt(img, 2, 0)).toEqual([127, 127, 127]);
  });

  it('reads 16-bit samples and grey with alpha', () => {
    const rgb16 = decodeImage(encode({ width: 1, height: 1, data: new Uint16Array([0xffff, 0x8080, 0x0101]), channels: 3, depth: 16 }), limits);
    expect(rgbAt(rgb16, 0, 0)).toEqual([255, 128, 1]);
    const greyAlpha = decodeImage(encode({ width: 2, height: 1, data: new Uint8Array([10, 255, 10, 0]), channels: 2, depth: 8 }), limits);
    expect(rgbAt(greyAlpha, 0, 0)).toEqual([10, 10, 10]);
    expect(rgbAt(greyAlpha, 1, 0)).toEqual([255, 255, 255]);
  });

  it('reads a 2-bit palette with a transparent entry', () => {
    const png = buildPng({
      width: 5, height: 2, depth: 2, colorType: 3,
      palette: [[200, 0, 0], [0, 200, 0], [0, 0, 200], [9, 9, 9]],
      transparency: [255, 255, 255, 0],
      pixel: (x, y) => [(x + y) % 4],
    });
    const img = decodeImage(png, limits);
    expect([0, 1, 2, 3, 4].map((x) => rgbAt(img, x, 0))).toEqual([[200, 0, 0], [0, 200, 0], [0, 0, 200], [255, 255, 255], [200, 0, 0]]);
    expect(rgbAt(img, 0, 1)).toEqual([0, 200, 0]);
  });

  it('reads 1-bit grey and a grey colour key', () => {
    const img = decodeImage(buildPng({ width: 9, height: 1, depth: 1, colorType: 0, pixel: (x) => [x % 2] }), limits);
    expect(Array.from({ length: 9 }, (_, x) => rgbAt(img, x, 0)[0])).toEqual([0, 255, 0, 255, 0, 255, 0, 255, 0]);
    const keyed = decodeImage(buildPng({ width: 2, height: 1, depth: 8, colorType: 0, transparency: [7], pixel: (x) => [x === 0 ? 7 : 8] }), limits);
    expect(rgbAt(keyed, 0, 0)).toEqual([255, 255, 255]);
    expect(rgbAt(keyed, 1, 0)).toEqual([8, 8, 8]);
  });

  it('reads Adam7-interlaced images as their plain twins', () => {
    const spec = { width: 11, height: 7, depth: 8, colorType: 2, pixel: (x: number, y: number) => [x * 20, y * 30, (x * y) % 256] };
    const plain = decodeImage(buildPng(spec), limits);
    const interlaced = decodeImage(buildPng({ ...spec, interlaced: true }), limits);
    expect(Array.from(interlaced.data)).toEqual(Array.from(plain.data));
    expect(rgbAt(interlaced, 10, 6)).toEqual([200, 180, 60]);
  });

  it('knows the inflated size of plain and interlaced images', () => {
    const h = readPngHeader(buildPng({ width: 11, height: 7, depth: 8, colorType: 2, pixel: () => [0, 0, 0] }))!;
    expect(inflatedSize(h)).toBe(7 * (1 + 33));
    const raw = buildPng({ width: 11, height: 7, depth: 8, colorType: 2, interlaced: true, pixel: () => [0, 0, 0] });
    const hi = readPngHeader(raw)!;
    // Passes of an 11x7 image: 2x1, 1x1, 3x1, 3x2, 6x2, 5x4, 11x3 pixels.
    expect(inflatedSize(hi)).toBe([[2, 1], [1, 1], [3, 1], [3, 2], [6, 2], [5, 4], [11, 3]].reduce((s, [w, n]) => s + n! * (1 + w! * 3), 0));
  });
});

describe('PNG limits are checked before the work', () => {
  it('refuses too many pixels from IHDR alone (no pixel data at all)', () => {
    const png = buildPng({ width: 30_000, height: 30_000, depth: 8, colorType: 6, pixel: () => [], idat: new Uint8Array(0) });
    expect(refusal(() => decodeImage(png, limits))?.status).toBe(413);
  });

  it('refuses an image whose decode would need more memory than allowed', () => {
    const png = buildPng({ width: 1000, height: 1000, depth: 16, colorType: 6, pixel: () => [0, 0, 0, 0] });
    expect(refusal(() => decodeImage(png, { maxPixels: 4_000_000, maxMemoryMB: 8 }))?.status).toBe(413);
  });

  it('stops inflating a bomb at the size its header allows', () => {
    // 16 MB of zeros deflate to ~16 KB; the header says 64x64 grey (4,160 bytes of scanlines).
    const bomb = buildPng({ width: 64, height: 64, depth: 8, colorType: 0, pixel: () => [], idat: zlibSync(new Uint8Array(16 << 20)) });
    const r = refusal(() => decodeImage(bomb, limits));
    expect(r).toEqual({ status: 422, message: 'The PNG holds more pixel data than its header declares.' });
  });

  it('answers 422 for truncated, corrupt and headerless PNGs', () => {
    const good = buildPng({ width: 8, height: 8, depth: 8, colorType: 2, pixel: (x, y) => [x, y, 0] });
    expect(refusal(() => decodeImage(good.subarray(0, good.length - 30), limits))?.status).toBe(422);
    const corrupt = good.slice();
    corrupt.fill(0xff, 41, 60); // inside the deflate stream
    expect(refusal(() => decodeImage(corrupt, limits))?.status).toBe(422);
    expect(refusal(() => decodeImage(good.subarray(0, 20), limits))?.status).toBe(422);
  });

  it('still answers 415 for formats it does not read, naming the accepted ones', () => {
    const gif = new TextEncoder().encode('GIF89a......');
    expect(refusal(() => decodeImage(gif, limits))).toEqual({ status: 415, message: 'The body looks like image/gif; accepted: image/jpeg, image/png.' });
  });
});
