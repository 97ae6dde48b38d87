"""Calibration, in one place: everything fitted on `val` after training that turns the network's
distribution into the answer the API gives. The release calls `fit_served_calibration` for
every new version (and `python -m training calibrate` for a released one); the server mirrors
each rule (src/model/calibration.ts), reading what this writes into the manifest.

1. temperature: the graph's softmax temperature (inside the exported graph), fitted on the
   network's own answers before export: evaluate.fit_temperature.
2. range_levels: per band of the estimate, the nominal level the 80% range is read at.
3. widening: per band of capture quality (training/capture.py's score), a temperature on the
   served distribution, p^(1/tau) renormalised: a face the capture degraded gets a wider
   distribution, and with it a wider range and a P(age >= T) that knows less.
4. decision: per threshold age T and quality band, the smallest P(age >= T) (of the widened
   distribution) that passes; below it, or where no P is safe, the answer is "refer". Fitted for
   a false-accept target (people under T who pass), never on `test`: `decision` for the default
   target (1%), and `other_decisions` for the targets a request may ask for (false_accept=).

A face's quality band and estimate band decide everything; both are known to the server.
"""
from __future__ import annotations

import numpy as np

from . import metrics
from .contract import QUALITY_BANDS, write_manifest_json
from .data import UTKFACE_ROOT

WIDENING_GRID = tuple(float(v) for v in np.round(np.arange(0.8, 10.001, 0.05), 2))   # sd x 0.9 .. x 3.2
DECISION_AGES = tuple(range(12, 31))          # the T a rule is fitted for
DECISION_TARGET = 0.01                         # share of people under T who may pass
OTHER_DECISION_TARGETS = (0.02,)               # what a request may ask for instead (false_accept=)
MIN_UNDER = 40                                 # fewer under-T faces in a band than this: the band refers
P_GRID = tuple(float(v) for v in np.round(np.arange(0.5, 0.9996, 0.0025), 4))


# ---------------------------------------------------------------------------------------------
# 2. Range levels per band of the estimate
# ---------------------------------------------------------------------------------------------

RANGE_LEVEL_GRID = tuple(float(v) for v in np.round(np.arange(0.5, 0.9951, 0.005), 3))


def fit_range_levels(probs, true, estimate, target: float = 0.8, min_faces: int = 50) -> list[dict]:
    """Per band of the *estimate* (metrics.AGE_BANDS; the server knows the estimate, not the
    age): the smallest nominal level whose central interval holds the true age for at least
    `target` of the band's faces (split-conformal on the level). A band with fewer than
    `min_faces` faces takes the level fitted on all faces. -> [{"from", "to", "level", "n"}]."""
    probs, true, estimate = np.asarray(probs, float), np.asarray(true, float), np.asarray(estimate, float)
    band = metrics.band_index(estimate)

    def smallest_level(rows) -> float:
        for level in RANGE_LEVEL_GRID:
            if metrics.interval_coverage(probs[rows], true[rows], level) >= target:
                return level
        return RANGE_LEVEL_GRID[-1]

    overall = smallest_level(np.arange(len(true)))
    out = []
    for i, (lo, hi) in enumerate(metrics.AGE_BANDS):
        rows = np.flatnonzero(band == i)
        level = smallest_level(rows) if len(rows) >= min_faces else overall
        out.append({"from": lo, "to": hi if hi < 200 else None, "level": level, "n": int(len(rows))})
    return out


def range_levels_for(estimate, levels: list[dict] | None, default: float = 0.8) -> np.ndarray:
    """The nominal level each face's range is read at (the server's rangeLevel): the band of its
    estimate, rounded down to a whole year."""
    estimate = np.asarray(estimate, float)
    out = np.full(len(estimate), default)
    if not levels:
        return out
    whole = np.floor(estimate)
    for b in levels:
        hi = np.inf if b["to"] is None else b["to"]
        out[(whole >= b["from"]) & (whole <= hi)] = b["level"]
    return out


# ---------------------------------------------------------------------------------------------
# 3. Widening by capture quality
# ---------------------------------------------------------------------------------------------

def quality_band(score) -> np.ndarray:
    """Index into QUALITY_BANDS of each score (the server's qualityBand)."""
    score = np.asarray(score, float)
    idx = np.full(len(score), len(QUALITY_BANDS) - 1)
    for i, (lo, _) in reversed(list(enumerate(QUALITY_BANDS))):
        idx[score >= lo] = np.minimum(idx[score >= lo], i)
    return idx


def widen(probs, tau) -> np.ndarray:
    """p^(1/tau), renormalised per row: tau > 1 spreads the distribution in proportion to its own
    spread (a child's narrow answer widens by months, an old face's by years). `tau` one number
    or one per row. The server's widen() does the same in float64."""
    p = np.clip(np.asarray(probs, float), 0, None)
    tau = np.broadcast_to(np.asarray(tau, float), (len(p),))[:, None]
    w = np.where(p > 0, np.exp(np.log(np.where(p > 0, p, 1.0)) / tau), 0.0)
    return w / w.sum(axis=1, keepdims=True)


def widening_for(score, widening: list[dict] | None) -> np.ndarray:
    """Each face's tau from its quality score (1 where the model has no widening)."""
    score = np.asarray(score, float)
    out = np.ones(len(score))
    if not widening:
        return out
    for b in widening:
        out[(score >= b["from"]) & (score < b["to"])] = b["tau"]
    return out


def fit_widening(probs, true, estimate, score, levels: list[dict] | None, target: float = 0.8,
                 min_faces: int = 100) -> list[dict]:
    """Per quality band: the smallest tau (WIDENING_GRID) whose ranges, read at the estimate
    bands' `levels`, hold the true age for at least `target` of the band's faces; a band with
    fewer than `min_faces` faces takes the next better band's tau or more."""
    probs, true = np.asarray(probs, float), np.asarray(true, float)
    band = quality_band(score)
    level = range_levels_for(estimate, levels)
    out, floor = [], WIDENING_GRID[0]
    for i, (lo, hi) in enumerate(QUALITY_BANDS):
        rows = np.flatnonzero(band == i)
        tau = floor
        if len(rows) >= min_faces:
            for t in WIDENING_GRID:
                if t < floor:
                    continue
                if metrics.interval_coverage(widen(probs[rows], t), true[rows], level[rows]) >= target:
                    tau = t
                    break
            else:
                tau = WIDENING_GRID[-1]
        floor = tau          # a worse capture never gets a narrower answer than a better one
        out.append({"from": lo, "to": min(hi, 1.0001), "tau": tau, "n": int(len(rows))})
    return out


def fit_levels_and_widening(probs, true, estimate, score, clean, rounds: int = 3) -> tuple[list, list]:
    """Range levels on the clean faces and widening on all, each given the other, a few rounds
    (each changes the other's fit a little)."""
    clean = np.asarray(clean, bool)
    widening = None
    levels = None
    for _ in range(rounds):
        tau = widening_for(score, widening)
        w = widen(probs, tau)
        levels = fit_range_levels(w[clean], np.asarray(true)[clean], np.asarray(estimate)[clean])
        widening = fit_widening(probs, true, estimate, score, levels)
    return levels, widening


# ---------------------------------------------------------------------------------------------
# 4. The decision rule
# ---------------------------------------------------------------------------------------------

def p_at_least(probs, t: int) -> np.ndarray:
    """P(age >= t) per row, ages 0..M-1 (the server's probabilityAtLeast, before rounding)."""
    p = np.clip(np.asarray(probs, float), 0, None)
    return p[:, t:].sum(axis=1) / p.sum(axis=1)


def fit_decision(widened, true, score, target: float = DECISION_TARGET, ages=DECISION_AGES,
                 min_under: int = MIN_UNDER) -> dict:
    """Per T and quality band, the smallest P (P_GRID) at which at most `target` of the band's
    `val` faces under T would pass; None (refer everyone) where the band has fewer than
    `min_under` faces under T or no P is safe. A worse band never passes at a lower P than a
    better one (monotone in quality) and a higher P always passes where a lower one does
    (monotone in P). -> {"target", "ages": {T: [{"from", "to", "min_p" | None, "n_under",
    "under_passed", "over_passed"} per band]}}."""
    widened, true = np.asarray(widened, float), np.asarray(true, float)
    band = quality_band(score)
    rule = {}
    for t in ages:
        p = np.round(p_at_least(widened, t), 4)        # the probability the API shows, and decides on
        bands, floor = [], None
        for i, (lo, hi) in enumerate(QUALITY_BANDS):
            rows = band == i
            under, over = rows & (true < t), rows & (true >= t)
            min_p = None
            if under.sum() >= min_under:
                for g in P_GRID:
                    if (p[under] >= g).mean() <= target:
                        min_p = g
                        break
            if min_p is not None and floor is not None:
                min_p = max(min_p, floor)
            if i > 0 and bands[-1]["min_p"] is None:
                min_p = None          # a worse capture than one that refers refers too
            floor = min_p if min_p is not None else floor
            passed = (p >= min_p) if min_p is not None else np.zeros(len(p), bool)
            bands.append({"from": lo, "to": min(hi, 1.0001), "min_p": min_p, "n_under": int(under.sum()),
                          "under_passed": int((passed & under).sum()), "n_over": int(over.sum()),
                          "over_passed": int((passed & over).sum())})
        rule[str(t)] = bands
    return {"target": target, "ages": rule}


def decide(p, score, t: int, decision: dict | None) -> np.ndarray:
    """"pass" / "refer" per face (the server's decide): pass when the face's quality band has a
    min_p for T and P(age >= T) (as the API shows it: four decimals) reaches it. An age without
    a fitted rule refers here; the API answers null for it."""
    p, score = np.asarray(p, float), np.asarray(score, float)
    out = np.full(len(p), "refer", dtype=object)
    bands = (decision or {}).get("ages", {}).get(str(t))
    if not bands:
        return out
    idx = quality_band(score)
    for i, b in enumerate(bands):
        if b["min_p"] is not None:
            out[(idx == i) & (p >= b["min_p"])] = "pass"
    return out


# ---------------------------------------------------------------------------------------------
# The release's fit
# ---------------------------------------------------------------------------------------------

def decision_for(calib: dict, target: float | None = None) -> dict | None:
    """The rule fitted for a false-accept target (the server's decisionRule): `decision` for the
    default (None or its own target), else the one of `other_decisions` with that target; None
    when no rule was fitted for it."""
    rules = [calib["decision"], *calib.get("other_decisions", [])]
    if target is None:
        return rules[0]
    return next((r for r in rules if r["target"] == target), None)


def fit_served_calibration(probs, estimate, true, score, clean,
                           other_targets=OTHER_DECISION_TARGETS) -> dict:
    """From the served graph's answers on `val` faces, clean and degraded (probs [N, 101],
    estimate [N], true [N], quality score [N], clean [N] bool) -> the manifest's `calibration`:
    range levels, widening and the decision rules (the default target's, and one per
    `other_targets`), with the val numbers they were fitted to."""
    true = np.clip(np.asarray(true, float), 0, 100)
    levels, widening = fit_levels_and_widening(probs, true, estimate, score, clean)
    widened = widen(probs, widening_for(score, widening))
    decision = fit_decision(widened, true, score)
    calib = {"range_levels": levels, "widening": widening, "decision": decision}
    if other_targets:
        calib["other_decisions"] = [fit_decision(widened, true, score, target=t) for t in other_targets]
    return calib


# ---------------------------------------------------------------------------------------------
# Faces for the fit, and a released version's calibration
# ---------------------------------------------------------------------------------------------

def capture_faces(split: str, size: int, data_root: str, per_face: int, seed: int,
                  limit: int | None = None) -> dict:
    """A split's chips as the served path reads them with crop=image: each clean, and again under
    `per_face` of the capture benchmark's degraded conditions (training/capture.py; spread evenly
    over the conditions by a seeded order of the faces) -> {"inputs": uint8 [N', S, S, 3] (the
    model's input, Pillow BOX as the server resizes), "true", "score" (capture quality),
    "condition", "face"}."""
    from PIL import Image

    from .capture import CONDITIONS, blockiness, condition_seed, degrade_condition, input_quality
    from .data import load_packed

    chips = load_packed("utkface", data_root, split, 200, limit=limit, progress=False)
    n = len(chips)
    degraded = CONDITIONS[1:]
    slot = np.empty(n, int)
    slot[np.random.default_rng(seed).permutation(n)] = np.arange(n)
    rows = [(i, "clean") for i in range(n)] + [
        (i, degraded[(slot[i] * per_face + j) % len(degraded)]) for i in range(n) for j in range(per_face)]
    inputs = np.empty((len(rows), size, size, 3), np.uint8)
    score = np.empty(len(rows))
    for r, (i, cond) in enumerate(rows):
        img = degrade_condition(chips.images[i].numpy(), cond, condition_seed(seed, i, cond))
        inputs[r] = np.array(Image.fromarray(img).resize((size, size), Image.BOX), dtype=np.uint8)
        h, w = img.shape[:2]
        score[r] = input_quality(inputs[r], float(np.sqrt(w * h)), None, blockiness(img))["score"]
    return {"inputs": inputs, "true": chips.ages.numpy()[[i for i, _ in rows]],
            "score": score, "condition": np.array([c for _, c in rows]), "face": np.array([i for i, _ in rows])}


def _predict(model_path, inputs: np.ndarray, batch_size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    probs, ages = [], []
    for start in range(0, len(inputs), batch_size):
        age, p = sess.run(["age", "probs"], {"image": inputs[start:start + batch_size]})
        probs.append(p)
        ages.append(age)
    return np.concatenate(probs).astype(np.float64), np.concatenate(ages).astype(np.float64)


def served_answers(model_dir, split: str, per_face: int, seed: int, data_root: str) -> dict:
    """capture_faces of a split read by a released version's served graph: the same dict, its
    "inputs" replaced by the graph's "probs" and "estimate"."""
    import json
    from pathlib import Path

    d = Path(model_dir)
    manifest = json.loads((d / "manifest.json").read_text())
    faces = capture_faces(split, manifest["input"]["size"], data_root, per_face, seed)
    faces["probs"], faces["estimate"] = _predict(d / manifest["model"], faces.pop("inputs"))
    return faces


def calibration_report(probs, estimate, true, score, condition, calib: dict, t: int = 18,
                       target: float | None = None) -> dict:
    """Per condition: MAE, the range's coverage, and at T the share of under-T faces that pass
    and of over-T faces that pass (by the rule for the false-accept `target`, the default one
    when None); and the clean faces' coverage per band of the estimate."""
    true = np.clip(np.asarray(true, float), 0, 100)
    widened = widen(probs, widening_for(score, calib["widening"]))
    level = range_levels_for(estimate, calib["range_levels"])
    lo, hi = metrics.quantile_interval(widened, level)
    inside = (true >= lo) & (true <= hi)
    rule = decision_for(calib, target)
    if rule is None:
        raise ValueError(f"no decision rule fitted for a false-accept target of {target}")
    passed = decide(np.round(p_at_least(widened, t), 4), score, t, rule) == "pass"
    out = {}
    for c in dict.fromkeys(condition):
        rows = condition == c
        under, over = rows & (true < t), rows & (true >= t)
        out[c] = {"n": int(rows.sum()), "mae": round(float(np.abs(estimate[rows] - true[rows]).mean()), 3),
                  "coverage": round(float(inside[rows].mean()), 4),
                  "mean_width": round(float((hi - lo)[rows].mean()), 2),
                  "quality_median": round(float(np.median(score[rows])), 3),
                  f"under_{t}_passed": [int((passed & under).sum()), int(under.sum())],
                  f"over_{t}_passed": [int((passed & over).sum()), int(over.sum())]}
    clean = condition == "clean"
    by_band = {}
    band = metrics.band_index(estimate[clean])
    for i, (blo, _) in enumerate(metrics.AGE_BANDS):
        rows = band == i
        if rows.any():
            by_band[metrics.band_of(blo)] = {"n": int(rows.sum()), "coverage": round(float(inside[clean][rows].mean()), 4)}
    return {"conditions": out, "clean_coverage_by_estimate_band": by_band}


def calibrate_release(model_dir: str, data_root: str = UTKFACE_ROOT, per_face: int = 4,
                      seed: int = 202) -> dict:
    """Fits a released version's calibration on `val` (clean and degraded by the capture
    benchmark's functions) and writes it into its manifest (`calibration`, replacing the older
    top-level range_levels) and report.json (`capture_calibration`: the val numbers it was fitted
    to, and the clean `test` faces' coverage and checks, reported only; per other target too)."""
    import json
    from pathlib import Path

    d = Path(model_dir)
    manifest = json.loads((d / "manifest.json").read_text())
    val = served_answers(d, "val", per_face, seed, data_root)
    calib = fit_served_calibration(val["probs"], val["estimate"], val["true"], val["score"], val["condition"] == "clean")
    test = served_answers(d, "test", 0, seed, data_root)
    fitted = {"split": "val", "faces": int((val["condition"] == "clean").sum()), "conditions_per_face": per_face,
              "seed": seed, "runtime": "onnxruntime (Python), the served int8 graph",
              "command": f"python -m training calibrate --model-dir {model_dir}"}
    manifest["calibration"] = {**calib, "fitted": fitted}
    manifest.pop("range_levels", None)
    write_manifest_json(d / "manifest.json", manifest)
    report_path = d / "report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    report_on = lambda faces, target=None: calibration_report(
        faces["probs"], faces["estimate"], faces["true"], faces["score"], faces["condition"], calib, target=target)
    result = {"fitted": fitted, "calibration": calib, "val": report_on(val), "test_clean": report_on(test),
              "other_targets": {str(r["target"]): {"val": report_on(val, r["target"]),
                                                   "test_clean": report_on(test, r["target"])}
                                for r in calib.get("other_decisions", [])}}
    report["capture_calibration"] = result
    report_path.write_text(json.dumps(report) + "\n")
    return result
