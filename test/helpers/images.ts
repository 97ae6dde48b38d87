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

type Colour = [number, number, number];

/**
 * Paints a cartoon face (hair, skin, ears, eyes, brows, nose, mouth) of `size` px centred at
 * (cx, cy): BlazeFace takes it for a face (score ~0.85 at 150–400 px in a 640×480 photo), so
 * the detector path can be tested on generated photos with faces at known places. Its face box
 * is about 0.55 × size, centred ~0.05 × size below (cx, cy).
 */
export function drawFace(img: RgbImage, cx: number, cy: number, size: number): void {
  const s = size / 200, ox = cx - 100 * s, oy = cy - 100 * s;
  const put = (x: number, y: number, c: Colour) => {
    if (x < 0 || y < 0 || x >= img.width || y >= img.height) return;
    img.data.set(c, (y * img.width + x) * 3);
  };
  const fill = (x0: number, y0: number, x1: number, y1: number, inside: (u: number, v: number) => boolean, c: Colour) => {
    for (let y = Math.floor(oy + y0 * s); y <= Math.ceil(oy + y1 * s); y++)
      for (let x = Math.floor(ox + x0 * s); x <= Math.ceil(ox + x1 * s); x++) {
        const u = (x + 0.5 - ox) / s, v = (y + 0.5 - oy) / s;
        if (inside(u, v)) put(x, y, c);
      }
  };
  const ellipse = (x0: number, y0: number, x1: number, y1: number, c: Colour) =>
    fill(x0, y0, x1, y1, (u, v) => ((u - (x0 + x1) / 2) / ((x1 - x0) / 2)) ** 2 + ((v - (y0 + y1) / 2) / ((y1 - y0) / 2)) ** 2 <= 1, c);
  const rect = (x0: number, y0: number, x1: number, y1: number, c: Colour) => fill(x0, y0, x1, y1, (u, v) => u >= x0 && u <= x1 && v >= y0 && v <= y1, c);
  ellipse(45, 20, 155, 110, [60, 40, 30]);
  ellipse(55, 35, 145, 170, [224, 172, 140]);
  ellipse(40, 85, 60, 120, [210, 160, 130]);
  ellipse(140, 85, 160, 120, [210, 160, 130]);
  ellipse(72, 78, 96, 92, [250, 250, 250]);
  ellipse(104, 78, 128, 92, [250, 250, 250]);
  ellipse(79, 79, 89, 91, [50, 35, 25]);
  ellipse(111, 79, 121, 91, [50, 35, 25]);
  rect(70, 68, 98, 72, [80, 55, 40]);
  rect(102, 68, 130, 72, [80, 55, 40]);
  // the nose: a triangle from (100, 95) down to (92..108, 122)
  fill(92, 95, 108, 122, (u, v) => v >= 95 && v <= 122 && Math.abs(u - 100) <= ((v - 95) / 27) * 8, [205, 150, 120]);
  ellipse(82, 135, 118, 148, [170, 80, 80]);
}

/** A plain photo of `width`×`height` in a muted blue-grey, with cartoon faces drawn on it. */
export function facePhoto(width: number, height: number, faces: { cx: number; cy: number; size: number }[]): RgbImage {
  const img = makeRgb(width, height, (x, y) => [90 + ((x + y) % 7), 110, 140 - (y % 5)]);
  for (const f of faces) drawFace(img, f.cx, f.cy, f.size);
  return img;
}

/** `img` turned by `angle` radians (clockwise on screen) about its centre, bilinear, black outside. */
export function turnImage(img: RgbImage, angle: number): RgbImage {
  const { width: W, height: H } = img;
  const cos = Math.cos(angle), sin = Math.sin(angle);
  return makeRgb(W, H, (x, y) => {
    const dx = x + 0.5 - W / 2, dy = y + 0.5 - H / 2;
    const u = cos * dx + sin * dy + W / 2 - 0.5, v = -sin * dx + cos * dy + H / 2 - 0.5;
    const x0 = Math.floor(u), y0 = Math.floor(v);
    if (x0 < 0 || y0 < 0 || x0 + 1 >= W || y0 + 1 >= H) return [0, 0, 0];
    const fx = u - x0, fy = v - y0;
    const p = (xx: number, yy: number, c: number) => img.data[(yy * W + xx) * 3 + c]!;
    const c = (k: number) => Math.round((p(x0, y0, k) * (1 - fx) + p(x0 + 1, y0, k) * fx) * (1 - fy) + (p(x0, y0 + 1, k) * (1 - fx) + p(x0 + 1, y0 + 1, k) * fx) * fy);
    return [c(0), c(1), c(2)];
  });
}
