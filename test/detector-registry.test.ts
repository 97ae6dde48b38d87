import { env } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { encodeJpeg, facePhoto } from './helpers/images';
import { captureLogs } from './helpers/logs';
import { expectError, FIXTURE, json, post, publishDetector, publishFixture, shippedDetector, worker } from './helpers/worker';

const photo = encodeJpeg(facePhoto(480, 360, [{ cx: 240, cy: 170, size: 260 }]), { quality: 92 });

async function detectorServed(): Promise<{ version: string; fallback: boolean }> {
  const res = await post(photo);
  expect(res.status).toBe(200);
  return (await json(res)).detector;
}

const models = async () => json(await worker.fetch('http://localhost/v1/models'));

// One isolate, one bucket: these steps build on each other, in order.
describe('face detector registry in R2 (through the worker)', () => {
  const logs = captureLogs();

  it('without a detector, a photo is 503 but a box or crop=image is still served', async () => {
    await publishFixture(FIXTURE.version);
    expect(await expectError(await post(photo), 503, 'model_unavailable')).toMatch(/No face detector could be loaded/);
    expect((await post(photo, { query: 'box=100,50,200,200' })).status).toBe(200);
    expect((await post(photo, { query: 'crop=image' })).status).toBe(200);
    const body = await models();
    expect(body.active).toMatchObject({ name: FIXTURE.name });
    expect(body.detector).toMatchObject({ active: null, load_error: { message: expect.stringMatching(/active.json not found/) } });
  });

  it('serves the detector active.json names, and hot-swaps to a new version', async () => {
    const { version } = await publishDetector();
    expect(await detectorServed()).toMatchObject({ version, fallback: false });
    await publishDetector({ version: '2' });
    expect(await detectorServed()).toEqual({ name: (await shippedDetector()).manifest.name, version: '2', fallback: false });
  });

  it('keeps the last good detector when a new one fails its checksum, and says so', async () => {
    const { model } = await shippedDetector();
    const tampered = model.slice();
    tampered[100] = tampered[100]! ^ 0xff;
    await publishDetector({ version: 'bad-sha', modelBytes: tampered });
    expect(await detectorServed()).toMatchObject({ version: '2', fallback: true });
    const body = await models();
    expect(body.detector).toMatchObject({ active: { version: '2' }, requested: { version: 'bad-sha' }, fallback: true });
    expect(body.detector.load_error.message).toMatch(/sha256 mismatch/);
    expect(logs.of('model_load_failed').filter((e) => String(e.model).endsWith('/bad-sha'))).toEqual([expect.objectContaining({ model: expect.stringMatching(/\/bad-sha$/), message: expect.stringMatching(/sha256 mismatch/) })]);
    // The age model is not affected.
    expect(body).toMatchObject({ fallback: false, load_error: null });
  });

  it('keeps the last good detector when the new version lacks its graph file, and says so', async () => {
    const { name } = await publishDetector({ version: 'no-file' });
    const { manifest } = await shippedDetector();
    await env.MODELS.delete(`models/detectors/${name}/no-file/${manifest.model}`);
    expect(await detectorServed()).toMatchObject({ version: '2', fallback: true });
    const body = await models();
    expect(body.detector).toMatchObject({ active: { version: '2' }, requested: { version: 'no-file' }, fallback: true, load_error: { version: 'no-file' } });
    expect(body.detector.load_error.message).toMatch(/not found/);
    expect(logs.of('model_load_failed').filter((e) => String(e.model).endsWith('/no-file'))).toEqual([expect.objectContaining({ model: expect.stringMatching(/\/no-file$/) })]);
  });

  it('recovers once active.json names a good version again', async () => {
    await publishDetector({ version: '3' });
    expect(await detectorServed()).toMatchObject({ version: '3', fallback: false });
    expect((await models()).detector).toMatchObject({ fallback: false, load_error: null });
  });
});
