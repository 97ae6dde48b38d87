"""Age-estimation metrics, each a small numpy function so tests can check them by hand."""
from __future__ import annotations

import numpy as np

AGE_BANDS = [(0, 12), (13, 17), (18, 24), (25, 39), (40, 59), (60, 200)]


def mae(pred, true) -> float:
    return float(np.mean(np.abs(np.asarray(pred, float) - np.asarray(true, float))))


def median_ae(pred, true) -> float:
    return float(np.median(np.abs(np.asarray(pred, float) - np.asarray(true, float))))


def cumulative_score(pred, true, threshold: float = 5.0) -> float:
    """CS@t: the fraction of faces whose error is at most t years."""
    return float(np.mean(np.abs(np.asarray(pred, float) - np.asarray(true, float)) <= threshold))


def epsilon_error(pred, mean, std) -> float:
    """Paper eq. 7 (ChaLearn LAP): 1 - exp(-(x - mu)^2 / (2 sigma^2)), averaged over faces."""
    pred, mean, std = (np.asarray(a, float) for a in (pred, mean, std))
    return float(np.mean(1.0 - np.exp(-((pred - mean) ** 2) / (2.0 * std ** 2))))


def accuracy(pred_class, true_class) -> float:
    return float(np.mean(np.asarray(pred_class) == np.asarray(true_class)))


def one_off_accuracy(pred_class, true_class) -> float:
    """Adience's 1-off: right, or off by one adjacent group."""
    return float(np.mean(np.abs(np.asarray(pred_class) - np.asarray(true_class)) <= 1))


def interval_coverage(probs, true, level=0.8) -> float:
    """How often the central `level` interval of each distribution (its (1-level)/2 and
    (1+level)/2 quantiles over integer ages) contains the true age. `level`: one number, or
    one per face (range_levels_for)."""
    lo, hi = quantile_interval(probs, level)
    true = np.asarray(true, float)
    return float(np.mean((true >= lo) & (true <= hi)))


def quantile_interval(probs, level: float = 0.8):
    """Per row: the (1-level)/2 and (1+level)/2 quantiles of the distribution read as a
    histogram (age a's mass spread evenly over [a - 0.5, a + 0.5]), clamped to the age range:
    exactly the API's `range` (quantile() in src/model/distribution.ts)."""
    return _quantile(probs, (1 - level) / 2), _quantile(probs, (1 + level) / 2)


def _quantile(probs, q) -> np.ndarray:
    p = np.clip(np.asarray(probs, float), 0, None)                       # [N, M]
    target = np.asarray(q, float) * p.sum(axis=1)                        # [N]
    cdf = np.cumsum(p, axis=1)                                           # [N, M]
    i = np.argmax((cdf >= target[:, None]) & (p > 0), axis=1)            # first bin reaching it
    rows = np.arange(len(p))
    before = cdf[rows, i] - p[rows, i]
    value = i - 0.5 + (target - before) / np.where(p[rows, i] > 0, p[rows, i], 1)
    return np.clip(value, 0, p.shape[1] - 1)


def far_mode(probs, gap: int, window: int, smooth: int) -> tuple[np.ndarray, np.ndarray]:
    """The second age a distribution holds far from its peak, as the server finds it (farMode in
    src/model/distribution.ts): peaks are read on the distribution averaged over a box of
    2*smooth+1 years (zero past the ends); among the local peaks at least `gap` years from the
    highest, the one with the most mass within `window` years of it. -> (its age, or -1 where
    there is none, and that mass), per row of probs [N, A]."""
    p = np.clip(np.asarray(probs, float), 0, None)
    n, a = p.shape
    k = 2 * smooth + 1
    padded = np.pad(p, ((0, 0), (smooth, smooth)))
    csum = np.concatenate([np.zeros((n, 1)), np.cumsum(padded, axis=1)], axis=1)
    s = (csum[:, k:] - csum[:, :-k]) / k                                      # [N, A]
    peak = s.argmax(axis=1)
    ages = np.arange(a)
    left = np.concatenate([np.full((n, 1), -np.inf), s[:, :-1]], axis=1)
    right = np.concatenate([s[:, 1:], np.full((n, 1), -np.inf)], axis=1)
    local = (s >= left) & (s > right) & (np.abs(ages[None] - peak[:, None]) >= gap)
    cp = np.concatenate([np.zeros((n, 1)), np.cumsum(p, axis=1)], axis=1)
    lo, hi = np.clip(ages - window, 0, a - 1), np.clip(ages + window, 0, a - 1)
    mass = cp[:, hi + 1] - cp[:, lo]                                          # [N, A]
    cand = np.where(local, mass, -1.0)
    best = cand.argmax(axis=1)
    found = cand[np.arange(n), best] > 0
    return np.where(found, best, -1), np.where(found, cand[np.arange(n), best], 0.0)


def far_mode_range(low, high, estimate, second, mass, min_mass: float, reach: float, max_age: int = 100):
    """The served range of a distribution torn between two far ages: where the second age holds at
    least `min_mass`, from `reach` years below the lower of the estimate and the second age to
    `reach` years above the higher (clamped to the ages; never narrower than the range it had).
    -> (low, high, flagged)."""
    low, high, estimate, second = (np.asarray(x, float) for x in (low, high, estimate, second))
    flagged = (second >= 0) & (np.asarray(mass) >= min_mass)
    lo = np.maximum(np.minimum(estimate, second) - reach, 0)
    hi = np.minimum(np.maximum(estimate, second) + reach, max_age)
    return np.where(flagged, np.minimum(low, lo), low), np.where(flagged, np.maximum(high, hi), high), flagged


def coverage_by_band(probs, true, level=0.8, by=None) -> dict[str, dict]:
    """interval_coverage per age band: a range calibrated overall can still be too narrow for
    the old and too wide for children. The faces are grouped by the band of their true age, or
    with `by` (the estimates) by the band of their estimate, as the calibration sees them."""
    lo, hi = quantile_interval(probs, level)
    true = np.asarray(true, float)
    inside = (true >= lo) & (true <= hi)
    band = band_index(true if by is None else by)
    out = {}
    for i, (blo, _) in enumerate(AGE_BANDS):
        rows = band == i
        if rows.any():
            out[band_of(blo)] = {"n": int(rows.sum()), "coverage": float(inside[rows].mean())}
    return out


def band_index(ages) -> np.ndarray:
    """Index into AGE_BANDS of each age (or estimate), rounded down to a whole year."""
    whole = np.floor(np.asarray(ages, float))
    idx = np.full(len(whole), len(AGE_BANDS) - 1)
    for i, (lo, hi) in reversed(list(enumerate(AGE_BANDS))):
        idx[(whole >= lo) & (whole <= hi)] = i
    return idx


def minors_placed_adult(pred, true, adult: float = 18.0, child_max: float = 12.0) -> dict:
    """How many minors (true age < 18) the estimate places at 18 or over, and which children
    (0-12): the mistake that matters most if anyone uses an age estimate as an age gate."""
    pred, true = np.asarray(pred, float), np.asarray(true, float)
    minors = true < adult
    placed = minors & (pred >= adult)
    children = np.flatnonzero((true <= child_max) & (pred >= adult))
    return {"minors": int(minors.sum()), "placed_18_plus": int(placed.sum()),
            "share": float(placed.sum() / max(1, minors.sum())),
            "children": int((true <= child_max).sum()),
            "children_placed_18_plus": [{"index": int(i), "age": float(true[i]), "estimate": round(float(pred[i]), 1)}
                                        for i in children]}


def band_of(age: float) -> str:
    for lo, hi in AGE_BANDS:
        if lo <= age <= hi:
            return f"{lo}-{hi}" if hi < 200 else f"{lo}+"
    return "?"


def grouped_mae(pred, true, groups) -> dict[str, dict]:
    """MAE per group label (None labels are left out): {label: {"n", "mae"}}."""
    pred, true = np.asarray(pred, float), np.asarray(true, float)
    out = {}
    for g in sorted({g for g in groups if g is not None}, key=str):
        m = np.array([x == g for x in groups])
        out[str(g)] = {"n": int(m.sum()), "mae": mae(pred[m], true[m])}
    return out


def age_report(pred, true, std=None) -> dict:
    """The headline numbers for a 101-class age model. std: per-face label std; NaN entries
    (unknown) use 3 years, as the model card explains."""
    true = np.asarray(true, float)
    sigma = np.full_like(true, 3.0) if std is None else np.where(np.isnan(std), 3.0, std)
    return {
        "n": int(len(true)),
        "mae": mae(pred, true),
        "median_ae": median_ae(pred, true),
        "cs5": cumulative_score(pred, true, 5),
        "eps_error": epsilon_error(pred, true, sigma),
    }


def paired_bootstrap(err_a, err_b, n_boot: int = 2000, seed: int = 0) -> dict:
    """95% interval of mean(err_a) - mean(err_b) over resampled faces (the same faces for
    both models): an interval below zero means A is really better, not lucky."""
    a, b = np.asarray(err_a, float), np.asarray(err_b, float)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), size=(n_boot, len(a)))
    diffs = a[idx].mean(axis=1) - b[idx].mean(axis=1)
    return {"mean_diff": float(a.mean() - b.mean()),
            "ci95": [float(np.quantile(diffs, 0.025)), float(np.quantile(diffs, 0.975))]}
