import { describe, expect, it } from 'vitest';
import { ageReport, median } from '../bench/lib/peer-metrics';

describe('bench:peers metrics', () => {
  it('median of odd and even counts', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });

  it('MAE overall and by band, and minors placed at 18 or over', () => {
    const truth = [5, 12, 13, 17, 18, 30, 59, 60, 90];
    const pred = [18, 10, 20, 17.9, 18, 33, 50, 61, 80];
    const r = ageReport(pred, truth);
    expect(r.n).toBe(9);
    expect(r.mae).toBeCloseTo((13 + 2 + 7 + 0.9 + 0 + 3 + 9 + 1 + 10) / 9, 10);
    expect(r.medianAbsError).toBe(3);
    expect(r.bands.map((b) => [b.label, b.n])).toEqual([['0–12', 2], ['13–17', 2], ['18–24', 1], ['25–39', 1], ['40–59', 1], ['60+', 2]]);
    expect(r.bands[0]!.mae).toBe(7.5);
    expect(r.bands[1]!.mae).toBeCloseTo(3.95, 10);
    expect(r.bands[5]!.mae).toBe(5.5);
    // 5 → 18 counts (18 is adult), 17 → 17.9 does not; 13 → 20 counts.
    expect(r.minors).toEqual({ n: 4, asAdult: 2 });
    expect(r.children).toEqual({ n: 2, asAdult: 1 });
  });

  it('refuses mismatched or non-finite predictions', () => {
    expect(() => ageReport([1, 2], [1])).toThrow(RangeError);
    expect(() => ageReport([NaN], [1])).toThrow(RangeError);
  });
});
