import { Hono } from 'hono';
import { wasmHeapBytes } from '../ort/load';
import { methodNotAllowed } from '../middleware/errors';
import type { ModelRegistry } from '../registry/registry';

export function modelRoutes(registryFor: (env: Env) => ModelRegistry) {
  const app = new Hono<{ Bindings: Env }>();

  /** The model being served, what active.json asks for, and the last load failure if any. */
  app.get('/', async (c) => {
    const registry = registryFor(c.env);
    // Loads (or picks up a new active.json) so the answer reflects what a request would get;
    // with no loadable model this throws ModelUnavailableError: the usual 503 error shape.
    (await registry.acquire()).release();
    const status = registry.status();
    c.header('Cache-Control', 'no-store');
    return c.json({
      ...status,
      active: status.active && {
        name: status.active.name,
        version: status.active.version,
        loaded_at: status.active.loaded_at,
        metrics: status.active.manifest.metrics ?? null,
        manifest: status.active.manifest,
      },
      wasm_heap_bytes: wasmHeapBytes() ?? null,
    });
  });
  app.all('/', methodNotAllowed('GET, HEAD, OPTIONS'));
  return app;
}
