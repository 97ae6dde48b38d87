"""Teacher targets for distillation: the averaged answer of trained models on every training face,
written once and read by `train --teacher`. On UTKFace the labels are themselves estimates
(DEX, checked by a person), so a student learns from a distribution that already spreads
over the ages a face is mistaken for, rather than from one noisy number.

  python -m training teach --checkpoint A.pt --checkpoint B.pt --out runs/teacher.pt
"""
from __future__ import annotations

from pathlib import Path

import torch

from .data import load_split
from .evaluate import predict_packed
from .model import load_checkpoint


def average_answers(checkpoints: list[str], split: str = "train", tta: str = "flip",
                    data_root: str | None = None, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """-> (probs [N, M], ages [N]): each checkpoint's fused distribution (its own views averaged
    per `tta`), averaged over the checkpoints, in the order `load_packed` gives the split
    (`limit`: the same subset as `train --limit-train`)."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    probs, ages = [], None
    for path in checkpoints:
        model, ckpt = load_checkpoint(path)
        data = load_split(ckpt, split, model.cfg.input_size, data_root, limit)
        if ages is not None and not torch.equal(ages, data.ages):
            raise ValueError(f"{path} reads a different {split} split than {checkpoints[0]}")
        ages = data.ages
        pred = predict_packed(model.to(device), data, device=device, tta=tta)
        probs.append(torch.from_numpy(pred["fused"]["probs"]))                  # [N, M]
    return torch.stack(probs).mean(0), ages                                     # [N, M], [N]


def write_teacher(checkpoints: list[str], out: str, split: str = "train", tta: str = "flip",
                  data_root: str | None = None, limit: int | None = None) -> dict:
    teacher, ages = average_answers(checkpoints, split, tta, data_root, limit)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    torch.save({"probs": teacher.half(), "ages": ages, "checkpoints": list(checkpoints),
                "split": split, "tta": tta}, out)
    classes = torch.arange(teacher.shape[1], dtype=torch.float32)
    return {"out": out, "faces": len(ages), "teacher_mae": round(float(((teacher @ classes) - ages).abs().mean()), 3)}


def load_teacher(path: str, ages: torch.Tensor) -> torch.Tensor:
    """-> float [N, M] aligned with the training split; refuses a file written for other faces."""
    t = torch.load(path, map_location="cpu", weights_only=True)
    if not torch.equal(t["ages"], ages):
        raise ValueError(f"teacher {path} was written for a different training split")
    return t["probs"].float()
