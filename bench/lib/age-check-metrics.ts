/**
 * Metrics of `npm run bench:age-checks` (bench/age-checks.mjs): what a decision "this
 * face is at least T years old" gets wrong, per rule, on faces whose true age is known. In
 * TypeScript without imports so that Node runs it as is and the workerd suite tests it.
 */

type Decisions = Record<number, 'pass' | 'refer' | null>;

/**
 * One face's answer: its true age, the estimate, P(age >= T) for each T asked, the model's
 * own decision for each T (absent where the model has no rule), and its decisions by the rules
 * of other false-accept targets (decisionFor["0.02"]: asked with false_accept=0.02).
 */
export type CheckedFace = { truth: number; age: number; over: Record<number, number>; decision?: Decisions; decisionFor?: Record<string, Decisions> };

/**
 * A decision rule: pass when P(age >= T) >= p, when the estimate >= T + buffer, or when the
 * model's answer says "pass" (its calibrated rule, fitted on `val`: docs/capture.md; for
 * `falseAccept`, the rule fitted for that target).
 */
export type Rule = { kind: 'probability'; p: number } | { kind: 'buffer'; years: number } | { kind: 'decision'; falseAccept?: number };

export const ruleLabel = (r: Rule) =>
  r.kind === 'probability' ? `P(age ≥ T) ≥ ${r.p}` : r.kind === 'buffer' ? `estimate ≥ T + ${r.years}`
    : r.falseAccept === undefined ? "the model's decision (fitted on val)" : `the model's decision at false_accept=${r.falseAccept} (fitted on val)`;

/** The model's decision at T by a decision rule; undefined or null where it has none. */
export const decisionOf = (face: CheckedFace, t: number, rule: { falseAccept?: number }) =>
  (rule.falseAccept === undefined ? face.decision : face.decisionFor?.[String(rule.falseAccept)])?.[t];

export function passes(face: CheckedFace, t: number, rule: Rule): boolean {
  if (rule.kind === 'buffer') return face.age >= t + rule.years;
  if (rule.kind === 'decision') {
    const d = decisionOf(face, t, rule);
    if (d === undefined || d === null) throw new RangeError(`no decision at ${t} for this face`);
    return d === 'pass';
  }
  const p = face.over[t];
  if (p === undefined) throw new RangeError(`no P(age >= ${t}) for this face`);
  return p >= rule.p;
}

/** A share with its 95% Wilson score interval (k of n). */
export type Rate = { k: number; n: number; rate: number; ci95: [number, number] };

export function wilson(k: number, n: number): Rate {
  if (n === 0) return { k, n, rate: NaN, ci95: [NaN, NaN] };
  const z = 1.959964, p = k / n, z2 = z * z;
  const centre = (p + z2 / (2 * n)) / (1 + z2 / n);
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / (1 + z2 / n);
  return { k, n, rate: p, ci95: [Math.max(0, centre - half), Math.min(1, centre + half)] };
}

/** Bands of true age under T that a report splits false accepts by (those below T). */
export function bandsUnder(t: number): { label: string; lo: number; hi: number }[] {
  const edges = [[0, 12], [13, 15], [16, 17], [18, 20], [21, 24], [25, 29]] as const;
  return edges.filter(([lo]) => lo < t).map(([lo, hi]) => ({ lo, hi: Math.min(hi, t - 1), label: `${lo}–${Math.min(hi, t - 1)}` }));
}

export type CheckReport = {
  t: number;
  rule: string;
  /** People under T who pass. */
  falseAccept: Rate;
  falseAcceptByBand: ({ label: string } & Rate)[];
  /** People T or over who are refused. */
  falseReject: Rate;
  /** Of those, the ones within 5 years of T (the buffer's cost falls there). */
  falseRejectNear: Rate;
};

export function checkReport(faces: readonly CheckedFace[], t: number, rule: Rule): CheckReport {
  const under = faces.filter((f) => f.truth < t);
  const atOrOver = faces.filter((f) => f.truth >= t);
  const near = atOrOver.filter((f) => f.truth < t + 5);
  const count = (fs: readonly CheckedFace[], want: boolean) => fs.filter((f) => passes(f, t, rule) === want).length;
  return {
    t,
    rule: ruleLabel(rule),
    falseAccept: wilson(count(under, true), under.length),
    falseAcceptByBand: bandsUnder(t).map((b) => {
      const fs = under.filter((f) => f.truth >= b.lo && f.truth <= b.hi);
      return { label: b.label, ...wilson(count(fs, true), fs.length) };
    }),
    falseReject: wilson(count(atOrOver, false), atOrOver.length),
    falseRejectNear: wilson(count(near, false), near.length),
  };
}

/**
 * Reliability of P(age >= T): faces binned by p into `bins` equal-width bins; each bin's mean p
 * against the share of its faces truly T or over. ECE = Σ (n_bin / N) |mean p − share|.
 */
export function reliability(faces: readonly CheckedFace[], t: number, bins = 10) {
  const rows = Array.from({ length: bins }, (_, i) => ({ lo: i / bins, hi: (i + 1) / bins, n: 0, meanP: 0, observed: 0 }));
  for (const f of faces) {
    const p = f.over[t]!;
    const row = rows[Math.min(bins - 1, Math.floor(p * bins))]!;
    row.n += 1;
    row.meanP += p;
    row.observed += f.truth >= t ? 1 : 0;
  }
  let ece = 0;
  for (const r of rows) {
    if (r.n === 0) continue;
    r.meanP /= r.n;
    r.observed /= r.n;
    ece += (r.n / faces.length) * Math.abs(r.meanP - r.observed);
  }
  return { t, ece, bins: rows };
}

/**
 * The rule, among `candidates`, that passes the most people T or over while letting under `limit`
 * of the people under T through (point estimate): the cheapest rule that keeps false accepts
 * under the limit. undefined when none does.
 */
export function cheapestRuleUnder(faces: readonly CheckedFace[], t: number, limit: number, candidates: readonly Rule[]): CheckReport | undefined {
  let best: CheckReport | undefined;
  for (const rule of candidates) {
    const r = checkReport(faces, t, rule);
    if (!(r.falseAccept.rate < limit)) continue;
    if (!best || r.falseReject.rate < best.falseReject.rate) best = r;
  }
  return best;
}

/**
 * The measures age-assurance tests report beside false accepts (e.g. "Challenge 25" retail
 * policies, which ask for ID from anyone who looks under 25):
 * - challenge25: people under 18 estimated at 25 or more (they would not even be asked for ID);
 * - teensUnder25: people 13–17 estimated under 25 (they would be asked: the policy works for them);
 * - childrenUnder13: people 6–11 estimated under 13.
 */
export function assuranceMeasures(faces: readonly CheckedFace[]) {
  const share = (fs: readonly CheckedFace[], hit: (f: CheckedFace) => boolean) => wilson(fs.filter(hit).length, fs.length);
  const minors = faces.filter((f) => f.truth < 18);
  const teens = faces.filter((f) => f.truth >= 13 && f.truth <= 17);
  const children = faces.filter((f) => f.truth >= 6 && f.truth <= 11);
  return {
    challenge25: share(minors, (f) => f.age >= 25),
    teensUnder25: share(teens, (f) => f.age < 25),
    childrenUnder13: share(children, (f) => f.age < 13),
  };
}

/** A face's demographic labels, where the data set has them (UTKFace: gender and race). */
export type LabelledFace = { truth: number; age: number; gender?: string; race?: string };

/**
 * MAE per gender × race group (faces without both labels left out) and the spread: the largest
 * minus the smallest group MAE among groups of at least `minFaces` faces.
 */
export function maeByGroup(faces: readonly LabelledFace[], minFaces = 30) {
  const groups = new Map<string, { n: number; sum: number }>();
  for (const f of faces) {
    if (!f.gender || !f.race) continue;
    const key = `${f.gender} × ${f.race}`;
    const g = groups.get(key) ?? { n: 0, sum: 0 };
    g.n += 1;
    g.sum += Math.abs(f.age - f.truth);
    groups.set(key, g);
  }
  const rows = [...groups].map(([group, g]) => ({ group, n: g.n, mae: g.sum / g.n })).sort((a, b) => a.group.localeCompare(b.group));
  const counted = rows.filter((r) => r.n >= minFaces);
  const spread = counted.length ? Math.max(...counted.map((r) => r.mae)) - Math.min(...counted.map((r) => r.mae)) : NaN;
  return { rows, minFaces, spread, worst: counted.reduce<typeof counted[number] | undefined>((w, r) => (!w || r.mae > w.mae ? r : w), undefined) };
}

/** Bands of true age that the fairness table re-weights each group to: minors and adults apart. */
export const FAIRNESS_BANDS: readonly (readonly [number, number])[] = [[0, 12], [13, 15], [16, 17], [18, 24], [25, 29], [30, 39], [40, 49], [50, 59], [60, 200]];

/**
 * A weighted share with its 95% Wilson interval at the effective sample size (Kish: (Σw)²/Σw²),
 * so a re-weighted rate's interval widens with the weights' unevenness.
 */
export type WeightedRate = { rate: number; n: number; n_effective: number; ci95: [number, number] };

function weightedRate(xs: readonly { hit: boolean; w: number }[]): WeightedRate {
  const total = xs.reduce((s, x) => s + x.w, 0);
  if (!xs.length || total <= 0) return { rate: NaN, n: xs.length, n_effective: 0, ci95: [NaN, NaN] };
  const rate = xs.reduce((s, x) => s + (x.hit ? x.w : 0), 0) / total;
  const nEff = total ** 2 / xs.reduce((s, x) => s + x.w ** 2, 0);
  const w = wilson(rate * nEff, nEff);
  return { rate, n: xs.length, n_effective: nEff, ci95: w.ci95 };
}

/**
 * Per-face weights that give `faces` the age mix of `reference` (by FAIRNESS_BANDS): a face in
 * band b weighs reference share(b) / its group's count in b. Bands the group lacks are left out
 * and the rest renormalised, so a group is compared on the ages it has.
 */
function ageMixWeights(faces: readonly LabelledFace[], reference: readonly LabelledFace[]): number[] {
  const band = (t: number) => FAIRNESS_BANDS.findIndex(([lo, hi]) => t >= lo && t <= hi);
  const share = FAIRNESS_BANDS.map((_, b) => reference.filter((f) => band(f.truth) === b).length / reference.length);
  const count = FAIRNESS_BANDS.map((_, b) => faces.filter((f) => band(f.truth) === b).length);
  return faces.map((f) => share[band(f.truth)]! / count[band(f.truth)]!);
}

export type FairnessRow = {
  group: string;
  faces: number;
  mae: number;
  mae_reweighted: number;
  adults_referred: WeightedRate;
  adults_referred_reweighted: WeightedRate;
  minors_pass: WeightedRate;
  minors_pass_reweighted: WeightedRate;
};

/**
 * How the age check at `t` (the model's decision by `rule`) and the estimate treat each value of
 * `key` (gender or race): MAE, adults (t or over) referred, minors (under t) who pass, each raw
 * and re-weighted to the whole set's age mix (among adults, among minors, among all for MAE).
 * Faces without the label are left out.
 */
export function fairnessBy(faces: readonly (CheckedFace & LabelledFace)[], key: 'gender' | 'race', t: number, rule: Rule): FairnessRow[] {
  const labelled = faces.filter((f) => f[key] !== undefined && f[key] !== '');
  const adults = labelled.filter((f) => f.truth >= t), minors = labelled.filter((f) => f.truth < t);
  const groups = [...new Set(labelled.map((f) => f[key]!))].sort();
  const even = (xs: readonly unknown[]) => xs.map(() => 1);
  return groups.map((g) => {
    const all = labelled.filter((f) => f[key] === g), a = adults.filter((f) => f[key] === g), m = minors.filter((f) => f[key] === g);
    const err = all.map((f) => Math.abs(f.age - f.truth));
    const wAll = ageMixWeights(all, labelled);
    const referred = (w: number[]) => weightedRate(a.map((f, i) => ({ hit: !passes(f, t, rule), w: w[i]! })));
    const passing = (w: number[]) => weightedRate(m.map((f, i) => ({ hit: passes(f, t, rule), w: w[i]! })));
    return {
      group: g, faces: all.length,
      mae: err.reduce((s, e) => s + e, 0) / all.length,
      mae_reweighted: err.reduce((s, e, i) => s + e * wAll[i]!, 0) / wAll.reduce((s, w) => s + w, 0),
      adults_referred: referred(even(a)), adults_referred_reweighted: referred(ageMixWeights(a, adults)),
      minors_pass: passing(even(m)), minors_pass_reweighted: passing(ageMixWeights(m, minors)),
    };
  });
}
