import { createSession, ModelLoadError, ort } from '../ort/load';
import { REQUIRED_OUTPUTS, type Manifest } from '../registry/manifest';

/** Raw outputs of the fused network for one face crop. */
export type ModelOutput = {
  age: number;
  probs: Float32Array;
  globalAge: number;
  localAge: number;
  /** (x0, y0, x1, y1) in [0, 1] of the input crop. */
  box: Float32Array;
};

export interface AgeModel {
  readonly manifest: Manifest;
  /** Runs one S×S×3 uint8 RGB crop (NHWC without N). */
  run(crop: Uint8Array): Promise<ModelOutput>;
  release(): Promise<void>;
}

export { ModelLoadError };

function first(t: ort.Tensor | undefined, name: string, length: number): Float32Array {
  if (!t || t.type !== 'float32') throw new ModelLoadError(`output ${name} is missing or not float32`);
  const data = t.data as Float32Array;
  if (data.length !== length) throw new ModelLoadError(`output ${name} has ${data.length} values, expected ${length} for one image`);
  return data;
}

class OrtAgeModel implements AgeModel {
  constructor(readonly manifest: Manifest, private readonly session: ort.InferenceSession) {}

  async run(crop: Uint8Array): Promise<ModelOutput> {
    const S = this.manifest.input.size;
    if (crop.length !== S * S * 3) throw new RangeError(`crop must be ${S}x${S}x3`);
    const feeds = { [this.manifest.input.name]: new ort.Tensor('uint8', crop, [1, S, S, 3]) };
    const out = await this.session.run(feeds, [...REQUIRED_OUTPUTS]);
    const ages = this.manifest.ages.max - this.manifest.ages.min + 1;
    // Copies: ORT may reuse its output buffers on the next run.
    const result: ModelOutput = {
      age: first(out.age, 'age', 1)[0]!,
      probs: first(out.probs, 'probs', ages).slice(),
      globalAge: first(out.global_age, 'global_age', 1)[0]!,
      localAge: first(out.local_age, 'local_age', 1)[0]!,
      box: first(out.box, 'box', 4).slice(),
    };
    for (const t of Object.values(out)) t.dispose();
    return result;
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

/**
 * Creates the ORT session and proves it with one run on a grey crop, so a graph that loads
 * but does not match the contract (names, S, output shapes) is refused at load time and the
 * registry keeps the last good model instead of failing requests.
 */
export async function loadAgeModel(manifest: Manifest, files: Map<string, Uint8Array>): Promise<AgeModel> {
  const model = files.get(manifest.model);
  if (!model) throw new ModelLoadError(`model file ${manifest.model} was not loaded`);
  const externalData = manifest.files
    .filter((f) => f.role === 'external_data')
    .map((f) => ({ path: f.path, data: files.get(f.path)! }));
  let session: ort.InferenceSession;
  try {
    session = await createSession({ model, externalData });
  } catch (err) {
    throw new ModelLoadError(`onnxruntime could not create a session: ${err instanceof Error ? err.message : String(err)}`);
  }
  const instance = new OrtAgeModel(manifest, session);
  try {
    if (!session.inputNames.includes(manifest.input.name)) {
      throw new ModelLoadError(`graph has no input ${manifest.input.name} (inputs: ${session.inputNames.join(', ')})`);
    }
    const missing = REQUIRED_OUTPUTS.filter((o) => !session.outputNames.includes(o));
    if (missing.length) throw new ModelLoadError(`graph lacks outputs ${missing.join(', ')}`);
    const S = manifest.input.size;
    const out = await instance.run(new Uint8Array(S * S * 3).fill(128));
    let sum = 0;
    for (const p of out.probs) sum += p;
    if (!Number.isFinite(out.age) || !(Math.abs(sum - 1) < 1e-3)) {
      throw new ModelLoadError(`test run gave age ${out.age} and probabilities summing to ${sum}`);
    }
  } catch (err) {
    await session.release().catch(() => undefined);
    if (err instanceof ModelLoadError) throw err;
    throw new ModelLoadError(`test run failed: ${err instanceof Error ? err.message : String(err)}`);
  }
  return instance;
}
