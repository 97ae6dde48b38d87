// The demo page (GET /) in real headless Chromium against the local worker with the default
// model and detector (`npm start`'s models/): a photo is uploaded, the numbers the page shows
// must be the API's answer for the image it sent, and the overlay must be drawn. The screenshot
// is of a real photograph, scikit-image's public-domain astronaut.png (NASA), fetched from PyPI
// on first use (test/helpers/sample-photo.mjs); it goes to runs/demo.png (ignored), and
// `npm run demo:screenshot` copies it over docs/demo.png when the page changed on purpose. Run by scripts/test.sh (node
// --test); skipped with a loud message where Chromium or the photo cannot be had
// (scripts/test.sh installs Debian's chromium as root).
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ROOT } from '../../scripts/lib.mjs';
import { startBenchWorker } from '../../bench/lib/worker.mjs';
import { seed } from '../../scripts/models.mjs';
import { astronautPhoto } from '../helpers/sample-photo.mjs';

const require = createRequire(import.meta.url);
const jpeg = require('jpeg-js');
const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
const SHARED = join(ROOT, '..', 'shared', 'data', 'utkface');

/** A 480x360 photo of soft coloured shapes: no one's face, so its screenshot can be committed. */
function syntheticPhoto() {
  const W = 480, H = 360;
  const data = Buffer.alloc(W * H * 4);
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      const o = (y * W + x) * 4;
      const d = Math.hypot(x - W / 2, y - H / 2);
      data[o] = 200 - d / 3;
      data[o + 1] = 160 + 60 * Math.sin(x / 23);
      data[o + 2] = 120 + 60 * Math.cos(y / 17);
      data[o + 3] = 255;
    }
  return jpeg.encode({ width: W, height: H, data }, 90).data;
}

let worker, base, browser;

before(async () => {
  if (!CHROMIUM) return;
  // The app as `npm start` serves it (the bench entry adds only a timing route), on a fresh local R2.
  worker = await startBenchWorker((dir) => seed(join(ROOT, 'models'), dir, () => {}));
  base = worker.base;
  const { chromium } = await import('playwright-core');
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});

after(async () => {
  await browser?.close();
  await worker?.stop();
});

/** The page's answer must be the API's for the bytes the page sent, shown as the API gave it. */
async function expectShownAsAnswered(page, request, result) {
  const sentBytes = await page.evaluate(async () => Array.from(new Uint8Array(await window.ageEdgeLastUpload.jpeg.arrayBuffer())));
  const url = new URL(request.url());
  const again = await fetch(base + url.pathname + url.search, {
    method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: new Uint8Array(sentBytes),
  });
  const api = await again.json();
  assert.equal(again.status, 200, JSON.stringify(api));
  assert.deepEqual(result.faces, api.faces);
  const face = api.faces[0];
  assert.equal(await page.textContent('[data-face="0"] [data-field="age"]'), face.age.toFixed(1));
  assert.equal(await page.textContent('[data-face="0"] [data-field="range"]'), `80% range ${face.range.low.toFixed(1)}–${face.range.high.toFixed(1)}`);
  assert.ok((await page.textContent('[data-face="0"] [data-field="group"]')).startsWith(`group ${face.group.label} (`));
  assert.equal(await page.locator('[data-face="0"] .bar').count(), face.groups.length);
  assert.equal(await page.textContent('[data-face="0"] [data-field="over"]'), `P(18 or over) ${(face.over[0].probability * 100).toFixed(1)}%`);
  assert.equal(await page.textContent('[data-face="0"] [data-field="quality"]'), `capture quality ${Math.round(face.quality.score * 100)}% · face ${Math.round(face.quality.face_px)} px`);
  assert.equal(await page.locator('[data-face="0"] [data-field="retake"] li').count(), face.quality.reasons.length);
  if (face.over[0].decision) assert.match(await page.textContent('[data-face="0"] [data-field="decision"]'), new RegExp(`^18 or over: ${face.over[0].decision}`));

  // The face box is stroked in green on the canvas, just inside its left edge.
  const [r, g, b] = await page.evaluate(({ x, y }) => Array.from(document.getElementById('photo').getContext('2d').getImageData(x, y, 1, 1).data), {
    x: Math.round(face.box.x + 1), y: Math.round(face.box.y + face.box.h / 2),
  });
  assert.ok(g > 150 && r < 80 && b < 150, `no green box edge on the canvas: rgb(${r}, ${g}, ${b})`);
  return face;
}

/** Uploads `file` on the page; returns what the page shows and the request it sent. */
async function upload(page, file, { crop, over = false }) {
  await page.goto(base + '/');
  if (crop) await page.check('#is-crop');
  if (over) await page.check('#over-18');
  const sent = page.waitForRequest((r) => r.url().includes('/v1/age') && r.method() === 'POST');
  await page.setInputFiles('#file', file);
  const request = await sent;
  await page.waitForSelector('body[data-result], #status.error', { timeout: 60_000 });
  return { request, result: JSON.parse((await page.getAttribute('body', 'data-result')) ?? 'null') };
}

test('the demo page shows the API answer for the photo it sent, with the overlay drawn', { skip: !CHROMIUM && '!!! Chromium not found: the demo page was NOT tested in a browser !!!' }, async () => {
  const page = await browser.newPage({ viewport: { width: 1000, height: 1100 } });
  const dir = mkdtempSync(join(tmpdir(), 'age-edge-photo-'));
  const file = join(dir, 'photo.jpg');
  writeFileSync(file, syntheticPhoto());
  const { request, result } = await upload(page, file, { crop: true, over: true });
  assert.ok(result, `the page shows an error: ${await page.textContent('#status')}`);
  assert.equal(result.faces.length, 1);
  assert.equal(new URL(request.url()).searchParams.get('over'), '18');

  // The same bytes sent again from here: the page must show exactly that answer.
  await expectShownAsAnswered(page, request, result);
  rmSync(dir, { recursive: true, force: true });
});

const astronaut = CHROMIUM ? astronautPhoto() : { skip: 'no Chromium' };
test('a real photo: the detected face with its box, age, range, quality and P(18 or over); its screenshot in runs/demo.png', { skip: (!CHROMIUM || astronaut.skip) && `!!! ${CHROMIUM ? `astronaut.png could not be had: ${astronaut.skip}` : 'Chromium not found'}: the demo screenshot was NOT redrawn !!!` }, async () => {
  const page = await browser.newPage({ viewport: { width: 1000, height: 1100 } });
  const { request, result } = await upload(page, astronaut.path, { crop: false, over: true });
  assert.ok(result, `the page shows an error: ${await page.textContent('#status')}`);
  assert.equal(result.faces.length, 1, 'one face in the astronaut photo');
  assert.equal(new URL(request.url()).searchParams.get('over'), '18');
  const face = await expectShownAsAnswered(page, request, result);
  // Eileen Collins' face sits in the upper middle of the 512 px photo.
  assert.ok(face.box.x > 100 && face.box.x + face.box.w < 400 && face.box.y < 250, `face box ${JSON.stringify(face.box)}`);
  console.log(`# astronaut.png: age ${face.age}, 80% range ${face.range.low}-${face.range.high}, P(18 or over) ${face.over[0].probability}`);
  mkdirSync(join(ROOT, 'runs'), { recursive: true });
  await page.screenshot({ path: join(ROOT, 'runs', 'demo.png'), fullPage: true });
});

test('a dark, grainy face crop: the page names what the capture lost and asks for another photo', { skip: !CHROMIUM && '!!! Chromium not found !!!' }, async () => {
  const page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
  const dir = mkdtempSync(join(tmpdir(), 'age-edge-photo-'));
  const file = join(dir, 'dim.jpg');
  // The synthetic photo at a tenth of its light, with grain: what a dark room gives.
  const bright = jpeg.decode(syntheticPhoto(), { useTArray: true });
  let s = 7;
  const grain = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648 - 0.5) * 24;
  for (let i = 0; i < bright.data.length; i += 4) for (let c = 0; c < 3; c++) bright.data[i + c] = Math.max(0, Math.min(255, bright.data[i + c] * 0.12 + grain()));
  writeFileSync(file, jpeg.encode(bright, 90).data);
  const { result } = await upload(page, file, { crop: true, over: true });
  assert.ok(result, `the page shows an error: ${await page.textContent('#status')}`);
  const face = result.faces[0];
  assert.ok(face.quality.reasons.includes('too dark: add light'), JSON.stringify(face.quality));
  assert.match(await page.textContent('[data-face="0"] [data-field="retake"]'), /Please take another photo[\s\S]*too dark: add light/);
  rmSync(dir, { recursive: true, force: true });
});

test('an image the server refuses shows its message, readably', { skip: !CHROMIUM && '!!! Chromium not found !!!' }, async () => {
  const page = await browser.newPage();
  const dir = mkdtempSync(join(tmpdir(), 'age-edge-photo-'));
  const file = join(dir, 'photo.jpg');
  writeFileSync(file, jpeg.encode({ width: 320, height: 240, data: Buffer.alloc(320 * 240 * 4, 128) }, 90).data);
  await upload(page, file, { crop: false }); // a flat grey photo: the detector finds no face
  assert.equal(await page.getAttribute('#status', 'class'), 'error');
  assert.match(await page.textContent('#status'), /No face was found/);
  rmSync(dir, { recursive: true, force: true });
});

test('real faces in a photo are found and each gets a card', { skip: (!CHROMIUM || !existsSync(join(SHARED, 'labels.csv'))) && '!!! Chromium or ../shared/data/utkface missing: the detector path was NOT tested in a browser !!!' }, async () => {
  const page = await browser.newPage();
  const [header, ...rows] = readFileSync(join(SHARED, 'labels.csv'), 'utf8').trim().split(/\r?\n/).map((l) => l.split(','));
  const split = header.indexOf('split');
  const faces = rows.filter((c) => c[split] === 'test').slice(0, 2).map((c) => jpeg.decode(readFileSync(join(SHARED, 'images', c[0])), { useTArray: true }));
  const W = 640, H = 480, data = Buffer.alloc(W * H * 4, 235);
  faces.forEach((f, i) => {
    for (let y = 0; y < f.height; y++)
      for (let x = 0; x < f.width; x++) {
        const o = ((y + 140) * W + x + 60 + i * 320) * 4, s = (y * f.width + x) * 4;
        data[o] = f.data[s]; data[o + 1] = f.data[s + 1]; data[o + 2] = f.data[s + 2];
      }
  });
  const dir = mkdtempSync(join(tmpdir(), 'age-edge-photo-'));
  const file = join(dir, 'faces.jpg');
  writeFileSync(file, jpeg.encode({ width: W, height: H, data }, 92).data);
  const { result } = await upload(page, file, { crop: false });
  assert.ok(result, `the page shows an error: ${await page.textContent('#status')}`);
  assert.equal(result.faces.length, 2);
  assert.equal(await page.locator('.face').count(), 2);
  rmSync(dir, { recursive: true, force: true }); // a photo of real faces is never kept
});

test('a group photo: every face found is drawn and numbered, the five largest aged and the rest grey', { skip: (!CHROMIUM || !existsSync(join(SHARED, 'labels.csv'))) && '!!! Chromium or ../shared/data/utkface missing: a group photo was NOT tested in a browser !!!' }, async () => {
  const page = await browser.newPage({ viewport: { width: 1200, height: 1100 } });
  const [header, ...rows] = readFileSync(join(SHARED, 'labels.csv'), 'utf8').trim().split(/\r?\n/).map((l) => l.split(','));
  const split = header.indexOf('split');
  // Eight test faces in two rows of four, 160-210 px (the page sends the photo as it is: under 1600 px).
  const faces = rows.filter((c) => c[split] === 'test').slice(10, 18).map((c) => jpeg.decode(readFileSync(join(SHARED, 'images', c[0])), { useTArray: true }));
  const W = 1200, H = 700, data = Buffer.alloc(W * H * 4, 210);
  faces.forEach((f, i) => {
    const side = 160 + 7 * i, x0 = 60 + (i % 4) * 290, y0 = 60 + Math.floor(i / 4) * 320;
    for (let y = 0; y < side; y++)
      for (let x = 0; x < side; x++) {
        const o = ((y + y0) * W + x + x0) * 4, s = (Math.floor((y * f.height) / side) * f.width + Math.floor((x * f.width) / side)) * 4;
        data[o] = f.data[s]; data[o + 1] = f.data[s + 1]; data[o + 2] = f.data[s + 2];
      }
  });
  const dir = mkdtempSync(join(tmpdir(), 'age-edge-photo-'));
  const file = join(dir, 'group.jpg');
  writeFileSync(file, jpeg.encode({ width: W, height: H, data }, 92).data);
  const { result } = await upload(page, file, { crop: false });
  rmSync(dir, { recursive: true, force: true }); // a photo of real faces is never kept
  assert.ok(result, `the page shows an error: ${await page.textContent('#status')}`);
  assert.equal(result.faces_detected, 8);
  assert.equal(result.faces.length, 5);
  assert.equal(result.other_faces.length, 3);
  assert.equal(await page.locator('.face').count(), 5);
  assert.match(await page.textContent('#status'), /^8 faces found; the 5 largest aged \(grey, numbered 6–8/);
  // Each face not aged is outlined in grey, dashed, on the canvas: some pixel down its left edge is the grey.
  for (const f of result.other_faces) {
    const edge = await page.evaluate(({ x, y, h }) => Array.from(document.getElementById('photo').getContext('2d').getImageData(x, y, 1, h).data), {
      x: Math.round(f.box.x + 1), y: Math.round(f.box.y + f.box.h / 4), h: Math.round(f.box.h / 2),
    });
    const grey = [];
    for (let i = 0; i < edge.length; i += 4) if (Math.abs(edge[i] - 138) < 12 && Math.abs(edge[i + 1] - 143) < 12 && Math.abs(edge[i + 2] - 152) < 12) grey.push(i);
    assert.ok(grey.length > 0, `no grey box edge at ${JSON.stringify(f.box)}`);
  }
});

test('the docs page renders the OpenAPI document: every operation and the schemas', { skip: !CHROMIUM && '!!! Chromium not found: /docs was NOT tested in a browser !!!' }, async () => {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (err) => errors.push(err.message));
  await page.goto(base + '/docs');
  await page.waitForSelector('body[data-rendered]', { timeout: 30_000 });
  assert.deepEqual(errors, []);
  const doc = await (await fetch(base + '/v1/openapi.json')).json();
  const operations = Object.values(doc.paths).flatMap((item) => Object.keys(item)).length;
  assert.equal(Number(await page.getAttribute('body', 'data-rendered')), operations);
  assert.match(await page.textContent('[id="post/v1/age"]'), /max_faces[\s\S]*multipart\/form-data[\s\S]*422/);
  assert.equal(await page.locator('#schema-AgeResult').count(), 1);
});
