import { checkModelFiles, ManifestError, type ActivePointer, type ManifestFile } from '../registry/manifest';

/**
 * The face detector's manifest (docs/model-contract.md, "The face detector"), written by
 * `python -m training detector convert`. It carries everything the decoding needs, so a
 * detector with another input size or anchor grid is a new version in R2, not new code.
 */
export type DetectorManifest = {
  schema: 1;
  kind: 'face_detector';
  name: string;
  version: string;
  input: { name: string; size: number; dtype: 'float32'; layout: 'NCHW'; color: 'RGB'; range: [number, number]; resize: 'letterbox' };
  outputs: { regressors: string; classificators: string };
  anchors: AnchorSpec;
  score_threshold: number;
  nms_iou: number;
  model: string;
  files: ManifestFile[];
  source?: Record<string, unknown>;
  parity?: Record<string, unknown>;
  created?: string;
};

/** MediaPipe's SSD anchors with fixed anchor size: one grid per distinct stride. */
export type AnchorSpec = { strides: number[]; per_layer: number; offset: number };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const inRange = (v: unknown, lo: number, hi: number) => typeof v === 'number' && v >= lo && v <= hi;

export function parseDetectorManifest(text: string, expected?: ActivePointer): DetectorManifest {
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch {
    throw new ManifestError('detector manifest.json is not valid JSON');
  }
  const fail = (why: string): never => {
    throw new ManifestError(`detector manifest.json: ${why}`);
  };
  if (!isObject(m)) return fail('not an object');
  if (m.schema !== 1 || m.kind !== 'face_detector') fail('must be schema 1, kind "face_detector"');
  if (typeof m.name !== 'string' || !SEGMENT.test(m.name)) fail('invalid name');
  if (typeof m.version !== 'string' || !SEGMENT.test(m.version)) fail('invalid version');
  if (expected && (m.name !== expected.name || m.version !== expected.version)) {
    fail(`describes ${String(m.name)}/${String(m.version)}, expected ${expected.name}/${expected.version}`);
  }
  const input = m.input;
  if (!isObject(input) || typeof input.name !== 'string' || !Number.isInteger(input.size) || !inRange(input.size, 16, 1024)) {
    return fail('input must be {name, size 16..1024}');
  }
  if (input.dtype !== 'float32' || input.layout !== 'NCHW' || input.color !== 'RGB' || input.resize !== 'letterbox') {
    fail('input must be float32 NCHW RGB, letterboxed');
  }
  const range = input.range;
  if (!Array.isArray(range) || range.length !== 2 || !range.every((v) => typeof v === 'number') || !((range[1] as number) > (range[0] as number))) {
    fail('input.range must be [low, high]');
  }
  const outputs = m.outputs;
  if (!isObject(outputs) || typeof outputs.regressors !== 'string' || typeof outputs.classificators !== 'string') {
    fail('outputs must name regressors and classificators');
  }
  const a = m.anchors;
  if (
    !isObject(a) || !Array.isArray(a.strides) || a.strides.length === 0 ||
    !a.strides.every((s) => Number.isInteger(s) && (s as number) >= 1 && (s as number) <= 256) ||
    !Number.isInteger(a.per_layer) || !inRange(a.per_layer, 1, 16) || !inRange(a.offset, 0, 1)
  ) {
    fail('anchors must be {strides: [int], per_layer: int, offset: 0..1}');
  }
  if (!inRange(m.score_threshold, 0, 1) || !inRange(m.nms_iou, 0, 1)) fail('score_threshold and nms_iou must be in 0..1');
  checkModelFiles(m, fail);
  return m as unknown as DetectorManifest;
}
