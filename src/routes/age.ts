import { Hono } from 'hono';
import { readConfig } from '../config';
import { badRequest } from '../errors';
import { parseBox } from '../image/crop';
import { decodeImage } from '../image/decode';
import { imageBody, type ImageBodyVariables } from '../middleware/image-body';
import { methodNotAllowed } from '../middleware/errors';
import { predictAge } from '../model/predict';
import type { ModelRegistry } from '../registry/registry';

function parseTopK(raw: string | undefined, fallback: number, max: number): number {
  if (raw === undefined) return fallback;
  if (!/^\d{1,3}$/.test(raw) || Number(raw) > max) throw badRequest(`top_k must be an integer from 0 to ${max}.`);
  return Number(raw);
}

export function ageRoutes(registryFor: (env: Env) => ModelRegistry) {
  const app = new Hono<{ Bindings: Env; Variables: ImageBodyVariables }>();

  app.post('/', imageBody, async (c) => {
    const config = readConfig(c.env);
    const { bytes, box: rawBox } = c.get('upload');
    // Validate every parameter before the (slow) decode and model load.
    const box = parseBox(rawBox);
    const k = parseTopK(c.req.query('top_k'), config.topK, config.maxTopK);
    const image = decodeImage(bytes, { maxPixels: config.maxPixels, maxMemoryMB: config.jpegMaxMemoryMB });
    const lease = await registryFor(c.env).acquire();
    try {
      const result = await predictAge(lease.model, image, box, k, lease.fallback);
      c.header('Cache-Control', 'no-store');
      return c.json(result);
    } finally {
      lease.release();
    }
  });
  app.all('/', methodNotAllowed('POST, OPTIONS'));
  return app;
}
