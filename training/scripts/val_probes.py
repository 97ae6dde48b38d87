"""Probes on `val` that are not part of the recipe, kept so the numbers quoted in
training/notes/al-resnet18-edge-utkface-3.md can be rerun (each prints fused MAEs):

  python training/scripts/val_probes.py ensemble A.pt B.pt ... # average models' distributions
                                                               # (each model alone: `python -m training evaluate --tta flip`)
  python training/scripts/val_probes.py soup A.pt B.pt          # `python -m training soup`, and BatchNorm re-estimated
  python training/scripts/val_probes.py test-size A.pt         # larger inputs / centre crops at test time
  python training/scripts/val_probes.py point A.pt             # median and sharper temperatures vs DEX
  python training/scripts/val_probes.py photos CROPS A.pt ...  # chips and the photo path's cuts of the same faces
                                                               # (CROPS: training/js/photo-crops.mjs --split val --out CROPS)
  python training/scripts/val_probes.py serving A.pt [N]       # what the mirror view and the local branch each buy:
                                                               # fused / global, face + mirror / one view, on all val
                                                               # chips and on N val faces (300) under every capture condition
All with the face and its mirror averaged, as the accurate tier serves (VIEWS=single: one view,
as the fast tier serves)."""
import os
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from training.data import data_source, load_photo_crops, load_split, resize, to_float  # noqa: E402
from training.distill import average_answers  # noqa: E402
from training.evaluate import predict_packed  # noqa: E402
from training.model import average_views, load_checkpoint  # noqa: E402
from training.soup import average_weights  # noqa: E402

AGES = np.arange(101)
VIEWS = os.environ.get("VIEWS", "flip")


def _load(path, size=None):
    model, ckpt = load_checkpoint(path)
    return model.eval(), load_split(ckpt, "val", size or model.cfg.input_size)


def ensemble(*paths):
    probs, ages = average_answers(list(paths), split="val")
    print("average", round(float(np.abs(probs.numpy() @ AGES - ages.numpy()).mean()), 3))


def soup(*paths):
    """`python -m training soup`'s model, then with BatchNorm's statistics re-estimated."""
    model, ckpt = load_checkpoint(paths[0])
    model.load_state_dict(average_weights(list(paths))["state_dict"])
    val = load_split(ckpt, "val", model.cfg.input_size)
    for when in ("averaged", "after BatchNorm re-estimation"):
        if when != "averaged":
            # Averaged BatchNorm statistics are not the statistics of the averaged weights.
            _recalibrate_batchnorm(model, load_split(ckpt, "train", model.cfg.input_size, limit=2048))
        pred = predict_packed(model.eval(), val, tta=VIEWS)
        print(when, {b: round(float(np.abs(pred[b]["age"] - val.ages.numpy()).mean()), 3)
                     for b in ("global", "local", "fused")})


@torch.no_grad()
def _recalibrate_batchnorm(model, faces, batch_size=256):
    # Not torch.optim.swa_utils.update_bn: it puts the whole model in training mode, where the
    # attention LSTM would also move its running start state.
    model.eval()
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a plain mean over every batch
        m.train()
    for start in range(0, len(faces), batch_size):
        model(model.normalize(resize(faces.images[start:start + batch_size], model.cfg.input_size)))
    model.eval()


@torch.no_grad()
def test_size(path):
    model, val = _load(path, size=160)  # decoded large enough for every setting below
    for size, frac in [(112, 1.0), (112, 0.95), (112, 0.9), (112, 0.85), (120, 1.0), (128, 1.0)]:
        ages = []
        for start in range(0, len(val), 256):
            x = to_float(val.images[start:start + 256])                        # [N, 3, 160, 160]
            c = round(x.shape[-1] * frac)
            o = (x.shape[-1] - c) // 2
            v = F.interpolate(x[:, :, o:o + c, o:o + c], size=(size, size), mode="bilinear",
                              antialias=True, align_corners=False)             # [N, 3, size, size]
            views = [model.predict(model(model.normalize(u))) for u in (v, v.flip(3))]
            ages.append(average_views(views, model.class_ages)["age"])
        print(f"{size} px, centre {frac:.0%}:", round(float(np.abs(torch.cat(ages).numpy() - val.ages.numpy()).mean()), 3))


def point(path):
    model, val = _load(path)
    p = predict_packed(model, val, tta=VIEWS)["fused"]["probs"]
    true = val.ages.numpy()
    print("DEX expectation", round(float(np.abs(p @ AGES - true).mean()), 3))
    print("median", round(float(np.abs((np.cumsum(p, 1) < 0.5).sum(1) - true).mean()), 3))
    for t in (0.7, 0.8, 0.9):
        q = p ** (1 / t)
        q /= q.sum(1, keepdims=True)
        print(f"expectation of p^(1/{t}), renormalized", round(float(np.abs(q @ AGES - true).mean()), 3))


def photos(crops, *paths):
    """Val MAE on the faces the photo path cut (those it found) and on the same faces as chips:
    the photo gap on `val`, for a checkpoint that bench:photos cannot serve yet."""
    for path in paths:
        model, ckpt = load_checkpoint(path)
        model.eval()
        chips = load_split(ckpt, "val", model.cfg.input_size)
        src = data_source(ckpt)
        cut, matched = load_photo_crops(crops, src.dataset, src.root, "val", model.cfg.input_size, **src.options)
        found = matched.nonzero().squeeze(1)
        same_chips = chips.subset(found)
        on_photos = chips.subset(found)
        on_photos.images = cut[found]
        mae = {name: round(float(np.abs(predict_packed(model, faces, tta=VIEWS)["fused"]["age"]
                                        - faces.ages.numpy()).mean()), 3)
               for name, faces in (("chips", same_chips), ("photo-cut", on_photos))}
        print(path, f"{len(found)} faces:", mae, "gap", round(mae["photo-cut"] - mae["chips"], 3))


def serving(path, n="300"):
    """Val MAE of the four graphs one trained network can serve (the global head alone or fused
    with the local branch, one view or face + mirror), on every val chip and on `n` val faces
    under each capture condition (training/capture.py, as train --val-capture makes them)."""
    from training.data import UTKFACE_ROOT
    from training.train import capture_val_sets
    from training.train_config import TrainConfig

    model, ckpt = load_checkpoint(path)
    model.eval()
    tc = ckpt.get("train_config", {})
    cfg = TrainConfig.from_flat(data_root=tc.get("data_root", UTKFACE_ROOT), val_capture=int(n))
    sets = {"chips": load_split(ckpt, "val", model.cfg.input_size), **capture_val_sets(cfg, model.cfg.input_size)}
    rows = {}
    for views in ("single", "flip"):
        preds = {name: predict_packed(model, data, tta=views) for name, data in sets.items()}
        for branch in ("global", "fused"):
            mae = {name: float(np.abs(p[branch]["age"] - sets[name].ages.numpy()).mean()) for name, p in preds.items()}
            degraded = [v for k, v in mae.items() if k not in ("chips", "clean")]
            rows[f"{branch}, {'face + mirror' if views == 'flip' else 'one view'}"] = {
                "val chips": round(mae["chips"], 3), f"{n} faces clean": round(mae["clean"], 3),
                "degraded mean": round(sum(degraded) / len(degraded), 3)}
    for name, row in rows.items():
        print(f"{name:24s}", row)


if __name__ == "__main__":
    {"serving": serving, "ensemble": ensemble, "soup": soup, "test-size": test_size, "point": point, "photos": photos}[sys.argv[1]](*sys.argv[2:])
