import { Hono } from 'hono';
import { wasmHeapBytes } from '../ort/load';
import { methodNotAllowed } from '../middleware/errors';
import type { ModelRegistry } from '../registry/registry';

export function modelRoutes(registryFor: (env: Env) => ModelRegistry) {
  const app = new Hono<{ Bindings: Env }>();

  /** The model being served, what active.json asks for, and the last load failure if any. */
  app.get('/', async (c) => {
    const registry = registryFor(c.env);
    let unavailable: string | undefined;
    try {
      // Loads (or picks up a new active.json) so the answer reflects what a request would get.
      (await registry.acquire()).release();
    } catch (err) {
      unavailable = err instanceof Error ? err.message : String(err);
    }
    const status = registry.status();
    const heap = wasmHeapBytes();
    const body = {
      ...status,
      active: status.active && {
        name: status.active.name,
        version: status.active.version,
        loaded_at: status.active.loaded_at,
        metrics: status.active.manifest.metrics ?? null,
        manifest: status.active.manifest,
      },
      wasm_heap_bytes: heap ?? null,
    };
    c.header('Cache-Control', 'no-store');
    if (unavailable !== undefined) {
      return c.json({ ...body, error: { code: 'model_unavailable', message: unavailable, detail: status.error } }, 503);
    }
    return c.json(body);
  });
  app.all('/', methodNotAllowed('GET, HEAD, OPTIONS'));
  return app;
}
