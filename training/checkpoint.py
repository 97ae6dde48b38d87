"""A run's checkpoints: `last.pt` (the weights plus everything a stopped run needs to continue
exactly where it stopped) and resuming from it.

A checkpoint records its run's settings as `train_config`, flat (TrainConfig.flat()), as every
checkpoint has since --resume existed: one written by an older version of this code resumes
as long as the settings it had are the ones asked for now.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .model import ALNet, checkpoint_dict
from .train_config import TrainConfig, jsonable

# Settings that may differ between a run and its resumption without changing what it computes.
# `out` too: a run moved to another folder is the same run.
RESUME_FREE = {"resume", "progress", "device", "max_steps", "budget_minutes", "progress_file", "out"}


@dataclass
class TrainingState:
    """How far a run has come: what last.pt's `resume` holds besides the optimizer."""
    epoch: int = 0                      # epochs done
    step: int = 0                       # optimizer steps done
    best: float = math.inf              # the score of best.pt (TrainConfig.select.select_on)
    best_epoch: int = -1
    history: list[dict] = field(default_factory=list)   # one record per validated epoch
    partial: dict | None = None         # a stopped epoch: its next batch, random stream, sums and time
    precision: dict | None = None       # the precision the run trains in, once chosen


def config_record(cfg: TrainConfig) -> dict:
    """The settings as a checkpoint records them (flat, JSON types)."""
    return jsonable(cfg.flat())


def save_last(out: Path, model: ALNet, opt: torch.optim.Optimizer, state: TrainingState, epoch_done: int,
              partial: dict | None = None, **meta):
    """out/last.pt: the model (checkpoint_dict, with `meta`), optimizer, `state` at `epoch_done`
    epochs, a stopped epoch's `partial` state, and the LSTM's carried state."""
    carry = model.attention._carry
    resume = {"optimizer": opt.state_dict(), "epoch": epoch_done, "step": state.step, "best": state.best,
              "best_epoch": state.best_epoch, "history": state.history, "partial": partial,
              "precision": state.precision, "lstm_carry": None if carry is None else [t.cpu() for t in carry]}
    # Written whole, then renamed: a run killed mid-save keeps the previous last.pt.
    torch.save(checkpoint_dict(model, **meta, resume=resume), out / "last.pt.tmp")
    os.replace(out / "last.pt.tmp", out / "last.pt")


def resume(path: Path, cfg: TrainConfig, model: ALNet, opt: torch.optim.Optimizer, device) -> TrainingState:
    """Restores model, optimizer and the LSTM's carried state from last.pt; refuses a last.pt
    written by a different run (another model, stage, data, schedule...)."""
    ckpt = torch.load(path, map_location=device, weights_only=False)
    state = ckpt.get("resume")
    if state is None:
        raise ValueError(f"{path} has no training state to resume from (written before --resume existed)")
    # A setting added since the checkpoint was written counts as its default there.
    saved, now = with_defaults(ckpt["train_config"], config_record(TrainConfig())), config_record(cfg)
    changed = sorted(k for k in set(saved) | set(now) if k not in RESUME_FREE and saved.get(k) != now.get(k))
    if changed:
        raise ValueError(f"{path} belongs to a run with other settings ({', '.join(changed)}): "
                         "use another --out, or delete it to start over")
    model.load_state_dict(ckpt["state_dict"])
    opt.load_state_dict(state["optimizer"])
    if state["lstm_carry"] is not None:
        model.attention._carry = tuple(t.to(device) for t in state["lstm_carry"])
    return TrainingState(state["epoch"], state["step"], state["best"], state["best_epoch"], state["history"],
                         state.get("partial"), state.get("precision"))


def with_defaults(saved: dict, defaults: dict) -> dict:
    """`saved` with every setting it lacks at its default, tables (augment, capture) included."""
    out = dict(saved)
    for k, v in defaults.items():
        if k not in out:
            out[k] = v
        elif isinstance(v, dict) and v and isinstance(out[k], dict):
            out[k] = with_defaults(out[k], v)
    return out
