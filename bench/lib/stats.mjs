// Statistics of the benchmarks: a seeded generator (the same photos and intervals every run) and
// the paired bootstrap of two models' errors on the same faces.

/** A seeded generator (mulberry32): the same numbers, photos and intervals on every run. */
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Mean of |a - truth| - |b - truth| and its 95% paired bootstrap interval (faces resampled). */
export function pairedBootstrap(a, b, truth, resamples = 10000, seed = 0) {
  const d = truth.map((t, i) => Math.abs(a[i] - t) - Math.abs(b[i] - t));
  const n = d.length;
  const mean = d.reduce((s, x) => s + x, 0) / n;
  const next = rng(seed);
  const means = new Float64Array(resamples);
  for (let r = 0; r < resamples; r++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += d[Math.floor(next() * n)];
    means[r] = s / n;
  }
  means.sort();
  return { mean, ci95: [means[Math.floor(0.025 * resamples)], means[Math.ceil(0.975 * resamples) - 1]] };
}
