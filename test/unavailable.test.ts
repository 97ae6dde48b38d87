import { describe, expect, it } from 'vitest';
import { encodeJpeg, makeRgb, pattern } from './helpers/images';
import { captureLogs } from './helpers/logs';
import { expectError, json, post, worker } from './helpers/worker';

// Nothing is published in this file's bucket.
describe('without any model in R2', () => {
  const logs = captureLogs();

  it('answers 503 for a valid request, after validating the input first', async () => {
    const photo = encodeJpeg(makeRgb(64, 64, pattern));
    expect(await expectError(await post(photo, { query: 'crop=image' }), 503, 'model_unavailable')).toMatch(/No model could be loaded: .*active.json not found/);
    expect(await expectError(await post(photo), 503, 'model_unavailable')).toMatch(/No face detector could be loaded: models\/detectors\/active.json not found/);
    // Bad input is still reported as bad input, not as a missing model.
    await expectError(await post('garbage'), 422, 'undecodable_image');
    // Each registry logs why it has nothing to serve; the bad input is not logged as a failure.
    expect(logs.of('model_load_failed').map((l) => l.message)).toEqual(expect.arrayContaining([
      expect.stringMatching(/^models\/active.json not found/), expect.stringMatching(/^models\/detectors\/active.json not found/)]));
    expect(logs.events().filter((e) => e !== 'model_load_failed')).toEqual([]);
  });

  it('reports 503 on /v1/models and stays live on /healthz', async () => {
    expect(await expectError(await worker.fetch('http://localhost/v1/models'), 503, 'model_unavailable')).toMatch(/active.json not found/);
    const health = await worker.fetch('http://localhost/healthz');
    expect(health.status).toBe(200);
    expect(await json(health)).toEqual({ status: 'ok', model_loaded: false, detector_loaded: false });
  });
});
