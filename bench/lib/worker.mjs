// The bench worker: wrangler dev (local workerd) on the bench entry (bench/lib/worker-entry.ts: the
// app plus GET /_bench/infer and POST /_bench/crops), never deployed, with a fresh local R2.
import { join } from 'node:path';
import { readVersionDir, startLocalWorker } from '../../scripts/lib.mjs';
import { seed } from '../../scripts/models.mjs';

/** startLocalWorker on the bench entry (bench/lib/worker-entry.ts). */
export function startBenchWorker(seedInto, vars = {}) {
  return startLocalWorker({ seedInto, entry: 'bench/lib/worker-entry.ts', vars, logLevel: 'warn', prefix: 'age-edge-bench-' });
}

/** startBenchWorker seeded from a models/ tree, and the manifest of the model it serves (npm run
 *  bench, bench:peers). Waits for /healthz; `stop()` ends it and removes its R2 state. */
export async function startBenchServer(modelsDir) {
  const { base, seeded: active, stop } = await startBenchWorker((persist) => seed(modelsDir, persist, () => {}));
  const { manifest } = readVersionDir(join(modelsDir, active.name, active.version));
  return { base, active, manifest, stop };
}
