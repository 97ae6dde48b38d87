import { Hono } from 'hono';
import { methodNotAllowed } from '../middleware/errors';
import type { ModelRegistry } from '../registry/registry';

/** Liveness: answers without touching R2 or loading a model, so it stays cheap. */
export function healthRoutes(registryFor: (env: Env) => ModelRegistry) {
  const app = new Hono<{ Bindings: Env }>();
  app.get('/', (c) => {
    c.header('Cache-Control', 'no-store');
    return c.json({ status: 'ok', model_loaded: registryFor(c.env).isLoaded });
  });
  app.all('/', methodNotAllowed('GET, HEAD'));
  return app;
}
