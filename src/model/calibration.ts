/**
 * The model's calibration, as its manifest carries it: the rules training/calibration.py fitted
 * on `val` at release, applied here the same way (test/quality.test.ts holds the two together
 * through test/fixtures/parity/quality.json). The graph's temperature is inside the graph; the rest is here:
 *   - range levels: the nominal level the 80% range is read at, per band of the estimate;
 *   - widening: per band of capture quality, a temperature on the distribution (p^(1/tau));
 *   - decision: per threshold age and quality band, the P(age >= T) from which a face passes,
 *     one rule per false-accept target fitted (the default, and those of other_decisions).
 */
import type { Calibration, DecisionRule, RangeLevel } from '../registry/manifest';

export const RANGE_LEVEL = 0.8;

/**
 * The nominal level the range is read at for an estimate: its band's in `range_levels` (the
 * estimate rounded down to a whole year), else RANGE_LEVEL (calibration.range_levels_for).
 */
export function rangeLevel(levels: RangeLevel[] | undefined, age: number): number {
  const whole = Math.floor(age);
  const band = levels?.find((b) => whole >= b.from && (b.to === null || whole <= b.to));
  return band ? band.level : RANGE_LEVEL;
}

/** The widening temperature for a quality score: its band's tau, 1 without a fit. */
export function wideningFor(calibration: Calibration | undefined, score: number): number {
  const band = calibration?.widening.find((b) => score >= b.from && score < b.to);
  return band ? band.tau : 1;
}

/**
 * p^(1/tau), renormalised (calibration.widen): tau > 1 spreads the distribution in proportion
 * to its own spread. tau 1 returns the input as it is.
 */
export function widen(probs: ArrayLike<number>, tau: number): ArrayLike<number> {
  if (tau === 1) return probs;
  const out = new Float64Array(probs.length);
  let total = 0;
  for (let i = 0; i < probs.length; i++) {
    const p = Math.max(0, probs[i]!);
    out[i] = p > 0 ? Math.exp(Math.log(p) / tau) : 0;
    total += out[i]!;
  }
  if (total > 0) for (let i = 0; i < out.length; i++) out[i] = out[i]! / total;
  return out;
}

export type Decision = 'pass' | 'refer';

/**
 * The rule fitted for a false-accept target (calibration.decision_for): the default rule
 * (`decision`) when no target is asked, else the one with that target; undefined when the model
 * has none for it.
 */
export function decisionRule(calibration: Calibration | undefined, target?: number): DecisionRule | undefined {
  if (!calibration) return undefined;
  const rules = [calibration.decision, ...(calibration.other_decisions ?? [])];
  return target === undefined ? rules[0] : rules.find((r) => r.target === target);
}

/** A false-accept target the model has no decision rule for: the request cannot be answered as asked (a 400). */
export class NoDecisionRuleError extends Error {
  override name = 'NoDecisionRuleError';
}

/** The false-accept targets a model has rules for, the default first. */
export const fittedTargets = (calibration: Calibration | undefined): number[] =>
  calibration ? [calibration.decision, ...(calibration.other_decisions ?? [])].map((r) => r.target) : [];

/**
 * "pass" when the face's quality band has a threshold for T and P(age >= T) reaches it, else
 * "refer" (calibration.decide); null when the rule has nothing fitted for T (or there is no rule).
 */
export function decide(rule: DecisionRule | undefined, t: number, probability: number, score: number): Decision | null {
  const bands = rule?.ages[String(t)];
  if (!bands) return null;
  const band = bands.find((b) => score >= b.from && score < b.to);
  return band && band.min_p !== null && probability >= band.min_p ? 'pass' : 'refer';
}
