import { Hono } from 'hono';
import { readConfig } from '../config';
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

/** GET /: the demo page, with this deployment's pixel limit, so it downscales photos to fit. */
export function demoRoutes() {
  const app = new Hono<{ Bindings: Env }>();
  app.get('/', (c) => {
    c.header('Content-Security-Policy', CSP);
    c.header('Cache-Control', 'no-cache');
    return c.html(page.replace('__MAX_PIXELS__', String(readConfig(c.env).maxPixels)));
  });
  app.all('/', methodNotAllowed('GET, HEAD'));
  return app;
}
