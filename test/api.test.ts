import { beforeAll, describe, expect, it } from 'vitest';
import type { Orientation } from '../src/image/types';
import { AGE_GROUPS } from '../src/model/distribution';
import type { AgeResult, FaceResult, Rect } from '../src/schemas';
import { encodeJpeg, facePhoto, makeRgb, orientReference, pattern, turnImage } from './helpers/images';
import { captureLogs, expectOnlyUnnamedTiers } from './helpers/logs';
import { expectError, FIXTURE, fixtureFile, json, post, publishDetector, publishFixture, shippedDetector, worker } from './helpers/worker';

type Face = FaceResult;
type AgeBody = AgeResult;

const inside = (r: Rect, outer: Rect) => {
  expect(r.x).toBeGreaterThanOrEqual(outer.x - 0.05);
  expect(r.y).toBeGreaterThanOrEqual(outer.y - 0.05);
  expect(r.x + r.w).toBeLessThanOrEqual(outer.x + outer.w + 0.1);
  expect(r.y + r.h).toBeLessThanOrEqual(outer.y + outer.h + 0.1);
};

/** The fixture's framing (no `framing` in its manifest): the square of 1 + 2 × face_margin (0.4) = 1.8 × √(w·h). */
const framed = (b: Rect, scale = 1.8): Rect => {
  const side = scale * Math.sqrt(b.w * b.h);
  return { x: b.x + b.w / 2 - side / 2, y: b.y + b.h / 2 - side / 2, w: side, h: side };
};
const round1 = (r: Rect): Rect => ({ x: Math.round(r.x * 10) / 10, y: Math.round(r.y * 10) / 10, w: Math.round(r.w * 10) / 10, h: Math.round(r.h * 10) / 10 });

function expectValidAge(response: AgeBody, width: number, height: number, faces = 1) {
  expect(response.faces).toHaveLength(faces);
  expect(response.image).toMatchObject({ width, height });
  expect(response.model).toEqual({ name: FIXTURE.name, version: FIXTURE.version, tier: null, fallback: false });
  for (const body of response.faces) expectValidFace(body, width, height);
}

function expectValidFace(body: Face, width: number, height: number) {
  for (const v of [body.age, body.global_age, body.local_age, body.range.low, body.range.high]) {
    expect(v).toBeGreaterThanOrEqual(0);
    expect(v).toBeLessThanOrEqual(100);
    expect(Math.round(v * 10) / 10).toBe(v); // one decimal
  }
  expect(body.range.level).toBe(0.8);
  expect(body.range.low).toBeLessThanOrEqual(body.range.high);
  expect(AGE_GROUPS.map((g) => g.label)).toContain(body.group.label);
  expect(body.groups.map((g) => g.label)).toEqual(AGE_GROUPS.map((g) => g.label));
  expect(body.groups.reduce((s, g) => s + g.probability, 0)).toBeCloseTo(1, 2);
  expect(body.group.probability).toBe(Math.max(...body.groups.map((g) => g.probability)));
  expect(body.top_k).toHaveLength(5);
  for (let i = 1; i < body.top_k.length; i++) expect(body.top_k[i - 1]!.probability).toBeGreaterThanOrEqual(body.top_k[i]!.probability);
  for (const t of body.top_k) expect(Number.isInteger(t.age) && t.age >= 0 && t.age <= 100).toBe(true);
  // The crop may reach past the image (padded black), but it contains the face box.
  inside(body.box, { x: body.crop.x - 1, y: body.crop.y - 1, w: body.crop.w + 2, h: body.crop.h + 2 });
  inside(body.attention, body.crop);
}

const photo = encodeJpeg(makeRgb(640, 480, pattern), { quality: 90 });
// Cartoon faces BlazeFace finds (test/helpers/images.ts drawFace): a large, a middle, a small one.
const FACES = [{ cx: 170, cy: 200, size: 300 }, { cx: 470, cy: 140, size: 200 }, { cx: 520, cy: 380, size: 150 }];
const group = encodeJpeg(facePhoto(640, 480, FACES), { quality: 92 });
let detector: { name: string; version: string };

beforeAll(async () => {
  await publishFixture(FIXTURE.version);
  detector = await publishDetector();
});

describe('GET /healthz', () => {
  it('answers ok', async () => {
    const res = await worker.fetch('http://localhost/healthz');
    expect(res.status).toBe(200);
    expect(await json(res)).toMatchObject({ status: 'ok' });
  });
});

describe('POST /v1/age', () => {
  it('finds every face of a photo, largest first, each with its box, score and age', async () => {
    const res = await post(group);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const body = await json<AgeBody>(res);
    expectValidAge(body, 640, 480, 3);
    expect(body.faces_detected).toBe(3);
    expect(body.detector).toEqual({ ...detector, fallback: false });
    const areas = body.faces.map((f) => f.box.w * f.box.h);
    expect(areas).toEqual([...areas].sort((a, b) => b - a));
    body.faces.forEach((f, i) => {
      // Each detection sits on the face drawn there (its centre within a tenth of the drawing).
      const want = FACES[i]!;
      expect(Math.abs(f.box.x + f.box.w / 2 - want.cx)).toBeLessThan(want.size / 10);
      expect(Math.abs(f.box.y + f.box.h / 2 - want.cy)).toBeLessThan(want.size / 5);
      expect(f.score).toBeGreaterThan(0.5);
      expect(f.score).toBeLessThanOrEqual(1);
      // Framed from the unrounded box: equal up to the one-decimal rounding of both.
      for (const k of ['x', 'y', 'w', 'h'] as const) expect(Math.abs(f.crop[k] - framed(f.box)[k])).toBeLessThan(0.3);
    });
  });

  it('caps the faces at max_faces, and refuses a max_faces over MAX_FACES_LIMIT', async () => {
    const body = await json<AgeBody>(await post(group, { query: 'max_faces=2' }));
    expect(body.faces).toHaveLength(2);
    expect(body.faces_detected).toBe(3);
    const all = await json<AgeBody>(await post(group));
    expect(body.faces).toEqual(all.faces.slice(0, 2));
    expect(await expectError(await post(group, { query: 'max_faces=0' }), 400, 'bad_request')).toMatch(/max_faces/);
    expect(await expectError(await post(group, { query: 'max_faces=11' }), 400, 'bad_request')).toMatch(/max_faces must be an integer from 1 to 10/);
  });

  it('answers 422 no_face, with a clear message, for a photo without a face', async () => {
    const message = await expectError(await post(photo), 422, 'no_face');
    expect(message).toMatch(/No face was found in the 640x480 image/);
    expect(message).toMatch(/box=x,y,w,h/);
  });

  it('reads the whole image as the face with crop=image (no detection)', async () => {
    const body = await json<AgeBody>(await post(photo, { query: 'crop=image' }));
    expectValidAge(body, 640, 480);
    expect(body.faces[0]).toMatchObject({ box: { x: 0, y: 0, w: 640, h: 480 }, score: null, crop: { x: 0, y: 0, w: 640, h: 480 } });
    expect(body).toMatchObject({ faces_detected: null, detector: null });
    expect(await expectError(await post(photo, { query: 'crop=face' }), 400, 'bad_request')).toMatch(/crop must be "image"/);
    expect(await expectError(await post(photo, { query: 'crop=image&box=1,2,3,4' }), 400, 'bad_request')).toMatch(/either box or crop=image/);
  });

  it('is deterministic for the same image', async () => {
    const a = await json<AgeBody>(await post(group));
    const b = await json<AgeBody>(await post(group));
    expect(a).toEqual(b);
  });

  it('estimates ages on real faces pasted into a photo (UTKFace in ../shared/data)', async (ctx) => {
    const labels = await fixtureFile('shared/utkface/labels.csv');
    if (!labels) {
      console.warn('SKIPPED: ../shared/data/utkface/labels.csv not found; the real-photo test needs the shared UTKFace copy');
      ctx.skip();
      return;
    }
    const rows = new TextDecoder().decode(labels).split(/\r?\n/).slice(1).filter((l) => l.endsWith(',test'));
    const { decodeImage } = await import('../src/image/decode');
    const limits = { maxPixels: 4_000_000, maxMemoryMB: 64 };
    // Two test-split chips pasted side by side at 200 and 140 px into a plain 640x480 photo.
    const canvas = makeRgb(640, 480, (x, y) => [100 + (x % 13), 120, 110 + (y % 11)]);
    const places = [{ x: 60, y: 120, side: 200 }, { x: 400, y: 200, side: 140 }];
    for (const [i, p] of places.entries()) {
      const file = rows[i]!.split(',')[0]!;
      const jpeg = await fixtureFile(`shared/utkface/images/${file}`);
      expect(jpeg, `image ${file} listed in labels.csv`).toBeDefined();
      const chip = decodeImage(jpeg!, limits);
      for (let y = 0; y < p.side; y++)
        for (let x = 0; x < p.side; x++) {
          const sx = Math.floor((x * chip.width) / p.side), sy = Math.floor((y * chip.height) / p.side);
          canvas.data.set(chip.data.subarray((sy * chip.width + sx) * 3, (sy * chip.width + sx) * 3 + 3), ((p.y + y) * 640 + p.x + x) * 3);
        }
    }
    const body = await json<AgeBody>(await post(encodeJpeg(canvas, { quality: 92 })));
    expectValidAge(body, 640, 480, 2);
    body.faces.forEach((f, i) => {
      const p = places[i]!;
      expect(Math.abs(f.box.x + f.box.w / 2 - (p.x + p.side / 2))).toBeLessThan(p.side / 8);
      expect(Math.abs(f.box.y + f.box.h / 2 - (p.y + p.side / 2))).toBeLessThan(p.side / 8);
      expect(f.box.w / p.side).toBeGreaterThan(0.7);
      expect(f.box.w / p.side).toBeLessThan(1.1);
    });
    // And a chip as it is, with crop=image.
    const chip = await fixtureFile(`shared/utkface/images/${rows[0]!.split(',')[0]!}`);
    expectValidAge(await json<AgeBody>(await post(chip!, { query: 'crop=image' })), 200, 200);
  });

  it('accepts multipart/form-data with the image and a box field', async () => {
    const form = new FormData();
    form.append('image', new File([photo], 'face.jpg', { type: 'image/jpeg' }));
    form.append('box', '200,100,100,150');
    const res = await worker.fetch('http://localhost/v1/age', { method: 'POST', body: form });
    expect(res.status).toBe(200);
    const body = await json<AgeBody>(res);
    expectValidAge(body, 640, 480);
    expect(body.faces[0]!.crop).toEqual(round1(framed({ x: 200, y: 100, w: 100, h: 150 })));
    const form2 = new FormData();
    form2.append('image', new File([photo], 'face.jpg', { type: 'image/jpeg' }));
    form2.append('crop', 'image');
    expect((await json<AgeBody>(await worker.fetch('http://localhost/v1/age', { method: 'POST', body: form2 }))).faces[0]!.score).toBeNull();
  });

  it('frames an explicit box with the manifest framing and skips detection; a crop past the edge is padded, not squashed', async () => {
    const a = await json<AgeBody>(await post(photo, { query: 'box=200,100,100,150' }));
    expect(a.faces[0]).toMatchObject({ box: { x: 200, y: 100, w: 100, h: 150 }, score: null });
    expect(a).toMatchObject({ faces_detected: null, detector: null });
    expect(a.faces[0]!.crop).toEqual(round1(framed({ x: 200, y: 100, w: 100, h: 150 })));
    const b = await json<AgeBody>(await post(photo, { query: 'box=600,450,100,100' }));
    // 180 px square around the box centre (650, 500): it reaches past the corner and stays square.
    expect(b.faces[0]!.crop).toEqual({ x: 560, y: 410, w: 180, h: 180 });
    // The attention box comes back relative to the crop it was computed on.
    const whole = await json<AgeBody>(await post(photo, { query: 'crop=image' }));
    const rel = (r: Face) => (r.attention.x - r.crop.x) / r.crop.w;
    expect(Math.abs(rel(a.faces[0]!) - rel(whole.faces[0]!))).toBeLessThan(0.05);
  });

  it('answers a box far larger than the image (padded black) without a 500', async () => {
    const res = await post(photo, { query: 'box=-1000000000,-1000000000,3000000000,3000000000' });
    expect(res.status).toBe(200);
    expect((await json<AgeBody>(res)).faces[0]!.crop.w).toBe(5.4e9);
  });

  it('honours top_k', async () => {
    expect((await json<AgeBody>(await post(group, { query: 'top_k=12' }))).faces.every((f) => f.top_k.length === 12)).toBe(true);
    expect((await json<AgeBody>(await post(photo, { query: 'top_k=0&crop=image' }))).faces[0]!.top_k).toEqual([]);
  });

  it('over=T gives P(age >= T) from the same distribution as top_k', async () => {
    const b = await json<AgeBody>(await post(photo, { query: 'crop=image&top_k=20&over=1,18,21,99' }));
    const face = b.faces[0]!;
    expect(face.over!.map((o) => o.age)).toEqual([1, 18, 21, 99]);
    const ps = face.over!.map((o) => o.probability);
    expect(ps.every((p) => p >= 0 && p <= 1)).toBe(true);
    for (let i = 1; i < ps.length; i++) expect(ps[i]!).toBeLessThanOrEqual(ps[i - 1]!); // fewer ages, less mass
    // The same distribution the groups read: P(age >= 15) is the mass of groups 15-24 and up.
    const fromGroups = face.groups.filter((g) => g.label !== '0-2' && g.label !== '3-7' && g.label !== '8-14').reduce((s, g) => s + g.probability, 0);
    const at15 = (await json<AgeBody>(await post(photo, { query: 'crop=image&over=15' }))).faces[0]!.over![0]!.probability;
    expect(Math.abs(at15 - fromGroups)).toBeLessThan(5e-4);
    expect((await json<AgeBody>(await post(photo, { query: 'crop=image' }))).faces[0]!.over).toBeUndefined();
  });

  it('applies the EXIF orientation: a rotated-and-tagged photo reads like the upright one', async () => {
    // The face sits off-centre, so a wrong turn or flip moves the detector's box by 100+ px
    // and puts the caller's box on other pixels. (The fixture model's attention box barely
    // moves between images, so it cannot show an orientation bug; its distribution can.)
    const upright = facePhoto(480, 360, [{ cx: 130, cy: 170, size: 240 }]);
    const box = 'box=70,90,130,150';
    const ask = async (img: typeof upright, orientation: Orientation, query?: string) =>
      (await json<AgeBody>(await post(encodeJpeg(img, { quality: 95, orientation }), { query }))).faces[0]!;
    /** L1 distance between two answers' distributions, over their top 20 ages. */
    const distance = (a: Face, b: Face) => {
      const pa = new Map(a.top_k.map((t) => [t.age, t.probability])), pb = new Map(b.top_k.map((t) => [t.age, t.probability]));
      return [...new Set([...pa.keys(), ...pb.keys()])].reduce((s, age) => s + Math.abs((pa.get(age) ?? 0) - (pb.get(age) ?? 0)), 0);
    };
    const ref = await ask(upright, 1);
    const refBoxed = await ask(upright, 1, `${box}&top_k=20`);
    // Stored pixels for each tag (6 and 8 undo each other; the others undo themselves), and a
    // wrong tag for the same pixels: what a server that misread the tag would show the model.
    const cases: [Orientation, Orientation][] = [[3, 1], [5, 7], [6, 8], [8, 6]];
    for (const [o, wrong] of cases) {
      const stored = orientReference(upright, o === 6 ? 8 : o === 8 ? 6 : o);
      const detected = await ask(stored, o);
      for (const k of ['x', 'y', 'w', 'h'] as const) expect(Math.abs(detected.box[k] - ref.box[k]), `orientation ${o} box.${k}`).toBeLessThanOrEqual(3);
      expect(Math.abs(detected.age - ref.age), `orientation ${o} age`).toBeLessThanOrEqual(0.5);
      const boxed = await ask(stored, o, `${box}&top_k=20`);
      const misread = await ask(stored, wrong, `${box}&top_k=20`);
      expect(boxed.crop).toEqual(refBoxed.crop);
      expect(Math.abs(boxed.age - refBoxed.age), `orientation ${o} age (box)`).toBeLessThanOrEqual(0.3);
      // JPEG noise of the turned pixels: measured 0.002-0.03; a misread tag: 0.40.
      expect(distance(boxed, refBoxed), `orientation ${o} distribution`).toBeLessThan(0.06);
      // The check can see a misread tag: those pixels answer far from the upright face.
      expect(distance(misread, refBoxed), `orientation ${o} read as ${wrong}`).toBeGreaterThan(0.2);
    }
    const stored = orientReference(upright, 8);
    for (const littleEndian of [false, true]) {
      const body = await json<AgeBody>(await post(encodeJpeg(stored, { quality: 95, orientation: 6, littleEndian })));
      expect(body.image).toEqual({ width: 480, height: 360, orientation: 6 });
      expect(body.faces).toHaveLength(1);
    }
    // A box is in displayed pixels too.
    const boxed = await json<AgeBody>(await post(encodeJpeg(stored, { quality: 95, orientation: 6 }), { query: 'box=100,60,90,110' }));
    expect(boxed.faces[0]!.crop).toEqual(round1(framed({ x: 100, y: 60, w: 90, h: 110 })));
    // Without the tag the same stored pixels are a different (sideways) picture.
    const untagged = await json<AgeBody>(await post(encodeJpeg(stored, { quality: 95 }), { query: 'crop=image' }));
    expect(untagged.image).toEqual({ width: 360, height: 480, orientation: 1 });
  });

  it('turns a tilted face upright for the model, as the aligned training chips are', async () => {
    const upright = facePhoto(480, 480, [{ cx: 240, cy: 240, size: 260 }]);
    const level = (await json<AgeBody>(await post(encodeJpeg(upright, { quality: 95 })))).faces[0]!;
    expect(level.roll).toBe(0);
    for (const degrees of [20, -25]) {
      const body = await json<AgeBody>(await post(encodeJpeg(turnImage(upright, (degrees * Math.PI) / 180), { quality: 95 })));
      expect(body.faces).toHaveLength(1);
      const f = body.faces[0]!;
      expect(Math.abs(f.roll - degrees), `roll for ${degrees}°`).toBeLessThan(5);
      // Read upright, the face gives about the level face's answer.
      expect(Math.abs(f.age - level.age), `age for ${degrees}°`).toBeLessThan(1.5);
    }
  });

  it('sends CORS headers for browser clients', async () => {
    const pre = await worker.fetch('http://localhost/v1/age', {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe('*');
    expect(pre.headers.get('access-control-allow-methods')).toContain('POST');
    const res = await post(photo, { headers: { origin: 'https://app.example' }, query: 'crop=image' });
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
  });
});

describe('errors', () => {
  it('400: malformed box, box outside the image, bad top_k, empty body, multipart without image', async () => {
    expect(await expectError(await post(photo, { query: 'box=1,2,3' }), 400, 'bad_request')).toMatch(/box/);
    expect(await expectError(await post(photo, { query: 'box=900,10,50,50' }), 400, 'bad_request')).toMatch(/does not overlap/);
    expect(await expectError(await post(photo, { query: 'top_k=-1' }), 400, 'bad_request')).toMatch(/top_k/);
    expect(await expectError(await post(photo, { query: 'top_k=21' }), 400, 'bad_request')).toMatch(/top_k/);
    for (const over of ['0', '100', '18.5', 'adult', '18,', '1,2,3,4,5,6', '-3']) {
      expect(await expectError(await post(photo, { query: `over=${over}` }), 400, 'bad_request'), over).toMatch(/over/);
    }
    for (const target of ['0', '0.0', '1', '2%', '1e-2', '0.12345', 'low', '-0.02']) {
      expect(await expectError(await post(photo, { query: `over=18&false_accept=${target}` }), 400, 'bad_request'), target).toMatch(/false_accept must be a share/);
    }
    expect(await expectError(await post(photo, { query: 'false_accept=0.02' }), 400, 'bad_request')).toMatch(/with over=T/);
    // The fixture model carries no calibration: it has no rule for any target.
    expect(await expectError(await post(photo, { query: 'crop=image&over=18&false_accept=0.02' }), 400, 'bad_request')).toMatch(/al-fixture\/1 has no decision rule for false_accept=0.02; it has no decision rules/);
    await expectError(await post(new Uint8Array(0)), 400, 'bad_request');
    const form = new FormData();
    form.append('picture', new File([photo], 'face.jpg', { type: 'image/jpeg' }));
    expect(await expectError(await worker.fetch('http://localhost/v1/age', { method: 'POST', body: form }), 400, 'bad_request')).toMatch(/"image"/);
    const text = new FormData();
    text.append('image', 'not a file');
    await expectError(await worker.fetch('http://localhost/v1/age', { method: 'POST', body: text }), 400, 'bad_request');
    await expectError(await post('--x\r\nbroken', { type: 'multipart/form-data; boundary=zzz' }), 400, 'bad_request');
  });

  it('413: body over the byte limit, by Content-Length and when streamed without one', async () => {
    const big = new Uint8Array(8 * 1024 * 1024 + 1);
    big.set(photo);
    await expectError(await post(big), 413, 'payload_too_large');
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 9; i++) controller.enqueue(new Uint8Array(1024 * 1024));
        controller.close();
      },
    });
    await expectError(await post(stream), 413, 'payload_too_large');
  });

  it('413: image over the pixel limit, refused from its header', async () => {
    const jpeg = encodeJpeg(makeRgb(16, 16, pattern));
    const sof = jpeg.findIndex((b, i) => b === 0xff && jpeg[i + 1] === 0xc0);
    const huge = jpeg.slice();
    huge.set([0x13, 0x88, 0x13, 0x88], sof + 5); // 5000 x 5000
    expect(await expectError(await post(huge), 413, 'payload_too_large')).toMatch(/5000x5000/);
  });

  it('415: other content types and other image formats (PNG and JSON: test/inputs.test.ts)', async () => {
    await expectError(await post(photo, { type: 'image/webp' }), 415, 'unsupported_media_type');
    await expectError(await post(photo, { type: 'application/x-www-form-urlencoded' }), 415, 'unsupported_media_type');
    const gif = new TextEncoder().encode('GIF89a\u0001\u0000\u0001\u0000');
    await expectError(await post(gif, { type: 'application/octet-stream' }), 415, 'unsupported_media_type');
    await expectError(await post(gif), 415, 'unsupported_media_type');
    const form = new FormData();
    form.append('image', new File([gif], 'face.gif', { type: 'image/gif' }));
    await expectError(await worker.fetch('http://localhost/v1/age', { method: 'POST', body: form }), 415, 'unsupported_media_type');
  });

  it('422: bytes that are not a decodable JPEG', async () => {
    await expectError(await post('definitely not a jpeg'), 422, 'undecodable_image');
    await expectError(await post(photo.subarray(0, 200)), 422, 'undecodable_image');
    await expectError(await post(photo.subarray(0, 200), { type: null }), 422, 'undecodable_image');
  });

  it('404 and 405 in the same shape', async () => {
    await expectError(await worker.fetch('http://localhost/v2/age'), 404, 'not_found');
    const res = await worker.fetch('http://localhost/v1/age');
    await expectError(res, 405, 'method_not_allowed');
    expect(res.headers.get('allow')).toContain('POST');
    await expectError(await worker.fetch('http://localhost/v1/models', { method: 'DELETE' }), 405, 'method_not_allowed');
  });
});

describe('GET /v1/models', () => {
  const logs = captureLogs();
  it('describes the active model, its metrics, and the face detector', async () => {
    const res = await worker.fetch('http://localhost/v1/models');
    expect(res.status).toBe(200);
    const body = await json(res);
    expect(body.active).toMatchObject({ name: FIXTURE.name, version: FIXTURE.version, manifest: { input: { size: expect.any(Number) } } });
    expect(body.active.metrics).toEqual(expect.any(Object));
    expect(body).toMatchObject({ requested: { name: FIXTURE.name, version: FIXTURE.version }, fallback: false, load_error: null });
    const { manifest } = await shippedDetector();
    expect(body.detector).toMatchObject({
      active: { ...detector, manifest: { kind: 'face_detector', input: { size: (manifest.input as { size: number }).size }, source: { license: 'Apache-2.0' } } },
      requested: detector, fallback: false, load_error: null,
    });
    expect(body.wasm_heap_bytes).toBeGreaterThan(0);
    expectOnlyUnnamedTiers(logs);
  });
});
