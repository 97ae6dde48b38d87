import { describe, expect, it } from 'vitest';
import { loadAgeModel, ModelLoadError } from '../src/model/age-model';
import { parseManifest, type Manifest } from '../src/registry/manifest';
import { sha256Hex } from '../src/registry/sha256';
import { contractGraph, type GraphFault } from './helpers/onnx';

const SIZE = 16;

async function manifestFor(bytes: Uint8Array): Promise<Manifest> {
  return parseManifest(
    JSON.stringify({
      schema: 1, name: 'gen', version: '1',
      input: { name: 'image', size: SIZE, dtype: 'uint8', layout: 'NHWC', color: 'RGB' },
      outputs: ['age', 'probs', 'global_age', 'local_age', 'box'],
      face_margin: 0.4, ages: { min: 0, max: 100 }, model: 'model.onnx',
      files: [{ path: 'model.onnx', role: 'model', sha256: await sha256Hex(bytes), bytes: bytes.byteLength }],
    }),
  );
}

async function load(fault: GraphFault) {
  const bytes = contractGraph(SIZE, fault);
  return loadAgeModel(await manifestFor(bytes), new Map([['model.onnx', bytes]]));
}

describe("loadAgeModel's contract guards (onnxruntime-web in workerd, generated graphs)", () => {
  it('loads the valid generated graph, whose answer is known', async () => {
    const model = await load('none');
    try {
      const out = await model.run(new Uint8Array(SIZE * SIZE * 3).fill(7));
      const expected = Array.from({ length: 101 }, (_, i) => Math.exp(-0.5 * ((i - 30) / 5) ** 2));
      expect(out.age).toBeCloseTo(30, 3);
      expect(out.probs).toHaveLength(101);
      expect(out.probs[30]! / out.probs[25]!).toBeCloseTo(expected[30]! / expected[25]!, 4);
      expect(Array.from(out.box)).toEqual([0.25, 0.2, 0.75, 0.8].map((v) => Math.fround(v)));
      await expect(model.run(new Uint8Array(10))).rejects.toThrow(RangeError);
    } finally {
      await model.release();
    }
  });

  const faults: [GraphFault, RegExp][] = [
    ['input_name', /graph has no input image \(inputs: pixels\)/],
    ['missing_output', /graph lacks outputs box/],
    ['probs_length', /output probs has 100 values, expected 101/],
    ['age_dtype', /output age is missing or not float32/],
    ['nan_age', /test run gave age NaN/],
    ['nan_probs', /probabilities summing to NaN/],
    ['probs_sum', /probabilities summing to (2|1\.99)/],
    ['input_dtype', /test run failed/],
    ['input_size', /test run failed/],
  ];
  for (const [fault, message] of faults) {
    it(`refuses a graph with fault ${fault}`, async () => {
      const err = await load(fault).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ModelLoadError);
      expect((err as Error).message).toMatch(message);
    });
  }

  it('refuses bytes that are not a graph, and a manifest whose model file was not handed over', async () => {
    const bytes = new TextEncoder().encode('not an onnx graph');
    const manifest = await manifestFor(bytes);
    await expect(loadAgeModel(manifest, new Map([['model.onnx', bytes]]))).rejects.toThrow(/onnxruntime could not create a session/);
    await expect(loadAgeModel(manifest, new Map())).rejects.toThrow(/model file model.onnx was not loaded/);
  });
});
