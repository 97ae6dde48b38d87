"""Do bf16 and fp32 training reach the same val MAE? One short run in each, everything else the
same (seed, data, schedule, start), then both scored on all of `val` with a paired bootstrap of
the per-face errors (training/notes/speeds.md, "Do both precisions learn the same?"):

  python training/scripts/precision_check.py [--epochs 2] [--limit-train 6000] [--out runs/precision]

Prints one JSON object: each run's val MAE, img/s and seconds, and bf16 minus fp32 with its 95%
interval. An interval that holds 0 means the precision does not change what the run learns,
within this run's noise."""
import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from training.data import load_split  # noqa: E402
from training.evaluate import predict_packed  # noqa: E402
from training.metrics import paired_bootstrap  # noqa: E402
from training.model import load_checkpoint  # noqa: E402
from training.train import train  # noqa: E402
from training.train_config import TrainConfig  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="al_resnet18_edge_fast")
    p.add_argument("--init", default="runs/recovered/al-resnet18-edge-utkface-3.1-fast80.pt")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--limit-train", type=int, default=6000)
    p.add_argument("--out", default="runs/precision")
    args = p.parse_args()
    runs, errors = {}, {}
    for precision in ("fp32", "bf16"):
        cfg = TrainConfig.from_flat(model=args.model, stage="global", init=args.init, out=f"{args.out}/{precision}",
                                    epochs=args.epochs, lr=0.01, lr_steps=(args.epochs - 1,), warmup_epochs=0.2,
                                    label_sigma=2, limit_train=args.limit_train, progress=False,
                                    bf16=precision == "bf16")
        r = train(cfg)
        model, ckpt = load_checkpoint(f"{args.out}/{precision}/last.pt")
        val = load_split(ckpt, "val", model.cfg.input_size)
        age = predict_packed(model.eval(), val)["global"]["age"]
        errors[precision] = np.abs(age - val.ages.numpy())
        runs[precision] = {"val_mae": round(float(errors[precision].mean()), 3),
                           "images_per_s": round(r["history"][-1]["images_per_s"], 1),
                           "train_seconds": round(r["train_seconds"], 1), "precision": r["precision"]}
    boot = paired_bootstrap(errors["bf16"], errors["fp32"])
    print(json.dumps({"runs": runs, "bf16_minus_fp32": {"mae": round(boot["mean_diff"], 3),
                                                        "ci95": [round(v, 3) for v in boot["ci95"]]},
                      "settings": vars(args)}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
