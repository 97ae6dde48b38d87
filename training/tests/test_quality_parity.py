"""Training-vs-serving parity of capture quality and calibration: the fixture test/quality.test.ts
compares against.

capture.input_quality (what the release measures on `val` faces to fit the widening and the
decision rule) reads a generated face under several capture conditions; the fixture holds each
model input (PNG), its face size and detector score, and the measures. It also holds widen()
and decide() cases of training/calibration.py. The TypeScript test runs src/model/quality.ts
and src/model/calibration.ts on the same inputs. This test regenerates the fixture and checks
it equals the committed one, so it cannot go stale.

Regenerate: training/.venv/bin/python -m training.tests.test_quality_parity
"""
from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from training import calibration, capture, metrics
from training.contract import FAR_MODE
from training.tests.test_serving_parity import generated_image

FIXTURE = Path(__file__).resolve().parents[2] / "test" / "fixtures" / "parity" / "quality.json"
SIZE = 150
# condition -> detector score (None: crop=image)
CASES = {"clean": None, "small-severe": None, "blur-severe": 0.93, "dark-severe": 0.81,
         "jpeg-moderate": None, "jpeg-severe": None, "eyes-severe": 0.62, "lower-moderate": None, "small-moderate": 0.55}
VIEW_CASES = {"lamp": None, "cool": 0.9, "gray": None}
# The detector's keypoints (right eye, left eye, nose tip, mouth; source pixels) where a case has
# a detector: facing the camera, turned, tilted back.
KEYPOINTS = {"blur-severe": [[60, 70], [140, 72], [101, 115], [100, 150]],
             "dark-severe": [[60, 70], [140, 62], [150, 100], [110, 150]],
             "view cool": [[60, 70], [140, 70], [100, 84], [100, 130]]}
CALIBRATION = {
    "range_levels": [{"from": 0, "to": 17, "level": 0.7}, {"from": 18, "to": None, "level": 0.85}],
    "widening": [{"from": 0.9, "to": 1.0001, "tau": 1.0}, {"from": 0.5, "to": 0.9, "tau": 1.3},
                 {"from": 0.15, "to": 0.5, "tau": 1.8}, {"from": 0.0, "to": 0.15, "tau": 2.6}],
    "decision": {"target": 0.01, "ages": {"18": [
        {"from": 0.9, "to": 1.0001, "min_p": 0.9}, {"from": 0.5, "to": 0.9, "min_p": 0.95},
        {"from": 0.15, "to": 0.5, "min_p": 0.99}, {"from": 0.0, "to": 0.15, "min_p": None}]}},
    "other_decisions": [{"target": 0.02, "ages": {"18": [
        {"from": 0.9, "to": 1.0001, "min_p": 0.85}, {"from": 0.5, "to": 0.9, "min_p": 0.9},
        {"from": 0.15, "to": 0.5, "min_p": 0.97}, {"from": 0.0, "to": 0.15, "min_p": None}]}}],
}


def _png(img: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


def build() -> dict:
    face = generated_image()
    cases = []
    # The capture conditions, and the stability views whose light the colour measures read.
    images = {cond: capture.degrade_condition(face, cond, 5) for cond in CASES}
    images |= {f"view {v}": capture.apply_view(face, v, 5) for v in VIEW_CASES}
    for cond, det in (CASES | {f"view {v}": d for v, d in VIEW_CASES.items()}).items():
        img = images[cond]
        h, w = img.shape[:2]
        model_input = np.array(Image.fromarray(img).resize((SIZE, SIZE), Image.BOX), dtype=np.uint8)
        kp = KEYPOINTS.get(cond)
        q = capture.input_quality(model_input, float(np.sqrt(w * h)), det, capture.blockiness(img),
                                  None if kp is None else capture.head_pose(kp))
        cases.append({"condition": cond, "source_png": _png(img), "input_png": _png(model_input),
                      "face_px": float(np.sqrt(w * h)), "detector_score": det, "keypoints": kp, "expected": q})
    # A distribution (a bump at 16 years) widened at each quality band, and the decision at T = 18.
    ages = np.arange(101)
    probs = np.exp(-0.5 * ((ages - 16) / 3.0) ** 2)
    probs = np.round(probs / probs.sum(), 8)             # as the fixture stores it: both sides widen these
    calib_cases = []
    for score in (1.0, 0.7, 0.3, 0.05):
        tau = float(calibration.widening_for([score], CALIBRATION["widening"])[0])
        w = calibration.widen(probs[None], tau)[0]
        p18 = float(np.round(calibration.p_at_least(w[None], 18)[0], 4))
        calib_cases.append({"score": score, "tau": tau, "widened": np.round(w, 8).tolist(), "p18": p18,
                            "decision": str(calibration.decide([p18], [score], 18, CALIBRATION["decision"])[0])})
    # `target`: the false-accept target asked (false_accept=), None for the default rule.
    for p, score, target in ((0.95, 0.95, None), (0.8999, 0.95, None), (0.95, 0.6, None), (0.999, 0.1, None),
                             (0.87, 0.95, 0.02), (0.87, 0.95, 0.01), (0.93, 0.6, 0.02), (0.98, 0.3, 0.02),
                             (0.999, 0.1, 0.02)):
        rule = calibration.decision_for(CALIBRATION, target)
        calib_cases.append({"score": score, "p18": p, "target": target,
                            "decision": str(calibration.decide([p], [score], 18, rule)[0])})
    # The served range: the level an estimate's band reads it at (rangeLevel), and the quantiles
    # it reads (quantile), of the widened distributions above and of two clamped at the ends.
    range_cases = [{"estimate": e, "level": float(calibration.range_levels_for([e], CALIBRATION["range_levels"])[0]),
                    "uncalibrated": float(calibration.range_levels_for([e], None)[0])}
                   for e in (0.0, 5.7, 16.99, 17.0, 17.5, 18.0, 45.2, 100.0)]
    # Each distribution: the widened one of calibration_cases[i], or all mass on one age.
    dists = [({"widened_of": i}, c["widened"]) for i, c in enumerate(calib_cases) if "widened" in c]
    dists += [({"one_hot": age}, np.eye(101)[age].tolist()) for age in (0, 100)]
    quantile_cases = []
    for source, dist in dists:
        for level in (0.6, 0.8, 0.95):
            low, high = metrics.quantile_interval(np.array([dist]), level)
            quantile_cases.append({**source, "level": level, "low": round(float(low[0]), 6), "high": round(float(high[0]), 6)})
    # A second age far from the peak (metrics.far_mode, the server's farMode): torn distributions,
    # one bump, a spike at the end of the scale, and the widened ones above.
    bump = lambda c, sd, w: w * np.exp(-0.5 * ((ages - c) / sd) ** 2)
    torn = [bump(12, 2, 1) + bump(75, 3, 0.1), bump(60, 5, 1) + bump(20, 4, 0.3) + bump(90, 2, 0.05),
            bump(40, 8, 1), bump(30, 3, 1) + np.eye(101)[100] * 0.2]
    far_cases = []
    for dist in [np.round(d / d.sum(), 8) for d in torn] + [np.array(c["widened"]) for c in calib_cases if "widened" in c]:
        age, mass = metrics.far_mode(dist[None], **{k: FAR_MODE[k] for k in ("gap", "window", "smooth")})
        far_cases.append({"probs": dist.tolist(), "age": int(age[0]), "mass": round(float(mass[0]), 8)})
    return {"size": SIZE, "command": "training/.venv/bin/python -m training.tests.test_quality_parity",
            "cases": cases, "calibration": CALIBRATION, "probs": np.round(probs, 8).tolist(),
            "calibration_cases": calib_cases, "range_cases": range_cases, "quantile_cases": quantile_cases,
            "far_mode_cases": far_cases}


def test_committed_fixture_is_what_training_makes_now():
    assert FIXTURE.exists(), f"{FIXTURE} is missing: run {build()['command']}"
    assert json.loads(FIXTURE.read_text()) == json.loads(json.dumps(build())), \
        f"{FIXTURE} is stale: run {build()['command']}"


def test_the_cases_span_good_and_lost_captures():
    scores = {c["condition"]: c["expected"]["score"] for c in build()["cases"]}
    assert scores["clean"] > 0.9
    assert all(scores[c] < 0.3 for c in ("small-severe", "blur-severe", "dark-severe", "jpeg-severe", "eyes-severe", "lower-moderate"))
    decisions = [c["decision"] for c in build()["calibration_cases"]]
    assert "pass" in decisions and "refer" in decisions


if __name__ == "__main__":
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    FIXTURE.write_text(json.dumps(build(), indent=1) + "\n")
    print(f"wrote {FIXTURE}")
