"""Issue #43: which widening to fit, measured. For a released version, fits the calibration on
`val` twice, as the release does (clean faces and 4 of the capture benchmark's conditions each,
seed 202): widening by quality band alone, and by quality band and limiting part. Reports each
on `val` (where it was fitted) and on `test` (other draws, seed 203; reported only, never
chosen on): the range's coverage per capture condition, the clean faces' coverage per band of
the estimate, and the check at 18 (minors and adults who pass).

    training/.venv/bin/python training/scripts/calibration_variants.py models/al-dlib29-fast-utkface/8 [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from training import calibration as cal  # noqa: E402


def faces_and_answers(model_dir: Path, split: str, per_face: int, seed: int, data_root: str) -> dict:
    manifest = json.loads((model_dir / "manifest.json").read_text())
    faces = cal.capture_faces(split, manifest["input"]["size"], data_root, per_face, seed)
    faces["probs"], faces["estimate"] = cal._predict(model_dir / manifest["model"], faces.pop("inputs"))
    return faces


def summary(report: dict) -> dict:
    cov = {c: v["coverage"] for c, v in report["conditions"].items()}
    clean = report["conditions"]["clean"]
    under = sum(v["under_18_passed"][0] for v in report["conditions"].values())
    n_under = sum(v["under_18_passed"][1] for v in report["conditions"].values())
    return {"coverage": cov, "worst_gap": round(max(abs(v - 0.8) for v in cov.values()), 4),
            "outside_77_83": [c for c, v in cov.items() if not 0.77 <= v <= 0.83],
            "by_estimate_band": {b: v["coverage"] for b, v in report["clean_coverage_by_estimate_band"].items()},
            "adults_pass_clean": round(clean["over_18_passed"][0] / clean["over_18_passed"][1], 4),
            "minors_pass_all": [under, n_under]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir", type=Path)
    ap.add_argument("--data-root", default="../shared/data/utkface")
    ap.add_argument("--json")
    args = ap.parse_args()
    val = faces_and_answers(args.model_dir, "val", 4, 202, args.data_root)
    test = faces_and_answers(args.model_dir, "test", 4, 203, args.data_root)
    out = {}
    for variant, use_parts in (("quality band", False), ("quality band and limiting part", True)):
        calib = cal.fit_served_calibration(val["probs"], val["estimate"], val["true"], val["score"],
                                           val["condition"] == "clean", val["limiting"] if use_parts else None)
        row = {"widening": calib["widening"]}
        for name, d in (("val", val), ("test", test)):
            rep = cal.calibration_report(d["probs"], d["estimate"], d["true"], d["score"], d["condition"], calib,
                                         limiting=d["limiting"] if use_parts else None)
            row[name] = summary(rep)
        out[variant] = row
        print(f"== {args.model_dir}: widening by {variant}")
        print("   widening:", json.dumps(calib["widening"]))
        for name in ("val", "test"):
            s = row[name]
            print(f"   {name}: worst |coverage - 0.8| {s['worst_gap']:.3f}, outside 0.77-0.83: {s['outside_77_83']}, "
                  f"adults pass clean {s['adults_pass_clean']:.3f}, minors pass {s['minors_pass_all']}")
            print("     coverage:", " ".join(f"{c} {v:.3f}" for c, v in s["coverage"].items()))
            print("     clean by estimate band:", " ".join(f"{b} {v:.3f}" for b, v in s["by_estimate_band"].items()))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
