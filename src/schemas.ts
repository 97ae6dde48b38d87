// The API's requests and answers, once: the routes validate with these, the TypeScript types
// are inferred from them, and GET /v1/openapi.json is generated from them.
import { z } from '@hono/zod-openapi';
import { ERROR_STATUSES, type ErrorCode, type ErrorStatus } from './errors';
import { parseBox } from './image/crop';
import type { Rect } from './image/types';
import { MODEL_TIERS } from './registry/manifest';

// ---- errors ----------------------------------------------------------------------------------

const errorBody = <C extends readonly [ErrorCode, ...ErrorCode[]]>(codes: C) =>
  z.strictObject({
    error: z.strictObject({
      code: z.enum(codes),
      message: z.string().openapi({ description: 'For people; never echoes the image, and quotes other input only briefly.' }),
      request_id: z.string().openapi({ description: 'Also in the X-Request-Id header and in every log line of the request.' }),
    }),
  });

/** The one error shape, with any code. */
export const ErrorBodySchema = errorBody(Object.values(ERROR_STATUSES).flatMap((s) => s.codes) as [ErrorCode, ...ErrorCode[]]);
export type ErrorBody = z.infer<typeof ErrorBodySchema>;

/** The error shape narrowed to one status's codes (component Error<status> in the document). */
export const errorSchemaFor = (status: ErrorStatus) => errorBody(ERROR_STATUSES[status].codes).openapi(`Error${status}`);

/** The documented answers for these error statuses. */
export function errorResponses<S extends ErrorStatus>(...statuses: S[]) {
  return Object.fromEntries(
    statuses.map((s) => [s, { description: ERROR_STATUSES[s].description, content: { 'application/json': { schema: errorSchemaFor(s) } } }]),
  ) as Record<S, { description: string; content: { 'application/json': { schema: typeof ErrorBodySchema } } }>;
}

// ---- POST /v1/age: request -------------------------------------------------------------------

/** `raw` read by `parse`, once, where the request is validated: its error's message is the 400's. */
function parsed<T>(parse: (raw: string) => T, raw: string, ctx: z.RefinementCtx): T {
  try {
    return parse(raw);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
}

/** A text parameter read by `parse` into the value the route uses. */
const parsedText = <T>(parse: (raw: string) => T, error?: string) => z.string(error ? { error } : undefined).transform((raw, ctx) => parsed(parse, raw, ctx));

/** `x,y,w,h`, read by parseBox: the same rule and messages wherever a box arrives (undefined: none). */
const BoxText = parsedText(parseBox, 'box must be four numbers "x,y,w,h" in image pixels.')
  .openapi({ description: 'A face box "x,y,w,h" in displayed-image pixels: no detection, that box gets an age.', example: '120,80,200,240' });

const Crop = z
  .enum(['image', ''], { error: 'crop must be "image" (the whole photo is the face crop) or absent.' })
  .openapi({ description: '"image": the whole image is already a face crop framed like the training faces (no detection).' });

/** The age thresholds of `over=T[,T...]`: whole years 1..99, at most MAX_OVER of them. */
export const MAX_OVER = 5;
function parseOver(raw: string | undefined): number[] {
  if (raw === undefined || raw === '') return [];
  const parts = raw.split(',').map((s) => s.trim());
  if (parts.length > MAX_OVER) throw new Error(`over takes at most ${MAX_OVER} ages.`);
  return parts.map((p) => {
    if (!/^\d{1,2}$/.test(p) || Number(p) < 1) throw new Error(`over must be whole ages from 1 to 99, comma-separated (e.g. over=18,21); got "${p.slice(0, 12)}".`);
    return Number(p);
  });
}

const OverText = parsedText(parseOver)
  .openapi({
    description: `Ages T (whole years 1..99, at most ${MAX_OVER}, comma-separated): each face gets over: [{age: T, probability: P(age >= T), decision, false_accept}] from its calibrated distribution and the model's rule (false_accept= picks the rule) (docs/age-checks.md has the measured error rates of decision rules).`,
    example: '18,21',
  });

/** `false_accept=`: the share of people under T a decision may let pass, as a decimal (0.02). */
function parseFalseAccept(raw: string | undefined): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  if (!/^0?\.\d{1,4}$/.test(raw) || Number(raw) === 0) throw new Error(`false_accept must be a share between 0 and 1 written as a decimal (e.g. 0.02); got "${raw.slice(0, 12)}".`);
  return Number(raw);
}

const FalseAcceptText = parsedText(parseFalseAccept)
  .openapi({
    description: "Only with over=: the false-accept target of the rule that decides (the share of people under T it was fitted to let pass on `val`). Absent: the model's default rule (manifest.calibration.decision; 0.01 for the shipped models). Each model lists the targets it has rules for in GET /v1/models (false_accept_targets); any other is a 400.",
    example: '0.02',
  });

/** A count parameter; its upper bound is the deployment's (MAX_TOP_K, MAX_FACES_LIMIT) and is checked by the route. */
const count = (name: string, description: string) =>
  z.string({ error: `${name} must be a whole number.` }).regex(/^\d{1,3}$/, { error: `${name} must be a whole number.` }).openapi({ description });

// One line per query parameter; unknown parameters are ignored (z.object strips them).
export const AgeQuerySchema = z.object({
  top_k: count('top_k', 'How many of the most likely ages to list in top_k: 0 to MAX_TOP_K (20 as shipped), default TOP_K (5).').optional(),
  max_faces: count('max_faces', 'How many of the largest faces get an age: 1 to MAX_FACES_LIMIT (10 as shipped), default MAX_FACES (5).').optional(),
  box: BoxText.optional(),
  crop: Crop.optional(),
  over: OverText.optional(),
  false_accept: FalseAcceptText.optional(),
  model: z
    .enum([...MODEL_TIERS, ''], { error: `model must be one of ${MODEL_TIERS.map((t) => `"${t}"`).join(', ')}, or absent for the default model.` })
    .openapi({ description: 'A tier of models/active.json ("fast": the quicker, less accurate model; "accurate"); absent: the default (README).' })
    .optional(),
});
export type AgeQuery = z.infer<typeof AgeQuerySchema>;

export const AgeJsonBodySchema = z
  .object(
    {
      image: z.string({ error: 'The JSON body needs "image": a base64 string or a data: URL.' }).openapi({
        description: 'The JPEG or PNG file as base64, or as a data: URL ("data:image/png;base64,...").',
      }),
      box: z
        .union([BoxText, z.tuple([z.number(), z.number(), z.number(), z.number()]).transform((box, ctx) => parsed(parseBox, box.join(','), ctx))], {
          error: '"box" must be "x,y,w,h" or [x, y, w, h] in image pixels.',
        })
        .nullish(),
      crop: Crop.nullish(),
    },
    { error: 'The JSON body must be an object {"image": "<base64>"}.' },
  )
  .openapi('AgeJsonBody');

export const AgeFormFieldsSchema = z.object({ box: BoxText.optional(), crop: Crop.optional() });
// The file is checked by the image-body middleware (its own messages); here it is only described.
export const AgeFormSchema = AgeFormFieldsSchema.extend({
  image: z.custom<File>((v) => v instanceof File).openapi({ type: 'string', format: 'binary', description: 'The JPEG or PNG file.' }),
}).openapi('AgeForm');

// ---- POST /v1/age: answer --------------------------------------------------------------------

export const RectSchema = z
  .strictObject({ x: z.number(), y: z.number(), w: z.number(), h: z.number() })
  .openapi('Rect', { description: 'A rectangle in displayed-image pixels (after the EXIF orientation), one decimal; may reach past the image.' }) satisfies z.ZodType<Rect>;
export type { Rect };

const Probability = z.number().min(0).max(1);

export const QualitySchema = z
  .strictObject({
    score: Probability.openapi({ description: 'Capture quality, 0..1: the product of `parts`. 1 reads like a training face; the model widens its answer and the decision rule asks more as it falls.', example: 0.92 }),
    reasons: z.array(z.string()).openapi({ description: 'What to fix, for a person ("too dark: add light", "too small: come closer", "blurred: hold still and focus", "grainy: add light", "face covered: remove sunglasses or mask", "compressed: send the original photo", "too bright: avoid direct light", "face unclear: face the camera", "unusual light colour: use white light", "head turned or tilted: face the camera"; and "unsure: it sees two ages far apart; send another photo" when the distribution holds a second age at least 15 years from its peak, which the range then reaches over); empty when nothing is weak.' }),
    parts: z.record(z.string(), Probability).openapi({ description: 'Each measure\'s part of the score (face_px, dark, bright, sharpness, noise, flat, blockiness, detector_score, light_hue, light_blue, light_red, turned, tilted_back, bowed), 0..1.' }),
    face_px: z.number().openapi({ description: 'The crop\'s side in source pixels (√(w·h)).' }),
    brightness: Probability.openapi({ description: 'Mean luma of the face\'s centre, 0 (black) to 1 (white).' }),
    contrast: z.number().min(0).openapi({ description: 'Standard deviation of that luma, 0..0.5.' }),
    sharpness: z.number().min(0).openapi({ description: 'Gradient energy at 64 px over that at 32 px: about 0.25 for a blurred face, 0.4-0.6 for a sharp one (noise raises it).' }),
    noise: z.number().min(0).openapi({ description: "Immerkær's estimate of the noise's sigma, in 8-bit steps (scored against the face's contrast)." }),
    flat: Probability.openapi({ description: 'Share of the face\'s centre with no texture at all (a solid band, a plain mask, clipped light). Tinted glasses and patterned masks are not measured.' }),
    blockiness: z.number().min(0).nullable().openapi({ description: "How much a JPEG's 8x8 grid shows in the crop: about 1 without one, 1.1-1.4 for a good JPEG, 2 and more for a hard one." }),
    detector_score: z.number().nullable().openapi({ description: "The detector's confidence; null for a caller's box or crop=image." }),
    chroma_along: z.number().openapi({ description: "The face centre's mean chroma (YCbCr's Cb, Cr over luma) along the direction of skin under white light: 0 for gray, 0.0-0.46 for 98 % of the training set's faces; below 0 under a strong blue cast, high under red light." }),
    yaw: z.number().nullable().openapi({ description: "How far the head is turned, from the detector's keypoints: the nose tip's sideways offset from the eyes' midpoint over the eyes' distance (0 faces the camera; within ±0.31 for 99 % of the training set's faces). null without a detector (a caller's box, crop=image)." }),
    pitch: z.number().nullable().openapi({ description: "The nose tip's offset down the face from the eyes' midpoint over the eyes' distance: about 0.56 upright, 0.28–0.75 for 99 % of the training set's faces; less with the head tilted back, more bowed. null without a detector." }),
    chroma_across: z.number().min(0).openapi({ description: 'The same chroma across that direction: under 0.11 for 99 % of the training set\'s faces; cyan, green, blue and magenta lamps raise it.' }),
  })
  .openapi('Quality', { description: 'What the capture shows, measured on the face crop the model reads (training/capture.py defines the same measures).' });
export type Quality = z.infer<typeof QualitySchema>;

const GroupSchema = z.strictObject({ label: z.string().openapi({ example: '25-34' }), probability: Probability });

/** The age model's answer for one face crop. */
export const AgeEstimateSchema = {
  age: z.number().openapi({ description: 'Expected age in years, one decimal.', example: 31.4 }),
  range: z
    .strictObject({ low: z.number(), high: z.number(), level: z.number() })
    .openapi({
      description:
        'An interval of ages meant to hold the true age for `level` (0.8) of faces: a central interval of the age distribution, widened for the capture (quality), read at the level that held 80% of the validation faces whose estimate fell in the same age band (the model\'s calibration), or the central 80% for a model without one. When the distribution holds at least 3% near a second age 15 or more years from its peak, the model is torn: the range then runs from 20 years below the lower of the estimate and that age to 20 years above the higher, and quality.reasons says the model is unsure.',
    }),
  group: GroupSchema.openapi({ description: 'The most likely age group.' }),
  groups: z.array(GroupSchema).openapi({ description: 'Every age group with its probability, youngest first (sums to 1).' }),
  top_k: z.array(z.strictObject({ age: z.number().int(), probability: Probability })).openapi({ description: 'The top_k most likely ages, most likely first.' }),
  global_age: z.number().openapi({ description: "The model's whole-crop head, one decimal." }),
  local_age: z.number().openapi({ description: "The model's attention-region head, one decimal." }),
  attention: RectSchema.openapi({ description: 'The region the model attended to, in image pixels.' }),
  crop: RectSchema.openapi({ description: 'The square the model saw (padded black past the image).' }),
  roll: z.number().openapi({ description: 'Degrees the crop was turned (clockwise) so the eyes are level; 0 when it was not.' }),
  quality: QualitySchema,
  over: z
    .array(
      z.strictObject({
        age: z.number().int().min(1).max(99),
        probability: Probability.openapi({ description: 'P(age >= T) of the distribution widened for the capture, four decimals.' }),
        decision: z
          .enum(['pass', 'refer'])
          .nullable()
          .openapi({ description: '"pass": this face carries an age of T or over, by the model\'s rule fitted on `val` for the false-accept target (false_accept; GET /v1/models: manifest.calibration). "refer": it cannot carry the answer: ask for an ID, a retake (quality.reasons) or another check. null: the model has no rule for this T.' }),
        false_accept: z
          .number()
          .nullable()
          .openapi({ description: 'The false-accept target of the rule that decided: false_accept as asked, else the model\'s default; null with a null decision.' }),
      }),
    )
    .optional()
    .openapi({ description: 'Only with over=T: for each T asked, P(age >= T) and the decision.' }),
};
export type AgeEstimate = z.infer<z.ZodObject<typeof AgeEstimateSchema>>;

export const FaceResultSchema = z
  .strictObject({
    box: RectSchema.openapi({ description: "The face: the detector's box, the caller's box, or the whole image for crop=image." }),
    score: z.number().nullable().openapi({ description: "The detector's confidence; null for a caller's box or crop=image." }),
    ...AgeEstimateSchema,
  })
  .openapi('FaceResult');
export type FaceResult = z.infer<typeof FaceResultSchema>;

const ServedModelSchema = z.strictObject({
  name: z.string(),
  version: z.string(),
  fallback: z.boolean().openapi({ description: 'true while an older version serves because the requested one failed to load.' }),
});

export const AgeResultSchema = z
  .strictObject({
    faces: z.array(FaceResultSchema).openapi({ description: 'Largest first, at most max_faces.' }),
    faces_detected: z.number().int().nullable().openapi({ description: 'Faces the detector found, before max_faces (null when it did not run).' }),
    other_faces: z
      .array(z.strictObject({ box: RectSchema, score: z.number() }))
      .openapi({ description: 'The faces found beyond max_faces, largest first, not aged: ask again with a larger max_faces, or with box= for one of them. Empty when every face found was aged.' }),
    image: z.strictObject({ width: z.number().int(), height: z.number().int(), orientation: z.number().int().min(1).max(8) }),
    model: ServedModelSchema.extend({
      tier: z.enum(MODEL_TIERS).nullable().openapi({ description: 'The tier asked for with model=, null for the default.' }),
    }),
    detector: ServedModelSchema.nullable().openapi({ description: 'null when box or crop=image was sent.' }),
  })
  .openapi('AgeResult');
export type AgeResult = z.infer<typeof AgeResultSchema>;

// ---- GET /healthz, GET /v1/models ------------------------------------------------------------

export const HealthSchema = z
  .strictObject({ status: z.literal('ok'), model_loaded: z.boolean(), detector_loaded: z.boolean() })
  .openapi('Health');

const RegistryStatusSchema = z.strictObject({
  active: z
    .strictObject({
      name: z.string(),
      version: z.string(),
      loaded_at: z.string().openapi({ format: 'date-time' }),
      metrics: z.unknown().openapi({ description: "The manifest's metrics, or null." }),
      false_accept_targets: z
        .array(z.number())
        .openapi({ description: 'The false-accept targets the model has decision rules for (POST /v1/age: false_accept=), its default first; empty for the detector or a model without rules.', example: [0.01, 0.02] }),
      manifest: z.record(z.string(), z.unknown()).openapi({ description: 'The version manifest (docs/model-contract.md).' }),
    })
    .nullable(),
  requested: z.strictObject({ name: z.string(), version: z.string() }).nullable().openapi({ description: 'What active.json asks for.' }),
  fallback: z.boolean(),
  load_error: z
    .strictObject({ name: z.string().optional(), version: z.string().optional(), message: z.string(), at: z.string() })
    .nullable()
    .openapi({ description: 'The last failure to load what active.json names (cleared once it loads).' }),
  checked_at: z.string().nullable(),
});

export const ModelsSchema = RegistryStatusSchema.extend({
  tiers: z.record(z.string(), RegistryStatusSchema).openapi({ description: 'Each tier of active.json, as the default above.' }),
  detector: RegistryStatusSchema,
  wasm_heap_bytes: z.number().int().nullable(),
}).openapi('Models');
