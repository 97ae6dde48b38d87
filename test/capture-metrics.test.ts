import { describe, expect, it } from 'vitest';
import { captureReport, maeInterval, type CaptureAnswer } from '../bench/lib/capture-metrics';

// Six hand-made answers: three minors (10, 15, 17) and three adults (18, 30, 50), every number
// countable by hand.
const answers: CaptureAnswer[] = [
  { truth: 10, age: 12, range: { low: 8, high: 15 }, pass18: false },
  { truth: 15, age: 26, range: { low: 18, high: 34 }, pass18: true },   // 18+, 25+, passes, range misses
  { truth: 17, age: 19, range: { low: 14, high: 24 }, pass18: false },  // 18+
  { truth: 18, age: 18, range: { low: 14, high: 23 }, pass18: false },
  { truth: 30, age: 33, range: { low: 25, high: 41 }, pass18: true },
  { truth: 50, age: 44, range: { low: 36, high: 49 }, pass18: true },   // range misses
];

describe('bench:capture metrics', () => {
  it('MAE and its interval, by hand', () => {
    const m = maeInterval(answers);
    // errors 2, 11, 2, 0, 3, 6: mean 4, sample sd sqrt(((4+49+4+16+1+4)/5)) = sqrt(15.6)
    expect(m.value).toBeCloseTo(4, 10);
    expect(m.ci95[1] - m.value).toBeCloseTo((1.96 * Math.sqrt(15.6)) / Math.sqrt(6), 10);
  });

  it('coverage, minors 18+, challenge 25, false accepts and adults who pass', () => {
    const r = captureReport(answers);
    expect(r.n).toBe(6);
    expect([r.coverage!.k, r.coverage!.n]).toEqual([4, 6]);
    expect(r.meanWidth).toBeCloseTo((7 + 16 + 10 + 9 + 16 + 13) / 6, 10);
    expect([r.minorsAdult.k, r.minorsAdult.n]).toEqual([2, 3]);
    expect([r.challenge25.k, r.challenge25.n]).toEqual([1, 3]);
    expect([r.falseAccept18!.k, r.falseAccept18!.n]).toEqual([1, 3]);
    expect([r.adultsPass18!.k, r.adultsPass18!.n]).toEqual([2, 3]);
    expect(r.falseAccept18!.ci95[0]).toBeLessThan(1 / 3);
    expect(r.falseAccept18!.ci95[1]).toBeGreaterThan(1 / 3);
  });

  it('a model without ranges or checks reports none', () => {
    const r = captureReport(answers.map(({ truth, age }) => ({ truth, age, range: null, pass18: null })));
    expect(r.coverage).toBeNull();
    expect(r.falseAccept18).toBeNull();
    expect(r.adultsPass18).toBeNull();
  });
});
