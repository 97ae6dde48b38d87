"""Issue #43: what the age check at 18 trades at other false-accept targets. For a released
version, fits its calibration on `val` as the release does (clean faces and 4 of the capture
benchmark's conditions each, seed 202), then refits the decision rule at each target and reports
the minors and adults who pass on `val` (where it was fitted) and on `test` (other draws, seed
203; reported only): clean, over all conditions, and in the condition where most minors pass.
The served rules are the 1% one (the default) and the 2% one (false_accept=0.02); this says
what any target would buy (docs/capture.md).

    training/.venv/bin/python training/scripts/decision_targets.py models/al-dlib29-utkface/8 [--targets 0.01,0.02,0.05]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from training import calibration as cal  # noqa: E402
from training.data import UTKFACE_ROOT  # noqa: E402


def passes(d: dict, calib: dict) -> dict:
    """calibration_report's counts at 18: clean, summed over all conditions, and the condition
    where the largest share of minors passes."""
    conditions = cal.calibration_report(d["probs"], d["estimate"], d["true"], d["score"], d["condition"],
                                        calib)["conditions"]
    total = lambda key: [sum(r[key][i] for r in conditions.values()) for i in (0, 1)]
    share = lambda counts: counts[0] / max(1, counts[1])
    worst = max(conditions, key=lambda c: share(conditions[c]["under_18_passed"]))
    return {"clean": {"minors_pass": conditions["clean"]["under_18_passed"],
                      "adults_pass": share(conditions["clean"]["over_18_passed"])},
            "all conditions": {"minors_pass": total("under_18_passed"), "adults_pass": share(total("over_18_passed"))},
            "worst condition": "{} {}/{}".format(worst, *conditions[worst]["under_18_passed"])}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir", type=Path)
    ap.add_argument("--targets", default="0.01,0.02,0.05")
    ap.add_argument("--data-root", default=UTKFACE_ROOT)
    args = ap.parse_args()
    val = cal.served_answers(args.model_dir, "val", 4, 202, args.data_root)
    test = cal.served_answers(args.model_dir, "test", 4, 203, args.data_root)
    calib = cal.fit_served_calibration(val["probs"], val["estimate"], val["true"], val["score"], val["condition"] == "clean",
                                       other_targets=())      # each target's rule is fitted below, at 18 only
    widened = cal.widen(val["probs"], cal.widening_for(val["score"], calib["widening"]))
    print(f"== {args.model_dir}: the check at 18 by false-accept target (fitted on val)")
    for target in (float(t) for t in args.targets.split(",")):
        decision = cal.fit_decision(widened, np.clip(val["true"], 0, 100), val["score"], target=target, ages=(18,))
        min_p = [b["min_p"] for b in decision["ages"]["18"]]
        line = [f"target {target:.2f}: min_p by quality band {min_p}"]
        for name, d in (("val", val), ("test", test)):
            r = passes(d, {**calib, "decision": decision})
            line.append(f"{name}: clean minors {r['clean']['minors_pass'][0]}/{r['clean']['minors_pass'][1]}, "
                        f"adults {r['clean']['adults_pass']:.3f}; all conditions minors "
                        f"{r['all conditions']['minors_pass'][0]}/{r['all conditions']['minors_pass'][1]}, "
                        f"adults {r['all conditions']['adults_pass']:.3f}; most minors pass in {r['worst condition']}")
        print("   " + "\n     ".join(line))


if __name__ == "__main__":
    main()
