import { env } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { agesOf } from './fuzz/cases.ts';
import { contractGraph, type GraphFault } from './helpers/onnx';
import { encodeJpeg, makeRgb, pattern } from './helpers/images';
import { captureLogs } from './helpers/logs';
import { activate, FIXTURE, fixtureModel, json, post, publishDetector, publishFixture, worker } from './helpers/worker';

// Every fault a published model can have, end to end through R2 in workerd: each is refused at
// load, the last good model keeps serving (answers marked fallback), /v1/models says which
// version failed and why, and a rollback (what `npm run models:rollback` writes) restores the
// previous version. One isolate, one bucket: the steps build on each other, in order.
const photo = encodeJpeg(makeRgb(96, 96, pattern));
const logs = captureLogs();

async function served() {
  const res = await post(photo, { query: 'crop=image' });
  expect(res.status).toBe(200);
  const body = await json(res);
  const [age] = agesOf(body) ?? [];
  expect(age).toEqual(expect.any(Number));
  return { version: body.model.version as string, fallback: body.model.fallback as boolean, age: age as number };
}

async function models() {
  const res = await worker.fetch('http://localhost/v1/models');
  expect(res.status).toBe(200);
  return json(res);
}

async function expectRefused(version: string, message: RegExp, goodAge: number) {
  expect(await served()).toEqual({ version: FIXTURE.version, fallback: true, age: goodAge });
  const status = await models();
  expect(status).toMatchObject({ active: { version: FIXTURE.version }, requested: { version }, fallback: true, load_error: { name: FIXTURE.name, version } });
  expect(status.load_error.message).toMatch(message);
  // The refusal is logged once, naming the version and why.
  const failed = logs.of('model_load_failed').filter((e) => e.model === `${FIXTURE.name}/${version}`);
  expect(failed).toHaveLength(1);
  expect(String(failed[0]!.message)).toMatch(message);
}

/** What scripts/models.mjs rollback writes: history.json without the last entry, then active.json. */
async function rollback(to: { name: string; version: string }, history: { name: string; version: string }[]) {
  await env.MODELS.put('models/history.json', JSON.stringify({ entries: history }));
  await activate(to.name, to.version);
}

describe('model faults, through R2 (every one refused; the last good model keeps serving)', () => {
  let goodAge = NaN;

  it('serves the fixture, the last good model of what follows', async () => {
    await publishDetector();
    await publishFixture(FIXTURE.version);
    const s = await served();
    expect(s).toMatchObject({ version: FIXTURE.version, fallback: false });
    goodAge = s.age;
  });

  it('a wrong sha256 in the manifest', async () => {
    const { model } = await fixtureModel();
    const tampered = model.slice();
    tampered[100] = tampered[100]! ^ 0x01;
    await publishFixture('bad-sha', { modelBytes: tampered, staleSha: true });
    await expectRefused('bad-sha', /model.onnx sha256 mismatch/, goodAge);
  });

  it('a truncated file (the manifest says more bytes)', async () => {
    const { model } = await fixtureModel();
    await publishFixture('truncated', { modelBytes: model.subarray(0, model.length - 4096), staleSha: true });
    await expectRefused('truncated', /model.onnx has \d+ bytes, the manifest says \d+/, goodAge);
  });

  it('a truncated file whose manifest was written for the truncated bytes', async () => {
    const { model } = await fixtureModel();
    await publishFixture('truncated-consistent', { modelBytes: model.subarray(0, Math.floor(model.length / 2)) });
    await expectRefused('truncated-consistent', /onnxruntime could not create a session/, goodAge);
  });

  const graphFaults: [GraphFault, RegExp][] = [
    ['input_name', /graph has no input image/],
    ['input_dtype', /test run failed/],
    ['input_size', /test run failed/],
    ['missing_output', /graph lacks outputs box/],
    ['probs_length', /output probs has 100 values/],
    ['age_dtype', /output age is missing or not float32/],
    ['nan_age', /test run gave age NaN/],
    ['nan_probs', /probabilities summing to NaN/],
  ];
  for (const [fault, message] of graphFaults) {
    it(`a graph that breaks the contract: ${fault}`, async () => {
      await publishFixture(`graph-${fault}`, { modelBytes: contractGraph(64, fault) });
      await expectRefused(`graph-${fault}`, message, goodAge);
    });
  }

  it('a missing file', async () => {
    await publishFixture('no-file');
    await env.MODELS.delete(`models/${FIXTURE.name}/no-file/model.onnx`);
    await expectRefused('no-file', /model.onnx not found/, goodAge);
  });

  it('a manifest describing another version', async () => {
    await publishFixture('mislabelled');
    const key = `models/${FIXTURE.name}/mislabelled/manifest.json`;
    const manifest = JSON.parse(await (await env.MODELS.get(key))!.text());
    await env.MODELS.put(key, JSON.stringify({ ...manifest, version: 'something-else' }));
    await expectRefused('mislabelled', /describes al-fixture\/something-else, expected al-fixture\/mislabelled/, goodAge);
  });

  it('a good new version is taken, and a rollback restores the previous one', async () => {
    // A valid generated graph (a known answer, unlike the fixture's) as version 2.
    await publishFixture('2', { modelBytes: contractGraph(64) });
    const two = await served();
    expect(two).toMatchObject({ version: '2', fallback: false });
    expect(two.age).toBeCloseTo(30, 0);
    expect(await models()).toMatchObject({ fallback: false, load_error: null });

    await rollback(FIXTURE, []);
    expect(await served()).toEqual({ version: FIXTURE.version, fallback: false, age: goodAge });
    expect(await models()).toMatchObject({ active: { version: FIXTURE.version }, requested: { version: FIXTURE.version }, fallback: false, load_error: null });
  });
});
