"""The 80% range calibrated per band of the estimate: each band's nominal level is the smallest
that holds the true age for 80% of its validation faces. Checked on distributions whose
intervals can be worked out by hand."""
import numpy as np
import pytest

from training import calibration, metrics


def _uniform(lo: int, hi: int) -> np.ndarray:
    p = np.zeros(101)
    p[lo:hi + 1] = 1.0 / (hi - lo + 1)
    return p


def test_each_band_gets_the_smallest_level_that_covers_80_percent_of_its_faces():
    # Band 0-12: ten faces whose distribution is uniform over 0..10 (mass on [-0.5, 10.5],
    # estimate 5), so the central interval at level L is 5 +- 5.5 L. Their true ages lie 0, 0,
    # 1, 1, 2, 2, 3, 3, 4, 4 years from 5: 8 of 10 inside needs a half-width of 3, L >= 3/5.5 =
    # 0.5455, the grid's 0.55 (0.545 gives 2.9975).
    a_true = [5, 5, 4, 6, 3, 7, 2, 8, 1, 9]
    # Band 60+: two faces, uniform over 60..70 (estimate 65), true ages 4 years off. Too few to
    # fit on their own (min_faces 5): they take the level fitted on all twelve faces, whose
    # distances are 0,0,1,1,2,2,3,3,4,4,4,4: ten of twelve (>= 80%) need 4 = 5.5 L, L >= 0.7273,
    # the grid's 0.73.
    b_true = [61, 69]
    probs = np.stack([_uniform(0, 10)] * 10 + [_uniform(60, 70)] * 2)
    true = np.array(a_true + b_true, float)
    estimate = np.array([5.0] * 10 + [65.0] * 2)

    levels = calibration.fit_range_levels(probs, true, estimate, target=0.8, min_faces=5)
    by_band = {b["from"]: b for b in levels}
    assert by_band[0]["level"] == pytest.approx(0.55) and by_band[0]["n"] == 10
    assert by_band[60]["level"] == pytest.approx(0.73) and by_band[60]["n"] == 2
    assert by_band[18]["n"] == 0 and by_band[18]["level"] == pytest.approx(0.73)   # empty: the overall level

    per_face = calibration.range_levels_for(estimate, levels)
    assert per_face.tolist() == pytest.approx([0.55] * 10 + [0.73] * 2)
    after = metrics.coverage_by_band(probs, true, per_face, by=estimate)
    assert after["0-12"] == {"n": 10, "coverage": pytest.approx(0.8)}     # half-width 3.025: distances <= 3
    assert after["60+"] == {"n": 2, "coverage": pytest.approx(1.0)}       # half-width 4.015: both at 4
    before = metrics.coverage_by_band(probs, true, 0.8, by=estimate)
    assert before["0-12"]["coverage"] == pytest.approx(1.0)               # 5 +- 4.4 holds all ten


def test_a_band_that_cannot_reach_the_target_is_read_at_the_widest_level():
    # Uniform over 28..32 (half-width 2.5 L), true ages 0, 1, 1, 5 and 10 years from 30: the
    # widest level (0.995, half-width 2.4875) holds three of five.
    probs = np.stack([_uniform(28, 32)] * 5)
    true = np.array([30, 31, 29, 35, 40], float)
    levels = calibration.fit_range_levels(probs, true, np.full(5, 30.0), target=0.8, min_faces=5)
    assert {b["from"]: b["level"] for b in levels}[25] == calibration.RANGE_LEVEL_GRID[-1] == pytest.approx(0.995)
    assert metrics.interval_coverage(probs, true, 0.995) == pytest.approx(0.6)


def test_the_band_of_an_estimate_is_its_whole_year():
    levels = [{"from": lo, "to": hi if hi < 200 else None, "level": 0.5 + i / 100}
              for i, (lo, hi) in enumerate(metrics.AGE_BANDS)]
    got = calibration.range_levels_for([0.0, 12.99, 13.0, 17.99, 18.0, 59.99, 60.0, 100.0], levels)
    assert got.tolist() == pytest.approx([0.50, 0.50, 0.51, 0.51, 0.52, 0.54, 0.55, 0.55])
    assert calibration.range_levels_for([30.0], None).tolist() == [0.8]
