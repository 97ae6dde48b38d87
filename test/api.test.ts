import { beforeAll, describe, expect, it } from 'vitest';
import { AGE_GROUPS } from '../src/model/distribution';
import { encodeJpeg, makeRgb, orientReference, pattern } from './helpers/images';
import { expectError, FIXTURE, fixtureFile, json, post, publishFixture, worker } from './helpers/worker';

type Rect = { x: number; y: number; w: number; h: number };
type AgeBody = {
  age: number;
  range: { low: number; high: number; level: number };
  group: { label: string; probability: number };
  groups: { label: string; probability: number }[];
  top_k: { age: number; probability: number }[];
  global_age: number;
  local_age: number;
  attention: Rect;
  crop: Rect;
  image: { width: number; height: number; orientation: number };
  model: { name: string; version: string; fallback: boolean };
};

const inside = (r: Rect, outer: Rect) => {
  expect(r.x).toBeGreaterThanOrEqual(outer.x - 0.05);
  expect(r.y).toBeGreaterThanOrEqual(outer.y - 0.05);
  expect(r.x + r.w).toBeLessThanOrEqual(outer.x + outer.w + 0.1);
  expect(r.y + r.h).toBeLessThanOrEqual(outer.y + outer.h + 0.1);
};

function expectValidAge(body: AgeBody, width: number, height: number) {
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
  expect(body.image).toMatchObject({ width, height });
  inside(body.crop, { x: 0, y: 0, w: width, h: height });
  inside(body.attention, body.crop);
  expect(body.model).toEqual({ name: FIXTURE.name, version: FIXTURE.version, fallback: false });
}

const photo = encodeJpeg(makeRgb(640, 480, pattern), { quality: 90 });

beforeAll(async () => {
  await publishFixture(FIXTURE.version);
});

describe('GET /healthz', () => {
  it('answers ok', async () => {
    const res = await worker.fetch('http://localhost/healthz');
    expect(res.status).toBe(200);
    expect(await json(res)).toMatchObject({ status: 'ok' });
  });
});

describe('POST /v1/age', () => {
  it('estimates an age from a raw JPEG body, every field in range', async () => {
    const res = await post(photo);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const body = await json<AgeBody>(res);
    expectValidAge(body, 640, 480);
    expect(body.crop).toEqual({ x: 0, y: 0, w: 640, h: 480 });
    expect(body.image.orientation).toBe(1);
  });

  it('is deterministic for the same image', async () => {
    const a = await json<AgeBody>(await post(photo));
    const b = await json<AgeBody>(await post(photo));
    expect(a).toEqual(b);
  });

  it('estimates an age from a real face photo (UTKFace in ../shared/data)', async (ctx) => {
    const labels = await fixtureFile('shared/utkface/labels.csv');
    if (!labels) {
      console.warn('SKIPPED: ../shared/data/utkface/labels.csv not found; the real-photo test needs the shared UTKFace copy');
      ctx.skip();
      return;
    }
    const rows = new TextDecoder().decode(labels).split(/\r?\n/).slice(1).filter((l) => l.endsWith(',test'));
    const file = rows[0]!.split(',')[0]!;
    const jpeg = await fixtureFile(`shared/utkface/images/${file}`);
    expect(jpeg, `image ${file} listed in labels.csv`).toBeDefined();
    const res = await post(jpeg!);
    expect(res.status).toBe(200);
    const body = await json<AgeBody>(res);
    expectValidAge(body, 200, 200);
  });

  it('accepts multipart/form-data with the image and a box field', async () => {
    const form = new FormData();
    form.append('image', new File([photo], 'face.jpg', { type: 'image/jpeg' }));
    form.append('box', '200,100,100,150');
    const res = await worker.fetch('http://localhost/v1/age', { method: 'POST', body: form });
    expect(res.status).toBe(200);
    const body = await json<AgeBody>(res);
    expectValidAge(body, 640, 480);
    expect(body.crop).toEqual({ x: 160, y: 40, w: 180, h: 270 });
  });

  it('crops the face box with the manifest margin, clamped to the image', async () => {
    const a = await json<AgeBody>(await post(photo, { query: 'box=200,100,100,150' }));
    expect(a.crop).toEqual({ x: 160, y: 40, w: 180, h: 270 });
    inside(a.attention, a.crop);
    const b = await json<AgeBody>(await post(photo, { query: 'box=600,450,100,100' }));
    expect(b.crop).toEqual({ x: 560, y: 410, w: 80, h: 70 });
    // The attention box comes back relative to the crop it was computed on.
    const whole = await json<AgeBody>(await post(photo));
    const rel = (r: AgeBody) => (r.attention.x - r.crop.x) / r.crop.w;
    expect(Math.abs(rel(a) - rel(whole))).toBeLessThan(0.05);
  });

  it('honours top_k', async () => {
    expect((await json<AgeBody>(await post(photo, { query: 'top_k=12' }))).top_k).toHaveLength(12);
    expect((await json<AgeBody>(await post(photo, { query: 'top_k=0' }))).top_k).toEqual([]);
  });

  it('applies the EXIF orientation: a rotated-and-tagged photo reads like the upright one', async () => {
    const upright = makeRgb(320, 240, pattern);
    const expected = await json<AgeBody>(await post(encodeJpeg(upright, { quality: 95 }), { query: 'box=100,60,90,110' }));
    // Orientation 6 means "rotate 90° clockwise to display": store the upright image turned 90° counter-clockwise.
    const stored = orientReference(upright, 8);
    for (const littleEndian of [false, true]) {
      const res = await post(encodeJpeg(stored, { quality: 95, orientation: 6, littleEndian }), { query: 'box=100,60,90,110' });
      const body = await json<AgeBody>(res);
      expect(body.image).toEqual({ width: 320, height: 240, orientation: 6 });
      expect(body.crop).toEqual(expected.crop);
      // Pixel-exact orientation handling is proven in src/model/predict.test.ts; here the
      // answer must match the upright photo up to JPEG re-encoding noise.
      expect(Math.abs(body.age - expected.age)).toBeLessThanOrEqual(0.3);
      expect(Math.abs(body.local_age - expected.local_age)).toBeLessThanOrEqual(0.3);
      expect(Math.abs(body.attention.x - expected.attention.x)).toBeLessThanOrEqual(2);
      expect(Math.abs(body.attention.y - expected.attention.y)).toBeLessThanOrEqual(2);
    }
    // Without the tag the same stored pixels are a different (sideways) picture.
    const untagged = await json<AgeBody>(await post(encodeJpeg(stored, { quality: 95 })));
    expect(untagged.image).toEqual({ width: 240, height: 320, orientation: 1 });
  });

  it('sends CORS headers for browser clients', async () => {
    const pre = await worker.fetch('http://localhost/v1/age', {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe('*');
    expect(pre.headers.get('access-control-allow-methods')).toContain('POST');
    const res = await post(photo, { headers: { origin: 'https://app.example' } });
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
  });
});

describe('errors', () => {
  it('400: malformed box, box outside the image, bad top_k, empty body, multipart without image', async () => {
    expect(await expectError(await post(photo, { query: 'box=1,2,3' }), 400, 'bad_request')).toMatch(/box/);
    expect(await expectError(await post(photo, { query: 'box=900,10,50,50' }), 400, 'bad_request')).toMatch(/does not overlap/);
    expect(await expectError(await post(photo, { query: 'top_k=-1' }), 400, 'bad_request')).toMatch(/top_k/);
    expect(await expectError(await post(photo, { query: 'top_k=21' }), 400, 'bad_request')).toMatch(/top_k/);
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
  it('describes the active model and its metrics', async () => {
    const res = await worker.fetch('http://localhost/v1/models');
    expect(res.status).toBe(200);
    const body = await json(res);
    expect(body.active).toMatchObject({ name: FIXTURE.name, version: FIXTURE.version, manifest: { input: { size: expect.any(Number) } } });
    expect(body.active.metrics).toEqual(expect.any(Object));
    expect(body).toMatchObject({ requested: { name: FIXTURE.name, version: FIXTURE.version }, fallback: false, load_error: null });
    expect(body.wasm_heap_bytes).toBeGreaterThan(0);
  });
});
