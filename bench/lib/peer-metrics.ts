/**
 * Metrics of `npm run bench:peers` (bench/peers.mjs), in TypeScript without imports so
 * that Node runs it as is (type stripping) and the workerd test suite checks it.
 */

/** Age bands of the report, by true age in whole years; the last is open. */
export const BANDS: readonly { label: string; lo: number; hi: number }[] = [
  { label: '0–12', lo: 0, hi: 12 },
  { label: '13–17', lo: 13, hi: 17 },
  { label: '18–24', lo: 18, hi: 24 },
  { label: '25–39', lo: 25, hi: 39 },
  { label: '40–59', lo: 40, hi: 59 },
  { label: '60+', lo: 60, hi: Infinity },
];

export const ADULT = 18;

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const mean = (xs: readonly number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);

export type AgeReport = {
  n: number;
  mae: number;
  medianAbsError: number;
  bands: { label: string; n: number; mae: number }[];
  /** True age 0–17 predicted 18 or over. */
  minors: { n: number; asAdult: number };
  /** True age 0–12 predicted 18 or over. */
  children: { n: number; asAdult: number };
};

/** `pred[i]` is the estimate for a face whose true age is `truth[i]`. */
export function ageReport(pred: readonly number[], truth: readonly number[]): AgeReport {
  if (pred.length !== truth.length) throw new RangeError(`${pred.length} predictions for ${truth.length} faces`);
  if (pred.some((p) => !Number.isFinite(p))) throw new RangeError('a prediction is not a finite number');
  const err = pred.map((p, i) => Math.abs(p - truth[i]!));
  const where = (keep: (age: number) => boolean) => truth.flatMap((t, i) => (keep(t) ? [i] : []));
  const asAdult = (idx: number[]) => idx.filter((i) => pred[i]! >= ADULT).length;
  const minors = where((t) => t < ADULT);
  const children = where((t) => t <= 12);
  return {
    n: pred.length,
    mae: mean(err),
    medianAbsError: median(err),
    bands: BANDS.map((b) => {
      const idx = where((t) => t >= b.lo && t <= b.hi);
      return { label: b.label, n: idx.length, mae: mean(idx.map((i) => err[i]!)) };
    }),
    minors: { n: minors.length, asAdult: asAdult(minors) },
    children: { n: children.length, asAdult: asAdult(children) },
  };
}
