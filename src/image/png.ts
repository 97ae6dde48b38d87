import { Unzlib } from 'fflate';
import { convertIndexedToRgb, decode as decodeFastPng, type DecodedPng, type PngDataArray } from 'fast-png';
import { ImageError } from './errors';
import type { DecodedImage } from './types';
import { checkPixels, type DecodeLimits } from './limits';

/** What IHDR says, before any pixel data is inflated. */
export type PngHeader = { width: number; height: number; depth: number; colorType: number; interlaced: boolean };

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
// Samples per pixel for each colour type: grey, RGB, palette index, grey + alpha, RGBA.
const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
const DEPTHS: Record<number, number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };

export function isPng(bytes: Uint8Array): boolean {
  return bytes.length >= 8 && SIGNATURE.every((b, i) => bytes[i] === b);
}

function u32(bytes: Uint8Array, at: number): number {
  return ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
}

/** IHDR, which the format requires to be the first chunk; undefined when it is not a valid one. */
export function readPngHeader(bytes: Uint8Array): PngHeader | undefined {
  if (!isPng(bytes) || bytes.length < 33) return undefined;
  if (u32(bytes, 8) !== 13 || String.fromCharCode(...bytes.subarray(12, 16)) !== 'IHDR') return undefined;
  const width = u32(bytes, 16);
  const height = u32(bytes, 20);
  const [depth, colorType, compression, filter, interlace] = bytes.subarray(24, 29);
  if (width === 0 || height === 0 || compression !== 0 || filter !== 0 || interlace! > 1) return undefined;
  if (!DEPTHS[colorType!]?.includes(depth!)) return undefined;
  return { width, height, depth: depth!, colorType: colorType!, interlaced: interlace === 1 };
}

/** Bytes of the filtered scanlines the image's IDAT stream must inflate to, Adam7 passes included. */
export function inflatedSize(h: PngHeader): number {
  const bitsPerPixel = h.depth * CHANNELS[h.colorType]!;
  const rows = (w: number, n: number) => (w === 0 || n === 0 ? 0 : n * (1 + Math.ceil((w * bitsPerPixel) / 8)));
  if (!h.interlaced) return rows(h.width, h.height);
  // Adam7: (x start, x step, y start, y step) of the seven passes.
  const passes = [[0, 8, 0, 8], [4, 8, 0, 8], [0, 4, 4, 8], [2, 4, 0, 4], [0, 2, 2, 4], [1, 2, 0, 2], [0, 1, 1, 2]] as const;
  return passes.reduce((sum, [x0, dx, y0, dy]) => sum + rows(Math.ceil((h.width - x0) / dx), Math.ceil((h.height - y0) / dy)), 0);
}

/**
 * Inflates the IDAT stream a small piece at a time and stops as soon as it yields more than the
 * header allows: a few KB of deflate can expand a thousandfold, so a lying header must not get
 * the decoder to allocate or spend time on the rest.
 */
function checkInflatedSize(bytes: Uint8Array, expected: number): void {
  let produced = 0;
  const inflate = new Unzlib((chunk) => {
    produced += chunk.length;
    if (produced > expected) throw new ImageError('undecodable', 'The PNG holds more pixel data than its header declares.');
  });
  const step = 16 * 1024;
  let at = 8;
  let seenData = false;
  while (at + 12 <= bytes.length) {
    const length = u32(bytes, at);
    const type = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
    const end = at + 12 + length;
    if (end > bytes.length) throw new ImageError('undecodable', 'The PNG is truncated.');
    if (type === 'IDAT') {
      seenData = true;
      for (let from = at + 8; from < at + 8 + length; from += step) {
        inflate.push(bytes.subarray(from, Math.min(from + step, at + 8 + length)));
      }
    }
    if (type === 'IEND') break;
    at = end;
  }
  if (!seenData) throw new ImageError('undecodable', 'The PNG has no image data.');
  inflate.push(new Uint8Array(0), true);
}

function unpackGrey(packed: PngDataArray, width: number, height: number, depth: number): Uint8Array {
  const out = new Uint8Array(width * height);
  const rowBytes = Math.ceil((depth * width) / 8);
  const mask = 2 ** depth - 1;
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const bit = x * depth;
      out[y * width + x] = (packed[y * rowBytes + (bit >> 3)]! >> (8 - depth - (bit & 7))) & mask;
    }
  return out;
}

/** Alpha (0-1) over white: how a transparent area looks on the page the photo came from. */
const overWhite = (value: number, alpha: number) => Math.round(value * alpha + 255 * (1 - alpha));

function toRgb(png: DecodedPng): Uint8Array {
  const { width, height } = png;
  const n = width * height;
  const out = new Uint8Array(n * 3);
  if (png.palette) {
    const rgb = convertIndexedToRgb(png); // RGB, or RGBA when the palette has transparency
    const c = rgb.length / n;
    for (let i = 0; i < n; i++) {
      const a = c === 4 ? rgb[i * 4 + 3]! / 255 : 1;
      for (let k = 0; k < 3; k++) out[i * 3 + k] = overWhite(rgb[i * c + k]!, a);
    }
    return out;
  }
  const channels = png.channels;
  const max = 2 ** png.depth - 1;
  // Grey samples of depth 1, 2 and 4 come packed, most significant bits first: one per byte here,
  // so the loop below reads whole samples alike for every depth.
  const data = png.depth >= 8 ? png.data : unpackGrey(png.data, width, height, png.depth);
  const color = channels >= 3 ? 3 : 1;
  const hasAlpha = channels === 2 || channels === 4;
  const key = png.transparency; // tRNS for grey / RGB: the one colour that is transparent
  for (let i = 0, s = 0, o = 0; i < n; i++, s += channels, o += 3) {
    let alpha = hasAlpha ? data[s + color]! / max : 1;
    if (key && data[s] === key[0] && (color === 1 || (data[s + 1] === key[1] && data[s + 2] === key[2]))) alpha = 0;
    if (color === 3) {
      out[o] = overWhite((data[s]! / max) * 255, alpha);
      out[o + 1] = overWhite((data[s + 1]! / max) * 255, alpha);
      out[o + 2] = overWhite((data[s + 2]! / max) * 255, alpha);
    } else {
      out[o] = out[o + 1] = out[o + 2] = overWhite((data[s]! / max) * 255, alpha);
    }
  }
  return out;
}

/** The inflate check and the decoder, reached through an object so tests can count their calls: the limits must refuse before them. */
export const pngDecoder = { checkInflated: checkInflatedSize, decode: decodeFastPng };

/**
 * Decodes a PNG (any bit depth, grey, RGB, palette, alpha, interlaced) to RGB, alpha composited
 * on white. Pixels and memory are checked from IHDR, and the inflated size from the data
 * itself, before fast-png decodes.
 */
export function decodePng(bytes: Uint8Array, limits: DecodeLimits): DecodedImage {
  const header = readPngHeader(bytes);
  if (!header) throw new ImageError('undecodable', 'The body is not a readable PNG image.');
  const pixels = checkPixels(header.width, header.height, limits);
  const expected = inflatedSize(header);
  // Inflated scanlines, the unfiltered samples, and the RGB result are alive at once.
  const bytesPerSample = header.depth === 16 ? 2 : 1;
  const peak = 2 * expected + pixels * CHANNELS[header.colorType]! * bytesPerSample + pixels * 4;
  if (peak > limits.maxMemoryMB * 1024 * 1024) {
    throw new ImageError('too_large', 'Decoding this image needs more memory than allowed; send a smaller image.');
  }
  let png: DecodedPng;
  try {
    pngDecoder.checkInflated(bytes, expected);
    png = pngDecoder.decode(bytes);
  } catch (err) {
    if (err instanceof ImageError) throw err;
    throw new ImageError('undecodable', `The PNG could not be decoded: ${(err instanceof Error ? err.message : String(err)).slice(0, 200)}`);
  }
  if (png.width !== header.width || png.height !== header.height) throw new ImageError('undecodable', 'The PNG decoded to an unexpected size.');
  return { width: png.width, height: png.height, data: toRgb(png), orientation: 1 };
}
