/**
 * Benchmark entry (used only by bench/cost.mjs and bench/photos.mjs, never
 * deployed): the production app plus
 *   GET /_bench/infer   the active age model once on a fixed S×S crop,
 *   POST /_bench/detect the face detector alone on the posted JPEG, tiles per DETECTOR_TILES
 *                       (the client subtracts /_bench/decode's time), and every face it found,
 *   POST /_bench/decode the JPEG decode alone,
 *   POST /_bench/crops  every face the photo path finds in the posted JPEG, with the exact input
 *                       the age model would read for it (training/js/photo-crops.mjs: training faces),
 *   GET /_bench/quality?repeat=N  capture quality measured N times on that fixed crop (what
 *                       `quality` adds per face: the client divides by N),
 * so the client can time each part. Timing happens on the client: in production Workers
 * `performance.now()` does not advance during compute.
 */
import { createApp } from '../../src/app';
import { readConfig } from '../../src/config';
import { frameFace } from '../../src/image/crop';
import { decodeImage } from '../../src/image/decode';
import { modelInput } from '../../src/model/predict';
import { measureQuality } from '../../src/model/quality';
import { wasmHeapBytes } from '../../src/ort/load';
import { isolateRegistries } from '../../src/registries';
import { framingOf } from '../../src/registry/manifest';

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

/** The decode limits the app applies (MAX_PIXELS, JPEG_MAX_MEMORY_MB), so a bench that raises them measures larger photos. */
const limits = (env: Env) => {
  const config = readConfig(env);
  return { maxPixels: config.maxPixels, maxMemoryMB: config.jpegMaxMemoryMB };
};

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
    if (url.pathname === '/_bench/quality') {
      const lease = await isolateRegistries(env).age.acquire();
      const size = lease.model.manifest.input.size;
      lease.release();
      const repeat = Math.min(1000, Math.max(1, Number(url.searchParams.get('repeat')) || 1));
      let score = 0;
      for (let i = 0; i < repeat; i++) score += measureQuality(fixedCrop(size), size, 2 * size, null).score;
      return Response.json({ repeat, score: score / repeat });
    }
    if (url.pathname === '/_bench/crops') return crops(new Uint8Array(await request.arrayBuffer()), env);
    if (url.pathname === '/_bench/decode' || url.pathname === '/_bench/detect') {
      const image = decodeImage(new Uint8Array(await request.arrayBuffer()), limits(env));
      if (url.pathname === '/_bench/decode') return Response.json({ width: image.width });
      const lease = await isolateRegistries(env).detector.acquire();
      try {
        const found = await lease.model.detect(image, { tileLevels: readConfig(env).detectorTileLevels });
        return Response.json({ faces: found.map((d) => ({ box: d.box, score: d.score })) });
      } finally {
        lease.release();
      }
    }
    return app.fetch(request, env, ctx);
  },
} satisfies ExportedHandler<Env>;

/** The faces POST /v1/age would find (the same detector, tiles per DETECTOR_TILES) and, for each,
 *  the bytes estimateAge would run the active model on, base64 (uint8 S×S×3 RGB). */
async function crops(bytes: Uint8Array, env: Env): Promise<Response> {
  const image = decodeImage(bytes, limits(env));
  const registries = isolateRegistries(env);
  const detector = await registries.detector.acquire();
  let found;
  try {
    found = [];
    // As POST /v1/age frames them: each face looked at again alone.
    for (const d of await detector.model.detect(image, { tileLevels: readConfig(env).detectorTileLevels })) found.push(await detector.model.refine(image, d));
  } finally {
    detector.release();
  }
  const age = await registries.age.acquire();
  try {
    const framing = framingOf(age.model.manifest);
    const size = age.model.manifest.input.size;
    const faces = found.map((d) => {
      const { crop, roll } = frameFace(d.box, d.keypoints, framing);
      return { box: d.box, roll, pixels: Buffer.from(modelInput(image, crop, roll, size)).toString('base64') };
    });
    return Response.json({ size, faces });
  } finally {
    age.release();
  }
}
