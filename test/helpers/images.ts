import encode from 'jpeg-js/lib/encoder.js';
import type { Orientation, RgbImage } from '../../src/image/types';

export type Pixel = (x: number, y: number) => [number, number, number];

/** An RGB image filled by `pixel`. */
export function makeRgb(width: number, height: number, pixel: Pixel): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) data.set(pixel(x, y), (y * width + x) * 3);
  return { width, height, data };
}

/** An APP1 payload ("Exif\0\0" + big-endian TIFF with IFD0 holding only the orientation). */
export function exifWithOrientation(o: number, littleEndian = false): Uint8Array {
  const tiff = new DataView(new ArrayBuffer(26));
  const le = littleEndian;
  tiff.setUint16(0, le ? 0x4949 : 0x4d4d);
  tiff.setUint16(2, 42, le);
  tiff.setUint32(4, 8, le);
  tiff.setUint16(8, 1, le); // one entry
  tiff.setUint16(10, 0x0112, le);
  tiff.setUint16(12, 3, le); // SHORT
  tiff.setUint32(14, 1, le);
  tiff.setUint16(18, o, le);
  tiff.setUint32(22, 0, le); // no next IFD
  const out = new Uint8Array(6 + 26);
  out.set([0x45, 0x78, 0x69, 0x66, 0, 0]);
  out.set(new Uint8Array(tiff.buffer), 6);
  return out;
}

/** Encodes RGB pixels as a baseline JPEG, optionally tagged with an EXIF orientation. */
export function encodeJpeg(image: RgbImage, options: { quality?: number; orientation?: Orientation; littleEndian?: boolean } = {}): Uint8Array {
  const rgba = new Uint8Array(image.width * image.height * 4);
  for (let i = 0, j = 0; i < image.data.length; i += 3, j += 4) {
    rgba[j] = image.data[i]!;
    rgba[j + 1] = image.data[i + 1]!;
    rgba[j + 2] = image.data[i + 2]!;
    rgba[j + 3] = 255;
  }
  const exifBuffer = options.orientation ? exifWithOrientation(options.orientation, options.littleEndian) : undefined;
  const out = encode({ width: image.width, height: image.height, data: rgba, ...(exifBuffer ? { exifBuffer } : {}) }, options.quality ?? 92);
  return new Uint8Array(out.data.buffer, out.data.byteOffset, out.data.byteLength).slice();
}

/** A smooth, face-sized test pattern (gradients plus a bright disc), JPEG-friendly. */
export const pattern: Pixel = (x, y) => {
  const d = Math.hypot(x - 120, y - 100);
  const disc = d < 60 ? 80 : 0;
  return [Math.min(255, (x * 3) % 256), Math.min(255, 60 + ((y * 2) % 180) + disc / 2), Math.min(255, 40 + disc + ((x + y) % 60))];
};

/** Physically rotates/flips an image into its displayed orientation (reference for tests). */
export function orientReference(img: RgbImage, o: Orientation): RgbImage {
  const W = img.width, H = img.height;
  const swap = o >= 5;
  const w = swap ? H : W, h = swap ? W : H;
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      let u: number, v: number;
      switch (o) {
        case 1: u = x; v = y; break;
        case 2: u = W - 1 - x; v = y; break;
        case 3: u = W - 1 - x; v = H - 1 - y; break;
        case 4: u = x; v = H - 1 - y; break;
        case 5: u = y; v = x; break;
        case 6: u = H - 1 - y; v = x; break;
        case 7: u = H - 1 - y; v = W - 1 - x; break;
        case 8: u = y; v = W - 1 - x; break;
      }
      data.set(img.data.subarray((y * W + x) * 3, (y * W + x) * 3 + 3), (v * w + u) * 3);
    }
  return { width: w, height: h, data };
}
