import { describe, expect, it } from 'vitest';
import committedSchema from '../../contract/manifest.schema.json';
import { framingOf, manifestJsonSchema, parseActive, parseManifest } from './manifest';

const valid = {
  schema: 1, name: 'al-resnet18-utkface', version: '2026.11.27-1', arch: 'al_resnet18',
  input: { name: 'image', size: 64, dtype: 'uint8', layout: 'NHWC', color: 'RGB' },
  outputs: ['age', 'probs', 'global_age', 'local_age', 'box'],
  face_margin: 0.4, ages: { min: 0, max: 100 }, fusion: { global: 1, local: 0.5 }, temperature: 1,
  model: 'model.int8.onnx',
  files: [
    { path: 'model.int8.onnx', role: 'model', sha256: 'a'.repeat(64), bytes: 123 },
    { path: 'model.int8.onnx.data', role: 'external_data', sha256: 'b'.repeat(64), bytes: 456 },
  ],
  metrics: { mae_int8: 5.2 },
};

describe('parseManifest', () => {
  it('accepts the example of the model contract', () => {
    expect(parseManifest(JSON.stringify(valid)).input.size).toBe(64);
    expect(parseManifest(JSON.stringify(valid), { name: 'al-resnet18-utkface', version: '2026.11.27-1' }).model).toBe('model.int8.onnx');
  });

  it.each([
    ['schema', { schema: 2 }, /schema/],
    ['layout', { input: { ...valid.input, layout: 'NCHW' } }, /uint8 NHWC RGB/],
    ['size', { input: { ...valid.input, size: 0 } }, /input.size/],
    ['outputs', { outputs: ['age'] }, /outputs must include/],
    ['margin', { face_margin: -1 }, /face_margin/],
    ['ages', { ages: { min: 0, max: 0 } }, /ages/],
    ['model not in files', { model: 'other.onnx' }, /not listed/],
    ['sha', { files: [{ ...valid.files[0], sha256: 'ABC' }] }, /sha256/],
    ['path traversal', { files: [{ ...valid.files[0], path: '../x.onnx' }] }, /invalid file path/],
    ['name', { name: 'a/b' }, /invalid name/],
    ['framing scale', { framing: { scale: 0, offset_x: 0, offset_y: 0 } }, /framing/],
    ['framing offset', { framing: { scale: 1.1, offset_x: 'a', offset_y: 0 } }, /framing/],
    ['framing keypoints', { framing: { scale: 1.1, offset_x: 0, offset_y: 0, keypoints: { offset_x: 3, offset_y: 0 } } }, /framing.keypoints/],
    ['template without its points', { framing: { scale: 1.1, offset_x: 0, offset_y: 0, keypoints: { offset_x: 0, offset_y: 0, template: [[0.3, 0.3], [0.7, 0.3], [0.5, 0.5], [0.5, 0.7]] } } }, /framing.keypoints.template/],
    ['template point index', { framing: { scale: 1.1, offset_x: 0, offset_y: 0, keypoints: { offset_x: 0, offset_y: 0, template: [[0.3, 0.3], [0.7, 0.3], [0.5, 0.5], [0.5, 0.7]], template_points: [0, 1, 4] } } }, /framing.keypoints.template/],
    ['template point twice', { framing: { scale: 1.1, offset_x: 0, offset_y: 0, keypoints: { offset_x: 0, offset_y: 0, template: [[0.3, 0.3], [0.7, 0.3], [0.5, 0.5], [0.5, 0.7]], template_points: [1, 1] } } }, /framing.keypoints.template/],
  ])('rejects a bad %s', (_, patch, why) => {
    expect(() => parseManifest(JSON.stringify({ ...valid, ...patch }))).toThrow(why);
  });

  it('rejects a manifest of another version and non-JSON', () => {
    expect(() => parseManifest(JSON.stringify(valid), { name: 'al-resnet18-utkface', version: '2' })).toThrow(/expected/);
    expect(() => parseManifest('{')).toThrow(/not valid JSON/);
  });
});

describe('framingOf', () => {
  it('reads the measured framing, or makes the old face_margin box square', () => {
    const measured = { scale: 1.0859, offset_x: 0.0025, offset_y: -0.0257, keypoints: { offset_x: 0.004, offset_y: -0.016 }, measured: { split: 'train' } };
    expect(framingOf(parseManifest(JSON.stringify({ ...valid, framing: measured })))).toEqual({
      scale: 1.0859, offset_x: 0.0025, offset_y: -0.0257, keypoints: { offset_x: 0.004, offset_y: -0.016 },
    });
    expect(framingOf(parseManifest(JSON.stringify(valid)))).toEqual({ scale: 1.8, offset_x: 0, offset_y: 0 });
  });

  it('carries a keypoint template with the points it fits', () => {
    const template = [[0.3, 0.3], [0.7, 0.3], [0.5, 0.5], [0.5, 0.7]];
    const framing = { scale: 1.1, offset_x: 0, offset_y: 0, keypoints: { offset_x: 0, offset_y: -0.01, template, template_points: [0, 1, 2, 3] } };
    expect(framingOf(parseManifest(JSON.stringify({ ...valid, framing })))).toEqual(framing);
  });
});

describe('parseActive', () => {
  it('reads name and version', () => {
    expect(parseActive('{"name":"m","version":"1"}')).toEqual({ name: 'm', version: '1' });
    expect(() => parseActive('{"name":"m"}')).toThrow();
    expect(() => parseActive('[]')).toThrow();
    expect(() => parseActive('{"name":"m","version":"../../etc"}')).toThrow(/invalid/);
  });

  it('reads a tier from "tiers", the default from the top level', () => {
    const text = JSON.stringify({ name: 'm', version: '3', default: 'accurate', tiers: { fast: { name: 'f', version: '4' }, accurate: { name: 'm', version: '3' } } });
    expect(parseActive(text)).toEqual({ name: 'm', version: '3' });
    expect(parseActive(text, 'fast')).toEqual({ name: 'f', version: '4' });
    expect(() => parseActive('{"name":"m","version":"1"}', 'fast')).toThrow(/names no "fast" tier/);
    expect(() => parseActive(JSON.stringify({ name: 'm', version: '1', tiers: { fast: { name: 'f' } } }), 'fast')).toThrow(/"fast" tier must be/);
    expect(() => parseActive(JSON.stringify({ name: 'm', version: '1', tiers: { fast: { name: 'f', version: '..' } } }), 'fast')).toThrow(/invalid/);
  });
});

describe('parseManifest: the calibration training/calibration.py writes', () => {
  const bands = [[0.9, 1.0001], [0.5, 0.9], [0.15, 0.5], [0, 0.15]] as const;
  const calibration = {
    range_levels: [{ from: 0, to: 12, level: 0.6 }, { from: 13, to: null, level: 0.8 }],
    widening: bands.map(([from, to], i) => ({ from, to, tau: 1 + i / 10 })),
    decision: { target: 0.01, ages: { '18': bands.map(([from, to], i) => ({ from, to, min_p: i === 3 ? null : 0.98 })) } },
    other_decisions: [{ target: 0.02, ages: { '18': bands.map(([from, to], i) => ({ from, to, min_p: i === 3 ? null : 0.97 })) } }],
    fitted: { split: 'val' },
  };

  it('is read back as it was written', () => {
    const m = parseManifest(JSON.stringify({ ...valid, calibration }));
    expect(m.calibration?.widening.map((b) => b.tau)).toEqual([1, 1.1, 1.2, 1.3]);
    expect(m.calibration?.decision.ages['18']![3]!.min_p).toBeNull();
    expect(m.calibration?.other_decisions?.[0]!.ages['18']![0]!.min_p).toBe(0.97);
  });

  it('takes a calibration without other targets (manifests written before false_accept=)', () => {
    const { other_decisions: _, ...older } = calibration;
    expect(parseManifest(JSON.stringify({ ...valid, calibration: older })).calibration?.other_decisions).toBeUndefined();
  });

  it.each([
    ['a gap between quality bands', { widening: [{ from: 0.5, to: 1.0001, tau: 1 }, { from: 0, to: 0.4, tau: 1 }] }, /widening/],
    ['a tau of 0', { widening: bands.map(([from, to]) => ({ from, to, tau: 0 })) }, /widening/],
    ['bands that stop short of 0', { widening: [{ from: 0.5, to: 1.0001, tau: 1 }] }, /widening/],
    ['a target of 2', { decision: { target: 2, ages: {} } }, /decision/],
    ['a min_p over 1', { decision: { target: 0.01, ages: { '18': bands.map(([from, to]) => ({ from, to, min_p: 1.5 })) } } }, /decision.ages.18/],
    ['an age that is no age', { decision: { target: 0.01, ages: { adult: calibration.decision.ages['18'] } } }, /not an age/],
    ['other decisions that are not a list', { other_decisions: calibration.other_decisions[0] }, /other_decisions must be a list/],
    ['another rule with a bad band', { other_decisions: [{ target: 0.02, ages: { '18': [{ from: 0.5, to: 1.0001, min_p: 0.9 }] } }] }, /other_decisions\[0\]\.ages\.18/],
    ['two rules for one target', { other_decisions: [{ ...calibration.decision }] }, /one decision rule/],
    ['range levels of 1', { range_levels: [{ from: 0, to: null, level: 1 }] }, /range_levels/],
  ])('rejects %s', (_, patch, why) => {
    expect(() => parseManifest(JSON.stringify({ ...valid, calibration: { ...calibration, ...patch } }))).toThrow(why);
  });
});

describe('contract/manifest.schema.json', () => {
  it('is the JSON Schema of the manifest as it is now (node scripts/contract.mjs writes it)', () => {
    expect(manifestJsonSchema()).toEqual(committedSchema);
    expect(committedSchema.required).toEqual(expect.arrayContaining(['schema', 'name', 'version', 'input', 'outputs', 'model', 'files']));
  });
});
