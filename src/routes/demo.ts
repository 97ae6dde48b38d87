import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import type { AppEnv } from '../context';
import { methodNotAllowed } from '../middleware/errors';
import page from '../demo/index.html';

// The page loads nothing from elsewhere: its script and style are inline, the photo stays a blob.
const CSP = [
  "default-src 'none'",
  "script-src 'unsafe-inline'",
  "style-src 'unsafe-inline'",
  'img-src blob: data:',
  "connect-src 'self'",
  'media-src blob: mediastream:',
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export const demoRoute = createRoute({
  method: 'get',
  path: '/',
  summary: 'The demo page',
  description: 'Pick, drop or take a photo; it is downscaled in the browser to MAX_PIXELS and sent to POST /v1/age.',
  responses: { 200: { description: 'An HTML page.', content: { 'text/html': { schema: z.string() } } } },
});

/** GET /: the demo page, with this deployment's pixel limit, so it downscales photos to fit. */
export function demoRoutes() {
  return new OpenAPIHono<AppEnv>()
    .openapi(demoRoute, (c) => {
      c.header('Content-Security-Policy', CSP);
      c.header('Cache-Control', 'no-cache');
      return c.html(page.replace('__MAX_PIXELS__', String(c.var.config.maxPixels)), 200);
    })
    .all('/', methodNotAllowed('GET, HEAD'));
}
