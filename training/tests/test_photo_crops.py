"""Faces cut by the photo path (training/js/photo-crops.mjs) as training reads them: rows in the split's
order, the unmatched ones marked, another index refused; and train() drawing its framed share
from them and reporting val MAE on them."""
import json

import numpy as np
import pytest
import torch

import training.data as data
import training.train as train_module
from training.data import Packed, fixed_subset, load_photo_crops
from training.train import train
from training.train_config import TrainConfig


def _write(prefix, files, size, matched, split="val"):
    n = len(files)
    pixels = np.arange(n, dtype=np.uint8).reshape(n, 1, 1, 1) * np.ones((1, size, size, 3), np.uint8)
    pixels[~np.asarray(matched)] = 0
    pixels.tofile(f"{prefix}.u8")
    crops = [{"side": 100, "angle": 0, "recompress": None, "iou": 0.8} if m else None for m in matched]
    with open(f"{prefix}.json", "w") as f:
        json.dump({"split": split, "size": size, "files": files, "crops": crops}, f)


def test_photo_crops_follow_the_split_and_refuse_another_index(utkface_root, tmp_path, monkeypatch):
    real = data.load_dataset
    monkeypatch.setattr(data, "load_dataset", lambda name, root, split, **kw: real(name, root, split, **kw)[:20])
    files = [s.path.rsplit("/", 1)[1] for s in data.load_dataset("utkface", str(utkface_root), "val")]
    matched = [i % 3 != 0 for i in range(20)]
    _write(tmp_path / "v", files, 8, matched)

    images, found = load_photo_crops(str(tmp_path / "v"), "utkface", str(utkface_root), "val", 8)
    assert images.shape == (20, 8, 8, 3) and found.tolist() == matched
    assert [int(images[i, 0, 0, 0]) for i in range(20)] == [i if m else 0 for i, m in enumerate(matched)]

    # A limit keeps load_packed's subset, so the crops stay beside their chips.
    images, found = load_photo_crops(str(tmp_path / "v"), "utkface", str(utkface_root), "val", 8, limit=7, seed=3)
    rows = fixed_subset(20, 7, 3)
    assert found.tolist() == [matched[i] for i in rows]
    assert [int(images[j, 0, 0, 0]) for j in range(7)] == [i if matched[i] else 0 for i in rows]

    with pytest.raises(ValueError, match="another index"):
        _write(tmp_path / "r", files[::-1], 8, matched)
        load_photo_crops(str(tmp_path / "r"), "utkface", str(utkface_root), "val", 8)
    with pytest.raises(ValueError, match="another index"):
        load_photo_crops(str(tmp_path / "v"), "utkface", str(utkface_root), "train", 8)
    with pytest.raises(ValueError, match="8 px faces, smaller than the model's 16"):
        load_photo_crops(str(tmp_path / "v"), "utkface", str(utkface_root), "val", 16)

    # Cut larger than the model reads (one cutting for both tiers): shrunk by area averaging,
    # so each face's flat value survives and the rows stay in order.
    images, found = load_photo_crops(str(tmp_path / "v"), "utkface", str(utkface_root), "val", 6)
    assert images.shape == (20, 6, 6, 3) and images.dtype == torch.uint8 and found.tolist() == matched
    assert [int(images[i, 3, 2, 1]) for i in range(20)] == [i if m else 0 for i, m in enumerate(matched)]


def _faces(n: int, seed: int, size: int = 64) -> Packed:
    g = torch.Generator().manual_seed(seed)
    ages = torch.randint(0, 101, (n,), generator=g)
    images = (ages.view(n, 1, 1, 1) * 2 + torch.randint(0, 50, (n, size, size, 3), generator=g)).clamp(0, 255)
    return Packed(images=images.to(torch.uint8), ages=ages.float(), labels=ages,
                  age_std=torch.full((n,), float("nan")), gender=[None] * n, race=[None] * n)


def test_train_draws_the_framed_share_from_photo_crops_and_scores_val_on_them(tmp_path, monkeypatch):
    data_, val = _faces(32, 0), _faces(16, 1)
    asked = []

    def fake(prefix, dataset, root, split, size, **kw):
        asked.append((prefix, split, size))
        n = len(data_) if split == "train" else len(val)
        # Val's photo faces are the val chips darkened: their MAE differs from the chips'.
        crops = (val.images // 2) if split == "val" else torch.zeros((n, size, size, 3), dtype=torch.uint8)
        return crops, torch.arange(n) % 2 == 0
    monkeypatch.setattr(train_module, "load_photo_crops", fake)

    cfg = dict(model="al_resnet_tiny", stage="global", batch_size=16, lr=0.05, progress=False, device="cpu",
               bf16=False, channels_last=False, epochs=2, framed_share=0.5)
    run = train(TrainConfig.from_flat(out=str(tmp_path / "a"), photo_crops="p/train", val_photo_crops="p/val",
                            select_on="mean", **cfg), data_, val)
    assert sorted(a[:2] for a in asked) == [("p/train", "train"), ("p/val", "val")]
    photo = [h["val_photo_mae"]["global"] for h in run["history"]]
    chips = [h["val_mae"]["global"] for h in run["history"]]
    assert len(photo) == 2 and photo != chips
    assert run["best_val_mae"] == pytest.approx(min((p + c) / 2 for p, c in zip(photo, chips)))

    with pytest.raises(ValueError, match="select_on"):
        train(TrainConfig.from_flat(out=str(tmp_path / "b"), select_on="mean", **cfg), data_, val)
