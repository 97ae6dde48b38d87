import { describe, expect, it } from 'vitest';
import { assuranceMeasures, bandsUnder, checkReport, cheapestRuleUnder, fairnessBy, maeByGroup, reliability, wilson, type CheckedFace, type LabelledFace, type Rule } from '../bench/lib/age-check-metrics';

// Eight hand-made faces for T = 18: four under 18 (ages 10, 15, 16, 17), four at 18 or over
// (18, 19, 25, 40). Estimates and P(age >= 18) chosen so that every rate can be counted by hand.
const faces: CheckedFace[] = [
  { truth: 10, age: 12.0, over: { 18: 0.05 } },
  { truth: 15, age: 19.5, over: { 18: 0.62 } },  // passes p >= 0.5 and estimate >= 18 (+0, +1)
  { truth: 16, age: 18.4, over: { 18: 0.55 } },  // passes p >= 0.5 and estimate >= 18 (+0)
  { truth: 17, age: 17.0, over: { 18: 0.45 } },
  { truth: 18, age: 17.5, over: { 18: 0.48 } },  // refused by every rule below
  { truth: 19, age: 21.0, over: { 18: 0.85 } },
  { truth: 25, age: 24.0, over: { 18: 0.97 } },
  { truth: 40, age: 38.0, over: { 18: 0.99 } },
];

describe('bench:age-checks metrics', () => {
  it('false accepts and rejects of P(age >= 18) >= 0.5, by band, counted by hand', () => {
    const r = checkReport(faces, 18, { kind: 'probability', p: 0.5 });
    expect([r.falseAccept.k, r.falseAccept.n]).toEqual([2, 4]);           // 15 and 16 pass
    expect(r.falseAcceptByBand.map((b) => [b.label, b.k, b.n])).toEqual([['0–12', 0, 1], ['13–15', 1, 1], ['16–17', 1, 2]]);
    expect([r.falseReject.k, r.falseReject.n]).toEqual([1, 4]);           // 18 is refused
    expect([r.falseRejectNear.k, r.falseRejectNear.n]).toEqual([1, 2]);   // of 18 and 19 (under 23)
  });

  it('a stricter probability and a buffer move errors from accepts to rejects', () => {
    const strict = checkReport(faces, 18, { kind: 'probability', p: 0.95 });
    expect([strict.falseAccept.k, strict.falseReject.k]).toEqual([0, 2]);  // 18 and 19 refused
    const buffer1 = checkReport(faces, 18, { kind: 'buffer', years: 1 });
    expect([buffer1.falseAccept.k, buffer1.falseReject.k]).toEqual([1, 1]); // 15 (19.5) passes; 18 (17.5) refused
    const buffer2 = checkReport(faces, 18, { kind: 'buffer', years: 2 });
    expect([buffer2.falseAccept.k, buffer2.falseReject.k]).toEqual([0, 1]); // 19.5 < 20; 21, 24, 38 pass
  });

  it('the cheapest rule under a false-accept limit', () => {
    const candidates: Rule[] = [
      ...[0.5, 0.8, 0.95].map((p) => ({ kind: 'probability' as const, p })),
      ...[0, 1, 2, 3].map((years) => ({ kind: 'buffer' as const, years })),
    ];
    // No false accept: p >= 0.8 (refuses only the 18-year-old, p 0.48), p >= 0.95 (also the
    // 19-year-old, 0.85), buffers 2 and 3 (refuse only the 18-year-old, estimate 17.5). The
    // first rule with the fewest rejects wins.
    const best = cheapestRuleUnder(faces, 18, 0.01, candidates)!;
    expect(best.rule).toBe('P(age ≥ T) ≥ 0.8');
    expect([best.falseAccept.k, best.falseReject.k]).toEqual([0, 1]);
    expect(cheapestRuleUnder(faces, 18, 0.01, [{ kind: 'buffer', years: 0 }])).toBeUndefined();
  });

  it('reliability bins and the expected calibration error', () => {
    const r = reliability(faces, 18, 2);
    // Bin [0, 0.5): p 0.05, 0.45, 0.48 (mean 0.3267), one of three is 18+ (the 18-year-old).
    // Bin [0.5, 1]: p 0.62, 0.55, 0.85, 0.97, 0.99 (mean 0.796), three of five are 18+.
    expect(r.bins.map((b) => b.n)).toEqual([3, 5]);
    expect(r.bins[0]!.meanP).toBeCloseTo(0.98 / 3, 10);
    expect(r.bins[0]!.observed).toBeCloseTo(1 / 3, 10);
    expect(r.bins[1]!.meanP).toBeCloseTo(3.98 / 5, 10);
    expect(r.bins[1]!.observed).toBeCloseTo(3 / 5, 10);
    expect(r.ece).toBeCloseTo((3 / 8) * Math.abs(0.98 / 3 - 1 / 3) + (5 / 8) * Math.abs(3.98 / 5 - 3 / 5), 10);
  });

  it('Wilson intervals and the bands under T', () => {
    const w = wilson(0, 100);
    expect(w.rate).toBe(0);
    expect(w.ci95[0]).toBe(0);
    expect(w.ci95[1]).toBeCloseTo(0.037, 3);   // the "rule of three" region, a little above 3/100
    expect(wilson(50, 100).ci95[0]).toBeCloseTo(0.4038, 3);
    expect(bandsUnder(13).map((b) => b.label)).toEqual(['0–12']);
    expect(bandsUnder(16).map((b) => b.label)).toEqual(['0–12', '13–15']);
    expect(bandsUnder(21).map((b) => b.label)).toEqual(['0–12', '13–15', '16–17', '18–20']);
  });

  it('challenge 25 and the shares of teens and children estimated under 25 and 13, counted by hand', () => {
    const more: CheckedFace[] = [
      ...faces,
      { truth: 14, age: 26.0, over: {} },   // a minor estimated at 25+: not even asked for ID
      { truth: 8, age: 14.0, over: {} },    // a child estimated at 13+
      { truth: 7, age: 9.0, over: {} },
    ];
    const m = assuranceMeasures(more);
    // Under 18: 10, 15, 16, 17, 14, 8, 7 -> only 14 (26.0) at 25 or more.
    expect([m.challenge25.k, m.challenge25.n]).toEqual([1, 7]);
    // 13-17: 15, 16, 17, 14 -> three under 25 (14 is at 26.0).
    expect([m.teensUnder25.k, m.teensUnder25.n]).toEqual([3, 4]);
    // 6-11: 10, 8, 7 -> 10 (12.0) and 7 (9.0) under 13; 8 (14.0) is not.
    expect([m.childrenUnder13.k, m.childrenUnder13.n]).toEqual([2, 3]);
  });

  it('MAE by gender x race group and the spread over groups big enough to count', () => {
    const labelled: LabelledFace[] = [
      { truth: 20, age: 22, gender: 'female', race: 'Asian' },
      { truth: 30, age: 26, gender: 'female', race: 'Asian' },   // group MAE 3
      { truth: 40, age: 41, gender: 'male', race: 'White' },
      { truth: 50, age: 49, gender: 'male', race: 'White' },     // group MAE 1
      { truth: 60, age: 70, gender: 'male', race: 'Black' },     // one face: listed, not counted in the spread
      { truth: 60, age: 70 },                                    // no labels: left out
    ];
    const g = maeByGroup(labelled, 2);
    expect(g.rows.map((r) => [r.group, r.n, r.mae])).toEqual([
      ['female × Asian', 2, 3], ['male × Black', 1, 10], ['male × White', 2, 1]]);
    expect(g.spread).toBe(2);
    expect(g.worst?.group).toBe('female × Asian');
  });

  it("the model's own decision as a rule: pass where it says pass; no decision at T is an error", () => {
    const decided = faces.map((f, i) => ({ ...f, decision: { 18: (i === 1 || i >= 5 ? 'pass' : 'refer') as 'pass' | 'refer' } }));
    const r = checkReport(decided, 18, { kind: 'decision' });
    expect([r.falseAccept.k, r.falseAccept.n]).toEqual([1, 4]);     // the 15-year-old passes
    expect([r.falseReject.k, r.falseReject.n]).toEqual([1, 4]);     // the 18-year-old refers
    expect(() => checkReport(faces, 18, { kind: 'decision' })).toThrow(/no decision/);
    // A looser target's decisions are their own rule: asked for by its target, never mixed up with the default's.
    const looser = decided.map((f, i) => ({ ...f, decisionFor: { '0.02': { 18: (i >= 1 ? 'pass' : 'refer') as 'pass' | 'refer' } } }));
    expect(checkReport(looser, 18, { kind: 'decision', falseAccept: 0.02 }).rule).toBe("the model's decision at false_accept=0.02 (fitted on val)");
    expect(checkReport(looser, 18, { kind: 'decision', falseAccept: 0.02 }).falseReject.k).toBeLessThanOrEqual(r.falseReject.k);
    expect(() => checkReport(decided, 18, { kind: 'decision', falseAccept: 0.02 })).toThrow(/no decision/);
  });

  it('fairness by group: raw rates, and rates re-weighted to one age mix that undo a group being younger', () => {
    // Women are 20 (two of them) and 40; men 20 and 40 (two). Everyone under 30 is referred at 18.
    const face = (truth: number, gender: string, age: number): CheckedFace & LabelledFace => ({ truth, age, gender, over: { 18: truth < 30 ? 0.5 : 0.99 } });
    const adults = [face(20, 'female', 22), face(20, 'female', 24), face(40, 'female', 40), face(20, 'male', 20), face(40, 'male', 44), face(40, 'male', 40)];
    const minors = [face(15, 'female', 19), face(16, 'female', 17), face(15, 'male', 14), face(10, 'male', 12)];
    const rows = fairnessBy([...adults, ...minors, { ...face(30, '', 30) }], 'gender', 18, { kind: 'probability', p: 0.9 });
    const [women, men] = rows;
    expect(rows.map((r) => [r.group, r.faces])).toEqual([['female', 5], ['male', 5]]);
    expect([women!.adults_referred.rate, men!.adults_referred.rate]).toEqual([2 / 3, 1 / 3]);
    // The same age mix (half 18-24, half 40-49): both refer all of their 18-24s and none older.
    expect(women!.adults_referred_reweighted.rate).toBeCloseTo(0.5, 12);
    expect(men!.adults_referred_reweighted.rate).toBeCloseTo(0.5, 12);
    // Uneven weights shrink the effective sample below the count, and the interval holds the rate.
    expect(women!.adults_referred_reweighted.n_effective).toBeLessThan(3);
    const [lo, hi] = women!.adults_referred_reweighted.ci95;
    expect(lo).toBeLessThan(0.5);
    expect(hi).toBeGreaterThan(0.5);
    // No minor passes (P 0.5 < 0.9); MAE raw is the plain mean.
    expect(women!.minors_pass.rate).toBe(0);
    expect(women!.mae).toBeCloseTo((2 + 4 + 0 + 4 + 1) / 5, 12);
    expect(men!.mae).toBeCloseTo((0 + 4 + 0 + 1 + 2) / 5, 12);
  });
});
