// onnxruntime-web's wasm build in Node, set up as the Worker sets it up (src/ort/load.ts): the
// same package, the same wasm file (the one wrangler precompiles into the Worker), the same
// session options and thread count. Shared by training/js/wasm-predict.mjs (the model cards'
// numbers) and bench/peers.mjs.
import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import * as ort from 'onnxruntime-web/wasm';
import { SESSION_OPTIONS, WASM_THREADS } from '../../src/ort/session-options.ts';
import { ROOT } from '../../scripts/lib.mjs';

export { ort };

/** A session on `modelPath`; an M.onnx.data beside the model is passed as its external data. */
export async function createNodeSession(modelPath) {
  ort.env.wasm.numThreads = WASM_THREADS;
  ort.env.wasm.proxy = false;
  ort.env.wasm.wasmBinary = readFileSync(join(ROOT, 'node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm'));
  ort.env.logLevel = 'error';
  const data = `${modelPath}.data`;
  return ort.InferenceSession.create(readFileSync(modelPath), {
    ...SESSION_OPTIONS,
    executionProviders: [...SESSION_OPTIONS.executionProviders],
    ...(existsSync(data) ? { externalData: [{ path: basename(data), data: readFileSync(data) }] } : {}),
  });
}
