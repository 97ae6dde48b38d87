"""Staged training, as in the paper: stage 'global' trains the backbone and the global head;
stage 'local' freezes them and trains the attention LSTM, location layer and local head
(training/stage.py). `--init` starts from a checkpoint, so ImageNet -> IMDB-WIKI -> target is a
chain of runs.

Single process:   python -m training train --model al_resnet34 --stage global ...
Several GPUs:     torchrun --nproc_per_node 8 -m training train ...

`train()` comes first and reads as the run goes; each step it calls follows it, in that order.
Settings: training/train_config.py; last.pt and resuming: training/checkpoint.py; the precision
choice: training/speed.py; starting weights: training/pretrained.py.
"""
from __future__ import annotations

import json
import math
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import torch
import torch.distributed as dist

from .capture import CONDITIONS, CaptureConfig, condition_seed, degrade_batch, degrade_condition
from .checkpoint import TrainingState, config_record, resume, save_last
from .data import Packed, augment, balance_weights, fixed_subset, load_framed, load_packed, load_photo_crops
from .datasets import ADIENCE_GROUPS
from .distill import load_teacher
from .evaluate import predict_packed, summarize_predictions
from .model import ALNet, checkpoint_dict, create_model
from .pretrained import init_from
from .speed import precision_for
from .stage import StageLoss, set_stage, stage_modes
from .train_config import OptimConfig, TrainConfig


def train(cfg: TrainConfig, train_data: Packed | None = None, val_data: Packed | None = None) -> dict:
    """Trains cfg.stage for its epochs, validating after each and keeping the best as best.pt;
    with cfg.run.resume it continues out/last.pt. -> {"best_val_mae", "best_epoch", "history",
    "stopped", "precision", "checkpoint", "train_seconds"}."""
    device, rank, world = setup_distributed(cfg.run.device)
    main = rank == 0
    torch.manual_seed(cfg.seed + rank)
    out = Path(cfg.out)
    if main:
        out.mkdir(parents=True, exist_ok=True)

    model = build_model(cfg, announce=main)
    size = model.cfg.input_size
    if train_data is None:
        train_data = load_split(cfg, "train", size, cfg.data.limit_train)
    if val_data is None:
        val_data = load_split(cfg, "val", size, cfg.data.limit_val)
    val = load_val_sets(cfg, val_data, size)

    model.to(device)
    if cfg.run.channels_last:
        model.to(memory_format=torch.channels_last)
    opt = make_optimizer(model, set_stage(model, cfg.stage), cfg.optim)
    net = StageLoss(model, cfg)
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            net, device_ids=[device.index] if device.type == "cuda" else None)
    faces = load_train_faces(cfg, train_data, size, device, announce=main)
    run = Run(cfg, device, rank, world, out, model, net, opt, faces, val)

    model.attention.reset_state()
    if cfg.run.resume and (out / "last.pt").exists():
        run.state = resume(out / "last.pt", cfg, model, opt, device)
        if main:
            partial = run.state.partial
            where = f"epoch {run.state.epoch + 1}, batch {partial['batch']}" if partial else f"after epoch {run.state.epoch}"
            print(f"resuming {out / 'last.pt'} at {where}", flush=True)
    if main:
        run.log = open(out / "metrics.jsonl", "a")
        run.progress = Progress(Path(cfg.run.progress_file) if cfg.run.progress_file else out / "progress.log")
    if run.state.precision is None and run.state.epoch < cfg.optim.epochs:
        # A resumed run keeps the precision it started with: the same run, the same arithmetic.
        run.state.precision = pick_precision(run)
    use_bf16 = run.state.precision is not None and run.state.precision["precision"] == "bf16"
    run.autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16)

    stopped = None
    with StopRequest() as run.stop:
        for epoch in range(run.state.epoch, cfg.optim.epochs):
            stopped, tally = train_epoch(run, epoch)
            if stopped:
                if main:
                    save_stopped(run, epoch, tally, stopped)
                break
            if main:
                record, val_summary = validate(run, epoch, tally)
                select_best(run, epoch, record, val_summary)
                report_epoch(run, epoch, record)
            if cfg.run.max_steps and run.state.step >= cfg.run.max_steps:
                break

    if run.log:
        run.log.close()
    if world > 1:
        dist.destroy_process_group()
    state = run.state
    return {"best_val_mae": state.best, "best_epoch": state.best_epoch, "history": state.history,
            "stopped": stopped, "precision": state.precision, "checkpoint": str(out / "best.pt"),
            "train_seconds": time.time() - run.t_start}


def setup_distributed(device: str) -> tuple[torch.device, int, int]:
    """-> (this process's device, its rank, the number of processes). Under torchrun (WORLD_SIZE
    set) each process joins the group and takes its own GPU; alone, `device` ('auto': a GPU if any)."""
    if "WORLD_SIZE" not in os.environ:
        device = device if device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(device), 0, 1
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", 0))
        torch.cuda.set_device(local)
        return torch.device("cuda", local), rank, world
    return torch.device("cpu"), rank, world


def build_model(cfg: TrainConfig, announce: bool) -> ALNet:
    """The architecture with the run's overrides and the dataset's head, from cfg.init's weights."""
    overrides = dict(cfg.model_options, **({"input_size": cfg.input_size} if cfg.input_size else {}))
    model = create_model(cfg.model, **overrides, **head_for(cfg.data.dataset))
    if cfg.init:
        skipped = init_from(model, cfg.init)
        if skipped and announce:
            print(f"--init {cfg.init}: kept fresh {', '.join(skipped)}", flush=True)
    return model


def head_for(dataset: str) -> dict:
    """Adience is labelled with 8 age groups; everything else with ages 0..100. DEX over groups
    uses each group's midpoint."""
    if dataset == "adience":
        return {"num_classes": len(ADIENCE_GROUPS),
                "class_ages": tuple((lo + hi) / 2 for lo, hi in ADIENCE_GROUPS)}
    return {}


def load_split(cfg: TrainConfig, split: str, size: int, limit: int | None) -> Packed:
    """A split of the dataset at the model's input size (a random `limit` of it, seeded)."""
    d = cfg.data
    return load_packed(d.dataset, d.data_root, split, size, d.face_margin, limit=limit, seed=cfg.seed,
                       progress=cfg.run.progress, **d.dataset_options)


@dataclass
class ValSets:
    """What each epoch is validated on."""
    chips: Packed                             # the val faces as the dataset cuts them
    photos: Packed | None = None              # those the photo path cut out of composed photos (val_photo_crops)
    captured: dict[str, Packed] | None = None   # condition -> val_capture faces under it


def load_val_sets(cfg: TrainConfig, chips: Packed, size: int) -> ValSets:
    """The val chips plus, where the settings ask for them, their photo-cut and degraded versions."""
    d = cfg.data
    photos = None
    if cfg.select.val_photo_crops:
        crops, matched = load_photo_crops(cfg.select.val_photo_crops, d.dataset, d.data_root, "val", size,
                                          limit=d.limit_val, seed=cfg.seed, **d.dataset_options)
        found = matched.nonzero().squeeze(1)
        photos = chips.subset(found)
        photos.images = crops[found]
    captured = capture_val_sets(cfg, size) if cfg.select.val_capture else None
    return ValSets(chips, photos, captured)


def capture_val_sets(cfg: TrainConfig, size: int) -> dict[str, Packed]:
    """val_capture val faces (a fixed subset, seed 0) under every benchmark condition, each made
    from the 200 px chip as the benchmark makes it (training/capture.py) and resized to the
    model's input as the server resizes (Pillow BOX) -> {condition: Packed}. From a carry file
    (a GPU host's data) the faces come at the carry's size instead of 200 px."""
    import numpy as np
    from PIL import Image

    from .data import CARRY_SUFFIX

    data = cfg.data
    chip = size if str(data.data_root).endswith(CARRY_SUFFIX) else 200
    full = load_packed(data.dataset, data.data_root, "val", chip, data.face_margin, progress=False,
                       **data.dataset_options)
    keep = fixed_subset(len(full), min(cfg.select.val_capture, len(full)), 0)
    chips = full.subset(keep)
    out = {}
    for c in CONDITIONS:
        imgs = torch.empty((len(chips), size, size, 3), dtype=torch.uint8)
        for j, i in enumerate(keep):
            d = degrade_condition(full.images[i].numpy(), c, condition_seed(101, i, c))
            imgs[j] = torch.from_numpy(np.array(Image.fromarray(d).resize((size, size), Image.BOX), dtype=np.uint8))
        p = chips.subset(range(len(chips)))
        p.images = imgs
        out[c] = p
    return out


def make_optimizer(model: ALNet, params: list[torch.nn.Parameter], cfg: OptimConfig) -> torch.optim.Optimizer:
    """Four groups: backbone or head, with or without weight decay (none on norms, affines and
    biases: it only fights the scale they set). Each group's lr_mult scales the schedule's lr."""
    backbone = {id(p) for m in (model.backbone, model.local_backbone) if m is not None for p in m.parameters()}
    groups = []
    for in_backbone in (True, False):
        mult = 1.0 if in_backbone else cfg.head_lr_mult
        for decay in (True, False):
            ps = [p for p in params if (id(p) in backbone) == in_backbone and (p.ndim > 1) == decay]
            if ps:
                groups.append({"params": ps, "weight_decay": cfg.weight_decay if decay else 0.0, "lr_mult": mult})
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=True)
    return torch.optim.AdamW(groups, lr=cfg.lr)   # 'adamw', the other of OPTIMIZERS


@dataclass
class TrainFaces:
    """The training split on the run's device, and what each batch mixes into it."""
    images: torch.Tensor                      # uint8 [N, S, S, 3], the chips
    labels: torch.Tensor                      # [N]
    framed: torch.Tensor | None               # uint8 [N, S, S, 3]: the same faces as the photo path cuts them
    teacher: torch.Tensor | None              # [N, M]: the teacher's distributions
    draw_weights: torch.Tensor | None = None  # [N]: an epoch draws faces by these (data.balance), else a permutation

    def __len__(self) -> int:
        return len(self.labels)


def load_train_faces(cfg: TrainConfig, train_data: Packed, size: int, device, announce: bool) -> TrainFaces:
    """The training faces on the device, with their photo-cut (photo_crops) or detector-framed
    versions when framed_share > 0, and the teacher's answers when there is a teacher."""
    d = cfg.data
    images = train_data.images.to(device)
    labels = train_data.labels.to(device)
    framed = None
    if d.framed_share > 0 and d.photo_crops:
        crops, matched = load_photo_crops(d.photo_crops, d.dataset, d.data_root, "train", size,
                                          limit=d.limit_train, seed=cfg.seed, **d.dataset_options)
        framed = torch.where(matched.view(-1, 1, 1, 1), crops, train_data.images).to(device)
        if announce:
            print(f"photo-cut faces: {int(matched.sum())} of {len(matched)} (the rest stay chips); "
                  f"{d.framed_share:.0%} of each batch drawn from them", flush=True)
    elif d.framed_share > 0:
        framing = json.loads(Path(d.framing_from).read_text())["framing"]
        framed, count = load_framed(d.dataset, d.data_root, "train", size, d.detector, framing,
                                    limit=d.limit_train, seed=cfg.seed, progress=cfg.run.progress, **d.dataset_options)
        if announce:
            print(f"detector-framed faces: {count} of {len(framed)} (the rest stay chips); "
                  f"{d.framed_share:.0%} of each batch drawn from them", flush=True)
        framed = framed.to(device)
    teacher = load_teacher(cfg.distill.teacher, train_data.ages).to(device) if cfg.distill.teacher else None
    weights = None
    if d.balance:
        weights = balance_weights(train_data.ages.numpy(), getattr(train_data, d.balance))
        if announce:
            print(f"each epoch draws its faces so that every {d.balance} weighs the same, with the set's age mix", flush=True)
    return TrainFaces(images, labels, framed, teacher, weights)


class Run:
    """What one call of train() holds while it runs; the steps below read it and move it on."""

    def __init__(self, cfg: TrainConfig, device: torch.device, rank: int, world: int, out: Path, model: ALNet,
                 net: torch.nn.Module, opt: torch.optim.Optimizer, faces: TrainFaces, val: ValSets):
        self.cfg, self.device, self.rank, self.world, self.out = cfg, device, rank, world, out
        self.model, self.net, self.opt, self.faces, self.val = model, net, opt, faces, val
        self.main = rank == 0
        self.steps_per_epoch = max(1, len(faces) // (cfg.optim.batch_size * world))
        self.gen = torch.Generator()
        # The epoch's order must be the same permutation on every rank, each taking its own stride
        # of it, or the ranks' shares overlap; augmentation (gen) stays per rank. One process uses
        # gen for both.
        self.order = self.gen if world == 1 else torch.Generator()
        self.t_start = time.time()
        self.deadline = self.t_start + 60 * cfg.run.budget_minutes if cfg.run.budget_minutes else None
        self.state = TrainingState()
        self.log: TextIO | None = None
        self.progress: Progress | None = None
        self.autocast = None
        self.stop: StopRequest | None = None
        self.step_s, self.val_s = 0.0, 0.0   # last measured: a step, a validation pass

    def must_stop(self, need_s: float) -> str | None:
        if self.stop.signal:
            return self.stop.signal
        # Room for what comes next plus a save, or stop now: a budget is a promise to the session.
        if self.deadline and time.time() + need_s + 5.0 > self.deadline:
            return "budget"
        return None

    def budget_left(self) -> str:
        return f" | budget left {_minutes(self.deadline - time.time())}" if self.deadline else ""


def pick_precision(run: Run) -> dict:
    """Rank 0 picks (speed.precision_for: timings on several ranks could disagree), every rank
    trains in its choice; the choice goes to metrics.jsonl."""
    cfg = run.cfg
    precision = (precision_for(run.model, cfg.stage, cfg.optim.batch_size, cfg.run.bf16, cfg.run.channels_last)
                 if run.main else None)
    if run.world > 1:
        shared = [precision]
        dist.broadcast_object_list(shared, src=0)
        precision = shared[0]
    if run.main:
        run.log.write(json.dumps({"event": "precision", "stage": cfg.stage, **precision}) + "\n")
        run.log.flush()
        print(f"precision: {precision}", flush=True)
    return precision


@dataclass
class EpochTally:
    """An epoch so far: what a stop mid-epoch saves (with the random stream) and resuming restores."""
    next_batch: int
    seen: int                  # faces trained on, this rank
    loss_sum: torch.Tensor     # summed on the device: no host sync per step
    train_time: float          # seconds spent training (not validating)


def train_epoch(run: Run, epoch: int) -> tuple[str | None, EpochTally]:
    """One epoch's steps (from a stopped epoch's next batch when resuming). -> (why it stopped
    early: a signal, 'budget', or None; the tally)."""
    cfg, state = run.cfg, run.state
    # Seeded per epoch, so a resumed run draws exactly what an uninterrupted one would.
    run.gen.manual_seed(cfg.seed * 1000 + run.rank + 7919 * epoch)
    if run.order is not run.gen:
        run.order.manual_seed(cfg.seed * 1000 + 7919 * epoch)
    stage_modes(run.model, cfg.stage)
    per_rank = cfg.optim.batch_size
    if run.faces.draw_weights is None:
        perm = torch.randperm(len(run.faces), generator=run.order)[run.rank::run.world]
    else:   # balanced: as many draws as faces, with replacement, by the faces' weights
        perm = torch.multinomial(run.faces.draw_weights, len(run.faces), replacement=True,
                                 generator=run.order)[run.rank::run.world]
    tally = EpochTally(0, 0, torch.zeros((), device=run.device), 0.0)
    if state.partial is not None:
        # Mid-epoch: the random stream, the sums and the time where the stop left them.
        p = state.partial
        run.gen.set_state(p["generator"].cpu())
        tally = EpochTally(p["batch"], p["seen"], tally.loss_sum + p["loss_sum"].to(run.device), p["train_time"])
        state.partial = None
    t0 = time.time() - tally.train_time
    batches = range(tally.next_batch, run.steps_per_epoch)
    if cfg.run.progress and run.main:
        from tqdm import tqdm
        batches = tqdm(batches, desc=f"{cfg.stage} epoch {epoch + 1}/{cfg.optim.epochs}", leave=False)
    stopped = None
    for b in batches:
        stopped = run.must_stop(run.step_s)
        if stopped:
            break
        ts = time.time()
        idx = perm[b * per_rank:(b + 1) * per_rank].to(run.device)
        for g in run.opt.param_groups:
            g["lr"] = lr_at(cfg.optim, epoch + b / run.steps_per_epoch) * g["lr_mult"]
        x, labels, teacher, weight = make_batch(run, idx, epoch + b / run.steps_per_epoch)
        with run.autocast:
            loss = run.net(x, labels, teacher, weight)
        run.opt.zero_grad(set_to_none=True)
        loss.backward()
        run.opt.step()
        tally.seen += len(idx)
        tally.loss_sum += loss.detach() * len(idx)
        state.step += 1
        tally.next_batch = b + 1
        run.step_s = time.time() - ts
        if cfg.run.progress and run.main and state.step % 20 == 0:
            batches.set_postfix(loss=f"{loss.item():.3f}", lr=f"{run.opt.param_groups[0]['lr']:.4f}")
        if run.progress and run.progress.due():   # per step: the line is built only when one is due
            run.progress.write(eta_line(run, epoch, tally, t0))
        if cfg.run.max_steps and state.step >= cfg.run.max_steps:
            break
    tally.train_time = time.time() - t0
    if not stopped and tally.next_batch == run.steps_per_epoch:
        stopped = run.must_stop(run.val_s)
    return stopped, tally


def lr_at(cfg: OptimConfig, epoch_float: float) -> float:
    """The schedule's learning rate (before a group's lr_mult) at a point of the stage, in epochs."""
    if cfg.schedule == "cosine":
        lr = cfg.lr * 0.5 * (1 + math.cos(math.pi * min(epoch_float / cfg.epochs, 1.0)))
    else:   # 'step', the other of SCHEDULES
        # The default steps skip epoch 0: a one-epoch stage would otherwise run at lr / 100 throughout.
        steps = cfg.lr_steps if cfg.lr_steps is not None else tuple(
            s for s in (int(cfg.epochs * 0.5), int(cfg.epochs * 0.75)) if s > 0)
        lr = cfg.lr * cfg.lr_gamma ** sum(epoch_float >= s for s in steps)
    if epoch_float < cfg.warmup_epochs:
        lr *= (epoch_float + 1e-3) / cfg.warmup_epochs
    return lr


def make_batch(run: Run, idx: torch.Tensor, epoch_float: float):
    """The faces at `idx`, some swapped for their photo-cut or framed versions and some degraded
    as captures degrade them, augmented and normalised. -> (x [B, 3, S, S], labels [B], the
    teacher's [B, M] or None, per-face teacher weight [B] or None: the config's)."""
    cfg, f, gen = run.cfg, run.faces, run.gen
    faces = f.images[idx]                                                      # [B, S, S, 3]
    if f.framed is not None:
        pick = (torch.rand(len(idx), generator=gen) < cfg.data.framed_share).to(run.device)
        faces = torch.where(pick.view(-1, 1, 1, 1), f.framed[idx], faces)
    weight = None
    if cfg.capture.share > 0:
        # Degraded on the host (Pillow, numpy), seeded from the run's stream: resumable.
        faces, degraded = degrade_batch(faces.cpu(), cfg.capture, int(torch.randint(2**31 - 1, (1,), generator=gen)),
                                        capture_severity(cfg.capture, epoch_float))
        faces = faces.to(run.device)
        if cfg.capture.teacher_weight is not None and f.teacher is not None:
            weight = torch.where(degraded, cfg.capture.teacher_weight, cfg.distill.teacher_weight).to(run.device)
    x = run.model.normalize(augment(faces, run.model.cfg.input_size, cfg.data.augment, gen))   # [B, 3, S, S]
    if cfg.run.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, f.labels[idx], f.teacher[idx] if f.teacher is not None else None, weight


def capture_severity(c: CaptureConfig, epoch_float: float) -> float:
    """The severity schedule: from a fifth of the range up to c.severity over the warm-up epochs."""
    if c.severity_warmup_epochs <= 0:
        return c.severity
    return c.severity * min(1.0, 0.2 + 0.8 * epoch_float / c.severity_warmup_epochs)


def eta_line(run: Run, epoch: int, tally: EpochTally, t0: float) -> str:
    """progress.log's line mid-epoch: rate, precision, the last val MAE, and what is left."""
    cfg, world = run.cfg, run.world
    rate = tally.seen * world / max(time.time() - t0, 1e-9)
    epoch_left = (run.steps_per_epoch - tally.next_batch) * cfg.optim.batch_size * world / rate + run.val_s
    stage_left = epoch_left + (cfg.optim.epochs - epoch - 1) * (len(run.faces) / rate + run.val_s)
    history = run.state.history
    last_val = f"{history[-1]['val_mae'][selected_branch(cfg)]:.3f}" if history else "-"
    return (f"{cfg.stage} epoch {epoch + 1}/{cfg.optim.epochs} batch {tally.next_batch}/{run.steps_per_epoch}"
            f" | {rate:.0f} img/s {run.state.precision['precision']} | val MAE {last_val}"
            f" | ETA epoch {_minutes(epoch_left)}, stage {_minutes(stage_left)}" + run.budget_left())


def save_stopped(run: Run, epoch: int, tally: EpochTally, why: str):
    """A stop mid-epoch or before validating: the batches done so far are kept; resuming
    continues at the next one."""
    cfg = run.cfg
    save_last(run.out, run.model, run.opt, run.state, epoch,
              {"batch": tally.next_batch, "generator": run.gen.get_state(), "seen": tally.seen,
               "loss_sum": tally.loss_sum.cpu(), "train_time": tally.train_time},
              train_config=config_record(cfg), epoch=epoch)
    msg = (f"stopped ({why}) in {cfg.stage} epoch {epoch + 1} after batch "
           f"{tally.next_batch}/{run.steps_per_epoch}: checkpointed in {run.out / 'last.pt'}; the same command resumes")
    print(msg, flush=True)
    run.progress.write(msg)


def validate(run: Run, epoch: int, tally: EpochTally) -> tuple[dict, dict]:
    """Val MAE on every val set -> (the epoch's record, appended to the history and metrics.jsonl;
    the chips' whole summary, which the checkpoints keep)."""
    cfg, val, model, device = run.cfg, run.val, run.model, run.device
    tv = time.time()
    chips = summarize_predictions(predict_packed(model, val.chips, device=device), val.chips)
    photo = (summarize_predictions(predict_packed(model, val.photos, device=device), val.photos)
             if val.photos is not None else None)
    captured = ({c: summarize_predictions(predict_packed(model, d, device=device), d)
                 for c, d in val.captured.items()} if val.captured else None)
    run.val_s = time.time() - tv
    key = selected_branch(cfg)
    record = {"epoch": epoch + 1, "stage": cfg.stage, "step": run.state.step,
              "train_loss": tally.loss_sum.item() / max(tally.seen, 1), "lr": run.opt.param_groups[0]["lr"],
              "images_per_s": tally.seen * run.world / max(tally.train_time, 1e-9),
              "precision": run.state.precision["precision"],
              "val_mae": {k: v["mae"] for k, v in chips.items()}, "elapsed_s": time.time() - run.t_start}
    if photo is not None:
        record["val_photo_mae"] = {k: v["mae"] for k, v in photo.items()}
    if captured is not None:
        record["val_capture_mae"] = {c: round(v[key]["mae"], 4) for c, v in captured.items()}
        record["val_capture_mae"]["degraded_mean"] = round(float(sum(
            v[key]["mae"] for c, v in captured.items() if c != "clean") / (len(captured) - 1)), 4)
    run.state.history.append(record)
    run.log.write(json.dumps(record) + "\n")
    run.log.flush()
    print(f"[{cfg.stage}] epoch {epoch + 1}: loss {record['train_loss']:.3f} "
          f"val MAE global {chips['global']['mae']:.3f} local {chips['local']['mae']:.3f} "
          f"fused {chips['fused']['mae']:.3f}"
          + (f" | photos ({len(val.photos)}) global {photo['global']['mae']:.3f} fused {photo['fused']['mae']:.3f}"
             if photo is not None else "")
          + (f" | capture ({cfg.select.val_capture} faces) clean {record['val_capture_mae']['clean']:.3f} "
             f"degraded {record['val_capture_mae']['degraded_mean']:.3f}" if captured is not None else "")
          + f" ({record['images_per_s']:.0f} img/s)", flush=True)
    return record, chips


def selected_branch(cfg: TrainConfig) -> str:
    """The branch whose val MAE picks best.pt: what the stage trains."""
    return "global" if cfg.stage == "global" else "fused"


def selection_score(cfg: TrainConfig, record: dict) -> float:
    """What picks best.pt (select_on): val MAE on the chips, or its mean with the photo-cut
    faces' or with the degraded conditions'."""
    key, on = selected_branch(cfg), cfg.select.select_on
    if on == "chips":
        return record["val_mae"][key]
    if on == "mean":
        return (record["val_mae"][key] + record["val_photo_mae"][key]) / 2
    return (record["val_mae"][key] + record["val_capture_mae"]["degraded_mean"]) / 2


def select_best(run: Run, epoch: int, record: dict, val: dict):
    """best.pt when this epoch scores better than every earlier one; last.pt always."""
    state = run.state
    meta = {"train_config": config_record(run.cfg), "epoch": epoch + 1, "val": val,
            "precision": state.precision}
    score = selection_score(run.cfg, record)
    if score < state.best:
        state.best, state.best_epoch = score, epoch + 1
        torch.save(checkpoint_dict(run.model, **meta), run.out / "best.pt")
    save_last(run.out, run.model, run.opt, state, epoch + 1, **meta)


def report_epoch(run: Run, epoch: int, record: dict):
    """progress.log's line at an epoch's end."""
    cfg, key = run.cfg, selected_branch(run.cfg)
    left = (cfg.optim.epochs - epoch - 1) * (len(run.faces) / record["images_per_s"] + run.val_s)
    run.progress.write(
        f"{cfg.stage} epoch {epoch + 1}/{cfg.optim.epochs} done | {record['images_per_s']:.0f} img/s "
        f"{run.state.precision['precision']} | val MAE {record['val_mae'][key]:.3f}"
        + (f", photos {record['val_photo_mae'][key]:.3f}" if "val_photo_mae" in record else "")
        + (f", degraded {record['val_capture_mae']['degraded_mean']:.3f}" if "val_capture_mae" in record else "")
        + f" ({cfg.select.select_on}: best {run.state.best:.3f} at epoch {run.state.best_epoch})"
        f" | ETA stage {_minutes(left)}" + run.budget_left())


class StopRequest:
    """SIGTERM / SIGINT ask the run to stop after the current step, checkpointed (a session's
    end, a GPU slice's end, Ctrl-C); the handlers are put back when the run ends."""

    def __init__(self):
        self.signal: str | None = None
        self._old = {}

    def __enter__(self):
        try:
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._old[sig] = signal.signal(sig, self._handle)
        except ValueError:  # not the main thread: no handlers, the budget still applies
            self._old = {}
        return self

    def _handle(self, signum, frame):
        self.signal = signal.Signals(signum).name

    def __exit__(self, *exc):
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


class Progress:
    """<out>/progress.log: one self-contained status line per update (every ~30 s and each epoch)."""

    def __init__(self, path: Path, every_s: float = 30.0):
        self.path, self.every_s, self.last = path, every_s, 0.0
        path.parent.mkdir(parents=True, exist_ok=True)

    def due(self) -> bool:
        return time.time() - self.last >= self.every_s

    def write(self, line: str):
        self.last = time.time()
        with open(self.path, "a") as f:
            f.write(time.strftime("%Y-%m-%d %H:%M:%S ") + line + "\n")


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"
