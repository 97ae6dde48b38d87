import { TILE_LEVELS } from './detector/tiles';

/** Limits and settings from `[vars]` (strings, so they can be edited in the dashboard), parsed once per request. */
export type Config = {
  maxBodyBytes: number;
  maxPixels: number;
  jpegMaxMemoryMB: number;
  topK: number;
  maxTopK: number;
  maxFaces: number;
  maxFacesLimit: number;
  modelsPrefix: string;
  detectorsPrefix: string;
  /** How many of the detector's tile levels to read (TILE_LEVELS: half, then quarter tiles); 0: the whole photo only. */
  detectorTileLevels: number;
  activeRefreshMs: number;
  corsOrigin: string;
};

type Vars = Pick<Env, 'MAX_BODY_BYTES' | 'MAX_PIXELS' | 'JPEG_MAX_MEMORY_MB' | 'TOP_K' | 'MAX_TOP_K' | 'MAX_FACES' | 'MAX_FACES_LIMIT' | 'MODELS_PREFIX' | 'DETECTORS_PREFIX' | 'DETECTOR_TILES' | 'ACTIVE_REFRESH_SECONDS' | 'CORS_ORIGIN'>;

function int(raw: string | undefined, fallback: number, min: number): number {
  const v = raw === undefined || raw === '' ? NaN : Number(raw);
  // A typo in a var must not silently lift a limit: fall back to the safe default.
  return Number.isFinite(v) && v >= min ? Math.floor(v) : fallback;
}

export function readConfig(env: Partial<Vars>): Config {
  const maxTopK = int(env.MAX_TOP_K, 20, 1);
  const maxFacesLimit = int(env.MAX_FACES_LIMIT, 10, 1);
  return {
    maxBodyBytes: int(env.MAX_BODY_BYTES, 8 * 1024 * 1024, 1),
    maxPixels: int(env.MAX_PIXELS, 4_000_000, 1),
    jpegMaxMemoryMB: int(env.JPEG_MAX_MEMORY_MB, 64, 1),
    topK: Math.min(int(env.TOP_K, 5, 0), maxTopK),
    maxTopK,
    maxFaces: Math.min(int(env.MAX_FACES, 5, 1), maxFacesLimit),
    maxFacesLimit,
    modelsPrefix: env.MODELS_PREFIX ?? 'models/',
    detectorsPrefix: env.DETECTORS_PREFIX ?? 'models/detectors/',
    // "false" is no tiles, a digit that many levels, anything else all of them: the safe
    // default is the one that finds more faces.
    detectorTileLevels: tileLevels(env.DETECTOR_TILES),
    activeRefreshMs: int(env.ACTIVE_REFRESH_SECONDS, 30, 0) * 1000,
    corsOrigin: env.CORS_ORIGIN || '*',
  };
}

function tileLevels(raw: string | undefined): number {
  if (raw === 'false') return 0;
  return raw !== undefined && /^\d$/.test(raw) ? Math.min(Number(raw), TILE_LEVELS.length) : TILE_LEVELS.length;
}
