import { env } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { encodeJpeg, makeRgb, pattern } from './helpers/images';
import { captureLogs } from './helpers/logs';
import { activate, expectError, FIXTURE, fixtureModel, json, post, publishFixture, worker } from './helpers/worker';

const photo = encodeJpeg(makeRgb(160, 120, pattern));
const logs = captureLogs();

async function served(): Promise<{ version: string; fallback: boolean }> {
  const res = await post(photo, { query: 'crop=image' });
  expect(res.status).toBe(200);
  const body = await json(res);
  return { version: body.model.version, fallback: body.model.fallback };
}

async function models() {
  return json(await worker.fetch('http://localhost/v1/models'));
}

// One isolate, one bucket: these steps build on each other, in order.
describe('model registry in R2 (through the worker)', () => {
  it('refuses a version whose bytes do not match the manifest sha256', async () => {
    const { model } = await fixtureModel();
    const tampered = model.slice();
    tampered[tampered.length - 1] = tampered.at(-1)! ^ 0xff;
    await publishFixture('bad-sha', { modelBytes: tampered, staleSha: true });
    expect(await expectError(await post(photo, { query: 'crop=image' }), 503, 'model_unavailable')).toMatch(/sha256 mismatch/);
    expect(await expectError(await worker.fetch('http://localhost/v1/models'), 503, 'model_unavailable')).toMatch(/sha256 mismatch/);
  });

  it('serves the fixture once active.json names it', async () => {
    await publishFixture(FIXTURE.version);
    expect(await served()).toEqual({ version: FIXTURE.version, fallback: false });
  });

  it('hot-swaps to a new version named by active.json, without a redeploy', async () => {
    await publishFixture('2');
    expect(await served()).toEqual({ version: '2', fallback: false });
    expect(await models()).toMatchObject({ active: { version: '2' }, requested: { version: '2' }, fallback: false, load_error: null });
  });

  it('keeps serving the last good model when the new one fails its checksum, and says so', async () => {
    await activate(FIXTURE.name, 'bad-sha');
    expect(await served()).toEqual({ version: '2', fallback: true });
    const body = await models();
    expect(body).toMatchObject({ active: { version: '2' }, requested: { version: 'bad-sha' }, fallback: true, load_error: { version: 'bad-sha' } });
    expect(body.load_error.message).toMatch(/sha256 mismatch/);
  });

  it('keeps serving the last good model when the new one is not a loadable ONNX graph', async () => {
    await publishFixture('broken', { modelBytes: new TextEncoder().encode('this is not an onnx model') });
    expect(await served()).toEqual({ version: '2', fallback: true });
    const body = await models();
    expect(body).toMatchObject({ requested: { version: 'broken' }, fallback: true, load_error: { version: 'broken' } });
    expect(body.load_error.message).toMatch(/onnxruntime could not create a session/);
    expect(logs.of('model_load_failed').filter((e) => e.model === `${FIXTURE.name}/broken`)).toEqual([expect.objectContaining({ message: expect.stringMatching(/onnxruntime could not create a session/) })]);
  });

  it('refuses a version with a missing file', async () => {
    await publishFixture('3');
    await env.MODELS.delete(`models/${FIXTURE.name}/3/model.onnx`);
    expect(await served()).toEqual({ version: '2', fallback: true });
    expect((await models()).load_error.message).toMatch(/model.onnx not found/);
  });

  it('clears the fallback once active.json names a good version again', async () => {
    await activate(FIXTURE.name, FIXTURE.version);
    expect(await served()).toEqual({ version: FIXTURE.version, fallback: false });
    expect(await models()).toMatchObject({ fallback: false, load_error: null });
  });
});
