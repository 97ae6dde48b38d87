import { describe, expect, it } from 'vitest';
import { AGE_GROUPS, centralInterval, expectedAge, groupProbabilities, mostLikelyGroup, farMode, probabilityAtLeast, quantile, topK } from './distribution';

const pointMass = (age: number) => Array.from({ length: 101 }, (_, i) => (i === age ? 1 : 0));
const uniform = (from: number, to: number) => Array.from({ length: 101 }, (_, i) => (i >= from && i <= to ? 1 / (to - from + 1) : 0));

describe('expectedAge (DEX)', () => {
  it('is the probability-weighted mean', () => {
    expect(expectedAge(pointMass(37))).toBe(37);
    expect(expectedAge(uniform(20, 30))).toBeCloseTo(25, 10);
    expect(expectedAge([0.5, 0.5], 10)).toBe(10.5);
  });
});

describe('quantile and the 80% range', () => {
  it('spreads a point mass over its year', () => {
    expect(quantile(pointMass(40), 0.1)).toBeCloseTo(39.6, 10);
    expect(quantile(pointMass(40), 0.9)).toBeCloseTo(40.4, 10);
    expect(centralInterval(pointMass(40), 0.8)).toEqual({ low: 39.6, high: 40.4, level: 0.8 });
  });

  it('covers 80% of a uniform distribution', () => {
    // 20..29 inclusive is [19.5, 29.5] continuous; 10th..90th percentile = 20.5..28.5
    expect(centralInterval(uniform(20, 29), 0.8)).toEqual({ low: 20.5, high: 28.5, level: 0.8 });
  });

  it('reads a calibrated range at its nominal level and reports the level it covers', () => {
    // 20..29 is [19.5, 29.5]: the central 60% is 21.5..27.5.
    expect(centralInterval(uniform(20, 29), 0.8, 0, 0.6)).toEqual({ low: 21.5, high: 27.5, level: 0.8 });
  });

  it('P(age >= T) is the mass at T and over', () => {
    // Hand-built: 0.5 at 16, 0.3 at 18, 0.2 at 40.
    const p = new Float32Array(101);
    p[16] = 0.5; p[18] = 0.3; p[40] = 0.2;
    expect(probabilityAtLeast(p, 18)).toBeCloseTo(0.5, 6);
    expect(probabilityAtLeast(p, 17)).toBeCloseTo(0.5, 6);
    expect(probabilityAtLeast(p, 16)).toBeCloseTo(1, 6);
    expect(probabilityAtLeast(p, 41)).toBe(0);
    expect(probabilityAtLeast(p, 40)).toBeCloseTo(0.2, 6);
  });

  it('clamps at the ends of the age scale and is monotone', () => {
    expect(quantile(pointMass(0), 0.1)).toBe(0);
    expect(quantile(pointMass(100), 0.9)).toBe(100);
    const p = uniform(3, 90);
    let prev = -1;
    for (let q = 0.05; q < 1; q += 0.05) {
      const v = quantile(p, q);
      expect(v).toBeGreaterThanOrEqual(prev);
      prev = v;
    }
  });

  it('normalises a distribution that does not sum to one', () => {
    expect(quantile(uniform(20, 29).map((v) => v * 3), 0.1)).toBeCloseTo(20.5, 10);
  });
});

describe('age groups', () => {
  it('partitions 0..100 without gaps or overlaps', () => {
    for (let age = 0; age <= 100; age++) expect(AGE_GROUPS.filter((g) => age >= g.from && age <= g.to)).toHaveLength(1);
  });

  it('sums the probabilities per group and picks the likeliest', () => {
    const probs = Array(101).fill(0);
    probs[2] = 0.1; probs[3] = 0.2; probs[60] = 0.3; probs[100] = 0.4;
    const groups = groupProbabilities(probs);
    expect(groups.map((g) => g.label)).toEqual(['0-2', '3-7', '8-14', '15-24', '25-37', '38-47', '48-59', '60+']);
    expect(groups.map((g) => g.probability)).toEqual([0.1, 0.2, 0, 0, 0, 0, 0, 0.7]);
    expect(mostLikelyGroup(groups)).toEqual({ label: '60+', probability: 0.7 });
  });
});

describe('topK', () => {
  it('lists the most likely ages first, ties to the younger', () => {
    const probs = Array(101).fill(0);
    probs[30] = 0.3; probs[31] = 0.3; probs[50] = 0.4;
    expect(topK(probs, 3)).toEqual([
      { age: 50, probability: 0.4 },
      { age: 30, probability: 0.3 },
      { age: 31, probability: 0.3 },
    ]);
    expect(topK(probs, 0)).toEqual([]);
    expect(topK(probs, 500)).toHaveLength(101);
  });
});

describe('farMode: a second age far from the peak', () => {
  const rule = { gap: 15, window: 7, smooth: 2 };
  const bump = (centre: number, sd: number, weight = 1) => Array.from({ length: 101 }, (_, a) => weight * Math.exp(-0.5 * ((a - centre) / sd) ** 2));
  const norm = (p: number[]) => { const s = p.reduce((x, y) => x + y, 0); return p.map((v) => v / s); };

  it('finds the small far bump of a torn distribution, with its mass', () => {
    const young = bump(12, 2), old = bump(75, 3, 0.12);
    const p = norm(young.map((v, i) => v + old[i]!));
    const far = farMode(p, rule)!;
    expect(far.age).toBe(75);
    const inWindow = p.slice(68, 83).reduce((x, y) => x + y, 0);
    expect(far.mass).toBeCloseTo(inWindow, 10);
    expect(far.mass).toBeGreaterThan(0.1);
  });

  it('none for one bump, however wide, and none closer than the gap', () => {
    expect(farMode(norm(bump(40, 9)), rule)).toBeNull();
    const near = norm(bump(30, 2).map((v, i) => v + bump(40, 2, 0.5)[i]!));   // 10 years apart
    expect(farMode(near, rule)).toBeNull();
  });

  it('a second age at the edge of the scale counts', () => {
    const p = norm(bump(30, 3).map((v, i) => v + (i === 100 ? 0.2 : 0)));
    expect(farMode(p, rule)!.age).toBe(100);
  });
});
