import { OpenAPIHono } from '@hono/zod-openapi';
import { cors } from 'hono/cors';
import { requestId } from 'hono/request-id';
import type { Config } from './config';
import type { AppEnv } from './context';
import { withConfig } from './middleware/config';
import { notFound, onError } from './middleware/errors';
import { rateLimit } from './middleware/rate-limit';
import { isolateRegistries, type RegistriesFor } from './registries';
import { ageRoutes } from './routes/age';
import { demoRoutes } from './routes/demo';
import { docsRoutes } from './routes/docs';
import { healthRoutes } from './routes/health';
import { modelRoutes } from './routes/models';
import { errorSchemaFor } from './schemas';

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

export function createApp(registriesFor: RegistriesFor = isolateRegistries) {
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
