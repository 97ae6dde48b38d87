import { Hono } from 'hono';
import type { Registries } from '../app';
import { wasmHeapBytes } from '../ort/load';
import { methodNotAllowed } from '../middleware/errors';
import { MODEL_TIERS } from '../registry/manifest';
import { ModelUnavailableError, type ModelRegistry, type Served } from '../registry/registry';

/** A registry's state as /v1/models shows it. */
function describe<M extends Served>(registry: ModelRegistry<M>) {
  const status = registry.status();
  return {
    ...status,
    active: status.active && {
      name: status.active.name,
      version: status.active.version,
      loaded_at: status.active.loaded_at,
      metrics: (status.active.manifest as { metrics?: unknown }).metrics ?? null,
      manifest: status.active.manifest,
    },
  };
}

export function modelRoutes(registriesFor: (env: Env) => Registries) {
  const app = new Hono<{ Bindings: Env }>();

  /** The age model and the face detector being served, what active.json asks for, the last load failures. */
  app.get('/', async (c) => {
    const registries = registriesFor(c.env);
    // Loads (or picks up a new active.json) so the answer reflects what a request would get;
    // with no loadable age model this throws ModelUnavailableError: the usual 503 error shape.
    (await registries.age.acquire()).release();
    // A detector that cannot load is shown (load_error) rather than hiding the age model:
    // requests with a box or crop=image are still served.
    try {
      (await registries.detector.acquire()).release();
    } catch (err) {
      if (!(err instanceof ModelUnavailableError)) throw err;
    }
    // Each tier likewise: one that cannot load is shown with its load_error (a tier naming the
    // default's version shares its session).
    const tiers: Record<string, ReturnType<typeof describe>> = {};
    for (const t of MODEL_TIERS) {
      try {
        (await registries.tiers[t].acquire()).release();
      } catch (err) {
        if (!(err instanceof ModelUnavailableError)) throw err;
      }
      tiers[t] = describe(registries.tiers[t]);
    }
    c.header('Cache-Control', 'no-store');
    return c.json({
      ...describe(registries.age),
      tiers,
      detector: describe(registries.detector),
      wasm_heap_bytes: wasmHeapBytes() ?? null,
    });
  });
  app.all('/', methodNotAllowed('GET, HEAD, OPTIONS'));
  return app;
}
