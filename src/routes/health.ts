import { createRoute, OpenAPIHono } from '@hono/zod-openapi';
import type { AppEnv } from '../context';
import { methodNotAllowed } from '../middleware/errors';
import type { RegistriesFor } from '../registries';
import { errorResponses, HealthSchema } from '../schemas';

export const healthRoute = createRoute({
  method: 'get',
  path: '/',
  summary: 'Liveness',
  description: 'Answers without touching R2 or loading a model; says whether the isolate has them loaded.',
  responses: {
    200: { description: 'The worker is up.', content: { 'application/json': { schema: HealthSchema } } },
    ...errorResponses(500),
  },
});

/** Liveness: answers without touching R2 or loading a model, so it stays cheap. */
export function healthRoutes(registriesFor: RegistriesFor) {
  return new OpenAPIHono<AppEnv>()
    .openapi(healthRoute, (c) => {
      c.header('Cache-Control', 'no-store');
      const r = registriesFor(c.env, c.var.config);
      return c.json({ status: 'ok' as const, model_loaded: r.age.isLoaded, detector_loaded: r.detector.isLoaded }, 200);
    })
    .all('/', methodNotAllowed('GET, HEAD'));
}
