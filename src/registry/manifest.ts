/**
 * The model manifest (docs/model-contract.md): its zod schema is the contract. The server checks
 * every manifest against it so a bad upload fails at load time, not mid-request; it is exported
 * as contract/manifest.schema.json (node scripts/contract.mjs), which training/contract.py
 * validates every manifest the release writes against.
 */
import { z } from 'zod';
import { MODEL_TIERS, REQUIRED_OUTPUTS, type ModelTier } from '../contract';
import type { Framing } from '../image/types';

export { MODEL_TIERS, REQUIRED_OUTPUTS, type ModelTier };

export class ManifestError extends Error {
  override name = 'ManifestError';
}

// Messages name where they apply with {path} ("calibration.decision.ages.18"): a rule written
// once (a band list, a decision rule) is checked at each place it is used.

// Names and versions become R2 key segments: keep them to one safe path segment each.
const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
// File paths may not climb out of the version directory.
const FILE_PATH = /^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$/;

const within = (lo: number, hi: number, error: string) => z.number({ error }).min(lo, { error }).max(hi, { error });

const ManifestFileSchema = z.looseObject(
  {
    path: z.string({ error: (iss) => `invalid file path ${JSON.stringify(iss.input)}` }).regex(FILE_PATH, { error: (iss) => `invalid file path ${JSON.stringify(iss.input)}` }),
    role: z.string({ error: '{path} missing' }),
    sha256: z.string({ error: '{path} must be 64 lower-case hex digits' }).regex(/^[0-9a-f]{64}$/, { error: '{path} must be 64 lower-case hex digits' }),
    bytes: z.int({ error: '{path} must be a positive integer' }).positive({ error: '{path} must be a positive integer' }),
  },
  { error: 'files entries must be objects' },
);
export type ManifestFile = z.infer<typeof ManifestFileSchema>;

/** `model` and `files`, age model or detector alike: every file a safe name with its sha256, size
 *  and role, listed once, and the model file among them with role "model". */
const ModelFilesShape = {
  model: z.string({ error: 'model must name a file' }),
  files: z.array(ManifestFileSchema, { error: 'files must list the model files' }).min(1, { error: 'files must list the model files' }).superRefine((files, ctx) => {
    const seen = new Set<string>();
    for (const f of files) {
      if (seen.has(f.path)) ctx.addIssue({ code: 'custom', message: `${f.path} listed twice` });
      seen.add(f.path);
    }
  }),
};
const modelIsListed = (m: { model: string; files: ManifestFile[] }, ctx: z.RefinementCtx) => {
  if (!m.files.some((f) => f.path === m.model && f.role === 'model')) ctx.addIssue({ code: 'custom', message: `model ${m.model} is not listed in files with role "model"` });
};
const ModelFilesSchema = z.looseObject(ModelFilesShape).superRefine(modelIsListed);

/** One band of the estimate, `from`..`to` whole years (`to` null: open-ended), and its nominal level. */
const RangeLevelsSchema = z
  .array(
    z.looseObject({
      from: z.int({ error: '{path} must be an integer' }),
      to: z.int({ error: '{path} must be an integer or null' }).nullable(),
      level: z.number({ error: '{path} must be in (0, 1)' }).gt(0, { error: '{path} must be in (0, 1)' }).lt(1, { error: '{path} must be in (0, 1)' }),
    }, { error: '{path} must be [{from, to (integer or null), level in (0, 1)}]' }).refine((b) => b.to === null || b.to >= b.from, { error: '{path}: to must not be below from' }),
    { error: '{path} must be [{from, to (integer or null), level in (0, 1)}]' },
  )
  .min(1, { error: '{path} must be [{from, to (integer or null), level in (0, 1)}]' });
export type RangeLevel = z.infer<typeof RangeLevelsSchema>[number];

/** A band [from, to) of capture quality's score. */
const BAND = { from: within(0, 1, '{path} must be in 0..1'), to: within(0, 1.0001, '{path} must be in 0..1.0001') };
const BANDS = '{path} must be quality bands [{from, to, ...}] from 1 down to 0 without gaps';

/** Bands that tile 0..1 without gaps, best first, each with its own number. */
const qualityBands = <B extends { from: number; to: number }>(band: z.ZodType<B>) =>
  z
    .array(band, { error: BANDS })
    .min(1, { error: BANDS })
    .refine((bands) => bands.every((b, i) => b.to > b.from && (i === 0 ? b.to > 1 : b.to === bands[i - 1]!.from)) && bands[bands.length - 1]!.from === 0, { error: BANDS });

/**
 * A decision rule: per threshold age T, the P(age >= T) each quality band passes from (min_p
 * null: that band always refers), fitted so that at most `target` of the `val` faces under T pass.
 */
const DecisionRuleSchema = z.looseObject(
  {
    target: z.number({ error: '{path} must be in (0, 1)' }).gt(0, { error: '{path} must be in (0, 1)' }).lt(1, { error: '{path} must be in (0, 1)' }),
    ages: z.record(
      z.string().regex(/^\d{1,2}$/, { error: (iss) => `{path}: ${JSON.stringify(String(iss.input).slice(0, 8))} is not an age` }),
      qualityBands(z.looseObject({ ...BAND, min_p: within(0, 1, '{path} must be null or in 0..1').nullable() })),
      { error: '{path} must be {T: quality bands}' },
    ),
  },
  { error: '{path} must be {target in (0, 1), ages: {T: bands}}' },
);
export type DecisionRule = z.infer<typeof DecisionRuleSchema>;

/**
 * training/calibration.py's fit (docs/model-contract.md): range levels per band of the estimate,
 * a widening temperature per band of capture quality, the decision rule for the default
 * false-accept target, and rules for the other targets a request may ask for (false_accept=).
 */
const CalibrationSchema = z
  .looseObject(
    {
      range_levels: RangeLevelsSchema,
      widening: qualityBands(z.looseObject({ ...BAND, tau: z.number({ error: '{path} must be in (0, 10]' }).gt(0, { error: '{path} must be in (0, 10]' }).max(10, { error: '{path} must be in (0, 10]' }) })),
      decision: DecisionRuleSchema,
      other_decisions: z.array(DecisionRuleSchema, { error: '{path} must be a list of decision rules' }).optional(),
    },
    { error: 'calibration must be an object' },
  )
  .refine((c) => new Set([c.decision, ...(c.other_decisions ?? [])].map((r) => r.target)).size === 1 + (c.other_decisions?.length ?? 0), {
    error: 'calibration: each false-accept target may have one decision rule',
  });
export type Calibration = z.infer<typeof CalibrationSchema>;

const TEMPLATE = 'framing.keypoints.template must be [[x, y], …] in chip sides, with template_points: at least 2 distinct indices into it';

const FramingSchema = z.looseObject(
  {
    scale: within(0.5, 5, 'framing must be {scale 0.5..5, offset_x -1..1, offset_y -1..1}'),
    offset_x: within(-1, 1, 'framing must be {scale 0.5..5, offset_x -1..1, offset_y -1..1}'),
    offset_y: within(-1, 1, 'framing must be {scale 0.5..5, offset_x -1..1, offset_y -1..1}'),
    keypoints: z
      .looseObject(
        {
          offset_x: within(-1, 1, 'framing.keypoints must be {offset_x -1..1, offset_y -1..1}'),
          offset_y: within(-1, 1, 'framing.keypoints must be {offset_x -1..1, offset_y -1..1}'),
          /** Each keypoint's place on a training chip, in chip sides (frameFace's similarity framing). */
          template: z.array(z.tuple([within(-1, 2, TEMPLATE), within(-1, 2, TEMPLATE)], { error: TEMPLATE }), { error: TEMPLATE }).optional(),
          template_points: z.array(z.number().int({ error: TEMPLATE }).min(0, { error: TEMPLATE }), { error: TEMPLATE }).optional(),
        },
        { error: 'framing.keypoints must be {offset_x -1..1, offset_y -1..1}' },
      )
      .refine(
        (k) => (k.template === undefined) === (k.template_points === undefined) &&
          (!k.template_points || (k.template_points.length >= 2 && new Set(k.template_points).size === k.template_points.length && k.template_points.every((i) => i < k.template!.length))),
        { error: TEMPLATE },
      )
      .optional(),
    /** How training/framing.py measured it (command, split, spreads). */
    measured: z.record(z.string(), z.unknown()).optional(),
  },
  { error: 'framing must be {scale 0.5..5, offset_x -1..1, offset_y -1..1}' },
);

const INPUT = 'input must be uint8 NHWC RGB';

const OutputsSchema = z
  .array(z.string(), { error: `outputs must include ${REQUIRED_OUTPUTS.join(', ')}` })
  .refine((outputs) => REQUIRED_OUTPUTS.every((o) => outputs.includes(o)), { error: `outputs must include ${REQUIRED_OUTPUTS.join(', ')}` });

export const ManifestSchema = z
  .looseObject(
    {
      schema: z.literal(1, { error: (iss) => `unsupported schema ${JSON.stringify(iss.input)}` }),
      name: z.string({ error: 'invalid name' }).regex(SEGMENT, { error: 'invalid name' }),
      version: z.string({ error: 'invalid version' }).regex(SEGMENT, { error: 'invalid version' }),
      arch: z.string().optional(),
      input: z.looseObject(
        {
          name: z.string({ error: 'input.name missing' }).min(1, { error: 'input.name missing' }),
          size: z.int({ error: 'input.size must be an integer in 8..1024' }).min(8, { error: 'input.size must be an integer in 8..1024' }).max(1024, { error: 'input.size must be an integer in 8..1024' }),
          dtype: z.literal('uint8', { error: INPUT }),
          layout: z.literal('NHWC', { error: INPUT }),
          color: z.literal('RGB', { error: INPUT }),
        },
        { error: 'missing input' },
      ),
      outputs: OutputsSchema,
      face_margin: within(0, 2, 'face_margin must be a number in 0..2'),
      /** How a face box becomes the crop; absent in older manifests (see `framingOf`). */
      framing: FramingSchema.optional(),
      /** The 80% range calibrated per band of the estimate, as manifests before `calibration`
       *  carried it (a manifest with `calibration` has it there). Absent: 0.8. */
      range_levels: RangeLevelsSchema.optional(),
      /** What training/calibration.py fitted on `val` at release (src/model/calibration.ts applies it). */
      calibration: CalibrationSchema.optional(),
      ages: z
        .looseObject({ min: z.int({ error: 'ages must be {min, max} integers with max > min' }), max: z.int({ error: 'ages must be {min, max} integers with max > min' }) }, { error: 'ages must be {min, max} integers with max > min' })
        .refine((a) => a.max > a.min, { error: 'ages must be {min, max} integers with max > min' }),
      fusion: z.record(z.string(), z.number()).optional(),
      views: z.array(z.string()).optional(),
      temperature: z.number().optional(),
      ...ModelFilesShape,
      metrics: z.record(z.string(), z.unknown()).optional(),
      training_data: z.record(z.string(), z.unknown()).optional(),
      /** The pretrained weights the network started from: name, package, licence, provenance. */
      pretrained: z.record(z.string(), z.unknown()).optional(),
      created: z.string().optional(),
    },
    { error: 'not an object' },
  )
  .superRefine(modelIsListed);
export type Manifest = z.infer<typeof ManifestSchema>;

/**
 * The JSON Schema of the manifest (contract/manifest.schema.json is this, written out). It holds
 * what JSON Schema can say: the refinements across fields (bands without gaps, one rule per
 * target, the model among the files) are the server's alone; the required outputs are added.
 */
export const manifestJsonSchema = () =>
  z.toJSONSchema(ManifestSchema, {
    io: 'input',
    override: ({ zodSchema, jsonSchema }) => {
      if (zodSchema === OutputsSchema) jsonSchema.allOf = REQUIRED_OUTPUTS.map((o) => ({ contains: { const: o } }));
    },
  });

/** "calibration.other_decisions[0].ages.18" */
const where = (path: PropertyKey[]) => path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i ? '.' : ''}${String(p)}`)).join('');

/** The first thing wrong, in words; `value` is returned as it was read (unknown keys kept). */
function checked<T>(schema: z.ZodType<T>, value: unknown, fail: (why: string) => never): T {
  const result = schema.safeParse(value);
  if (result.success) return value as T;
  const issue = result.error.issues[0]!;
  // A record's bad key carries the key schema's message inside.
  const message = issue.code === 'invalid_key' ? issue.issues[0]!.message : issue.message;
  return fail(message.replaceAll('{path}', where(issue.path)));
}

/** The manifest's framing, or for a manifest without one the square of the old `face_margin` box. */
export function framingOf(m: Pick<Manifest, 'framing' | 'face_margin'>): Framing {
  if (m.framing) {
    const { scale, offset_x, offset_y, keypoints } = m.framing;
    if (!keypoints) return { scale, offset_x, offset_y };
    const { template, template_points } = keypoints;
    return { scale, offset_x, offset_y, keypoints: { offset_x: keypoints.offset_x, offset_y: keypoints.offset_y, ...(template && template_points ? { template, template_points } : {}) } };
  }
  return { scale: 1 + 2 * m.face_margin, offset_x: 0, offset_y: 0 };
}

/** The range levels a manifest carries, in `calibration` or (older manifests) at the top. */
export const rangeLevelsOf = (m: Pick<Manifest, 'calibration' | 'range_levels'>): RangeLevel[] | undefined =>
  m.calibration?.range_levels ?? m.range_levels;

export type ActivePointer = { name: string; version: string };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

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
  const manifest = checked(ManifestSchema, m, fail);
  if (expected && (manifest.name !== expected.name || manifest.version !== expected.version)) {
    fail(`describes ${manifest.name}/${manifest.version}, expected ${expected.name}/${expected.version}`);
  }
  return manifest;
}

/** `model` and `files` of a manifest, age model or detector alike (the detector's reader uses it). */
export function checkModelFiles(m: Record<string, unknown>, fail: (why: string) => never): ManifestFile[] {
  return checked(ModelFilesSchema, m, fail).files;
}
