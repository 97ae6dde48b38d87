"""Two trained candidates on the same `test` faces, as served (face + mirror averaged, fp32):
each one's MAE, minors and children placed at 18+, and attention-box statistics, and A minus B
with a 95% paired bootstrap over the faces. How version 5's box was weighed against its
control (training/notes/al-resnet18-edge-utkface-5.md):

  python training/scripts/compare_arms.py runs/al-resnet18-edge-utkface-5/local/best.pt \\
      runs/al-resnet18-edge-nobox-5/local/best.pt [--split test] [--tta flip] [--also REFERENCE.pt]

--also adds more checkpoints to the table (each compared with A). --framed scores each face as the
photo path crops it (the chip set into a canvas, found by BlazeFace, framed by --framing-from's
`framing`; train.py's framed_share faces, made the same way for this split) instead of the chip:
a proxy for `npm run bench:photos` that needs no release. --photo-crops PREFIX scores the faces the
photo path cut out of composed photos (training/js/photo-crops.mjs for --split), those it found."""
import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from training.attention import box_statistics  # noqa: E402
from training.data import data_source, load_framed, load_photo_crops, load_split  # noqa: E402
from training.evaluate import predict_packed  # noqa: E402
from training.metrics import minors_placed_adult, paired_bootstrap  # noqa: E402
from training.model import load_checkpoint  # noqa: E402
from training.train_config import DataConfig  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--also", action="append", default=[])
    p.add_argument("--split", default="test")
    p.add_argument("--tta", default="flip", choices=["single", "flip", "ten"])
    p.add_argument("--framed", action="store_true", help="the faces as the photo path crops them, not the chips")
    p.add_argument("--photo-crops", default=None, help="training/js/photo-crops.mjs's output for --split (path without .u8/.json)")
    p.add_argument("--detector", default=DataConfig.detector)
    p.add_argument("--framing-from", default=DataConfig.framing_from)
    args = p.parse_args()
    framing = json.loads(Path(args.framing_from).read_text())["framing"] if args.framed else None
    rows, errors = {}, {}
    for path in [args.a, args.b, *args.also]:
        model, ckpt = load_checkpoint(path)
        data = load_split(ckpt, args.split, model.cfg.input_size)
        if args.framed:
            src = data_source(ckpt)
            images, _ = load_framed(src.dataset, src.root, args.split, model.cfg.input_size, args.detector,
                                    framing, progress=False, **src.options)
            data = dataclasses.replace(data, images=images)
        if args.photo_crops:
            src = data_source(ckpt)
            images, found = load_photo_crops(args.photo_crops, src.dataset, src.root, args.split,
                                             model.cfg.input_size, **src.options)
            keep = found.nonzero().squeeze(1)
            data = dataclasses.replace(data.subset(keep), images=images[keep])
        pred = predict_packed(model.eval(), data, tta=args.tta)
        true = data.ages.numpy()
        errors[path] = {b: np.abs(pred[b]["age"] - true) for b in ("global", "local", "fused")}
        minors = minors_placed_adult(pred["fused"]["age"], true)
        box = box_statistics(pred["box"])
        rows[path] = {"mae": {b: round(float(e.mean()), 3) for b, e in errors[path].items()},
                      "minors_18_plus": f"{minors['placed_18_plus']} / {minors['minors']}",
                      "children_18_plus": f"{len(minors['children_placed_18_plus'])} / {minors['children']}",
                      "box": {k: (round(v, 3) if isinstance(v, float) else [round(x, 3) for x in v] if isinstance(v, list) else v)
                              for k, v in box.items()}}
    diffs = {}
    for other in [args.b, *args.also]:
        diffs[other] = {b: {k: (round(v, 3) if isinstance(v, float) else [round(x, 3) for x in v])
                            for k, v in paired_bootstrap(errors[args.a][b], errors[other][b], n_boot=10000).items()}
                        for b in ("fused", "global")}
    print(json.dumps({"split": args.split, "tta": args.tta, "framed": args.framed, "photo_crops": args.photo_crops, "models": rows, "a_minus": diffs}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
