import { describe, expect, it } from 'vitest';
import { decodeImage } from '../src/image/decode';
import { decide, decisionRule, fittedTargets, rangeLevel, widen, wideningFor } from '../src/model/calibration';
import { FAR_MODE } from '../src/contract';
import { farMode, probabilityAtLeast, quantile } from '../src/model/distribution';
import { blockiness, headPose, measureQuality } from '../src/model/quality';
import type { Calibration } from '../src/registry/manifest';
import { fixtureFile } from './helpers/worker';

// Capture quality and calibration, training vs serving. test/fixtures/parity/quality.json holds
// model inputs of a generated face under several capture conditions with the measures
// training/capture.py (input_quality) gives them, and widen/decide cases of
// training/calibration.py, written and kept current by training/tests/test_quality_parity.py.
// The release fits the widening and the decision rule on the Python numbers, so the server's
// must be the same numbers. Measured: equal to the last digit printed; the tolerances leave
// room for float summation order only.
type Case = { condition: string; source_png: string; input_png: string; face_px: number; detector_score: number | null; keypoints: [number, number][] | null; expected: Record<string, unknown> & { reasons: string[]; parts: Record<string, number> } };
type Fixture = {
  size: number;
  cases: Case[];
  calibration: Calibration;
  probs: number[];
  calibration_cases: { score: number; tau?: number; widened?: number[]; p18: number; target?: number | null; decision: string }[];
  range_cases: { estimate: number; level: number; uncalibrated: number }[];
  quantile_cases: { widened_of?: number; one_hot?: number; level: number; low: number; high: number }[];
  far_mode_cases: { probs: number[]; age: number; mass: number }[];
};

const fromBase64 = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
const fixture = JSON.parse(new TextDecoder().decode(await fixtureFile('fixtures/parity/quality.json'))) as Fixture;

describe('capture quality: the server measures what training measured', () => {
  for (const c of fixture.cases) {
    it(`${c.condition}${c.detector_score === null ? '' : `, detector ${c.detector_score}`}`, () => {
      const img = decodeImage(fromBase64(c.input_png), { maxPixels: 1e6, maxMemoryMB: 64 });
      const source = decodeImage(fromBase64(c.source_png), { maxPixels: 1e6, maxMemoryMB: 64 });
      const block = blockiness(source, { x: 0, y: 0, w: source.width, h: source.height });
      const q = measureQuality(img.data, fixture.size, c.face_px, c.detector_score, block, c.keypoints ? headPose(c.keypoints) : null);
      for (const k of ['face_px', 'brightness', 'contrast', 'sharpness', 'noise', 'flat', 'blockiness', 'chroma_along', 'chroma_across', 'score']) {
        expect(q[k as keyof typeof q], k).toBeCloseTo(c.expected[k] as number, 3);
      }
      for (const k of ['yaw', 'pitch'] as const) {
        if (c.expected[k] === null) expect(q[k], k).toBeNull();
        else expect(q[k], k).toBeCloseTo(c.expected[k] as number, 4);
      }
      expect(q.detector_score).toBe(c.expected.detector_score);
      expect(q.reasons).toEqual(c.expected.reasons);
      expect(Object.keys(q.parts).sort()).toEqual(Object.keys(c.expected.parts).sort());
    });
  }

  it('the cases include a good capture and lost ones, with reasons for the lost', () => {
    const byCondition = Object.fromEntries(fixture.cases.map((c) => [c.condition, c.expected]));
    expect(byCondition.clean!.score).toBeGreaterThan(0.9);
    expect(byCondition['dark-severe']!.reasons).toContain('too dark: add light');
    expect(byCondition['small-severe']!.reasons).toContain('too small: come closer');
    expect(byCondition['jpeg-severe']!.reasons).toContain('compressed: send the original photo');
    expect(byCondition['view lamp']!.reasons).toContain('unusual light colour: use white light');
    expect(byCondition['dark-severe']!.reasons).toContain('head turned or tilted: face the camera');     // turned
    expect(byCondition['view cool']!.reasons).toContain('head turned or tilted: face the camera');       // tilted back
    expect(byCondition['blur-severe']!.reasons).not.toContain('head turned or tilted: face the camera'); // facing the camera
  });
});

describe('calibration: the server widens and decides as training fitted', () => {
  const cal = fixture.calibration;
  for (const c of fixture.calibration_cases) {
    it(`score ${c.score}, P(>=18) ${c.p18}${c.target ? `, false_accept ${c.target}` : ''}: ${c.decision}`, () => {
      if (c.widened) {
        expect(wideningFor(cal, c.score)).toBe(c.tau);
        const w = widen(fixture.probs, wideningFor(cal, c.score));
        for (let i = 0; i < w.length; i++) expect(w[i]!).toBeCloseTo(c.widened[i]!, 7);
        expect(probabilityAtLeast(w, 18)).toBeCloseTo(c.p18, 4);
      }
      expect(decide(decisionRule(cal, c.target ?? undefined), 18, c.p18, c.score)).toBe(c.decision);
    });
  }

  it('a rule per fitted false-accept target, the default first; none for a target not fitted', () => {
    expect(fittedTargets(cal)).toEqual([0.01, 0.02]);
    expect(decisionRule(cal)).toBe(cal.decision);
    expect(decisionRule(cal, 0.01)).toBe(cal.decision);
    expect(decisionRule(cal, 0.02)).toBe(cal.other_decisions![0]);
    expect(decisionRule(cal, 0.05)).toBeUndefined();
    expect(fittedTargets(undefined)).toEqual([]);
  });

  it('no rule for an age: null; no calibration: no widening', () => {
    expect(decide(decisionRule(cal), 40, 0.999, 1)).toBeNull();
    expect(decide(decisionRule(undefined), 18, 0.999, 1)).toBeNull();
    expect(wideningFor(undefined, 0.1)).toBe(1);
    expect(widen(fixture.probs, 1)).toBe(fixture.probs);
  });

  it('monotone: more P never turns a pass into refer, more quality never either', () => {
    for (const score of [0.05, 0.3, 0.7, 0.95]) {
      let passed = false;
      for (let p = 0.5; p <= 1.0001; p += 0.001) {
        const d = decide(decisionRule(cal), 18, Math.round(p * 1e4) / 1e4, score);
        if (passed) expect(d).toBe('pass');
        passed ||= d === 'pass';
      }
    }
    for (const p of [0.9, 0.95, 0.99, 1]) {
      let passed = false;
      for (let score = 0; score <= 1; score += 0.01) {
        const d = decide(decisionRule(cal), 18, p, score);
        if (passed) expect(d).toBe('pass');
        passed ||= d === 'pass';
      }
    }
  });
});

describe('range: the server reads the range where training fitted it', () => {
  it.each(fixture.range_cases)('an estimate of $estimate reads at $level ($uncalibrated without range levels)', (c) => {
    expect(rangeLevel(fixture.calibration.range_levels, c.estimate)).toBe(c.level);
    expect(rangeLevel(undefined, c.estimate)).toBe(c.uncalibrated);
  });

  it('the cases cross the bands\' edges and the ends of the ages', () => {
    expect(new Set(fixture.range_cases.map((c) => c.level)).size).toBeGreaterThan(1);
    expect(fixture.quantile_cases.some((c) => c.low === 0) && fixture.quantile_cases.some((c) => c.high === 100)).toBe(true);
  });

  /** The case's distribution: a widened one of calibration_cases, or all its mass on one age. */
  const distribution = (c: Fixture['quantile_cases'][number]) =>
    c.widened_of !== undefined ? fixture.calibration_cases[c.widened_of]!.widened! : fixture.probs.map((_, age) => (age === c.one_hot ? 1 : 0));

  it.each(fixture.quantile_cases)('central $level of widened $widened_of / one-hot $one_hot: the quantiles Python reads', (c) => {
    expect(quantile(distribution(c), (1 - c.level) / 2, 0)).toBeCloseTo(c.low, 5);
    expect(quantile(distribution(c), (1 + c.level) / 2, 0)).toBeCloseTo(c.high, 5);
  });
});

describe('a second age far from the peak: the server finds what training finds', () => {
  for (const [i, c] of fixture.far_mode_cases.entries()) {
    it(`case ${i}: ${c.age < 0 ? 'none' : `age ${c.age}, mass ${c.mass}`}`, () => {
      const far = farMode(c.probs, FAR_MODE);
      if (c.age < 0) expect(far).toBeNull();
      else {
        expect(far!.age).toBe(c.age);
        expect(far!.mass).toBeCloseTo(c.mass, 7);
      }
    });
  }
  it('the cases hold torn distributions and single bumps', () => {
    expect(fixture.far_mode_cases.some((c) => c.age >= 0 && c.mass >= FAR_MODE.min_mass)).toBe(true);
    expect(fixture.far_mode_cases.some((c) => c.age < 0)).toBe(true);
  });
});
