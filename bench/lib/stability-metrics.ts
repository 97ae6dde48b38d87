// The stability benchmark's numbers (bench/stability.mjs) from each face's answers over views of
// it that should not change its age: the spread of a face's answers (largest minus smallest), the
// MAE of each view, decisions at 18 that flip between views, and "confident and far" answers (a
// range narrower than CONFIDENT_WIDTH years whose estimate lies more than FAR years from the
// face's median answer). Unit-tested in test/stability-metrics.test.ts.
import { type Rate, wilson } from './age-check-metrics.ts';
import { type Interval, maeInterval } from './capture-metrics.ts';

export const CONFIDENT_WIDTH = 15;
export const FAR = 15;

/** One answer for one view of a face; `range` null where the model gives none, `pass18` null where it decides nothing. */
export type ViewAnswer = { age: number; range?: { low: number; high: number } | null; pass18?: boolean | null };
/** A face: its true age where known, and its answer per view (a view where the face was not found is absent). */
export type FaceViews = { truth?: number; answers: Record<string, ViewAnswer> };

/** The p-th percentile (0..100), linear between order statistics (numpy's default). */
export function percentile(xs: readonly number[], p: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const at = (p / 100) * (s.length - 1);
  const lo = Math.floor(at), hi = Math.ceil(at);
  return s[lo]! + (s[hi]! - s[lo]!) * (at - lo);
}

export type Spread = { faces: number; median: number; p90: number; worst: number; over10: number };

/** Median, 90th percentile and worst of per-face spreads, and how many spread over 10 years. */
export function spreadSummary(spreads: readonly number[]): Spread {
  return { faces: spreads.length, median: percentile(spreads, 50), p90: percentile(spreads, 90), worst: spreads.length ? Math.max(...spreads) : NaN, over10: spreads.filter((s) => s > 10).length };
}

/** Largest minus smallest of a face's answers over `views` (those it has); NaN with fewer than two. */
export function faceSpread(face: FaceViews, views?: readonly string[]): number {
  const ages = (views ?? Object.keys(face.answers)).map((v) => face.answers[v]?.age).filter((a): a is number => a !== undefined);
  return ages.length < 2 ? NaN : Math.max(...ages) - Math.min(...ages);
}

/** An answer that claims to know (range narrower than CONFIDENT_WIDTH) and lies far (over FAR years) from the face's median answer. */
export type ConfidentFar = { face: number; view: string; age: number; median: number; range: { low: number; high: number } };

export function confidentAndFar(faces: readonly FaceViews[]): ConfidentFar[] {
  const out: ConfidentFar[] = [];
  faces.forEach((f, i) => {
    const entries = Object.entries(f.answers);
    const median = percentile(entries.map(([, a]) => a.age), 50);
    for (const [view, a] of entries) {
      if (a.range && a.range.high - a.range.low < CONFIDENT_WIDTH && Math.abs(a.age - median) > FAR) out.push({ face: i, view, age: a.age, median, range: a.range });
    }
  });
  return out;
}

export type StabilityReport = {
  faces: number;
  answers: number;
  spread: Spread;
  /** The spread over the clean view and one group's views (frame, light, other), where `groups` names them. */
  spreadByGroup: Record<string, Spread>;
  /** Per view: MAE (faces with a known age) and the mean move of the answer from the face's first view. */
  byView: Record<string, { mae: Interval | null; meanMove: number }>;
  /** Faces whose decision at 18 differs between two of their views (null: the model decides nothing). */
  flips18: Rate | null;
  confidentFar: ConfidentFar[];
  /** Ranged answers (for the confident-and-far share). */
  ranged: number;
};

/**
 * The report over `faces`, each answered in (some of) `views`; the first view is the reference
 * (the clean face, or the photo as sent). `groups` maps a view to its group for spreadByGroup.
 */
export function stabilityReport(faces: readonly FaceViews[], views: readonly string[], groups: Record<string, string> = {}): StabilityReport {
  const spreads = faces.map((f) => faceSpread(f, views)).filter((s) => Number.isFinite(s));
  const spreadByGroup: Record<string, Spread> = {};
  for (const g of [...new Set(views.slice(1).map((v) => groups[v]).filter((g): g is string => !!g))]) {
    const vs = [views[0]!, ...views.slice(1).filter((v) => groups[v] === g)];
    spreadByGroup[g] = spreadSummary(faces.map((f) => faceSpread(f, vs)).filter((s) => Number.isFinite(s)));
  }
  const byView: StabilityReport['byView'] = {};
  for (const v of views) {
    const known = faces.filter((f) => f.answers[v] && f.truth !== undefined);
    const moved = faces.filter((f) => f.answers[v] && f.answers[views[0]!]).map((f) => Math.abs(f.answers[v]!.age - f.answers[views[0]!]!.age));
    byView[v] = {
      mae: known.length ? maeInterval(known.map((f) => ({ truth: f.truth!, age: f.answers[v]!.age }))) : null,
      meanMove: moved.length ? moved.reduce((s, m) => s + m, 0) / moved.length : NaN,
    };
  }
  const decided = faces.filter((f) => Object.values(f.answers).some((a) => a.pass18 !== null && a.pass18 !== undefined));
  const flipped = decided.filter((f) => new Set(Object.values(f.answers).map((a) => a.pass18)).size > 1);
  return {
    faces: faces.length,
    answers: faces.reduce((s, f) => s + Object.keys(f.answers).length, 0),
    spread: spreadSummary(spreads),
    spreadByGroup,
    byView,
    flips18: decided.length ? wilson(flipped.length, decided.length) : null,
    confidentFar: confidentAndFar(faces),
    ranged: faces.reduce((s, f) => s + Object.values(f.answers).filter((a) => a.range).length, 0),
  };
}
