// wrangler dev (local workerd) on the bench entry (scripts/bench/worker.ts: the app plus
// GET /_bench/infer) with a fresh local R2 seeded from a models/ tree, and the manifest of the
// model it serves. Used by `npm run bench` and `npm run bench:peers`.
import { join } from 'node:path';
import { readVersionDir, startBenchWorker } from '../lib.mjs';
import { seed } from '../models.mjs';

/** Starts the server and waits for /healthz; `stop()` ends it and removes its R2 state. */
export async function startBenchServer(modelsDir) {
  const { base, seeded: active, stop } = await startBenchWorker((persist) => seed(modelsDir, persist, () => {}));
  const { manifest } = readVersionDir(join(modelsDir, active.name, active.version));
  return { base, active, manifest, stop };
}
