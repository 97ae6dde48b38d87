import { describe, expect, it } from 'vitest';
import { readConfig } from './config';

describe('readConfig', () => {
  it('parses the vars of wrangler.toml', () => {
    expect(readConfig({ MAX_BODY_BYTES: '1000', MAX_PIXELS: '2000000', TOP_K: '3', MAX_TOP_K: '10', ACTIVE_REFRESH_SECONDS: '5', CORS_ORIGIN: 'https://a.example' })).toMatchObject({
      maxBodyBytes: 1000, maxPixels: 2_000_000, topK: 3, maxTopK: 10, activeRefreshMs: 5000, corsOrigin: 'https://a.example',
    });
  });

  it('reads the face limits and the detector settings, the default capped by the limit', () => {
    expect(readConfig({ MAX_FACES: '3', MAX_FACES_LIMIT: '8', DETECTORS_PREFIX: 'd/', DETECTOR_TILES: 'false' })).toMatchObject({
      maxFaces: 3, maxFacesLimit: 8, detectorsPrefix: 'd/', detectorTileLevels: 0,
    });
    expect(readConfig({ MAX_FACES: '50', MAX_FACES_LIMIT: '10', DETECTOR_TILES: 'yes' })).toMatchObject({ maxFaces: 10, detectorTileLevels: 2 });
    expect(readConfig({ DETECTOR_TILES: '1' })).toMatchObject({ detectorTileLevels: 1 });
    expect(readConfig({ DETECTOR_TILES: '7' })).toMatchObject({ detectorTileLevels: 2 });
    expect(readConfig({})).toMatchObject({ maxFaces: 5, maxFacesLimit: 10, detectorsPrefix: 'models/detectors/', detectorTileLevels: 2 });
  });

  it('falls back to safe defaults instead of lifting a limit on a typo', () => {
    const c = readConfig({ MAX_BODY_BYTES: '8MB', MAX_PIXELS: '-1', TOP_K: '50', MAX_TOP_K: '20', ACTIVE_REFRESH_SECONDS: '' });
    expect(c).toMatchObject({ maxBodyBytes: 8 * 1024 * 1024, maxPixels: 4_000_000, topK: 20, activeRefreshMs: 30_000, corsOrigin: '*' });
  });
});
