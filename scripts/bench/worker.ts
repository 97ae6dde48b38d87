/**
 * Benchmark entry (used only by scripts/bench.mjs, never deployed): the production app plus
 * `GET /_bench/infer`, which runs the active model once on a fixed S×S crop so the client can
 * time inference alone. Timing happens on the client: in production Workers `performance.now()`
 * does not advance during compute.
 */
import { createApp, isolateRegistry } from '../../src/app';
import { wasmHeapBytes } from '../../src/ort/load';

const app = createApp();
let crop: Uint8Array | undefined;

function fixedCrop(size: number): Uint8Array {
  if (crop?.length !== size * size * 3) {
    crop = new Uint8Array(size * size * 3);
    let s = 12345;
    for (let i = 0; i < crop.length; i++) {
      s = (s * 1103515245 + 12345) >>> 0;
      crop[i] = s >>> 24;
    }
  }
  return crop;
}

export default {
  async fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === '/_bench/infer') {
      const lease = await isolateRegistry(env).acquire();
      try {
        const out = await lease.model.run(fixedCrop(lease.model.manifest.input.size));
        return Response.json({ age: out.age, wasm_heap_bytes: wasmHeapBytes() ?? null });
      } finally {
        lease.release();
      }
    }
    return app.fetch(request, env, ctx);
  },
} satisfies ExportedHandler<Env>;
