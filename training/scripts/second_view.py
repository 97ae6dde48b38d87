"""Which second view should the served graph run, and how unsure is a face whose views disagree?
Measured on `val` (never `test`) in onnxruntime-web's wasm, as served:

    training/.venv/bin/python training/scripts/second_view.py --model-dir models/al-dlib29-utkface/8 \
        --faces 300 --out runs/second-view/accurate-8

Each of `faces` val faces (evenly spaced) is taken in every view of training/capture.py VIEWS (the
stability benchmark's, other draws), resized to the model's input as the server resizes a whole
image (Pillow BOX), and run as it is, mirrored and in gray. The served combinations compared:
the graph as it is (the accurate tier's graph already averages the face and its mirror inside),
and the mean of its distribution with that of the mirror or of the gray face. Per combination:
MAE on the clean faces and over all views, each face's spread over its views (median, 90th
percentile, worst), and answers "confident and far" (80 % range under 15 years, estimate over 15
years from the face's median answer). And the far-mode rule's min_mass (contract/contract.json
far_mode) fitted on the served graph's answers over the views (fit_far_mode). OUT.json has the
tables, OUT.npz each face's distributions (views x the three inputs).
"""
from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from training import capture  # noqa: E402
from training.data import UTKFACE_ROOT, Packed  # noqa: E402
from training.evaluate import predict_wasm  # noqa: E402
from training.contract import FAR_MODE  # noqa: E402
from training.metrics import far_mode, far_mode_range, quantile_interval  # noqa: E402

SEED = 12    # other draws than the benchmark's (capture.STABILITY_SEED) on another split


def view_inputs(data_root: str, split: str, faces: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 [F, V, S, S, 3]: each face in each view at the model's input, and the true ages [F]."""
    import csv
    rows = [r for r in csv.DictReader(open(Path(data_root) / "labels.csv")) if r["split"] == split]
    rows = [rows[int(i * len(rows) / faces)] for i in range(min(faces, len(rows)))]
    out = np.zeros((len(rows), len(capture.VIEWS), size, size, 3), np.uint8)
    for i, r in enumerate(rows):
        chip = np.array(Image.open(Path(data_root) / "images" / r["file"]).convert("RGB"), np.uint8)
        for j, view in enumerate(capture.VIEWS):
            img = capture.apply_view(chip, view, capture.view_seed(SEED, i, view))
            if capture.VIEWS[view].file == "jpg":
                img = np.array(Image.open(io.BytesIO(capture.jpeg_bytes(img, 80))).convert("RGB"), np.uint8)
            out[i, j] = np.array(Image.fromarray(img).resize((size, size), Image.BOX), np.uint8)
    return out, np.array([float(r["age"]) for r in rows])


def run(model: str, images: np.ndarray) -> np.ndarray:
    """float [N, ages]: the graph's distribution for each uint8 [N, S, S, 3] input."""
    n = len(images)
    packed = Packed(torch.from_numpy(images), torch.zeros(n), torch.zeros(n, dtype=torch.long),
                    torch.full((n,), float("nan")), [None] * n, [None] * n)
    return predict_wasm(model, packed)["fused"]["probs"].astype(np.float64)


def summary(probs: np.ndarray, truth: np.ndarray) -> dict:
    """probs [F, V, ages] -> the combination's numbers."""
    ages = np.arange(probs.shape[-1])
    est = probs @ ages                                                   # [F, V]
    lo, hi = quantile_interval(probs.reshape(-1, probs.shape[-1]), 0.8)
    width = (hi - lo).reshape(est.shape)
    spread = est.max(1) - est.min(1)
    far = np.abs(est - np.median(est, axis=1, keepdims=True)) > 15
    err = np.abs(est - truth[:, None])
    return {"mae_clean": round(float(err[:, 0].mean()), 3), "mae_views": round(float(err.mean()), 3),
            "mae_by_view": {v: round(float(err[:, j].mean()), 3) for j, v in enumerate(capture.VIEWS)},
            "spread_median": round(float(np.median(spread)), 2), "spread_p90": round(float(np.percentile(spread, 90)), 2),
            "spread_worst": round(float(spread.max()), 2), "confident_and_far": int((far & (width < 15)).sum()),
            "range80_coverage": round(float(np.mean((truth[:, None] >= lo.reshape(est.shape)) & (truth[:, None] <= hi.reshape(est.shape)))), 3)}


MIN_MASSES = (0.02, 0.03, 0.05, 0.1)
REACHES = (7, 10, 15, 20, 25)


def fit_far_mode(probs: np.ndarray, truth: np.ndarray) -> dict:
    """The far-mode rule (contract/contract.json far_mode) on these answers (probs [F, V, ages],
    the served graph's): for each min_mass and reach, the share of answers flagged, their 80 %
    range coverage before and after the range reaches over both ages, their width and their MAE
    against the others'. The chosen reach: the smallest whose flagged answers hold the true age
    80 % of the time at the contract's min_mass (each tier is fitted; the contract takes the
    larger)."""
    rule = {k: FAR_MODE[k] for k in ("gap", "window", "smooth")}
    flat = probs.reshape(-1, probs.shape[-1])
    t = np.repeat(truth, probs.shape[1])
    est = flat @ np.arange(flat.shape[1])
    lo, hi = quantile_interval(flat, 0.8)
    second, mass = far_mode(flat, **rule)
    inside, err = (t >= lo) & (t <= hi), np.abs(est - t)
    rows = []
    for m in MIN_MASSES:
        for r in REACHES:
            lo2, hi2, flagged = far_mode_range(lo, hi, est, second, mass, m, r, flat.shape[1] - 1)
            if not flagged.any():
                continue
            inside2 = (t >= lo2) & (t <= hi2)
            rows.append({"min_mass": m, "reach": r, "flagged": int(flagged.sum()), "share": round(float(flagged.mean()), 4),
                         "coverage_before": round(float(inside[flagged].mean()), 3),
                         "coverage_after": round(float(inside2[flagged].mean()), 3),
                         "width_after": round(float((hi2 - lo2)[flagged].mean()), 1),
                         "mae_flagged": round(float(err[flagged].mean()), 2), "mae_others": round(float(err[~flagged].mean()), 2)})
    honest = [r["reach"] for r in rows if r["min_mass"] == FAR_MODE["min_mass"] and r["coverage_after"] >= 0.8]
    return {"answers": int(len(flat)), "rows": rows, "chosen_reach": min(honest) if honest else None,
            "contract": FAR_MODE}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--faces", type=int, default=300)
    ap.add_argument("--split", default="val")
    ap.add_argument("--data-root", default=str(REPO / UTKFACE_ROOT))
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    manifest = json.loads((Path(args.model_dir) / "manifest.json").read_text())
    size, model = manifest["input"]["size"], str(Path(args.model_dir) / manifest["model"])
    images, truth = view_inputs(args.data_root, args.split, args.faces, size)
    f, v = images.shape[:2]
    flat = images.reshape(f * v, size, size, 3)
    probs = {"as_is": run(model, flat), "mirror": run(model, np.ascontiguousarray(flat[:, :, ::-1])),
             "gray": run(model, capture.gray(flat.reshape(-1, size, 3), 0.0, None).reshape(flat.shape))}
    probs = {k: p.reshape(f, v, -1) for k, p in probs.items()}
    combos = {"graph as it is": probs["as_is"],
              "mean with the mirror": (probs["as_is"] + probs["mirror"]) / 2,
              "mean with the gray face": (probs["as_is"] + probs["gray"]) / 2}
    report = {"model": f"{manifest['name']}/{manifest['version']}", "split": args.split, "faces": f,
              "views": list(capture.VIEWS), "combinations": {k: summary(p, truth) for k, p in combos.items()},
              "far_mode": fit_far_mode(probs["as_is"], truth)}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    np.savez_compressed(out.with_suffix(".npz"), truth=truth, **{k: p.astype(np.float32) for k, p in probs.items()})
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
