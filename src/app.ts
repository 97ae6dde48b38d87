import { Hono } from 'hono';
import { cors } from 'hono/cors';
import { readConfig } from './config';
import { notFound, onError } from './middleware/errors';
import { loadAgeModel } from './model/age-model';
import { ModelRegistry } from './registry/registry';
import { ageRoutes } from './routes/age';
import { demoRoutes } from './routes/demo';
import { healthRoutes } from './routes/health';
import { modelRoutes } from './routes/models';

/**
 * One registry per isolate: the ORT session is the expensive part and is shared by every
 * request the isolate serves. Rebuilt only if the bucket binding or the prefix changes.
 */
let shared: { prefix: string; registry: ModelRegistry } | undefined;

export function isolateRegistry(env: Env): ModelRegistry {
  const config = readConfig(env);
  if (!shared || shared.prefix !== config.modelsPrefix) {
    shared = {
      prefix: config.modelsPrefix,
      registry: new ModelRegistry(env.MODELS, { prefix: config.modelsPrefix, refreshMs: config.activeRefreshMs, loader: loadAgeModel }),
    };
  }
  // The binding object is not promised to be the same across requests; always read through the current one.
  shared.registry.useStore(env.MODELS);
  return shared.registry;
}

export function createApp(registryFor: (env: Env) => ModelRegistry = isolateRegistry) {
  const app = new Hono<{ Bindings: Env }>();
  app.use(
    '*',
    cors({
      origin: (origin, c) => {
        const allowed = readConfig(c.env as Env).corsOrigin;
        if (allowed === '*') return '*';
        return allowed.split(',').map((s) => s.trim()).includes(origin) ? origin : null;
      },
      allowMethods: ['GET', 'HEAD', 'POST', 'OPTIONS'],
      allowHeaders: ['Content-Type'],
      maxAge: 86400,
    }),
  );
  app.route('/', demoRoutes());
  app.route('/v1/age', ageRoutes(registryFor));
  app.route('/v1/models', modelRoutes(registryFor));
  app.route('/healthz', healthRoutes(registryFor));
  app.notFound(notFound);
  app.onError(onError);
  return app;
}
