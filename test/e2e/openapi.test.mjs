// Real answers of the running worker (wrangler dev, the models `npm start` serves) checked
// against the document it serves at /v1/openapi.json, with ajv (JSON Schema 2020-12, which
// OpenAPI 3.1 uses): every answer's status must be declared for its path and method, and its
// body must fit the schema declared for that status. The typed client (client/index.ts) and
// `npm run example` run against the same worker. Run by scripts/test.sh (node --test).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import Ajv2020Module from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { AgeEdgeError, createClient } from '../../client/index.ts';
import { ROOT, startLocalWorker } from '../../scripts/lib.mjs';
import { seed } from '../../scripts/models.mjs';
import { encodeJpeg, facePhoto, makeRgb, pattern } from '../helpers/images.ts';
import { buildPng } from '../helpers/png.ts';

const Ajv2020 = Ajv2020Module.default ?? Ajv2020Module;
const addFormats = addFormatsModule.default ?? addFormatsModule;

// A small body cap so the 413 needs no large upload; the deployed rate limiter (60 a minute)
// so that a 429 can be reached.
const MAX_BODY_BYTES = 1_000_000;

/** A 640x480 photo with one cartoon face BlazeFace finds (test/helpers/images.ts drawFace). */
const faceRgb = facePhoto(640, 480, [{ cx: 320, cy: 230, size: 300 }]);
const faceJpeg = encodeJpeg(faceRgb, { quality: 92 });
const facePng = buildPng({ width: 320, height: 240, depth: 8, colorType: 2, pixel: (x, y) => Array.from(faceRgb.data.subarray(((y * 2) * 640 + x * 2) * 3, ((y * 2) * 640 + x * 2) * 3 + 3)) });
const patternJpeg = encodeJpeg(makeRgb(240, 200, pattern), { quality: 90 });
const greyJpeg = encodeJpeg(makeRgb(320, 240, () => [128, 128, 128]), { quality: 90 });
const base64 = (bytes) => Buffer.from(bytes).toString('base64');

let worker, doc, ajv;
/** How many answers were checked, by status. */
const checked = {};

before(async () => {
  worker = await startLocalWorker({
    seedInto: (dir) => seed(join(ROOT, 'models'), dir, () => {}),
    vars: { MAX_BODY_BYTES: String(MAX_BODY_BYTES), RATE_LIMIT_BINDING: 'RATE_LIMITER' },
    logLevel: 'warn',
    prefix: 'age-edge-openapi-',
  });
  doc = await (await fetch(`${worker.base}/v1/openapi.json`)).json();
  ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  ajv.addSchema(doc, 'openapi.json');
});

after(async () => {
  await worker?.stop();
  console.log(`# validated ${Object.values(checked).reduce((a, b) => a + b, 0)} answers against /v1/openapi.json: ${JSON.stringify(checked)}`);
});

const pointer = (...parts) => parts.map((p) => String(p).replaceAll('~', '~0').replaceAll('/', '~1')).join('/');

/**
 * Checks one answer against the document and returns its parsed body. A path the document
 * does not list must answer 404, a listed path with another method 405 (info.description says
 * so; their bodies are components Error404 and Error405).
 */
async function expectDocumented(res, method, path) {
  const status = res.status;
  const type = (res.headers.get('content-type') ?? '').split(';')[0].trim();
  const text = await res.text();
  const op = doc.paths[path]?.[method.toLowerCase()];
  let ref;
  if (!op) {
    assert.ok(status === 404 || status === 405, `${method} ${path} is not in the document but answered ${status}`);
    assert.equal(status, doc.paths[path] ? 405 : 404, `${method} ${path}: answered ${status}`);
    ref = `openapi.json#/components/schemas/Error${status}`;
  } else {
    const declared = op.responses[status];
    assert.ok(declared, `${method} ${path} answered ${status}, which the document does not declare (declared: ${Object.keys(op.responses)})`);
    assert.ok(declared.content?.[type], `${method} ${path} ${status} answered ${type}; declared: ${Object.keys(declared.content ?? {})}`);
    ref = `openapi.json#/${pointer('paths', path, method.toLowerCase(), 'responses', status, 'content', type, 'schema')}`;
  }
  assert.ok(res.headers.get('x-request-id'), `${method} ${path}: no X-Request-Id`);
  const body = type === 'application/json' ? JSON.parse(text) : text;
  const validate = ajv.getSchema(ref) ?? ajv.compile({ $ref: ref });
  assert.ok(validate(body), `${method} ${path} ${status}: the body does not fit ${ref}:\n${ajv.errorsText(validate.errors)}\n${text.slice(0, 500)}`);
  if (status >= 400) assert.equal(body.error.request_id, res.headers.get('x-request-id'), 'the error body and X-Request-Id name the same request');
  checked[status] = (checked[status] ?? 0) + 1;
  return body;
}

const call = async (method, path, { query = '', body, type } = {}) => {
  const headers = type ? { 'content-type': type } : {};
  const res = await fetch(`${worker.base}${path}${query ? `?${query}` : ''}`, { method, body, headers });
  return expectDocumented(res, method, path);
};
const json = (value) => ({ body: JSON.stringify(value), type: 'application/json' });

test('the document is OpenAPI 3.1 and describes every route with its answers', async () => {
  assert.equal(doc.openapi, '3.1.0');
  assert.deepEqual(Object.keys(doc.paths).sort(), ['/', '/docs', '/healthz', '/v1/age', '/v1/models']);
  const age = doc.paths['/v1/age'].post;
  assert.deepEqual(Object.keys(age.responses).sort(), ['200', '400', '413', '415', '422', '429', '500', '503']);
  assert.deepEqual(age.parameters.map((p) => p.name).sort(), ['box', 'crop', 'false_accept', 'max_faces', 'model', 'over', 'top_k']);
  assert.deepEqual(Object.keys(age.requestBody.content).sort(), ['application/json', 'application/octet-stream', 'image/jpeg', 'image/png', 'multipart/form-data']);
  // The schemas the body's $refs name are in the document.
  for (const name of ['AgeJsonBody', 'AgeForm', 'AgeResult', 'FaceResult', 'Rect', 'Error404', 'Error405']) assert.ok(doc.components.schemas[name], name);
  // The check below is not vacuous: the $refs resolve, and a wrong body is refused.
  const ageResult = ajv.compile({ $ref: `openapi.json#/${pointer('paths', '/v1/age', 'post', 'responses', 200, 'content', 'application/json', 'schema')}` });
  assert.equal(ageResult({ faces: [] }), false);
  assert.equal(ajv.compile({ $ref: 'openapi.json#/components/schemas/Error422' })({ error: { code: 'bad_request', message: 'x', request_id: 'r' } }), false);
});

test('the document names every reason an answer can give, the light, the pose and a torn answer included', () => {
  const quality = doc.components.schemas.Quality;
  const reasons = quality.properties.reasons.description;
  for (const r of ['too dark: add light', 'unusual light colour: use white light', 'head turned or tilted: face the camera', 'unsure: it sees two ages far apart; send another photo']) {
    assert.ok(reasons.includes(r), r);
  }
  for (const field of ['chroma_along', 'chroma_across', 'yaw', 'pitch']) assert.ok(quality.properties[field]?.description, field);
});

test('answers of the GET routes fit the document', async () => {
  assert.equal((await call('GET', '/healthz')).status, 'ok');
  const models = await call('GET', '/v1/models');
  assert.ok(models.active && models.detector.active, 'the seeded model and detector are served');
  assert.match(await call('GET', '/'), /<html/);
  assert.match(await call('GET', '/docs'), /\/v1\/openapi\.json/);
});

test('POST /v1/age: a detected face in JPEG and PNG, multipart, JSON base64 and data: URL, box= and crop=image fit AgeResult', async () => {
  const detected = await call('POST', '/v1/age', { body: faceJpeg, type: 'image/jpeg' });
  assert.equal(detected.faces.length, 1, 'the cartoon face is found');
  assert.ok(detected.faces[0].score > 0.5 && detected.detector);
  const png = await call('POST', '/v1/age', { body: facePng, type: 'image/png', query: 'top_k=3' });
  assert.equal(png.faces[0].top_k.length, 3);

  const form = new FormData();
  form.append('image', new Blob([faceJpeg], { type: 'image/jpeg' }), 'face.jpg');
  form.append('box', '200,100,240,280');
  const boxed = await call('POST', '/v1/age', { body: form });
  assert.deepEqual(boxed.faces[0].box, { x: 200, y: 100, w: 240, h: 280 });
  assert.equal(boxed.detector, null);

  await call('POST', '/v1/age', json({ image: base64(faceJpeg), box: [200, 100, 240, 280] }));
  await call('POST', '/v1/age', json({ image: `data:image/png;base64,${base64(facePng)}` }));
  const chip = await call('POST', '/v1/age', { body: patternJpeg, type: 'image/jpeg', query: 'crop=image' });
  assert.equal(chip.faces[0].score, null);
  const fast = await call('POST', '/v1/age', { body: patternJpeg, type: 'image/jpeg', query: 'crop=image&model=fast' });
  assert.equal(fast.model.tier, 'fast');
  const over = await call('POST', '/v1/age', { body: patternJpeg, type: 'image/jpeg', query: 'crop=image&over=18,21' });
  assert.deepEqual(over.faces[0].over.map((o) => o.age), [18, 21]);
  assert.ok(over.faces[0].over.every((o) => o.false_accept === 0.01), 'decided by the default rule');
  const looser = await call('POST', '/v1/age', { body: patternJpeg, type: 'image/jpeg', query: 'crop=image&over=18&false_accept=0.02' });
  assert.equal(looser.faces[0].over[0].false_accept, 0.02);
  await call('POST', '/v1/age', { body: patternJpeg, type: 'application/octet-stream', query: 'box=20,20,150,150&max_faces=1' });
});

test('error answers fit the document: 400, 404, 405, 413, 415, 422', async () => {
  const code = async (expected, ...args) => {
    const body = await call(...args);
    assert.equal(body.error?.code, expected, JSON.stringify(body));
  };
  await code('bad_request', 'POST', '/v1/age', { body: patternJpeg, type: 'image/jpeg', query: 'box=1,2,3' });
  await code('bad_request', 'POST', '/v1/age', { body: patternJpeg, type: 'image/jpeg', query: 'top_k=lots' });
  await code('bad_request', 'POST', '/v1/age', { body: patternJpeg, type: 'image/jpeg', query: 'crop=image&over=18&false_accept=0.05' });
  await code('bad_request', 'POST', '/v1/age', { body: patternJpeg, type: 'image/jpeg', query: 'model=slow' });
  await code('bad_request', 'POST', '/v1/age', { body: patternJpeg, type: 'image/jpeg', query: 'max_faces=999' });
  await code('bad_request', 'POST', '/v1/age', json([1, 2]));
  await code('bad_request', 'POST', '/v1/age', { body: new Uint8Array(0), type: 'image/jpeg' });
  await code('not_found', 'GET', '/v1/nothing-here');
  await code('method_not_allowed', 'DELETE', '/v1/age');
  await code('method_not_allowed', 'POST', '/healthz');
  await code('payload_too_large', 'POST', '/v1/age', { body: new Uint8Array(MAX_BODY_BYTES + 1), type: 'image/jpeg' });
  await code('unsupported_media_type', 'POST', '/v1/age', { body: 'RIFF....WEBP', type: 'image/webp' });
  await code('unsupported_media_type', 'POST', '/v1/age', json({ image: 'data:image/gif;base64,R0lGOD' }));
  await code('undecodable_image', 'POST', '/v1/age', { body: new Uint8Array([0xff, 0xd8, 0xff, 1, 2, 3]), type: 'image/jpeg' });
  await code('no_face', 'POST', '/v1/age', { body: greyJpeg, type: 'image/jpeg' });
});

test('the typed client and npm run example get the same answers', async () => {
  const client = createClient(worker.base);
  const direct = await (await fetch(`${worker.base}/v1/age`, { method: 'POST', body: faceJpeg, headers: { 'content-type': 'image/jpeg' } })).json();
  const result = await client.estimateAge(faceJpeg);
  assert.deepEqual(result, direct);
  assert.equal((await client.estimateAge(new Blob([patternJpeg], { type: 'image/jpeg' }), { crop: 'image', top_k: 2 })).faces[0].top_k.length, 2);
  assert.equal((await client.health()).status, 'ok');
  assert.equal((await client.models()).active?.name, result.model.name);
  const decided = await client.estimateAge(new Blob([patternJpeg], { type: 'image/jpeg' }), { crop: 'image', over: [18], false_accept: 0.02 });
  assert.equal(decided.faces[0].over?.[0]?.false_accept, 0.02);
  assert.ok((await client.models()).active?.false_accept_targets.includes(0.02));
  await assert.rejects(client.estimateAge(new Blob([patternJpeg], { type: 'image/jpeg' }), { crop: 'image', over: [18], false_accept: 0.05 }), (err) => err instanceof AgeEdgeError && err.status === 400 && /false_accept=0.05/.test(err.message));
  await assert.rejects(client.estimateAge(greyJpeg), (err) => err instanceof AgeEdgeError && err.status === 422 && err.code === 'no_face' && !!err.requestId);

  const dir = mkdtempSync(join(tmpdir(), 'age-edge-example-'));
  try {
    const file = join(dir, 'photo.jpg');
    writeFileSync(file, faceJpeg);
    const { stdout } = await promisify(execFile)(process.execPath, [join(ROOT, 'client/example.ts'), file, '--url', worker.base], { cwd: ROOT });
    const f = result.faces[0];
    assert.match(stdout, new RegExp(`face 1: box ${f.box.x},${f.box.y} ${f.box.w}x${f.box.h}  age ${f.age.toFixed(1)}  80% range ${f.range.low.toFixed(1)}–${f.range.high.toFixed(1)}  group ${f.group.label} `));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('429 once the client spends its budget, in the documented shape', async () => {
  let res;
  for (let i = 0; i < 100; i++) {
    res = await fetch(`${worker.base}/v1/models`);
    if (res.status === 429) break;
    await res.arrayBuffer();
  }
  assert.equal(res.status, 429, 'the rate limit (60 a minute) was never reached');
  assert.ok(Number(res.headers.get('retry-after')) > 0);
  assert.equal((await expectDocumented(res, 'GET', '/v1/models')).error.code, 'rate_limited');
});
