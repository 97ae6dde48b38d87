// The server's own decode and resize code, run in Node by the benchmarks (bench/peers.mjs,
// bench/capture.mjs) unchanged.
import { registerHooks } from 'node:module';

// src/ is written for the bundler (extensionless relative imports); let Node find its .ts files
// so the server's own decode and resize code runs here unchanged.
registerHooks({
  resolve(specifier, context, next) {
    try {
      return next(specifier, context);
    } catch (err) {
      if (err.code === 'ERR_MODULE_NOT_FOUND' && specifier.startsWith('.')) return next(`${specifier}.ts`, context);
      throw err;
    }
  },
});
export const { decodeImage } = await import('../../src/image/decode.ts');
export const { resizeCrop } = await import('../../src/image/resize.ts');
