import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import type { AppEnv } from '../context';
import page from '../docs/index.html';
import { methodNotAllowed } from '../middleware/errors';

// Self-contained like the demo page: its one request is for the document, on this origin.
const CSP = ["default-src 'none'", "script-src 'unsafe-inline'", "style-src 'unsafe-inline'", "connect-src 'self'", "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'"].join('; ');

export const docsRoute = createRoute({
  method: 'get',
  path: '/',
  summary: 'This document, readable',
  description: 'A small page that renders GET /v1/openapi.json: paths, parameters, bodies, answers and schemas.',
  responses: { 200: { description: 'An HTML page.', content: { 'text/html': { schema: z.string() } } } },
});

/** GET /docs: renders /v1/openapi.json in the browser, with nothing loaded from elsewhere. */
export function docsRoutes() {
  return new OpenAPIHono<AppEnv>()
    .openapi(docsRoute, (c) => {
      c.header('Content-Security-Policy', CSP);
      c.header('Cache-Control', 'no-cache');
      return c.html(page, 200);
    })
    .all('/', methodNotAllowed('GET, HEAD'));
}
