import type { Orientation } from './types';

/** What the marker segments tell before any pixel is decoded. */
export type JpegHeader = { width: number; height: number; orientation: Orientation };

// SOFn markers carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) share the range but are not frames.
const isSof = (m: number) => m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;

export function isJpeg(bytes: Uint8Array): boolean {
  return bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff;
}

/** Names a few formats a client might send that the API does not read, from their magic bytes. */
export function sniffOtherFormat(bytes: Uint8Array): string | undefined {
  const ascii = (from: number, to: number) => String.fromCharCode(...bytes.subarray(from, to));
  if (bytes.length >= 6 && ascii(0, 4) === 'GIF8') return 'image/gif';
  if (bytes.length >= 12 && ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') return 'image/webp';
  if (bytes.length >= 12 && ascii(4, 8) === 'ftyp') {
    const brand = ascii(8, 12);
    if (brand.startsWith('avi')) return 'image/avif';
    if (brand.startsWith('hei') || brand.startsWith('mif') || brand.startsWith('hev')) return 'image/heic';
  }
  if (bytes.length >= 2 && ascii(0, 2) === 'BM') return 'image/bmp';
  return undefined;
}

/**
 * Reads the frame size and the EXIF orientation from the marker segments, stopping at the
 * first scan. Returns undefined when the stream is not a well-formed JPEG header.
 */
export function readJpegHeader(bytes: Uint8Array): JpegHeader | undefined {
  if (!isJpeg(bytes)) return undefined;
  let orientation: Orientation = 1;
  let offset = 2;
  while (offset < bytes.length) {
    if (bytes[offset] !== 0xff) return undefined;
    while (offset < bytes.length && bytes[offset] === 0xff) offset++; // fill bytes
    if (offset >= bytes.length) return undefined;
    const marker = bytes[offset++]!;
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) continue; // no length
    if (marker === 0xd9 || marker === 0xda) return undefined; // EOI or a scan before any frame
    if (offset + 2 > bytes.length) return undefined;
    const length = (bytes[offset]! << 8) | bytes[offset + 1]!;
    if (length < 2 || offset + length > bytes.length) return undefined;
    const segment = bytes.subarray(offset + 2, offset + length);
    if (marker === 0xe1) orientation = readExifOrientation(segment) ?? orientation;
    if (isSof(marker)) {
      if (segment.length < 6) return undefined;
      const height = (segment[1]! << 8) | segment[2]!;
      const width = (segment[3]! << 8) | segment[4]!;
      if (width === 0 || height === 0) return undefined;
      return { width, height, orientation };
    }
    offset += length;
  }
  return undefined;
}

/** The orientation tag (0x0112) of IFD0 in an APP1 Exif segment, if present and valid. */
export function readExifOrientation(app1: Uint8Array): Orientation | undefined {
  // "Exif\0\0" then a TIFF header.
  if (app1.length < 14 || app1[0] !== 0x45 || app1[1] !== 0x78 || app1[2] !== 0x69 || app1[3] !== 0x66) return undefined;
  const tiff = app1.subarray(6);
  const view = new DataView(tiff.buffer, tiff.byteOffset, tiff.byteLength);
  const order = view.getUint16(0);
  if (order !== 0x4949 && order !== 0x4d4d) return undefined;
  const little = order === 0x4949;
  if (view.getUint16(2, little) !== 42) return undefined;
  const ifd = view.getUint32(4, little);
  if (ifd + 2 > tiff.length) return undefined;
  const count = view.getUint16(ifd, little);
  for (let i = 0; i < count; i++) {
    const entry = ifd + 2 + i * 12;
    if (entry + 12 > tiff.length) return undefined;
    if (view.getUint16(entry, little) !== 0x0112) continue;
    const type = view.getUint16(entry + 2, little);
    const value = type === 3 ? view.getUint16(entry + 8, little) : type === 4 ? view.getUint32(entry + 8, little) : 0;
    return value >= 1 && value <= 8 ? (value as Orientation) : undefined;
  }
  return undefined;
}
