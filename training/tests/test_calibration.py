"""training/calibration.py on synthetic answers with a known fit: the widening by capture
quality, the decision rule (its false-accept target, its monotonicity, bands that must refer),
and the manifest block the server reads."""
import numpy as np
import pytest

from training import calibration as cal
from training import metrics


def gaussian_rows(centres, sigma):
    ages = np.arange(101)
    p = np.exp(-0.5 * ((ages[None] - np.asarray(centres, float)[:, None]) / sigma) ** 2)
    return p / p.sum(1, keepdims=True)


def test_widen_keeps_mass_and_spreads_in_proportion():
    p = gaussian_rows([30, 50], 3.0)          # away from 0 and 100, where the tails are cut
    assert np.allclose(cal.widen(p, 1.0), p)
    w = cal.widen(p, 2.0)
    assert np.allclose(w.sum(1), 1)
    ages = np.arange(101)
    sd = lambda q: np.sqrt((q * (ages - (q * ages).sum(1, keepdims=True)) ** 2).sum(1))
    # p^(1/2) of a Gaussian is a Gaussian sqrt(2) times as wide.
    assert sd(w) == pytest.approx(sd(p) * np.sqrt(2), rel=1e-3)


def test_fit_widening_widens_the_bands_whose_answers_miss_more():
    rng = np.random.default_rng(0)
    n = 1500
    true = rng.uniform(20, 70, n)
    score = np.where(np.arange(n) < n // 2, 0.95, 0.3)         # half good captures, half poor
    # The network says "true +- 4" with a sigma of 4 when the capture is good; on the poor half it
    # still says sigma 4 but is off by sigma 10: its range must widen there.
    off = np.where(score > 0.5, rng.normal(0, 4, n), rng.normal(0, 10, n))
    probs = gaussian_rows(true + off, 4.0)
    estimate = (probs * np.arange(101)).sum(1)
    widening = cal.fit_widening(probs, true, estimate, score, None)
    tau = {b["from"]: b["tau"] for b in widening}
    assert tau[0.9] <= 1.1 and tau[0.15] > 2.0
    assert tau[0.5] == tau[0.9] and tau[0.0] == tau[0.15]      # too few faces: the better band's tau
    w = cal.widen(probs, cal.widening_for(score, widening))
    poor = score < 0.5
    assert metrics.interval_coverage(w[poor], true[poor], 0.8) == pytest.approx(0.8, abs=0.03)


def test_the_decision_passes_the_fewest_minors_the_target_allows():
    # Band 0.9+: 200 under-18 faces whose P(>=18) is 0.001 .. 0.200 (i / 1000) and 100 adults
    # at 0.99. With target 1%, at most 2 of the 200 may pass: the smallest grid P above the
    # third-highest minor's P (0.198) is the threshold... and a threshold under 0.5 is not on the
    # grid, so min_p is the grid's first value, 0.5: nobody under 18 passes.
    under = np.arange(1, 201) / 1000.0
    p18 = np.concatenate([under, np.full(100, 0.99)])
    true = np.concatenate([np.full(200, 10.0), np.full(100, 30.0)])
    probs = np.zeros((300, 101))
    probs[:, 17] = 1 - p18
    probs[:, 18] = p18
    rule = cal.fit_decision(probs, true, np.full(300, 0.95), ages=(18,))
    band = rule["ages"]["18"][0]
    assert band["min_p"] == 0.5 and band["under_passed"] == 0 and band["over_passed"] == 100

    # Now the minors' P spread over 0.5 .. 0.9975: 2 of 200 (1%) may pass, so min_p sits just
    # above the third-highest.
    under = np.linspace(0.5, 0.9975, 200)
    probs[:200, 17], probs[:200, 18] = 1 - under, under
    rule = cal.fit_decision(probs, true, np.full(300, 0.95), ages=(18,))
    band = rule["ages"]["18"][0]
    assert band["under_passed"] <= 2 and band["min_p"] > np.sort(under)[-3]
    shown = np.round(under, 4)                                     # the rule reads P as the API shows it
    assert band["min_p"] == min(g for g in cal.P_GRID if (shown >= g).mean() <= 0.01)


def test_the_rule_is_monotone_in_quality_and_bands_without_minors_refer():
    rng = np.random.default_rng(1)
    n = 3000
    score = rng.choice([0.95, 0.7, 0.3, 0.05], n, p=[0.4, 0.3, 0.29, 0.01])
    true = rng.uniform(5, 40, n)
    # Worse captures read minors older: P(>=18) of minors grows as quality falls.
    bias = np.select([score > 0.9, score > 0.5, score > 0.15], [0, 3, 8], 12)
    probs = gaussian_rows(true + bias + rng.normal(0, 3, n), 4.0)
    rule = cal.fit_decision(probs, true, score, ages=(18,))
    bands = rule["ages"]["18"]
    mins = [b["min_p"] for b in bands]
    assert mins[0] is not None and mins[1] is not None
    assert mins[0] < mins[1]                                       # never easier for a worse capture
    assert mins[2] is None          # minors read 8 years older there: no P keeps them under 1%
    assert mins[3] is None          # ~15 faces under 18, fewer than MIN_UNDER: nothing to fit on
    for b in bands[:2]:
        assert b["under_passed"] <= 0.01 * b["n_under"] + 1e-9
    p = np.round(cal.p_at_least(probs, 18), 4)
    decisions = cal.decide(p, score, 18, rule)
    assert set(decisions) == {"pass", "refer"}
    assert (decisions[score < 0.15] == "refer").all()
    assert (cal.decide(p, score, 40, rule) == "refer").all()     # no rule for 40


def test_fit_served_calibration_writes_what_the_server_reads():
    rng = np.random.default_rng(2)
    n = 2400
    true = rng.uniform(2, 80, n)
    score = rng.choice([1.0, 0.6, 0.3, 0.1], n)
    probs = gaussian_rows(true + rng.normal(0, 4 / np.maximum(score, 0.2) ** 0.5, n), 4.0)
    estimate = (probs * np.arange(101)).sum(1)
    c = cal.fit_served_calibration(probs, estimate, true, score, score == 1.0)
    assert [b["from"] for b in c["widening"]] == [lo for lo, _ in cal.QUALITY_BANDS]
    assert c["widening"][0]["to"] > 1 and c["widening"][-1]["from"] == 0
    assert all(b["tau"] >= a["tau"] for a, b in zip(c["widening"], c["widening"][1:]))
    assert set(c["decision"]["ages"]) == {str(t) for t in cal.DECISION_AGES}
    assert c["decision"]["target"] == cal.DECISION_TARGET
    assert [r["target"] for r in c["other_decisions"]] == list(cal.OTHER_DECISION_TARGETS)
    assert cal.decision_for(c) is c["decision"] and cal.decision_for(c, cal.DECISION_TARGET) is c["decision"]
    assert cal.decision_for(c, 0.02) is c["other_decisions"][0] and cal.decision_for(c, 0.03) is None
    assert len(c["range_levels"]) == len(metrics.AGE_BANDS)


def test_a_looser_target_passes_everyone_a_tighter_one_passes():
    # Same faces, targets 1% and 2%: in every band the 2% rule's threshold is no higher, so every
    # face the 1% rule passes, the 2% rule passes too, and no more than 2% of minors pass.
    rng = np.random.default_rng(3)
    n = 4000
    score = rng.choice([0.95, 0.7, 0.3], n)
    true = rng.uniform(5, 45, n)
    probs = gaussian_rows(true + rng.normal(0, 4, n), 5.0)
    tight = cal.fit_decision(probs, true, score, target=0.01, ages=(18, 21))
    loose = cal.fit_decision(probs, true, score, target=0.02, ages=(18, 21))
    p = {t: np.round(cal.p_at_least(probs, t), 4) for t in (18, 21)}
    for t in ("18", "21"):
        for a, b in zip(tight["ages"][t][:3], loose["ages"][t][:3]):      # the bands with faces
            assert b["min_p"] is not None and (a["min_p"] is None or b["min_p"] <= a["min_p"])
            assert b["under_passed"] <= 0.02 * b["n_under"]
        assert tight["ages"][t][3]["min_p"] is None and loose["ages"][t][3]["min_p"] is None   # no faces: refer
        passed_tight = cal.decide(p[int(t)], score, int(t), tight) == "pass"
        passed_loose = cal.decide(p[int(t)], score, int(t), loose) == "pass"
        assert (passed_loose | ~passed_tight).all() and passed_loose.sum() > passed_tight.sum()


def test_the_report_counts_by_the_rule_of_the_target_asked():
    rng = np.random.default_rng(4)
    n = 3000
    true = rng.uniform(5, 45, n)
    score = rng.choice([1.0, 0.6], n)
    probs = gaussian_rows(true + rng.normal(0, 4, n), 5.0)
    estimate = (probs * np.arange(101)).sum(1)
    calib = cal.fit_served_calibration(probs, estimate, true, score, score == 1.0)
    condition = np.where(score == 1.0, "clean", "blur-moderate")
    default = cal.calibration_report(probs, estimate, true, score, condition, calib)
    loose = cal.calibration_report(probs, estimate, true, score, condition, calib, target=0.02)
    for c in ("clean", "blur-moderate"):
        assert loose["conditions"][c]["over_18_passed"][0] > default["conditions"][c]["over_18_passed"][0]
    with pytest.raises(ValueError, match="0.05"):
        cal.calibration_report(probs, estimate, true, score, condition, calib, target=0.05)


def test_the_temperature_is_fitted_on_the_served_fusion_of_the_branches():
    """evaluate.fit_temperature reads the network's outputs through ALNet.predict: its choice,
    coverage and NLL are those of each branch's softmax at T, mixed by the fusion weights and
    averaged over the views, written out here (the fit as it was before it called predict)."""
    import torch

    from training.data import Packed
    from training.evaluate import _views, fit_temperature
    from training.model import create_model

    torch.manual_seed(0)
    model = create_model("al_resnet_tiny", fusion_global=1.0, fusion_local=0.5).eval()
    with torch.no_grad():                                   # answers that move with the face
        model.global_head.weight.mul_(30)
        model.local_head.weight.mul_(30)
    g = torch.Generator().manual_seed(1)
    ages = torch.randint(0, 90, (64,), generator=g).float()
    data = Packed(torch.randint(0, 256, (64, 80, 80, 3), dtype=torch.uint8, generator=g), ages, ages.long(),
                  torch.full((64,), float("nan")), [None] * 64, [None] * 64)
    grid = (0.6, 0.8, 0.95, 1.2, 2.0)
    with torch.no_grad():
        views = [model(model.normalize(v)) for v in _views(data.images, 64, "flip")]
    true = np.clip(ages.numpy(), 0, 100)
    expected = None
    for t in grid:
        probs = np.mean([((1.0 * torch.softmax(v["global"] / t, 1) + 0.5 * torch.softmax(v["local"] / t, 1)) / 1.5)
                         .numpy() for v in views], axis=0)
        cov = metrics.interval_coverage(probs, true, 0.8)
        nll = float(-np.mean(np.log(probs[np.arange(64), data.labels.numpy()] + 1e-12)))
        if expected is None or (abs(cov - 0.8), nll) < expected[0]:
            expected = ((abs(cov - 0.8), nll), t, cov, nll)
    # The NLL, compared exactly, pins the fusion: another weighting or view average changes it.
    assert fit_temperature(model, data, tta="flip", grid=grid) == {
        "temperature": expected[1], "val_coverage": expected[2], "val_nll": expected[3]}
