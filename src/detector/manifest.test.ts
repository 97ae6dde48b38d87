import { describe, expect, it } from 'vitest';
import { shippedDetector } from '../../test/helpers/worker';
import { parseDetectorManifest } from './manifest';

describe('parseDetectorManifest', () => {
  it('accepts the shipped detector', async () => {
    const { manifestText } = await shippedDetector();
    const m = parseDetectorManifest(manifestText);
    expect(m).toMatchObject({ kind: 'face_detector', input: { layout: 'NCHW', range: [-1, 1] } });
    expect(m.files.find((f) => f.path === m.model)?.role).toBe('model');
  });

  it.each([
    ['kind', { kind: 'age' }, /kind "face_detector"/],
    ['layout', { input: { name: 'input', size: 128, dtype: 'float32', layout: 'NHWC', color: 'RGB', range: [-1, 1], resize: 'letterbox' } }, /float32 NCHW/],
    ['range', { input: { name: 'input', size: 128, dtype: 'float32', layout: 'NCHW', color: 'RGB', range: [1, -1], resize: 'letterbox' } }, /input.range/],
    ['anchors', { anchors: { strides: [0], per_layer: 2, offset: 0.5 } }, /anchors/],
    ['threshold', { score_threshold: 1.5 }, /score_threshold/],
    ['outputs', { outputs: { regressors: 'r' } }, /outputs/],
    ['path', { files: [{ path: '../x', role: 'model', sha256: 'a'.repeat(64), bytes: 1 }] }, /invalid file path/],
    ['model not in files', { model: 'other.onnx' }, /not listed/],
  ])('refuses a bad %s', async (_, patch, why) => {
    const { manifest } = await shippedDetector();
    expect(() => parseDetectorManifest(JSON.stringify({ ...manifest, ...patch }))).toThrow(why);
  });

  it('refuses a manifest of another version than active.json names', async () => {
    const { manifestText } = await shippedDetector();
    expect(() => parseDetectorManifest(manifestText, { name: 'blazeface-short-range', version: '999' })).toThrow(/expected blazeface-short-range\/999/);
  });
});
