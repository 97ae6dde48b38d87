/** The model manifest (docs/model-contract.md), validated so a bad upload fails at load time, not mid-request. */
import type { Framing } from '../image/types';

export type ManifestFile = { path: string; role: 'model' | 'external_data' | string; sha256: string; bytes: number };

export type Manifest = {
  schema: 1;
  name: string;
  version: string;
  arch?: string;
  input: { name: string; size: number; dtype: 'uint8'; layout: 'NHWC'; color: 'RGB' };
  outputs: string[];
  face_margin: number;
  /** How a face box becomes the crop; absent in older manifests (see `framingOf`). */
  framing?: Framing & { measured?: Record<string, unknown> };
  ages: { min: number; max: number };
  fusion?: Record<string, number>;
  temperature?: number;
  /**
   * The 80% range calibrated per band of the estimate, as manifests before `calibration` carried
   * it (a manifest with `calibration` has it there). Absent: 0.8.
   */
  range_levels?: RangeLevel[];
  /** What training/calibration.py fitted on `val` at release (src/model/calibration.ts applies it). */
  calibration?: Calibration;
  model: string;
  files: ManifestFile[];
  metrics?: Record<string, unknown>;
  training_data?: Record<string, unknown>;
  /** The pretrained weights the network started from: name, package, licence, provenance. */
  pretrained?: Record<string, unknown>;
  created?: string;
};

/** The manifest's framing, or for a manifest without one the square of the old `face_margin` box. */
export function framingOf(m: Pick<Manifest, 'framing' | 'face_margin'>): Framing {
  if (m.framing) {
    const { scale, offset_x, offset_y, keypoints } = m.framing;
    return { scale, offset_x, offset_y, ...(keypoints ? { keypoints: { offset_x: keypoints.offset_x, offset_y: keypoints.offset_y } } : {}) };
  }
  return { scale: 1 + 2 * m.face_margin, offset_x: 0, offset_y: 0 };
}

/** One band of the estimate, `from`..`to` whole years (`to` null: open-ended), and its nominal level. */
export type RangeLevel = { from: number; to: number | null; level: number };

/** A band of capture quality's score, [from, to). */
type QualityBand = { from: number; to: number };

/**
 * A decision rule: per threshold age T, the P(age >= T) each quality band passes from (min_p
 * null: that band always refers), fitted so that at most `target` of the `val` faces under T pass.
 */
export type DecisionRule = { target: number; ages: Record<string, (QualityBand & { min_p: number | null })[]> };

/**
 * training/calibration.py's fit (docs/model-contract.md): range levels per band of the estimate,
 * a widening temperature per band of capture quality, the decision rule for the default
 * false-accept target, and rules for the other targets a request may ask for (false_accept=).
 */
export type Calibration = {
  range_levels: RangeLevel[];
  widening: (QualityBand & { tau: number })[];
  decision: DecisionRule;
  other_decisions?: DecisionRule[];
};

/** The range levels a manifest carries, in `calibration` or (older manifests) at the top. */
export const rangeLevelsOf = (m: Pick<Manifest, 'calibration' | 'range_levels'>): RangeLevel[] | undefined =>
  m.calibration?.range_levels ?? m.range_levels;

export type ActivePointer = { name: string; version: string };

export const REQUIRED_OUTPUTS = ['age', 'probs', 'global_age', 'local_age', 'box'] as const;

export class ManifestError extends Error {
  override name = 'ManifestError';
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
// Names and versions become R2 key segments: keep them to one safe path segment each.
const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
// File paths may not climb out of the version directory.
const FILE_PATH = /^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$/;

/** The model tiers a request can choose with `model=` (docs/model-contract.md). */
export const MODEL_TIERS = ['fast', 'accurate'] as const;
export type ModelTier = (typeof MODEL_TIERS)[number];

/**
 * The version active.json names: its top-level name and version (the default tier), or with
 * `tier`, its `tiers[tier]` ({"name", "version", "default": "accurate", "tiers": {"fast": {...},
 * "accurate": {...}}}).
 */
export function parseActive(text: string, tier?: string): ActivePointer {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new ManifestError('active.json is not valid JSON');
  }
  if (!isObject(raw)) throw new ManifestError('active.json must be {"name": "...", "version": "..."}');
  if (tier !== undefined) {
    const tiers = raw.tiers;
    if (!isObject(tiers) || !isObject(tiers[tier])) throw new ManifestError(`active.json names no "${tier}" tier`);
    raw = tiers[tier];
  }
  if (!isObject(raw) || typeof raw.name !== 'string' || typeof raw.version !== 'string') {
    throw new ManifestError(tier === undefined ? 'active.json must be {"name": "...", "version": "..."}' : `active.json's "${tier}" tier must be {"name": "...", "version": "..."}`);
  }
  if (!SEGMENT.test(raw.name) || !SEGMENT.test(raw.version)) throw new ManifestError('active.json names an invalid name or version');
  return { name: raw.name, version: raw.version };
}

export function parseManifest(text: string, expected?: ActivePointer): Manifest {
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch {
    throw new ManifestError('manifest.json is not valid JSON');
  }
  const fail = (why: string): never => {
    throw new ManifestError(`manifest.json: ${why}`);
  };
  if (!isObject(m)) return fail('not an object');
  if (m.schema !== 1) fail(`unsupported schema ${JSON.stringify(m.schema)}`);
  if (typeof m.name !== 'string' || !SEGMENT.test(m.name)) fail('invalid name');
  if (typeof m.version !== 'string' || !SEGMENT.test(m.version)) fail('invalid version');
  if (expected && (m.name !== expected.name || m.version !== expected.version)) {
    fail(`describes ${String(m.name)}/${String(m.version)}, expected ${expected.name}/${expected.version}`);
  }
  const input = m.input;
  if (!isObject(input)) return fail('missing input');
  if (typeof input.name !== 'string' || input.name === '') fail('input.name missing');
  if (!Number.isInteger(input.size) || (input.size as number) < 8 || (input.size as number) > 1024) fail('input.size must be an integer in 8..1024');
  if (input.dtype !== 'uint8' || input.layout !== 'NHWC' || input.color !== 'RGB') fail('input must be uint8 NHWC RGB');
  if (!Array.isArray(m.outputs) || !REQUIRED_OUTPUTS.every((o) => (m.outputs as unknown[]).includes(o))) {
    fail(`outputs must include ${REQUIRED_OUTPUTS.join(', ')}`);
  }
  if (typeof m.face_margin !== 'number' || !(m.face_margin >= 0 && m.face_margin <= 2)) fail('face_margin must be a number in 0..2');
  if (m.framing !== undefined) {
    const f = m.framing;
    const num = (v: unknown, lo: number, hi: number) => typeof v === 'number' && v >= lo && v <= hi;
    if (!isObject(f) || !num(f.scale, 0.5, 5) || !num(f.offset_x, -1, 1) || !num(f.offset_y, -1, 1)) {
      fail('framing must be {scale 0.5..5, offset_x -1..1, offset_y -1..1}');
    }
    const k = (f as Record<string, unknown>).keypoints;
    if (k !== undefined && (!isObject(k) || !num(k.offset_x, -1, 1) || !num(k.offset_y, -1, 1))) {
      fail('framing.keypoints must be {offset_x -1..1, offset_y -1..1}');
    }
  }
  if (m.range_levels !== undefined) checkRangeLevels(m.range_levels, 'range_levels', fail);
  if (m.calibration !== undefined) checkCalibration(m.calibration, fail);
  const ages = m.ages;
  if (!isObject(ages) || !Number.isInteger(ages.min) || !Number.isInteger(ages.max) || (ages.max as number) <= (ages.min as number)) {
    fail('ages must be {min, max} integers with max > min');
  }
  checkModelFiles(m, fail);
  return m as unknown as Manifest;
}

function checkRangeLevels(bands: unknown, where: string, fail: (why: string) => never): void {
  const ok = Array.isArray(bands) && bands.length > 0 && bands.every((b) =>
    isObject(b) && Number.isInteger(b.from) && (b.to === null || (Number.isInteger(b.to) && (b.to as number) >= (b.from as number))) &&
    typeof b.level === 'number' && b.level > 0 && b.level < 1);
  if (!ok) fail(`${where} must be [{from, to (integer or null), level in (0, 1)}]`);
}

/** Quality bands [from, to) that tile 0..1 without gaps, best first, each with its number checked. */
function checkQualityBands(bands: unknown, where: string, valueOk: (b: Record<string, unknown>) => boolean, fail: (why: string) => never): void {
  const ok = Array.isArray(bands) && bands.length > 0 && bands.every((b, i) =>
    isObject(b) && typeof b.from === 'number' && typeof b.to === 'number' && b.from >= 0 && b.to > b.from && b.to <= 1.0001 &&
    (i === 0 ? b.to > 1 : b.to === (bands[i - 1] as Record<string, unknown>).from) && valueOk(b)) &&
    (bands[bands.length - 1] as Record<string, unknown>).from === 0;
  if (!ok) fail(`${where} must be quality bands [{from, to, ...}] from 1 down to 0 without gaps`);
}

function checkCalibration(c: unknown, fail: (why: string) => never): void {
  if (!isObject(c)) return fail('calibration must be an object');
  checkRangeLevels(c.range_levels, 'calibration.range_levels', fail);
  checkQualityBands(c.widening, 'calibration.widening', (b) => typeof b.tau === 'number' && b.tau > 0 && b.tau <= 10, fail);
  checkDecisionRule(c.decision, 'calibration.decision', fail);
  if (c.other_decisions === undefined) return;
  if (!Array.isArray(c.other_decisions)) return fail('calibration.other_decisions must be a list of decision rules');
  const targets = [c.decision as DecisionRule, ...(c.other_decisions as unknown[])].map((r, i) => {
    if (i > 0) checkDecisionRule(r, `calibration.other_decisions[${i - 1}]`, fail);
    return (r as DecisionRule).target;
  });
  if (new Set(targets).size !== targets.length) fail('calibration: each false-accept target may have one decision rule');
}

function checkDecisionRule(d: unknown, where: string, fail: (why: string) => never): void {
  if (!isObject(d) || typeof d.target !== 'number' || !(d.target > 0 && d.target < 1) || !isObject(d.ages)) {
    return fail(`${where} must be {target in (0, 1), ages: {T: bands}}`);
  }
  for (const [t, bands] of Object.entries(d.ages)) {
    if (!/^\d{1,2}$/.test(t)) fail(`${where}.ages: ${JSON.stringify(t.slice(0, 8))} is not an age`);
    checkQualityBands(bands, `${where}.ages.${t}`, (b) => b.min_p === null || (typeof b.min_p === 'number' && b.min_p >= 0 && b.min_p <= 1), fail);
  }
}

/**
 * `model` and `files` of a manifest, age model or detector alike: every file a safe name with its
 * sha256, size and role, listed once, and the model file among them with role "model".
 */
export function checkModelFiles(m: Record<string, unknown>, fail: (why: string) => never): ManifestFile[] {
  if (typeof m.model !== 'string') fail('model must name a file');
  if (!Array.isArray(m.files) || m.files.length === 0) return fail('files must list the model files');
  const seen = new Set<string>();
  for (const f of m.files as unknown[]) {
    if (!isObject(f)) return fail('files entries must be objects');
    if (typeof f.path !== 'string' || !FILE_PATH.test(f.path)) fail(`invalid file path ${JSON.stringify(f.path)}`);
    if (typeof f.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(f.sha256)) fail(`${String(f.path)}: sha256 must be 64 lower-case hex digits`);
    if (!Number.isInteger(f.bytes) || (f.bytes as number) <= 0) fail(`${String(f.path)}: bytes must be a positive integer`);
    if (typeof f.role !== 'string') fail(`${String(f.path)}: role missing`);
    if (seen.has(f.path as string)) fail(`${String(f.path)} listed twice`);
    seen.add(f.path as string);
  }
  const files = m.files as ManifestFile[];
  if (!files.some((f) => f.path === m.model && f.role === 'model')) fail(`model ${String(m.model)} is not listed in files with role "model"`);
  return files;
}
