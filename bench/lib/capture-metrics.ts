// The capture benchmark's numbers (bench/capture.mjs) from per-image answers: MAE with its
// interval, the range's coverage, minors placed 18+, challenge 25, and an age check's false
// accepts and false rejects at T = 18, each with a 95% interval. Unit-tested in
// test/capture-metrics.test.ts.
import { type Rate, wilson } from './age-check-metrics.ts';

/** One model's answer for one image. `pass` is what its age check at 18 says (null: no check). */
export type CaptureAnswer = {
  truth: number;
  age: number;
  range?: { low: number; high: number } | null;
  pass18?: boolean | null;
  referred?: boolean;
};

export type Interval = { value: number; ci95: [number, number] };

/** Mean absolute error with a normal-approximation 95% interval (n faces of one condition). */
export function maeInterval(answers: readonly CaptureAnswer[]): Interval {
  const errs = answers.map((a) => Math.abs(a.age - a.truth));
  const n = errs.length;
  const mean = errs.reduce((s, e) => s + e, 0) / n;
  const sd = Math.sqrt(errs.reduce((s, e) => s + (e - mean) ** 2, 0) / Math.max(1, n - 1));
  const half = (1.96 * sd) / Math.sqrt(n);
  return { value: mean, ci95: [mean - half, mean + half] };
}

export type CaptureReport = {
  n: number;
  mae: Interval;
  coverage: Rate | null;
  meanWidth: number | null;
  minorsAdult: Rate;
  challenge25: Rate;
  falseAccept18: Rate | null;
  adultsPass18: Rate | null;
};

export function captureReport(answers: readonly CaptureAnswer[]): CaptureReport {
  const minors = answers.filter((a) => a.truth < 18);
  const adults = answers.filter((a) => a.truth >= 18);
  const ranged = answers.filter((a) => a.range);
  const checked = answers.every((a) => a.pass18 !== null && a.pass18 !== undefined);
  return {
    n: answers.length,
    mae: maeInterval(answers),
    coverage: ranged.length ? wilson(ranged.filter((a) => a.truth >= a.range!.low && a.truth <= a.range!.high).length, ranged.length) : null,
    meanWidth: ranged.length ? ranged.reduce((s, a) => s + (a.range!.high - a.range!.low), 0) / ranged.length : null,
    minorsAdult: wilson(minors.filter((a) => a.age >= 18).length, minors.length),
    challenge25: wilson(minors.filter((a) => a.age >= 25).length, minors.length),
    falseAccept18: checked ? wilson(minors.filter((a) => a.pass18).length, minors.length) : null,
    adultsPass18: checked ? wilson(adults.filter((a) => a.pass18).length, adults.length) : null,
  };
}
