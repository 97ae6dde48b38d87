import { describe, expect, it } from 'vitest';
import { loadAgeModel } from '../src/model/age-model';
import { parseManifest } from '../src/registry/manifest';
import { FIXTURE, fixtureFile } from './helpers/worker';

// test/fixtures/model/<fixture>/reference.json: the fixture's outputs for two images that both
// sides can rebuild from a formula, computed by onnxruntime in Python when the fixture was made
// (`python -m training fixture`). onnxruntime-web in workerd must give the same numbers: this
// catches a wrong input layout, dtype or output order that shape checks alone would pass.
type Case = { recipe: string; age: number; probs: number[]; global_age: number; local_age: number; box: number[] };
type Reference = { size: number; cases: Case[] };

// The tolerances live here, not in reference.json: a regenerated file with a looser tolerance
// (or a wrong number beside one) must not pass itself. Both sides run the same fp32 graph with
// onnxruntime's CPU kernels (native in Python, wasm SIMD here); summation order differs by a
// few ulps, ~1e-5 years on the ages. The file stores 6 decimals. 1e-3 years is 100x that
// noise and still far below the 0.1-year rounding of the API; a wrong layout, channel order
// or output moves ages by years.
const AGE_TOL = 1e-3; // years (age, global_age, local_age)
const BOX_TOL = 1e-3; // fraction of the crop
const PROB_TOL = 1e-4; // per age's probability

const PIXEL: Record<string, (x: number, y: number, c: number) => number> = {
  ramp: (x, y, c) => (x * 4 + y * 2 + c * 85) % 256,
  blocks: (x, y, c) => (((x >> 3) + (y >> 3)) % 2 === 1 ? 40 + c * 60 : 230 - c * 50),
};

function image(recipe: string, size: number): Uint8Array {
  const pixel = PIXEL[recipe];
  if (!pixel) throw new Error(`unknown recipe ${recipe}`);
  const out = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) for (let c = 0; c < 3; c++) out[(y * size + x) * 3 + c] = pixel(x, y, c);
  return out;
}

async function text(path: string): Promise<string> {
  const bytes = await fixtureFile(path);
  if (!bytes) throw new Error(`${path} is missing`);
  return new TextDecoder().decode(bytes);
}

describe('fixture reference outputs (workerd onnxruntime-web vs Python onnxruntime)', () => {
  it('matches every case', async () => {
    const dir = `fixtures/model/${FIXTURE.name}/${FIXTURE.version}`;
    const manifest = parseManifest(await text(`${dir}/manifest.json`), FIXTURE);
    const reference = JSON.parse(await text(`${dir}/reference.json`)) as Reference;
    expect(reference.size).toBe(manifest.input.size);
    const modelBytes = await fixtureFile(`${dir}/${manifest.model}`);
    const model = await loadAgeModel(manifest, new Map([[manifest.model, modelBytes!]]));
    try {
      expect(reference.cases.length).toBeGreaterThanOrEqual(2);
      const ages = new Set<number>();
      for (const ref of reference.cases) {
        const out = await model.run(image(ref.recipe, reference.size));
        expect(Math.abs(out.age - ref.age), `${ref.recipe} age`).toBeLessThan(AGE_TOL);
        expect(Math.abs(out.globalAge - ref.global_age), `${ref.recipe} global_age`).toBeLessThan(AGE_TOL);
        expect(Math.abs(out.localAge - ref.local_age), `${ref.recipe} local_age`).toBeLessThan(AGE_TOL);
        for (let i = 0; i < 4; i++) expect(Math.abs(out.box[i]! - ref.box[i]!), `${ref.recipe} box[${i}]`).toBeLessThan(BOX_TOL);
        expect(ref.probs.length).toBe(out.probs.length);
        let worst = 0;
        for (let i = 0; i < ref.probs.length; i++) worst = Math.max(worst, Math.abs(out.probs[i]! - ref.probs[i]!));
        expect(worst, `${ref.recipe} probs`).toBeLessThan(PROB_TOL);
        ages.add(Math.round(out.age * 10));
      }
      // The cases must differ, or the comparison would not notice an input that is ignored.
      expect(ages.size).toBe(reference.cases.length);
    } finally {
      await model.release();
    }
  });
});
