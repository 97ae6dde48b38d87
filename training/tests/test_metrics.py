"""Metrics and label maths against values computed by hand."""
import math

import numpy as np
import pytest
import torch

from training import metrics
from training.model import dex
from training.stage import soft_targets
from training.train import lr_at
from training.train_config import OptimConfig


def test_dex_is_the_expected_age():
    probs = torch.zeros(2, 101)
    probs[0, 20], probs[0, 30] = 0.5, 0.5          # 25
    probs[1, 10], probs[1, 40] = 0.25, 0.75        # 2.5 + 30 = 32.5
    assert dex(probs, torch.arange(101.0)).tolist() == pytest.approx([25.0, 32.5])


def test_epsilon_error_matches_eq_7():
    # x = mu -> 0; one sigma away -> 1 - e^-0.5; two sigmas -> 1 - e^-2
    e = metrics.epsilon_error([30, 33, 24], [30, 30, 30], [3, 3, 3])
    assert e == pytest.approx(((1 - math.exp(-0.5)) + (1 - math.exp(-2))) / 3)


def test_mae_median_cs():
    pred, true = [10, 12, 30, 50], [11, 12, 37, 50]
    assert metrics.mae(pred, true) == pytest.approx(2.0)
    assert metrics.median_ae(pred, true) == pytest.approx(0.5)
    assert metrics.cumulative_score(pred, true, 5) == pytest.approx(0.75)


def test_adience_accuracy_and_one_off():
    assert metrics.accuracy([0, 3, 5, 7], [0, 2, 5, 5]) == 0.5
    assert metrics.one_off_accuracy([0, 3, 5, 7], [0, 2, 5, 5]) == 0.75


def test_quantile_interval_and_coverage():
    probs = np.zeros((2, 101))
    probs[0, 18:23] = 0.2                  # cdf: .2 .4 .6 .8 1.0 at ages 18..22
    probs[1, 50] = 1.0
    # 10%: half-way into age 18's bin [17.5, 18.5]; 90%: half-way into 22's. A single-age
    # distribution spans its bin: [49.6, 50.4] (as src/model/distribution.ts computes it).
    lo, hi = metrics.quantile_interval(probs, 0.8)
    assert lo.tolist() == pytest.approx([18.0, 49.6]) and hi.tolist() == pytest.approx([22.0, 50.4])
    assert metrics.interval_coverage(probs, [23, 50]) == 0.5


def test_grouped_mae_and_bands():
    g = metrics.grouped_mae([1, 2, 10], [2, 2, 20], ["a", "a", "b"])
    assert g == {"a": {"n": 2, "mae": 0.5}, "b": {"n": 1, "mae": 10.0}}
    assert [metrics.band_of(a) for a in (5, 15, 20, 30, 45, 70)] == \
        ["0-12", "13-17", "18-24", "25-39", "40-59", "60+"]


def test_paired_bootstrap_uses_the_pairing():
    """Faces differ far more from each other (errors 0..20 years) than the two models differ
    on one face (0.3 +- 0.5 years): only resampling the same faces for both sees the 0.3."""
    rng = np.random.default_rng(0)
    n = 400
    a = rng.uniform(0, 20, n)
    b = a + 0.3 + rng.normal(0, 0.5, n)
    res = metrics.paired_bootstrap(a, b)
    assert res["mean_diff"] == pytest.approx(float((a - b).mean()))
    lo, hi = res["ci95"]
    assert lo < res["mean_diff"] < hi < 0
    # The paired interval is as wide as the per-face differences say (1.96 standard errors
    # each side); resampling a and b apart would give one ~15x wider, straddling 0.
    half = 1.96 * (a - b).std() / math.sqrt(n)
    assert (hi - lo) / 2 == pytest.approx(half, rel=0.2)
    ia, ib = rng.integers(0, n, (2000, n)), rng.integers(0, n, (2000, n))
    unpaired = np.quantile(a[ia].mean(1) - b[ib].mean(1), [0.025, 0.975])
    assert unpaired[0] < 0 < unpaired[1]


def test_paired_bootstrap_null_case_covers_zero():
    """Two models that differ only by noise: the 95% interval holds 0 for most data sets."""
    n, covered = 400, 0
    for s in range(40):
        rng = np.random.default_rng(100 + s)
        a = rng.uniform(0, 20, n)
        b = a + rng.normal(0, 0.5, n)
        lo, hi = metrics.paired_bootstrap(a, b, seed=s)["ci95"]
        covered += lo < 0 < hi
    # 95% nominal: 38 of 40 expected; 34 or fewer would be a 1-in-200 event.
    assert covered >= 35


def test_soft_targets():
    one_hot = soft_targets(torch.tensor([5]), 101, 0.0)
    assert one_hot[0, 5] == 1 and one_hot.sum() == 1
    soft = soft_targets(torch.tensor([50]), 101, 2.0)[0]
    assert soft.sum().item() == pytest.approx(1.0)
    assert soft.argmax().item() == 50
    assert soft[48].item() == pytest.approx(soft[50].item() * math.exp(-0.5), rel=1e-5)


def test_step_schedule_with_warmup():
    cfg = OptimConfig(lr=0.1, epochs=20, warmup_epochs=1.0)
    assert lr_at(cfg, 0.5) == pytest.approx(0.1 * (0.5 + 1e-3))
    assert lr_at(cfg, 5) == pytest.approx(0.1)
    assert lr_at(cfg, 10) == pytest.approx(0.01)
    assert lr_at(cfg, 15) == pytest.approx(0.001)


def test_default_schedule_of_a_short_stage_keeps_its_lr():
    # The default steps (50%, 75%) fall at epoch 0 for a one-epoch stage; they must not apply there.
    assert lr_at(OptimConfig(lr=0.02, epochs=1, warmup_epochs=0.2), 0.5) == pytest.approx(0.02)
    assert lr_at(OptimConfig(lr=0.02, epochs=1, warmup_epochs=0.2, lr_steps=(0,)), 0.5) == pytest.approx(0.002)


def test_a_torn_distribution_gets_a_range_over_both_ages_and_one_bump_keeps_its_own():
    from training.contract import FAR_MODE
    from training.metrics import far_mode, far_mode_range
    ages = np.arange(101)
    bump = lambda c, sd, w: w * np.exp(-0.5 * ((ages - c) / sd) ** 2) / (sd * np.sqrt(2 * np.pi))
    torn, one = bump(12, 2, 0.94) + bump(75, 3, 0.06), bump(40, 4, 1.0)
    probs = np.stack([torn / torn.sum(), one / one.sum()])
    second, mass = far_mode(probs, FAR_MODE["gap"], FAR_MODE["window"], FAR_MODE["smooth"])
    assert second[0] == 75 and abs(mass[0] - 0.06) < 0.005
    assert second[1] == -1 and mass[1] == 0
    est = probs @ ages
    low, high = metrics.quantile_interval(probs, 0.8)
    lo2, hi2, flagged = far_mode_range(low, high, est, second, mass, FAR_MODE["min_mass"], 20)
    assert list(flagged) == [True, False]
    assert lo2[0] == 0 and hi2[0] == 95                    # 20 below the estimate (15.8), 20 past 75
    assert (lo2[1], hi2[1]) == (low[1], high[1])
