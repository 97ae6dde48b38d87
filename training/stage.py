"""What one training stage trains and the loss it minimises: stage 'global' trains the backbone
and the global head; stage 'local' freezes them and trains the attention LSTM, location layer and
local head. Shared by the training loop (train.py) and the speed measurement (speed.py)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .model import ALNet, dex
from .train_config import LOCAL_LOSSES, TrainConfig


def soft_targets(labels: torch.Tensor, num_classes: int, sigma: float) -> torch.Tensor:
    """Gaussian label distribution over neighbouring ages; sigma=0 gives one-hot."""
    if sigma <= 0:
        return F.one_hot(labels, num_classes).float()
    classes = torch.arange(num_classes, device=labels.device, dtype=torch.float32)
    d = torch.exp(-0.5 * ((classes[None] - labels[:, None].float()) / sigma) ** 2)   # [N, M]
    return d / d.sum(dim=1, keepdim=True)


def set_stage(model: ALNet, stage: str) -> list[torch.nn.Parameter]:
    """Freeze everything the stage does not train; returns what it trains."""
    trainable = model.stage_parameters(stage)
    ids = {id(p) for p in trainable}
    for p in model.parameters():
        p.requires_grad_(id(p) in ids)
    return trainable


def stage_modes(model: ALNet, stage: str):
    model.train()
    if stage == "local":
        # A frozen backbone keeps its BatchNorm statistics too.
        model.backbone.eval()


def stage_loss(model: ALNet, x: torch.Tensor, labels: torch.Tensor, stage: str, sigma: float,
               local_loss: str = "local", age_weight: float = 0.1, global_age_weight: float = 0.0,
               teacher: torch.Tensor | None = None, teacher_weight: float = 0.0):
    """Only what the stage trains is computed: the global stage never runs the (sequential)
    LSTM, and the local stage runs the frozen backbone on the whole face without autograd (with
    local_source 'image' or 'region' the pass over the zoomed region keeps autograd, so the box
    learns through the backbone that reads it: the frozen one, or the local branch's own).
    `teacher` [N, M] is mixed into every cross-entropy's target, `teacher_weight` a number or one
    per face ([N]: degraded faces lean on the teacher's clean-face answer); the age terms keep
    the label."""
    target = soft_targets(labels, model.cfg.num_classes, sigma)                 # [N, M]
    if teacher is not None:
        w = teacher_weight.view(-1, 1) if torch.is_tensor(teacher_weight) else teacher_weight
        target = (1 - w) * target + w * teacher
    if stage == "global":
        fmap = model.forward_features(x)                                 # [N, C, H, W]
        logits = model.global_head(fmap.mean(dim=(2, 3))).float()         # [N, M]
        ce = torch.sum(-target * F.log_softmax(logits, dim=1), dim=1).mean()
        if not global_age_weight:
            return ce
        age = dex(F.softmax(logits, dim=1), model.class_ages)             # [N]
        return ce + global_age_weight * (age - model.class_ages[labels]).abs().mean()
    if local_loss not in LOCAL_LOSSES:
        raise ValueError(f"unknown local_loss {local_loss!r}")
    with torch.no_grad():
        box_map, fmap = model.forward_maps(x)                            # [N, C, H, W]
        pooled = fmap.mean(dim=(2, 3))                                   # [N, C]
    local_logits, box = model.forward_local(fmap, pooled, x, box_map)    # [N, M], [N, 4]
    if local_loss == "local":
        return torch.sum(-target * F.log_softmax(local_logits.float(), dim=1), dim=1).mean()
    with torch.no_grad():
        global_logits = model.global_head(pooled)                        # [N, M]
    pred = model.predict({"global": global_logits, "local": local_logits, "box": box},
                         temperature=torch.ones(()))
    if local_loss == "fused":
        return torch.sum(-target * torch.log(pred["probs"].clamp_min(1e-12)), dim=1).mean()
    ce = torch.sum(-target * F.log_softmax(local_logits.float(), dim=1), dim=1).mean()
    return ce + age_weight * (pred["age"] - model.class_ages[labels]).abs().mean()


class StageLoss(torch.nn.Module):
    """The stage's loss as a module, so DistributedDataParallel can wrap it: DDP only syncs
    the gradients of what runs through its forward."""

    def __init__(self, model: ALNet, cfg: TrainConfig):
        super().__init__()
        self.model, self.cfg = model, cfg

    def forward(self, x: torch.Tensor, labels: torch.Tensor, teacher: torch.Tensor | None = None,
                teacher_weight: torch.Tensor | float | None = None) -> torch.Tensor:
        c, w = self.cfg.loss, self.cfg.distill.teacher_weight
        return stage_loss(self.model, x, labels, self.cfg.stage, c.label_sigma, c.local_loss, c.age_weight,
                          c.global_age_weight, teacher, w if teacher_weight is None else teacher_weight)
