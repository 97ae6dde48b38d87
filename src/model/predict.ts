import { attentionToImage } from '../image/crop';
import type { DecodedImage } from '../image/decode';
import { rectToStored } from '../image/orientation';
import { resizeCrop, resizeTurnedCrop } from '../image/resize';
import type { Rect } from '../image/types';
import type { AgeEstimate } from '../schemas';
import { rangeLevelsOf, type DecisionRule, type Manifest } from '../registry/manifest';
import type { AgeModel } from './age-model';
import { decide, decisionRule, fittedTargets, NoDecisionRuleError, RANGE_LEVEL, rangeLevel, widen, wideningFor } from './calibration';
import { FAR_MODE } from '../contract';
import { centralInterval, farMode, groupProbabilities, mostLikelyGroup, probabilityAtLeast, round1, topK } from './distribution';
import { blockiness, headPose, measureQuality } from './quality';

/** The age model's answer for one face crop: the per-face fields of `POST /v1/age` (src/schemas.ts). */
export type { AgeEstimate };

/** The age check a request asks for: the ages of over=T[,T...], and the model's decision rule
 *  for its false_accept= (the default rule without one): ageCheckFor. */
export type AgeCheck = { ages: readonly number[]; rule?: DecisionRule };

/**
 * The check `ages` (over=) asks of the model that serves the request: decided by the model's rule
 * for `falseAccept`, its default rule without one. A target the model has no rule for throws
 * NoDecisionRuleError (the rule belongs to the model the request got, so only it can say).
 */
export function ageCheckFor(manifest: Manifest, ages: readonly number[], falseAccept: number | undefined): AgeCheck {
  const rule = decisionRule(manifest.calibration, falseAccept);
  if (falseAccept !== undefined && !rule) {
    const fitted = fittedTargets(manifest.calibration);
    throw new NoDecisionRuleError(
      `${manifest.name}/${manifest.version} has no decision rule for false_accept=${falseAccept}; ${fitted.length ? `it has rules for ${fitted.join(', ')} (GET /v1/models)` : 'it has no decision rules'}.`,
    );
  }
  return { ages, rule };
}

export const roundRect = (r: Rect): Rect => ({ x: round1(r.x), y: round1(r.y), w: round1(r.w), h: round1(r.h) });

/** Python's round(): half to even. */
function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * The crop at whole pixels, as training cut every face (training/data.py: a PIL crop at the
 * rounded corners), so the model's input matches the training faces' (test/parity.test.ts).
 * The answer's `crop` and attention stay in the unrounded geometry: at most half a pixel off.
 */
export function wholePixels(crop: Rect): Rect {
  const x = roundHalfEven(crop.x), y = roundHalfEven(crop.y);
  return { x, y, w: Math.max(1, roundHalfEven(crop.x + crop.w) - x), h: Math.max(1, roundHalfEven(crop.y + crop.h) - y) };
}

/** The model's S×S×3 input for `crop` turned by `roll`: what estimateAge feeds the network (and
 *  what the photo crops that training reads are cut by, bench/lib/worker-entry.ts). */
export function modelInput(image: DecodedImage, crop: Rect, roll: number, S: number): Uint8Array {
  return roll === 0
    ? resizeCrop(image, rectToStored(wholePixels(crop), image.width, image.height, image.orientation), S, image.orientation, undefined, 'pil-box')
    : resizeTurnedCrop(image, crop, roll, S);
}

/** What the detector said of a face: its confidence and keypoints (none for a caller's box or crop=image). */
export type Detected = { score: number | null; keypoints?: readonly (readonly [number, number])[] };

/**
 * One face: resize `crop` (displayed-image pixels, may extend past the image: padded black) to
 * S×S, turned by `roll` radians about its centre when it is not 0, run the model, measure the
 * capture's quality on the same crop, widen the distribution by what the capture lost, and read
 * it out. The estimate itself is the network's. The attention box comes back in the same
 * displayed-image pixels (for a turned crop, the upright bounds of the turned box).
 * `check`: the ages T of over=, each answered with P(age >= T) and the decision of `check.rule`.
 * `detected`: the detector's confidence in this face and its keypoints (the head's pose), a null
 * score and no keypoints for a caller's box or crop=image.
 */
export async function estimateAge(model: AgeModel, image: DecodedImage, crop: Rect, k: number, roll = 0, check: AgeCheck = { ages: [] }, detected: Detected = { score: null }): Promise<AgeEstimate> {
  const m = model.manifest;
  const input = modelInput(image, crop, roll, m.input.size);
  const stored = rectToStored(wholePixels(crop), image.width, image.height, image.orientation);
  const pose = detected.keypoints ? headPose(detected.keypoints) : null;
  const quality = measureQuality(input, m.input.size, Math.sqrt(crop.w * crop.h), detected.score, blockiness(image, stored), pose);
  const out = await model.run(input);
  const probs = widen(out.probs, wideningFor(m.calibration, quality.score));
  const groups = groupProbabilities(probs, m.ages.min);
  const attention = attentionToImage(out.box, crop);
  const range = reachOverFarMode(centralInterval(probs, RANGE_LEVEL, m.ages.min, rangeLevel(rangeLevelsOf(m), out.age)), probs, out.age, m.ages);
  if (range.far) quality.reasons.push(TWO_AGES_REASON);
  return {
    age: round1(out.age),
    range: range.range,
    group: mostLikelyGroup(groups),
    groups,
    top_k: topK(probs, k, m.ages.min),
    global_age: round1(out.globalAge),
    local_age: round1(out.localAge),
    attention: roundRect(roll === 0 ? attention : turnedBounds(attention, crop, roll)),
    crop: roundRect(crop),
    roll: round1((roll * 180) / Math.PI),
    quality,
    ...(check.ages.length
      ? {
          over: check.ages.map((t) => {
            const probability = probabilityAtLeast(probs, t, m.ages.min);
            const decision = decide(check.rule, t, probability, quality.score);
            return { age: t, probability, decision, false_accept: decision === null ? null : check.rule!.target };
          }),
        }
      : {}),
  };
}

export const TWO_AGES_REASON = 'unsure: it sees two ages far apart; send another photo';

/**
 * The range of a distribution torn between two far ages: where a second age at least
 * FAR_MODE.gap years from the peak holds FAR_MODE.min_mass or more, the range runs from
 * FAR_MODE.reach years below the lower of the estimate and that age to as far above the higher
 * (training/metrics.py far_mode_range): on `val` the true age of such a face lies near neither
 * answer a third of the time, and a range around one of them would claim to know.
 */
export function reachOverFarMode(range: AgeEstimate['range'], probs: ArrayLike<number>, estimate: number, ages: { min: number; max: number }): { range: AgeEstimate['range']; far: boolean } {
  const far = farMode(probs, FAR_MODE, ages.min);
  if (!far || far.mass < FAR_MODE.min_mass) return { range, far: false };
  const low = Math.max(ages.min, Math.min(estimate, far.age) - FAR_MODE.reach);
  const high = Math.min(ages.max, Math.max(estimate, far.age) + FAR_MODE.reach);
  return { range: { ...range, low: round1(Math.min(range.low, low)), high: round1(Math.max(range.high, high)) }, far: true };
}

/** Bounds in the image of `r` (drawn on the upright crop) once the crop is turned back by `roll`. */
function turnedBounds(r: Rect, crop: Rect, roll: number): Rect {
  const cx = crop.x + crop.w / 2, cy = crop.y + crop.h / 2, cos = Math.cos(roll), sin = Math.sin(roll);
  const xs: number[] = [], ys: number[] = [];
  for (const [x, y] of [[r.x, r.y], [r.x + r.w, r.y], [r.x, r.y + r.h], [r.x + r.w, r.y + r.h]] as const) {
    xs.push(cx + cos * (x - cx) - sin * (y - cy));
    ys.push(cy + sin * (x - cx) + cos * (y - cy));
  }
  return { x: Math.min(...xs), y: Math.min(...ys), w: Math.max(...xs) - Math.min(...xs), h: Math.max(...ys) - Math.min(...ys) };
}
