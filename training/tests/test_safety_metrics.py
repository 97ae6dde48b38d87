"""The card's safety numbers: minors placed at 18+, and the range's coverage per age band."""
import numpy as np
import pytest

from training.metrics import coverage_by_band, minors_placed_adult


def test_minors_placed_adult_counts_and_lists_children():
    true = np.array([3, 10, 16, 17, 17, 25, 40])
    pred = np.array([18.0, 9.0, 17.9, 18.0, 30.0, 15.0, 12.0])
    r = minors_placed_adult(pred, true)
    assert (r["minors"], r["placed_18_plus"], r["children"]) == (5, 3, 2)
    assert r["share"] == pytest.approx(3 / 5)
    # Only the 3-year-old is a child placed at 18+; adults under 18 are a different mistake.
    assert r["children_placed_18_plus"] == [{"index": 0, "age": 3.0, "estimate": 18.0}]


def test_coverage_by_band_uses_each_band_faces_only():
    probs = np.zeros((4, 101))
    probs[0, 5] = probs[1, 50] = probs[2, 30] = probs[3, 70] = 1.0   # point masses
    true = np.array([5, 8, 30, 70])            # the child at 8 misses; everyone else is covered
    r = coverage_by_band(probs, true)
    assert r == {"0-12": {"n": 2, "coverage": 0.5}, "25-39": {"n": 1, "coverage": 1.0},
                 "60+": {"n": 1, "coverage": 1.0}}
