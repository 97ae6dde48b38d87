/** Limits and settings from `[vars]` (strings, so they can be edited in the dashboard), parsed once per request. */
export type Config = {
  maxBodyBytes: number;
  maxPixels: number;
  jpegMaxMemoryMB: number;
  topK: number;
  maxTopK: number;
  modelsPrefix: string;
  activeRefreshMs: number;
  corsOrigin: string;
};

type Vars = Pick<Env, 'MAX_BODY_BYTES' | 'MAX_PIXELS' | 'JPEG_MAX_MEMORY_MB' | 'TOP_K' | 'MAX_TOP_K' | 'MODELS_PREFIX' | 'ACTIVE_REFRESH_SECONDS' | 'CORS_ORIGIN'>;

function int(raw: string | undefined, fallback: number, min: number): number {
  const v = raw === undefined || raw === '' ? NaN : Number(raw);
  // A typo in a var must not silently lift a limit: fall back to the safe default.
  return Number.isFinite(v) && v >= min ? Math.floor(v) : fallback;
}

export function readConfig(env: Partial<Vars>): Config {
  const maxTopK = int(env.MAX_TOP_K, 20, 1);
  return {
    maxBodyBytes: int(env.MAX_BODY_BYTES, 8 * 1024 * 1024, 1),
    maxPixels: int(env.MAX_PIXELS, 4_000_000, 1),
    jpegMaxMemoryMB: int(env.JPEG_MAX_MEMORY_MB, 64, 1),
    topK: Math.min(int(env.TOP_K, 5, 0), maxTopK),
    maxTopK,
    modelsPrefix: env.MODELS_PREFIX ?? 'models/',
    activeRefreshMs: int(env.ACTIVE_REFRESH_SECONDS, 30, 0) * 1000,
    corsOrigin: env.CORS_ORIGIN || '*',
  };
}
