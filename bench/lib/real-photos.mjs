// Real photos that no one on the team took, with no ages: the label-free part of
// `npm run bench:photos`. Nothing here is kept in git; each comes from a package:
//   - @vladmandic/face-api 1.7.15 (npm, MIT; bench/peers/), demo/sample1-6.jpg: six group photos
//     of 3-5 people (1920 px wide; heads tilted and turned, party and bar light), which the
//     package ships as its demo's inputs;
//   - scikit-image (PyPI), astronaut.png: NASA's portrait of Eileen Collins, public domain
//     (test/helpers/sample-photo.mjs fetches it).
// Each photo is also sent in variants that should not change anyone's age (VARIANTS), and each
// face's answers are mapped back to the original photo by its box.
// `npm run bench:stability` adds PACKAGE_PHOTOS (packagePhotos): more photos that packages ship as
// their tests' and demos' inputs, fetched from npm and PyPI at their pinned versions into .cache/.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, sha256File } from '../../scripts/lib.mjs';
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
    return { name: `face-api sample${i}.jpg`, source: '@vladmandic/face-api 1.7.15 (MIT)', rights: "group photos the package ships as its demo's inputs (their source not stated)", bytes, type: 'image/jpeg', ...decode(bytes) };
  });
  const astronaut = astronautPhoto();
  if (astronaut.path) {
    const bytes = readFileSync(astronaut.path);
    photos.push({ name: 'astronaut.png', source: 'scikit-image (public domain, NASA)', rights: "NASA's portrait of Eileen Collins: public domain", bytes, type: 'image/png', ...pngRgba(bytes) });
  } else console.log(`!! astronaut.png left out: ${astronaut.skip}`);
  return photos;
}

/**
 * Photos with faces that packages ship, each pinned by its package's version and the file's
 * sha256. The package's licence is what lets us fetch and use the file; where the photo itself
 * belongs to someone else (a studio's promotional still), `rights` says so: none is ever kept in
 * git, each is read from the package as published.
 */
export const PACKAGE_PHOTOS = [
  ...['biden', 'obama', 'obama2', 'obama3'].map((name) => ({
    registry: 'pypi', package: 'face_recognition', version: '1.3.0', licence: 'MIT',
    member: `face_recognition-1.3.0/tests/test_images/${name}.jpg`,
    rights: 'official White House photograph: a work of the US government, public domain',
    sha256: {
      biden: '3c17508bb91554c637a2eabddfae790e5bb1caba93130814fc2ac50be9760c4c',
      obama: '0930e3aa8cae5920329c0c8cbc6a2ab70f47b0e67b432875beaa95cbf7e741f6',
      obama2: 'a7efcc907375274796f39646510704aa86672d59f6d5469d69af3c85590976a6',
      obama3: '76ac6bf97c36dc2da0ad16a537d6a5ac1b10f48d49aac29a0cca9a17cdbc3ca3',
    }[name],
  })),
  {
    registry: 'npm', package: 'face-detection', version: '0.1.5', licence: 'MIT', member: 'package/tests/test.jpg',
    rights: "a portrait the package ships as its test input (its source not stated)",
    sha256: 'aad4e7effda7dfc6a733c0abc376b3f43700a958471518c00f1e226edfacac19',
  },
  {
    registry: 'npm', package: 'tracking', version: '1.1.3', licence: 'BSD', member: 'package/test/assets/faces.png',
    rights: "a television series' promotional still (three people): the package's licence does not cover the studio's rights, so it is only read from the package",
    sha256: '7c8b92b9b13cd2b59322106bff9e0c416130556d482fab6e699866f880fc24d2',
  },
  {
    registry: 'pypi', package: 'insightface', version: '2.1', licence: 'MIT', member: 'insightface-2.1/insightface/data/images/t1.jpg',
    rights: "a television series' promotional still (six people): the package's licence does not cover the studio's rights, so it is only read from the package",
    sha256: '47f682e945b659f93a9e490b9c9c4a2a864abe64dace9e1a2893845ddfd69489',
  },
];

const PACKAGES = join(ROOT, '.cache', 'packages');

/** The package's archive in .cache/packages/, fetched once (npm pack; PyPI's sdist by its JSON API). */
async function packageArchive({ registry, package: name, version }) {
  mkdirSync(PACKAGES, { recursive: true });
  const file = join(PACKAGES, `${registry}-${name}-${version}.tgz`);
  if (existsSync(file)) return file;
  if (registry === 'npm') {
    const r = spawnSync('npm', ['pack', `${name}@${version}`, '--silent'], { cwd: PACKAGES, encoding: 'utf8', timeout: 180_000 });
    const packed = r.stdout?.trim().split('\n').pop();
    if (r.status !== 0 || !packed) throw new Error(`npm pack ${name}@${version} failed: ${(r.stderr || '').trim().split('\n').pop()}`);
    spawnSync('mv', [join(PACKAGES, packed), file]);
    return file;
  }
  // The project's JSON lists every release's files (the per-version URL is not served everywhere).
  const index = `https://pypi.org/pypi/${name}/json`;
  const meta = await (await fetch(index)).json();
  const sdist = meta.releases?.[version]?.find((u) => u.packagetype === 'sdist');
  if (!sdist) throw new Error(`PyPI has no sdist of ${name} ${version}`);
  // Some indexes answer with URLs relative to the JSON's own.
  const bytes = Buffer.from(await (await fetch(new URL(sdist.url, index))).arrayBuffer());
  if (sdist.digests?.sha256 && createHash('sha256').update(bytes).digest('hex') !== sdist.digests.sha256) throw new Error(`${sdist.url} does not match PyPI's sha256`);
  writeFileSync(file, bytes);
  return file;
}

/** PACKAGE_PHOTOS as realPhotos gives its photos; a line for each that could not be had. */
export async function packagePhotos() {
  const out = [];
  for (const p of PACKAGE_PHOTOS) {
    const name = p.member.split('/').pop();
    const path = join(ROOT, '.cache', 'photos', `${p.package}-${p.version}-${name}`);
    try {
      if (!existsSync(path) || sha256File(path) !== p.sha256) {
        const archive = await packageArchive(p);
        const r = spawnSync('tar', ['xzf', archive, '-O', p.member], { maxBuffer: 64 << 20 });
        if (r.status !== 0) throw new Error(`${p.member} is not in ${archive}`);
        mkdirSync(join(ROOT, '.cache', 'photos'), { recursive: true });
        writeFileSync(path, r.stdout);
        if (sha256File(path) !== p.sha256) throw new Error(`${p.member} has sha256 ${sha256File(path)}, not the pinned ${p.sha256}`);
      }
      const bytes = readFileSync(path);
      const source = `${p.package} ${p.version} (${p.registry}, ${p.licence})`;
      out.push(name.endsWith('.png')
        ? { name: `${p.package} ${name}`, source, rights: p.rights, bytes, type: 'image/png', ...pngRgba(bytes) }
        : { name: `${p.package} ${name}`, source, rights: p.rights, bytes, type: 'image/jpeg', ...decode(bytes) });
    } catch (err) {
      console.log(`!! ${p.package} ${name} left out: ${err.message}`);
    }
  }
  return out;
}

/** A PNG's pixels as RGBA {width, height, data}. */
function pngRgba(bytes) {
  const png = decodePng(bytes);
  const data = new Uint8Array(png.width * png.height * 4);
  for (let i = 0; i < png.width * png.height; i++) {
    for (let c = 0; c < 3; c++) data[4 * i + c] = png.channels >= 3 ? png.data[i * png.channels + c] : png.data[i * png.channels];
    data[4 * i + 3] = 255;
  }
  return { width: png.width, height: png.height, data };
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

/** The photo in gray (ITU-R 601 luma, as capture.py's gray view), as a variant: bench:stability's tenth. */
export function grayVariant(img) {
  const data = new Uint8Array(img.data.length);
  for (let i = 0; i < img.width * img.height; i++) {
    const y = Math.round(0.299 * img.data[4 * i] + 0.587 * img.data[4 * i + 1] + 0.114 * img.data[4 * i + 2]);
    data[4 * i] = data[4 * i + 1] = data[4 * i + 2] = y;
    data[4 * i + 3] = 255;
  }
  return { name: 'gray', bytes: encode({ width: img.width, height: img.height, data }, 95), back: (b) => b };
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
