"""A model's exact recipe as one small TOML file in training/recipes/, run by one command:

    python -m training recipe training/recipes/NAME.toml [--dry-run] [--no-release]

The file names the model and lists its stages in order (see training/recipes/README.md). Each
stage is a `train` run with `resume` on, in RUNS/<stage id>/, so running the recipe again after a
stop (a session's end, a 15-minute GPU slice) continues where it was and skips finished stages.
`init = "<earlier stage id>"` starts a stage from that stage's best.pt. A `[release]` table
releases the last stage into models/<name>/<version>/ and writes its card.
"""
from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

from .train_config import TrainConfig

_RELEASE_FIELDS = {"flip", "gray", "external_data", "face_margin", "calib", "compare", "notes", "limit_eval", "framing_from",
                   "fusion", "soup"}


@dataclasses.dataclass
class Recipe:
    name: str
    version: str
    runs: str                                   # folder of the stages' runs
    stages: list[tuple[str, TrainConfig]]       # (id, config), in order
    release: dict | None


def _train_config(fields: dict, where: str) -> TrainConfig:
    try:
        return TrainConfig.from_flat(**fields, resume=True)
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None


def load_recipe(path: str | Path, overrides: dict | None = None, runs: str | None = None) -> Recipe:
    """`overrides`: settings every stage takes over the file's (a GPU host's data, a shorter test
    run), or one stage with "<stage id>.<setting>"; `runs`: another folder for the stages' runs."""
    path = Path(path)
    raw = tomllib.loads(path.read_text())
    if runs:
        raw["runs"] = runs
    for key in ("name", "version", "runs", "stages"):
        if key not in raw:
            raise ValueError(f"{path}: missing '{key}'")
    defaults = raw.get("defaults", {})
    stages: list[tuple[str, TrainConfig]] = []
    outs: dict[str, str] = {}
    for i, stage in enumerate(raw["stages"]):
        stage = dict(stage)
        sid = stage.pop("id", None)
        if not sid or sid in outs:
            raise ValueError(f"{path}: stage {i + 1} needs an id of its own")
        mine = {k.split(".", 1)[1]: v for k, v in (overrides or {}).items() if k.startswith(f"{sid}.")}
        every = {k: v for k, v in (overrides or {}).items() if "." not in k}
        fields = {**defaults, **stage, **every, **mine, "out": f"{raw['runs']}/{sid}"}
        init = fields.get("init")
        if init in outs:
            fields["init"] = f"{outs[init]}/best.pt"
        stages.append((sid, _train_config(fields, f"{path}, stage {sid}")))
        outs[sid] = fields["out"]
    release = raw.get("release")
    if release is not None:
        unknown = sorted(set(release) - _RELEASE_FIELDS)
        if unknown:
            raise ValueError(f"{path}: unknown release settings {', '.join(unknown)}")
    return Recipe(str(raw["name"]), str(raw["version"]), str(raw["runs"]), stages, release)


def run_recipe(path: str | Path, dry_run: bool = False, release: bool = True,
               budget_minutes: float | None = None, overrides: dict | None = None, runs: str | None = None) -> dict:
    """budget_minutes: the whole recipe's wall time (training and release); a stage that meets it
    stops checkpointed, and the same command later resumes it (training/recipes/README.md).
    overrides, runs: load_recipe's."""
    import time

    from .train import train

    recipe = load_recipe(path, overrides, runs)
    if dry_run:
        return {"name": recipe.name, "version": recipe.version,
                "stages": {sid: cfg.flat() for sid, cfg in recipe.stages},
                "release": recipe.release}
    deadline = time.time() + 60 * budget_minutes if budget_minutes else None
    progress_file = f"{recipe.runs}/progress.log"
    print(f"progress: tail -f {progress_file}", flush=True)
    results = {}
    for sid, cfg in recipe.stages:
        print(f"== {recipe.name}/{recipe.version}: stage {sid} ({cfg.stage}, {cfg.optim.epochs} epochs) -> {cfg.out}",
              flush=True)
        left = None if deadline is None else (deadline - time.time()) / 60
        r = train(cfg.updated(budget_minutes=left, progress_file=progress_file))
        results[sid] = {"best_val_mae": r["best_val_mae"], "best_epoch": r["best_epoch"], "checkpoint": r["checkpoint"]}
        if r["stopped"]:
            return {"stages": results, "stopped": r["stopped"], "resume": f"python -m training recipe {path}"}
    out = {"stages": results}
    if release and recipe.release is not None:
        out["release"] = _release(recipe)
    return out


def _release(recipe: Recipe) -> dict:
    from .card import write_card
    from .release import release

    opts = dict(recipe.release)
    compare, notes, soup = opts.pop("compare", None), opts.pop("notes", []), opts.pop("soup", None)
    model_dir = Path("models") / recipe.name / recipe.version
    checkpoint = recipe.stages[-1][1].out + "/best.pt"
    if soup:
        # The last stage's weights averaged with another run's of the same network (one ancestor):
        # soup = { with = "path/best.pt", weight = 0.5 } (the last stage's share).
        from .soup import write_soup
        out = f"{recipe.runs}/soup/best.pt"
        write_soup([checkpoint, soup["with"]], out, weights=[soup.get("weight", 0.5), 1 - soup.get("weight", 0.5)])
        checkpoint = out
    report = release(checkpoint, str(model_dir), name=recipe.name, version=recipe.version, **opts)
    bench = model_dir / "bench.json"
    card = write_card(str(model_dir), compare, str(bench) if bench.exists() else None,
                      [f"@{n}" for n in notes if Path(n).exists()]
                      or [f"Trained with `python -m training recipe` from {recipe.name}/{recipe.version}'s recipe."])
    return {"model_dir": str(model_dir), "card": str(card), "summary": report["summary"]}
