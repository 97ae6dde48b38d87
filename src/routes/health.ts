import { Hono } from 'hono';
import type { Registries } from '../app';
import { methodNotAllowed } from '../middleware/errors';

/** Liveness: answers without touching R2 or loading a model, so it stays cheap. */
export function healthRoutes(registriesFor: (env: Env) => Registries) {
  const app = new Hono<{ Bindings: Env }>();
  app.get('/', (c) => {
    c.header('Cache-Control', 'no-store');
    const r = registriesFor(c.env);
    return c.json({ status: 'ok', model_loaded: r.age.isLoaded, detector_loaded: r.detector.isLoaded });
  });
  app.all('/', methodNotAllowed('GET, HEAD'));
  return app;
}
