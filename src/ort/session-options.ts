/**
 * The onnxruntime-web session settings of the served model, in a module with no imports so the
 * Node evaluator (training/js/wasm-predict.mjs, which measures the model cards' numbers) runs the
 * model exactly as the Worker does.
 */
export const SESSION_OPTIONS = {
  executionProviders: ['wasm'],
  graphOptimizationLevel: 'all',
  // The CPU arena keeps freed blocks for reuse and only ever grows the heap; at batch 1 in
  // a 128 MB isolate the memory matters more than the allocator speed.
  enableCpuMemArena: false,
} as const;

/** One thread: Workers have no Web Workers, and an isolate runs one inference at a time. */
export const WASM_THREADS = 1;
