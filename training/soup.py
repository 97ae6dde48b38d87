"""A model soup: one checkpoint whose weights are the mean of several runs fine-tuned from one
ancestor (Wortsman et al., 2022). Such runs stay in one basin of the loss, so their average is a
model of its own, often better than each, at no cost at serving time, unlike an ensemble.

  python -m training soup --checkpoint A.pt --checkpoint B.pt --out runs/soup/best.pt
"""
from __future__ import annotations

from pathlib import Path

import torch

from .evaluate import evaluate_checkpoint


# How a checkpoint is served, not what network it is: runs that differ only here still soup.
SERVING_OPTIONS = ("test_flip", "test_gray", "fusion_global", "fusion_local")


def average_weights(checkpoints: list[str], weights: list[float] | None = None) -> dict:
    """-> the first checkpoint (config, training config) with every tensor of its state_dict
    replaced by the mean over the checkpoints (`weights`: a weighted mean, summing to 1);
    refuses runs of different networks."""
    ckpts = [torch.load(p, map_location="cpu", weights_only=False) for p in checkpoints]
    first = ckpts[0]
    network = lambda cfg: {k: v for k, v in cfg.items() if k not in SERVING_OPTIONS}
    for path, c in zip(checkpoints[1:], ckpts[1:]):
        if network(c["config"]) != network(first["config"]) or c["state_dict"].keys() != first["state_dict"].keys():
            raise ValueError(f"{path} is not the same network as {checkpoints[0]}")
    w = [1 / len(ckpts)] * len(ckpts) if weights is None else [float(x) for x in weights]
    if len(w) != len(ckpts) or abs(sum(w) - 1) > 1e-6:
        raise ValueError("one weight per checkpoint, summing to 1")
    # Summed in double, so integer buffers (BatchNorm's batch counters) average too, cast back.
    mean = {k: sum(wi * c["state_dict"][k].double() for wi, c in zip(w, ckpts)).to(v.dtype)
            for k, v in first["state_dict"].items()}
    # The first run's epoch and val scores describe that run, not the soup.
    kept = {k: v for k, v in first.items() if k not in ("epoch", "val")}
    return {**kept, "state_dict": mean, "soup_of": list(checkpoints), **({"soup_weights": w} if weights else {})}


def write_soup(checkpoints: list[str], out: str, tta: str = "flip", greedy: bool = False,
               limit: int | None = None, weights: list[float] | None = None) -> dict:
    """Writes the soup to `out` and scores it on val (fused MAE, `tta` views). greedy: Wortsman
    et al.'s greedy soup, so that a weak run cannot spoil it: the runs in order of their own val
    MAE, each added only if the soup's val MAE does not rise."""
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    scores = {}  # soup (tuple of paths) -> val MAE per branch, so no soup is evaluated twice

    def val_mae(paths: list[str]) -> dict:
        if tuple(paths) not in scores:
            torch.save(average_weights(paths, weights if list(paths) == list(checkpoints) else None), out)
            report = evaluate_checkpoint(out, "val", tta, limit=limit)
            scores[tuple(paths)] = {b: round(report["branches"][b]["mae"], 3) for b in report["branches"]}
        return scores[tuple(paths)]

    steps = []
    kept = list(checkpoints)
    if greedy:
        own = {p: val_mae([p])["fused"] for p in checkpoints}
        order = sorted(checkpoints, key=own.get)
        kept, best = order[:1], own[order[0]]
        steps.append({"start": order[0], "val_fused": best})
        for path in order[1:]:
            score = val_mae(kept + [path])["fused"]
            steps.append({"add": path, "own_val_fused": own[path], "soup_val_fused": score, "kept": score <= best})
            if score <= best:
                kept, best = kept + [path], score
    mae = val_mae(kept)
    if next(reversed(scores)) != tuple(kept):  # the last soup written to `out` was one left out
        torch.save(average_weights(kept, weights if kept == list(checkpoints) else None), out)
    return {"out": out, "soup_of": kept, "val_mae": mae, **({"greedy": steps} if greedy else {})}
