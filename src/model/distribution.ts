/**
 * Read-outs of the fused age distribution `probs` (one probability per whole year from
 * `minAge` to `maxAge`).
 */

export type AgeGroup = { label: string; from: number; to: number };

/** The groups reported by the API; the last one is open-ended. */
export const AGE_GROUPS: readonly AgeGroup[] = [
  { label: '0-2', from: 0, to: 2 },
  { label: '3-7', from: 3, to: 7 },
  { label: '8-14', from: 8, to: 14 },
  { label: '15-24', from: 15, to: 24 },
  { label: '25-37', from: 25, to: 37 },
  { label: '38-47', from: 38, to: 47 },
  { label: '48-59', from: 48, to: 59 },
  { label: '60+', from: 60, to: Number.POSITIVE_INFINITY },
];

export const round1 = (v: number) => Math.round(v * 10) / 10;
const round4 = (v: number) => Math.round(v * 1e4) / 1e4;

/** Σ p_i · age_i: the DEX expectation (the model outputs it too; used to cross-check). */
export function expectedAge(probs: ArrayLike<number>, minAge = 0): number {
  let s = 0;
  for (let i = 0; i < probs.length; i++) s += probs[i]! * (minAge + i);
  return s;
}

/**
 * Quantile of the distribution read as a histogram: age a's mass is spread evenly over
 * [a - 0.5, a + 0.5], so quantiles move continuously instead of jumping a whole year.
 * The result is clamped to [minAge, maxAge].
 */
export function quantile(probs: ArrayLike<number>, q: number, minAge = 0): number {
  const n = probs.length;
  let total = 0;
  for (let i = 0; i < n; i++) total += Math.max(0, probs[i]!);
  if (!(total > 0)) return minAge;
  const target = q * total;
  let cdf = 0;
  for (let i = 0; i < n; i++) {
    const p = Math.max(0, probs[i]!);
    if (p > 0 && cdf + p >= target) {
      const v = minAge + i - 0.5 + (target - cdf) / p;
      return Math.min(minAge + n - 1, Math.max(minAge, v));
    }
    cdf += p;
  }
  return minAge + n - 1;
}

/**
 * The central interval holding `nominal` of the probability mass (0.8 → 10th..90th percentile),
 * reported as covering `level`: a calibrated range reads the distribution at the nominal level
 * that covered `level` of the validation faces (rangeLevel in calibration.ts).
 */
export function centralInterval(probs: ArrayLike<number>, level: number, minAge = 0, nominal = level): { low: number; high: number; level: number } {
  const tail = (1 - nominal) / 2;
  return { low: round1(quantile(probs, tail, minAge)), high: round1(quantile(probs, 1 - tail, minAge)), level };
}

/** P(age >= t): the distribution's mass at ages t and over (of its total), four decimals. */
export function probabilityAtLeast(probs: ArrayLike<number>, t: number, minAge = 0): number {
  let above = 0, total = 0;
  for (let i = 0; i < probs.length; i++) {
    const p = Math.max(0, probs[i]!);
    total += p;
    if (minAge + i >= t) above += p;
  }
  return total > 0 ? round4(above / total) : 0;
}

/** Probability of each age group, in AGE_GROUPS order. */
export function groupProbabilities(probs: ArrayLike<number>, minAge = 0): { label: string; probability: number }[] {
  return AGE_GROUPS.map((g) => {
    let s = 0;
    for (let i = 0; i < probs.length; i++) {
      const age = minAge + i;
      if (age >= g.from && age <= g.to) s += probs[i]!;
    }
    return { label: g.label, probability: round4(s) };
  });
}

/** The most likely group; ties go to the younger group. */
export function mostLikelyGroup(groups: { label: string; probability: number }[]): { label: string; probability: number } {
  let best = groups[0]!;
  for (const g of groups) if (g.probability > best.probability) best = g;
  return best;
}

/** The k most likely ages, most likely first; ties go to the younger age. */
export function topK(probs: ArrayLike<number>, k: number, minAge = 0): { age: number; probability: number }[] {
  const order = Array.from({ length: probs.length }, (_, i) => i);
  order.sort((a, b) => probs[b]! - probs[a]! || a - b);
  return order.slice(0, Math.max(0, Math.min(k, probs.length))).map((i) => ({ age: minAge + i, probability: round4(probs[i]!) }));
}

/**
 * The second age the distribution holds far from its peak (training/metrics.py far_mode): peaks
 * are read on the distribution averaged over a box of 2·smooth+1 years (zero past the ends);
 * among the local peaks at least `gap` years from the highest, the one with the most mass within
 * `window` years of it. null when there is none.
 */
export function farMode(probs: ArrayLike<number>, rule: { gap: number; window: number; smooth: number }, minAge = 0): { age: number; mass: number } | null {
  const n = probs.length, k = 2 * rule.smooth + 1;
  const p = Array.from(probs, (v) => Math.max(0, v));
  const cum = new Float64Array(n + 1);
  for (let i = 0; i < n; i++) cum[i + 1] = cum[i]! + p[i]!;
  const box = (i: number) => (cum[Math.min(n, i + rule.smooth + 1)]! - cum[Math.max(0, i - rule.smooth)]!) / k;
  const s = Array.from({ length: n }, (_, i) => box(i));
  let peak = 0;
  for (let i = 1; i < n; i++) if (s[i]! > s[peak]!) peak = i;
  let best: { age: number; mass: number } | null = null;
  for (let i = 0; i < n; i++) {
    const local = (i === 0 || s[i]! >= s[i - 1]!) && (i === n - 1 || s[i]! > s[i + 1]!);
    if (!local || Math.abs(i - peak) < rule.gap) continue;
    const mass = cum[Math.min(n - 1, i + rule.window) + 1]! - cum[Math.max(0, i - rule.window)]!;
    if (mass > 0 && (!best || mass > best.mass)) best = { age: minAge + i, mass };
  }
  return best;
}
