import { readConfig, type Config } from './config';
import { loadFaceDetector, type FaceDetector } from './detector/face-detector';
import { parseDetectorManifest } from './detector/manifest';
import { loadAgeModel, type AgeModel } from './model/age-model';
import { MODEL_TIERS, type ModelTier } from './registry/manifest';
import { ModelRegistry } from './registry/registry';
import { sharedAgeLoader } from './registry/shared';

/**
 * The registries an isolate serves from: the age model (active.json's default), each tier of it
 * (`model=fast|accurate`, active.json's `tiers`) and the face detector.
 */
export type Registries = { age: ModelRegistry<AgeModel>; tiers: Record<ModelTier, ModelRegistry<AgeModel>>; detector: ModelRegistry<FaceDetector> };

/**
 * One pair of registries per isolate: the ORT sessions are the expensive part and are shared
 * by every request the isolate serves. Rebuilt only if the bucket prefixes change.
 */
let shared: { key: string; registries: Registries } | undefined;

export function isolateRegistries(env: Env, config: Config = readConfig(env)): Registries {
  const key = `${config.modelsPrefix}\n${config.detectorsPrefix}`;
  if (!shared || shared.key !== key) {
    // One session per version, however many of the default and the tiers name it.
    const loader = sharedAgeLoader(loadAgeModel);
    const age = (tier?: ModelTier) => new ModelRegistry(env.MODELS, { prefix: config.modelsPrefix, refreshMs: config.activeRefreshMs, loader, ...(tier ? { tier } : {}) });
    shared = {
      key,
      registries: {
        age: age(),
        tiers: Object.fromEntries(MODEL_TIERS.map((t) => [t, age(t)])) as Record<ModelTier, ModelRegistry<AgeModel>>,
        detector: new ModelRegistry<FaceDetector>(env.MODELS, {
          prefix: config.detectorsPrefix,
          refreshMs: config.activeRefreshMs,
          loader: loadFaceDetector,
          parse: parseDetectorManifest,
          what: 'face detector',
        }),
      },
    };
  }
  // The binding object is not promised to be the same across requests; always read through the current one.
  shared.registries.age.useStore(env.MODELS);
  for (const t of MODEL_TIERS) shared.registries.tiers[t]!.useStore(env.MODELS);
  shared.registries.detector.useStore(env.MODELS);
  return shared.registries;
}

/** How the routes get the registries of a request (tests pass small fakes). */
export type RegistriesFor = (env: Env, config: Config) => Registries;
