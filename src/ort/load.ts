/**
 * onnxruntime-web inside workerd.
 *
 * workerd refuses to compile WebAssembly from bytes at run time (`WebAssembly.compile`,
 * `instantiate(bytes)`, `new WebAssembly.Module(bytes)` all throw); wasm has to arrive as a
 * module that wrangler precompiles at upload. onnxruntime-web, however, always ends in
 * `WebAssembly.instantiate(bytes, imports)` on `env.wasm.wasmBinary`, and it does not forward
 * emscripten's `instantiateWasm` hook. So:
 *
 *  1. import the "bundle" build (`onnxruntime-web/wasm`: the emscripten glue embedded, no
 *     dynamic `import()` of a separate .mjs) and the wasm file of the *same* release as a
 *     module (the CompiledWasm rule in wrangler.toml gives a `WebAssembly.Module`). A glue and
 *     a wasm from different builds fail with a LinkError on instantiate;
 *  2. hand ORT a tiny placeholder as `wasmBinary`, so it neither fetches nor locates a file;
 *  3. wrap `WebAssembly.instantiate` so that the one call carrying the placeholder
 *     instantiates the precompiled module with ORT's imports instead. Every other call goes
 *     to the original untouched, so the wrapper can stay installed.
 *
 * Threads and the proxy worker are off: Workers have no Web Workers, and an isolate runs one
 * inference at a time anyway.
 */
import * as ort from 'onnxruntime-web/wasm';
import ortWasmModule from 'onnxruntime-web/ort-wasm-simd-threaded.wasm';
import { SESSION_OPTIONS, WASM_THREADS } from './session-options';

export { ort };

/** A graph that could not be loaded, or that does not fit its manifest: the age model's or the detector's. */
export class ModelLoadError extends Error {
  override name = 'ModelLoadError';
}

// A valid, empty wasm header. ORT wraps it as `new Uint8Array(buffer)`, which shares this
// ArrayBuffer, so the wrapper recognises the call by buffer identity.
const PLACEHOLDER = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]).buffer;

let ready = false;
let memory: WebAssembly.Memory | undefined;

function isPlaceholder(source: unknown): boolean {
  return source === PLACEHOLDER || (ArrayBuffer.isView(source) && source.buffer === PLACEHOLDER);
}

/** Finds ORT's linear memory, imported (threaded builds) or exported, to report heap size. */
function findMemory(imports: unknown, instance: WebAssembly.Instance): WebAssembly.Memory | undefined {
  for (const value of Object.values(instance.exports)) {
    if (value instanceof WebAssembly.Memory) return value;
  }
  if (imports && typeof imports === 'object') {
    for (const ns of Object.values(imports as Record<string, unknown>)) {
      if (!ns || typeof ns !== 'object') continue;
      for (const value of Object.values(ns as Record<string, unknown>)) {
        if (value instanceof WebAssembly.Memory) return value;
      }
    }
  }
  return undefined;
}

function install(): void {
  if (ready) return;
  ready = true;
  ort.env.wasm.numThreads = WASM_THREADS;
  ort.env.wasm.proxy = false;
  ort.env.wasm.wasmBinary = PLACEHOLDER;
  ort.env.logLevel = 'error';

  type Instantiate = (source: unknown, imports?: unknown) => Promise<unknown>;
  const wasm = WebAssembly as unknown as { instantiate: Instantiate };
  const original: Instantiate = wasm.instantiate.bind(WebAssembly);
  wasm.instantiate = (source, imports) => {
    if (!isPlaceholder(source)) return original(source, imports);
    // Called with a Module, instantiate resolves to an Instance; emscripten expects the
    // bytes-form result `{ instance, module }`.
    return (original(ortWasmModule, imports) as Promise<WebAssembly.Instance>).then((instance) => {
      memory = findMemory(imports, instance);
      return { instance, module: ortWasmModule };
    });
  };
}

export type SessionInput = {
  model: Uint8Array;
  /** External-data files, under the name the graph refers to. */
  externalData?: { path: string; data: Uint8Array }[];
};

export async function createSession(input: SessionInput): Promise<ort.InferenceSession> {
  install();
  return ort.InferenceSession.create(input.model, {
    ...SESSION_OPTIONS,
    executionProviders: [...SESSION_OPTIONS.executionProviders],
    ...(input.externalData && input.externalData.length > 0 ? { externalData: input.externalData } : {}),
  });
}

/** Size of ORT's wasm linear memory in bytes (it grows and never shrinks); undefined before the first session. */
export function wasmHeapBytes(): number | undefined {
  return memory?.buffer.byteLength;
}
