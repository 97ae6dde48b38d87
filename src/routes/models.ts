import { createRoute, OpenAPIHono } from '@hono/zod-openapi';
import type { AppEnv } from '../context';
import { wasmHeapBytes } from '../ort/load';
import { methodNotAllowed } from '../middleware/errors';
import { fittedTargets } from '../model/calibration';
import { MODEL_TIERS, type Calibration } from '../registry/manifest';
import { ModelUnavailableError, type ModelRegistry, type Served } from '../registry/registry';
import type { RegistriesFor } from '../registries';
import { errorResponses, ModelsSchema } from '../schemas';

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
      false_accept_targets: fittedTargets((status.active.manifest as { calibration?: Calibration }).calibration),
      manifest: status.active.manifest,
    },
  };
}

export const modelsRoute = createRoute({
  method: 'get',
  path: '/',
  summary: 'The models being served',
  description: 'The age model (top level) and the face detector: what is loaded, what active.json asks for, the last load failure.',
  responses: {
    200: { description: 'The registries of this isolate.', content: { 'application/json': { schema: ModelsSchema } } },
    ...errorResponses(429, 500, 503),
  },
});

export function modelRoutes(registriesFor: RegistriesFor) {
  /** The age model and the face detector being served, what active.json asks for, the last load failures. */
  return new OpenAPIHono<AppEnv>().openapi(modelsRoute, async (c) => {
    const registries = registriesFor(c.env, c.var.config);
    // Loads (or picks up a new active.json) so the answer reflects what a request would get;
    // with no loadable age model this throws ModelUnavailableError: the usual 503 error shape.
    (await registries.age.acquire(c.var.requestId)).release();
    // A detector that cannot load is shown (load_error) rather than hiding the age model:
    // requests with a box or crop=image are still served.
    try {
      (await registries.detector.acquire(c.var.requestId)).release();
    } catch (err) {
      if (!(err instanceof ModelUnavailableError)) throw err;
    }
    // Each tier likewise: one that cannot load is shown with its load_error (a tier naming the
    // default's version shares its session).
    const tiers: Record<string, ReturnType<typeof describe>> = {};
    for (const t of MODEL_TIERS) {
      try {
        (await registries.tiers[t]!.acquire(c.var.requestId)).release();
      } catch (err) {
        if (!(err instanceof ModelUnavailableError)) throw err;
      }
      tiers[t] = describe(registries.tiers[t]!);
    }
    c.header('Cache-Control', 'no-store');
    return c.json({
      ...describe(registries.age),
      tiers,
      detector: describe(registries.detector),
      wasm_heap_bytes: wasmHeapBytes() ?? null,
    }, 200);
  }).all('/', methodNotAllowed('GET, HEAD, OPTIONS'));
}
