import { OpenAPIHono } from '@hono/zod-openapi';
import { cors } from 'hono/cors';
import { requestId } from 'hono/request-id';
import { readConfig, type Config } from './config';
import type { AppEnv } from './context';
import { loadFaceDetector, type FaceDetector } from './detector/face-detector';
import { parseDetectorManifest } from './detector/manifest';
import { withConfig } from './middleware/config';
import { notFound, onError } from './middleware/errors';
import { rateLimit } from './middleware/rate-limit';
import { loadAgeModel, type AgeModel } from './model/age-model';
import { MODEL_TIERS, type ModelTier } from './registry/manifest';
import { ModelRegistry } from './registry/registry';
import { sharedAgeLoader } from './registry/shared';
import { ageRoutes } from './routes/age';
import { demoRoutes } from './routes/demo';
import { docsRoutes } from './routes/docs';
import { healthRoutes } from './routes/health';
import { modelRoutes } from './routes/models';
import { errorSchemaFor } from './schemas';

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
  for (const t of MODEL_TIERS) shared.registries.tiers[t].useStore(env.MODELS);
  shared.registries.detector.useStore(env.MODELS);
  return shared.registries;
}

/** What GET /v1/openapi.json says about the API as a whole. */
const DOCUMENT = {
  openapi: '3.1.0',
  info: {
    title: 'age-edge',
    version: '1',
    description:
      'Apparent age of the faces in a photo. Every error has the one shape {"error": {"code", "message", "request_id"}}. ' +
      'Every answer carries X-Request-Id. A path not listed here answers 404 (Error404); a listed path called with another method answers 405 (Error405). ' +
      '/v1/* is rate limited per client (429, Retry-After).',
  },
};

export function createApp(registriesFor: (env: Env, config: Config) => Registries = isolateRegistries) {
  const app = new OpenAPIHono<AppEnv>();
  // The request id first, so that every answer and log line has it; then the vars, parsed once.
  app.use('*', requestId());
  app.use('*', withConfig);
  app.use(
    '*',
    cors({
      origin: (origin, c) => {
        const allowed = (c.get('config') as Config).corsOrigin;
        if (allowed === '*') return '*';
        return allowed.split(',').map((s) => s.trim()).includes(origin) ? origin : null;
      },
      allowMethods: ['GET', 'HEAD', 'POST', 'OPTIONS'],
      allowHeaders: ['Content-Type'],
      exposeHeaders: ['X-Request-Id', 'Retry-After'],
      maxAge: 86400,
    }),
  );
  app.use('/v1/*', rateLimit);
  const routes = app
    .route('/', demoRoutes())
    .route('/docs', docsRoutes())
    .route('/v1/age', ageRoutes(registriesFor))
    .route('/v1/models', modelRoutes(registriesFor))
    .route('/healthz', healthRoutes(registriesFor));
  // The 404 and 405 answers are in the document as components, for the paths it does not list.
  app.openAPIRegistry.register('Error404', errorSchemaFor(404));
  app.openAPIRegistry.register('Error405', errorSchemaFor(405));
  app.doc31('/v1/openapi.json', DOCUMENT);
  app.notFound(notFound);
  app.onError(onError);
  return routes;
}

/** The routes and their types, for hono/client (client/index.ts). */
export type AppType = ReturnType<typeof createApp>;
