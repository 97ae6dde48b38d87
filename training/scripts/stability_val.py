"""How steady a trained network's answer is on `val`, in the stability benchmark's views (the
training arms of model version 9 are chosen on it; `test` is only bench:stability's):

    training/.venv/bin/python training/scripts/stability_val.py runs/v9-arms/base/best.pt runs/v9-arms/views/best.pt \
        [--faces 300] [--tta served|single|flip|gray|flip+gray] [--json runs/v9-arms/stability-val.json]

Each of `faces` val faces (evenly spaced; second_view.py's faces and draws) in every view of
training/capture.py VIEWS, resized to the network's input as the server resizes a whole image,
read by the network in PyTorch as its served graph reads it (its test_flip / test_gray, and the
global head alone unless --fusion-local says otherwise) or by --tta. Per checkpoint: MAE on the clean faces and over all views, each face's spread over its
views (median, 90th percentile, worst, faces over 10 years) and the mean move of each kind of
view (frame, light, other) from the clean face's answer.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from second_view import view_inputs  # noqa: E402
from training import capture  # noqa: E402
from training.data import UTKFACE_ROOT, Packed  # noqa: E402
from training.evaluate import predict_packed, served_tta  # noqa: E402
from training.model import load_checkpoint  # noqa: E402


def measure(checkpoint: str, faces: int, tta: str, data_root: str, fusion_local: float | None) -> dict:
    model, _ = load_checkpoint(checkpoint)
    model.eval()
    if fusion_local is not None:     # the fusion the release will serve, not the one training scored
        model.cfg.fusion_local = fusion_local
    tta = served_tta(model.cfg) if tta == "served" else tta
    images, truth = view_inputs(data_root, "val", faces, model.cfg.input_size)     # [F, V, S, S, 3], [F]
    f, v = images.shape[:2]
    flat = torch.from_numpy(images.reshape(f * v, *images.shape[2:]))
    n = len(flat)
    packed = Packed(flat, torch.zeros(n), torch.zeros(n, dtype=torch.long), torch.full((n,), float("nan")), [None] * n, [None] * n)
    est = predict_packed(model, packed, tta=tta)["fused"]["age"].reshape(f, v).astype(np.float64)   # fp32, as exported
    spread = est.max(1) - est.min(1)
    err = np.abs(est - truth[:, None])
    views = list(capture.VIEWS)
    move = {g: round(float(np.mean([np.abs(est[:, j] - est[:, 0]).mean() for j, name in enumerate(views)
                                    if capture.VIEWS[name].group == g and j > 0])), 3)
            for g in ("frame", "light", "other")}
    return {"checkpoint": checkpoint, "tta": tta, "faces": f, "by_sex": decision_by_sex(model, tta, data_root),
            "mae_clean": round(float(err[:, 0].mean()), 3),
            "mae_views": round(float(err.mean()), 3), "spread_median": round(float(np.median(spread)), 2),
            "spread_p90": round(float(np.percentile(spread, 90)), 2), "spread_worst": round(float(spread.max()), 2),
            "over_10": int((spread > 10).sum()), "mean_move": move,
            "mae_by_view": {name: round(float(err[:, j].mean()), 3) for j, name in enumerate(views)}}


REFER_BELOW = 0.985      # versions 8's rule passes a good capture at 18 from P(age >= 18) 0.985


def decision_by_sex(model, tta: str, data_root: str) -> dict:
    """All clean val chips: adults whose P(age >= 18) stays under REFER_BELOW (what the decision
    would refer, before calibration's widening) by UTKFace's gender, each re-weighted to the
    adults' age mix (data.balance_weights within the adults), and MAE by gender."""
    from training.data import balance_weights, load_packed
    from training.evaluate import predict_packed
    val = load_packed("utkface", data_root, "val", model.cfg.input_size, progress=False)
    pred = predict_packed(model, val, tta=tta)["fused"]
    p18 = pred["probs"][:, 18:].sum(1)
    ages, gender = val.ages.numpy(), np.array([str(g) for g in val.gender])
    adults = ages >= 18
    w = np.zeros(len(ages))
    w[adults] = balance_weights(ages[adults], gender[adults]).numpy()
    out = {}
    for g in sorted(set(gender[adults])):
        m = adults & (gender == g)
        out[g] = {"adults": int(m.sum()), "referred": round(float((p18[m] < REFER_BELOW).mean()), 4),
                  "referred_reweighted": round(float(np.sum(w[m] * (p18[m] < REFER_BELOW)) / np.sum(w[m])), 4),
                  "mae": round(float(np.abs(pred["age"][gender == g] - ages[gender == g]).mean()), 3)}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--faces", type=int, default=300)
    ap.add_argument("--tta", default="served", choices=["served", "single", "flip", "gray", "flip+gray"])
    ap.add_argument("--data-root", default=str(REPO / UTKFACE_ROOT))
    ap.add_argument("--fusion-local", type=float, default=0.0,
                    help="the local branch's weight as served (versions 8 and 9: 0, the global head alone; "
                    "a stage-global checkpoint's own 0.5 would add a branch it never trained); -1: the checkpoint's")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    fusion_local = None if args.fusion_local < 0 else args.fusion_local
    rows = [measure(c, args.faces, args.tta, args.data_root, fusion_local) for c in args.checkpoints]
    for r in rows:
        print(f"{r['checkpoint']}: MAE clean {r['mae_clean']:.3f}, views {r['mae_views']:.3f}; spread median "
              f"{r['spread_median']:.2f}, p90 {r['spread_p90']:.2f}, worst {r['spread_worst']:.1f}, over 10 y {r['over_10']}; "
              f"move frame {r['mean_move']['frame']:.2f} light {r['mean_move']['light']:.2f} other {r['mean_move']['other']:.2f}; "
              f"adults referred (P18 < {REFER_BELOW}, re-weighted) " +
              ", ".join(f"{g} {v['referred_reweighted']:.3f}" for g, v in r["by_sex"].items()), flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
