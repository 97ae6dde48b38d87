import { describe, expect, it } from 'vitest';
import { confidentAndFar, faceSpread, percentile, spreadSummary, stabilityReport, type FaceViews } from '../bench/lib/stability-metrics';

// Three faces in three views, every number countable by hand.
const faces: FaceViews[] = [
  // Steady: answers 20, 22, 21; always passes.
  { truth: 20, answers: { clean: { age: 20, range: { low: 16, high: 25 }, pass18: true }, warm: { age: 22, range: { low: 17, high: 27 }, pass18: true }, shift: { age: 21, range: { low: 16, high: 26 }, pass18: true } } },
  // Tipped by the light: 30, 52 (confident and far from the median 31), 31; the decision holds.
  { truth: 30, answers: { clean: { age: 30, range: { low: 25, high: 36 }, pass18: true }, warm: { age: 52, range: { low: 46, high: 58 }, pass18: true }, shift: { age: 31, range: { low: 20, high: 45 }, pass18: true } } },
  // A minor whose reframed view passes: 15, 16, 19; the shifted view missing (not found).
  { truth: 15, answers: { clean: { age: 15, range: { low: 11, high: 19 }, pass18: false }, warm: { age: 19, range: { low: 14, high: 24 }, pass18: true } } },
];
const views = ['clean', 'warm', 'shift'];

describe('bench:stability metrics', () => {
  it('percentiles as numpy draws them, and the spread summary', () => {
    expect(percentile([1, 2, 3, 4], 50)).toBe(2.5);
    expect(percentile([0, 10], 90)).toBe(9);
    expect(percentile([5], 90)).toBe(5);
    expect(Number.isNaN(percentile([], 50))).toBe(true);
    expect(spreadSummary([2, 22, 4, 12])).toEqual({ faces: 4, median: 8, p90: 22 - 0.3 * 10, worst: 22, over10: 2 });
  });

  it("a face's spread over the views it has", () => {
    expect(faceSpread(faces[0]!)).toBe(2);
    expect(faceSpread(faces[1]!, ['clean', 'shift'])).toBe(1);
    expect(faceSpread(faces[2]!)).toBe(4);
    expect(Number.isNaN(faceSpread(faces[2]!, ['shift', 'clean']))).toBe(true);   // one answer: no spread
    expect(Number.isNaN(faceSpread({ answers: { clean: { age: 3 } } }))).toBe(true);
  });

  it('confident and far: a narrow range far from the face\'s median answer, and nothing else', () => {
    const cf = confidentAndFar(faces);
    expect(cf).toEqual([{ face: 1, view: 'warm', age: 52, median: 31, range: { low: 46, high: 58 } }]);
    // As far but wide (15 years or more): not confident.
    expect(confidentAndFar([{ answers: { a: { age: 10, range: { low: 5, high: 15 } }, b: { age: 10 }, c: { age: 40, range: { low: 30, high: 45 } } } }])).toEqual([]);
  });

  it('the report: spreads overall and by group, MAE and moves by view, flips at 18', () => {
    const r = stabilityReport(faces, views, { warm: 'light', shift: 'frame' });
    expect(r.faces).toBe(3);
    expect(r.answers).toBe(8);
    expect(r.spread).toEqual(spreadSummary([2, 22, 4]));
    expect(r.spreadByGroup.light).toEqual(spreadSummary([2, 22, 4]));
    expect(r.spreadByGroup.frame).toEqual(spreadSummary([1, 1]));
    expect(r.byView.warm!.mae!.value).toBeCloseTo((2 + 22 + 4) / 3, 10);
    expect(r.byView.shift!.mae!.value).toBeCloseTo(1, 10);
    expect(r.byView.warm!.meanMove).toBeCloseTo((2 + 22 + 4) / 3, 10);
    expect(r.byView.clean!.meanMove).toBe(0);
    expect([r.flips18!.k, r.flips18!.n]).toEqual([1, 3]);
    expect(r.confidentFar).toHaveLength(1);
    expect(r.ranged).toBe(8);
  });

  it('a model that decides nothing has no flips, and faces without ages no MAE', () => {
    const r = stabilityReport([{ answers: { clean: { age: 30 }, warm: { age: 35 } } }], ['clean', 'warm']);
    expect(r.flips18).toBeNull();
    expect(r.byView.warm!.mae).toBeNull();
    expect(r.spread.worst).toBe(5);
    expect(r.confidentFar).toEqual([]);
  });
});
