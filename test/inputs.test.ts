// The forms an image can arrive in — a JPEG or PNG body, a multipart file, base64 or a data: URL
// in JSON — give the same answer for the same pixels; what is not an image we read is a 415
// that lists what is.
import { encode as encodePng } from 'fast-png';
import decodeJpeg from 'jpeg-js/lib/decoder.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { encodeJpeg, makeRgb, pattern } from './helpers/images';
import { expectError, FIXTURE, json, post, publishFixture, worker } from './helpers/worker';

const BOX = '8,6,40,44';
const jpeg = encodeJpeg(makeRgb(64, 56, pattern));
// The JPEG's own decoded pixels, losslessly as PNG: the model must see the same image.
const decoded = decodeJpeg(jpeg, { useTArray: true, formatAsRGBA: false });
const png = encodePng({ width: decoded.width, height: decoded.height, data: decoded.data, channels: 3, depth: 8 });

function base64(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

const postJson = (body: unknown, query = '') =>
  worker.fetch(`http://localhost/v1/age${query}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

beforeAll(async () => {
  await publishFixture(FIXTURE.version);
});

describe('image inputs', () => {
  it('a PNG of the same pixels answers exactly like the JPEG, raw or multipart', async () => {
    const want = await json(await post(jpeg, { query: `box=${BOX}` }));
    expect(await json(await post(png, { type: 'image/png', query: `box=${BOX}` }))).toEqual(want);
    const form = new FormData();
    form.append('image', new File([png], 'face.png', { type: 'image/png' }));
    form.append('box', BOX);
    expect(await json(await worker.fetch('http://localhost/v1/age', { method: 'POST', body: form }))).toEqual(want);
  });

  it('base64 and data: URLs in a JSON body answer like the bytes they hold', async () => {
    const want = await json(await post(jpeg, { query: `box=${BOX}` }));
    expect(await json(await postJson({ image: base64(jpeg), box: BOX }))).toEqual(want);
    expect(await json(await postJson({ image: `data:image/png;base64,${base64(png)}`, box: [8, 6, 40, 44] }))).toEqual(want);
    // Line breaks, as base64 tools write them, are ignored; the box may come in the query.
    const wrapped = base64(jpeg).replace(/(.{76})/g, '$1\n');
    expect(await json(await postJson({ image: wrapped }, `?box=${BOX}`))).toEqual(want);
  });

  it('bad JSON bodies get a 400 that says what is wrong', async () => {
    const res = await worker.fetch('http://localhost/v1/age', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"image": ' });
    expect(await expectError(res, 400, 'bad_request')).toMatch(/JSON body could not be parsed/);
    expect(await expectError(await postJson([1, 2]), 400, 'bad_request')).toMatch(/must be an object/);
    expect(await expectError(await postJson({ picture: 'abc' }), 400, 'bad_request')).toMatch(/needs "image"/);
    expect(await expectError(await postJson({ image: 'not base64!' }), 400, 'bad_request')).toMatch(/not valid base64/);
    expect(await expectError(await postJson({ image: base64(jpeg), box: { x: 1 } }), 400, 'bad_request')).toMatch(/"box" must be/);
    expect(await expectError(await postJson({ image: 'data:image/jpeg,abc' }), 400, 'bad_request')).toMatch(/must be base64/);
  });

  it('415 lists the accepted types, for labels, data: URLs and bytes alike', async () => {
    const webp = new TextEncoder().encode('RIFF\u0000\u0000\u0000\u0000WEBPVP8 ');
    for (const res of [
      await post(jpeg, { type: 'image/heic' }),
      await postJson({ image: `data:image/webp;base64,${base64(webp)}` }),
      await post(webp, { type: 'application/octet-stream' }),
    ]) {
      expect(await expectError(res, 415, 'unsupported_media_type')).toMatch(/image\/jpeg, image\/png/);
    }
  });

  it('a PNG over the pixel limit is refused with 413 from its header', async () => {
    const header = encodePng({ width: 2, height: 2, data: new Uint8Array(12), channels: 3, depth: 8 }).slice();
    new DataView(header.buffer).setUint32(16, 5000); // IHDR width: 5000 x 2 ... and height:
    new DataView(header.buffer).setUint32(20, 5000);
    expect(await expectError(await post(header, { type: 'image/png' }), 413, 'payload_too_large')).toMatch(/5000x5000/);
  });
});
