// Real photos that no one on the team took, with no ages: the label-free part of
// `npm run bench:photos`. Nothing here is kept in git; each comes from a package:
//   - @vladmandic/face-api 1.7.15 (npm, MIT; bench/peers/), demo/sample1-6.jpg: six group photos
//     of 3-5 people (1920 px wide; heads tilted and turned, party and bar light), which the
//     package ships as its demo's inputs;
//   - scikit-image (PyPI), astronaut.png: NASA's portrait of Eileen Collins, public domain
//     (test/helpers/sample-photo.mjs fetches it).
// Each photo is also sent in variants that should not change anyone's age (VARIANTS), and each
// face's answers are mapped back to the original photo by its box.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { astronautPhoto } from '../../test/helpers/sample-photo.mjs';
import { decode, encode } from './compose-photos.mjs';
import { PEERS, ensurePeers } from './peers.mjs';
import { resizeCrop } from './server-code.mjs';

import { decode as decodePng } from 'fast-png';

/** The photos as RGBA images {name, source, width, height, data}; a line for each one missing. */
export function realPhotos() {
  ensurePeers();
  const demo = join(PEERS, 'node_modules', '@vladmandic', 'face-api', 'demo');
  const photos = [1, 2, 3, 4, 5, 6].map((i) => {
    const bytes = readFileSync(join(demo, `sample${i}.jpg`));
    return { name: `face-api sample${i}.jpg`, source: '@vladmandic/face-api 1.7.15 (MIT)', bytes, type: 'image/jpeg', ...decode(bytes) };
  });
  const astronaut = astronautPhoto();
  if (astronaut.path) {
    const bytes = readFileSync(astronaut.path);
    const png = decodePng(bytes);
    const data = new Uint8Array(png.width * png.height * 4);
    for (let i = 0; i < png.width * png.height; i++) {
      for (let c = 0; c < 3; c++) data[4 * i + c] = png.data[i * png.channels + c];
      data[4 * i + 3] = 255;
    }
    photos.push({ name: 'astronaut.png', source: 'scikit-image (public domain, NASA)', bytes, type: 'image/png', width: png.width, height: png.height, data });
  } else console.log(`!! astronaut.png left out: ${astronaut.skip}`);
  return photos;
}

/** The RGB bytes of an RGBA image. */
export const rgb = (img) => {
  const out = new Uint8Array(img.width * img.height * 3);
  for (let i = 0; i < img.width * img.height; i++) for (let c = 0; c < 3; c++) out[3 * i + c] = img.data[4 * i + c];
  return out;
};
const rgba = (width, height, data3) => {
  const data = new Uint8Array(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    for (let c = 0; c < 3; c++) data[4 * i + c] = data3[3 * i + c];
    data[4 * i + 3] = 255;
  }
  return { width, height, data };
};

/** A region of the photo (whole pixels). */
function cut(img, x0, y0, w, h) {
  const data = new Uint8Array(w * h * 4);
  for (let y = 0; y < h; y++) data.set(img.data.subarray(((y0 + y) * img.width + x0) * 4, ((y0 + y) * img.width + x0 + w) * 4), y * w * 4);
  return { width: w, height: h, data };
}

/** The photo scaled by `s` (the server's area resize; a non-square photo as its square letterbox, then cut). */
function scaled(img, s) {
  const side = Math.round(Math.max(img.width, img.height) * s);
  const out = resizeCrop({ width: img.width, height: img.height, data: rgb(img) }, { x: 0, y: 0, w: Math.max(img.width, img.height), h: Math.max(img.width, img.height) }, side, 1);
  return cut(rgba(side, side, out), 0, 0, Math.round(img.width * s), Math.round(img.height * s));
}

function mirrored(img) {
  const data = new Uint8Array(img.data.length);
  for (let y = 0; y < img.height; y++)
    for (let x = 0; x < img.width; x++) data.set(img.data.subarray((y * img.width + x) * 4, (y * img.width + x) * 4 + 4), (y * img.width + img.width - 1 - x) * 4);
  return { width: img.width, height: img.height, data };
}

/**
 * The variants of a photo that should not change anyone's age, each with the map of its boxes
 * back to the original photo: 4 % cut from each side in turn, scaled to 85 % and 115 %,
 * re-encoded at JPEG 80, mirrored (each encoded at JPEG 95 from the decoded original, but the
 * re-encoded one). The original goes as its own file.
 */
export function variants(img) {
  const cx = Math.round(img.width * 0.04), cy = Math.round(img.height * 0.04);
  const shift = (dx, dy) => (b) => ({ x: b.x + dx, y: b.y + dy, w: b.w, h: b.h });
  const scale = (s) => (b) => ({ x: b.x / s, y: b.y / s, w: b.w / s, h: b.h / s });
  const jpeg = (im, q = 95) => encode(im, q);
  return [
    { name: 'original', bytes: img.bytes, type: img.type, back: (b) => b },
    { name: 'cut left 4 %', bytes: jpeg(cut(img, cx, 0, img.width - cx, img.height)), back: shift(cx, 0) },
    { name: 'cut right 4 %', bytes: jpeg(cut(img, 0, 0, img.width - cx, img.height)), back: shift(0, 0) },
    { name: 'cut top 4 %', bytes: jpeg(cut(img, 0, cy, img.width, img.height - cy)), back: shift(0, cy) },
    { name: 'cut bottom 4 %', bytes: jpeg(cut(img, 0, 0, img.width, img.height - cy)), back: shift(0, 0) },
    { name: 'scaled 85 %', bytes: jpeg(scaled(img, 0.85)), back: scale(0.85) },
    { name: 'scaled 115 %', bytes: jpeg(scaled(img, 1.15)), back: scale(1.15) },
    { name: 'JPEG 80', bytes: jpeg(img, 80), back: (b) => b },
    { name: 'mirrored', bytes: jpeg(mirrored(img)), back: (b) => ({ x: img.width - b.x - b.w, y: b.y, w: b.w, h: b.h }) },
  ];
}
