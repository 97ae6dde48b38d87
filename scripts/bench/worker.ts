/**
 * Benchmark entry (used only by scripts/bench.mjs and scripts/bench-photos.mjs, never
 * deployed): the production app plus
 *   GET /_bench/infer   the active age model once on a fixed S×S crop,
 *   POST /_bench/detect the face detector alone on the posted JPEG (decode not included in
 *                       what the client subtracts: it times /_bench/decode too),
 *   POST /_bench/decode the JPEG decode alone,
 * so the client can time each part. Timing happens on the client: in production Workers
 * `performance.now()` does not advance during compute.
 */
import { createApp } from '../../src/app';
import { isolateRegistries } from '../../src/registries';
import { decodeImage } from '../../src/image/decode';
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

const LIMITS = { maxPixels: 4_000_000, maxMemoryMB: 64 };

export default {
  async fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === '/_bench/infer') {
      const lease = await isolateRegistries(env).age.acquire();
      try {
        const out = await lease.model.run(fixedCrop(lease.model.manifest.input.size));
        return Response.json({ age: out.age, wasm_heap_bytes: wasmHeapBytes() ?? null });
      } finally {
        lease.release();
      }
    }
    if (url.pathname === '/_bench/decode' || url.pathname === '/_bench/detect') {
      const image = decodeImage(new Uint8Array(await request.arrayBuffer()), LIMITS);
      if (url.pathname === '/_bench/decode') return Response.json({ width: image.width });
      const lease = await isolateRegistries(env).detector.acquire();
      try {
        return Response.json({ faces: (await lease.model.detect(image)).length });
      } finally {
        lease.release();
      }
    }
    return app.fetch(request, env, ctx);
  },
} satisfies ExportedHandler<Env>;
