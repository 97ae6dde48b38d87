"""A training run's settings: `TrainConfig`, grouped by what each setting is about.

Recipes (training/recipes/*.toml), `python -m training train --flags` and every checkpoint's
`train_config` name the settings flat (`lr = 0.1`, `val_capture = 300`, `capture = {...}`): each
setting's name is unique across the groups, so `TrainConfig.from_flat` files it under its group
and `TrainConfig.flat()` writes it back. A checkpoint written before the groups existed holds the
same flat dict, so it still loads and resumes.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field

from .capture import CaptureConfig
from .data import UTKFACE_ROOT, AugmentConfig

SCHEDULES = ("step", "cosine")
OPTIMIZERS = ("sgd", "adamw")
LOCAL_LOSSES = ("local", "fused", "local+age")
SELECT_ON = ("chips", "mean", "capture")


@dataclass
class DataConfig:
    """Which faces the run trains on, and how each is cut and augmented."""
    dataset: str = "utkface"
    data_root: str = UTKFACE_ROOT
    dataset_options: dict = field(default_factory=dict)
    face_margin: float = 0.0                 # margin around a dataset's face box when it has one
    limit_train: int | None = None           # random subset sizes, for quick runs and tests
    limit_val: int | None = None
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    framed_share: float = 0.0                # share of the training faces given as the served photo path
                                             # crops them (detector on the chip's canvas + `framing`), the rest as chips
    photo_crops: str | None = None           # training/js/photo-crops.mjs's train faces (path without .u8/.json):
                                             # the framed_share faces are then these, cut by the served photo
                                             # path from composed photos, instead of the chips' canvases
    detector: str = "models/detectors/blazeface-short-range/1"
    framing_from: str = "training/framings/utkface-blazeface-short-range-1.json"   # whose measured `framing`
    balance: str | None = None               # "gender" or "race": each epoch draws its faces (with replacement)
                                             # so that every group weighs the same, each with the whole set's
                                             # age mix (data.balance_weights): a remedy for a gap between groups

    def __post_init__(self):
        self.validate()

    def validate(self):
        if not 0.0 <= self.framed_share <= 1.0:
            raise ValueError(f"framed_share={self.framed_share}: a share of the faces, 0..1")
        if self.balance not in (None, "gender", "race"):
            raise ValueError(f"balance={self.balance!r}: None, 'gender' or 'race'")


@dataclass
class OptimConfig:
    """The optimiser and its learning-rate schedule."""
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

    def __post_init__(self):
        self.validate()

    def validate(self):
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}")


@dataclass
class LossConfig:
    """What the stage's loss compares the prediction with."""
    label_sigma: float = 0.0                 # 0 = one-hot cross-entropy (paper); >0 Gaussian soft label
    local_loss: str = "local"                # stage local: 'local' = cross-entropy on P_local alone (paper);
                                             # 'fused' = cross-entropy on the fused P_final; 'local+age' = the
                                             # paper's loss + age_weight * |DEX(P_final) - age|, so the branch also
                                             # corrects the fused estimate where the frozen global one is off
    age_weight: float = 0.1                  # years -> nats for 'local+age'
    global_age_weight: float = 0.0           # stage global: > 0 adds this * |DEX(P_global) - age| to the
                                             # cross-entropy, so the expectation itself is pulled to the age

    def __post_init__(self):
        self.validate()

    def validate(self):
        if self.local_loss not in LOCAL_LOSSES:
            raise ValueError(f"unknown local_loss {self.local_loss!r}")


@dataclass
class DistillConfig:
    """A teacher's answers mixed into the targets."""
    teacher: str | None = None               # targets from `python -m training teach` (distillation)
    teacher_weight: float = 0.5              # target = (1 - w) * label distribution + w * teacher's

    def __post_init__(self):
        self.validate()

    def validate(self):
        if not 0.0 <= self.teacher_weight <= 1.0:
            raise ValueError(f"teacher_weight={self.teacher_weight}: the teacher's share of the target, 0..1")


@dataclass
class SelectConfig:
    """What each epoch is validated on, and which epoch's weights become best.pt."""
    val_photo_crops: str | None = None       # photo-cut val faces (as photo_crops): each epoch also reports val MAE on them
    val_capture: int = 0                     # > 0: each epoch also reports val MAE on this many val faces
                                             # under every capture condition (the benchmark's levels)
    select_on: str = "chips"                 # what picks best.pt: val MAE on "chips", the "mean" of the
                                             # chips' and val_photo_crops', or "capture": the mean of the
                                             # chips' and of the degraded conditions' (val_capture)

    def __post_init__(self):
        self.validate()

    def validate(self):
        if self.select_on not in SELECT_ON or (self.select_on == "mean" and not self.val_photo_crops) \
                or (self.select_on == "capture" and not self.val_capture):
            raise ValueError(f"select_on={self.select_on!r}: use 'chips', 'mean' with val_photo_crops, "
                             "or 'capture' with val_capture")


@dataclass
class RunConfig:
    """Where and how the run executes: none of these change what it computes (a resumed run may
    differ in most of them, checkpoint.RESUME_FREE)."""
    device: str = "auto"
    bf16: bool | None = None                 # None: time a few steps in bf16 and fp32 on this machine and
                                             # model at the start and train in the faster; True/False forces it
    channels_last: bool = True
    resume: bool = False                     # continue from out/last.pt (weights, optimizer, epoch, best so far)
                                             # when it exists: a stopped run or a GPU slice loses at most an epoch
    max_steps: int | None = None             # stop early (tests)
    budget_minutes: float | None = None      # stop cleanly (checkpointed, resumable) before this much wall time
    progress_file: str | None = None         # one status line per update, for `tail -f`; None = <out>/progress.log
    progress: bool = True


# The groups whose settings are written flat; `capture` stays a table of its own (capture = {...}).
GROUPS = {"data": DataConfig, "optim": OptimConfig, "loss": LossConfig, "distill": DistillConfig,
          "select": SelectConfig, "run": RunConfig}


@dataclass
class TrainConfig:
    """One stage's run: the network and where it starts and writes, then the groups."""
    model: str = "al_resnet34"
    stage: str = "global"                    # 'global' or 'local'
    model_options: dict = field(default_factory=dict)   # ModelConfig overrides, e.g. local_grid=2
    input_size: int | None = None            # None = the architecture's default
    init: str | None = None                  # checkpoint to start from (weights only)
    out: str = "runs/default"
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    capture: CaptureConfig = field(default_factory=CaptureConfig)   # faces degraded as captures degrade them
                                             # (training/capture.py), with the teacher's clean-face answer
    select: SelectConfig = field(default_factory=SelectConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self):
        self.validate()

    def validate(self):
        """Each group's rules; a config that breaks one is refused when it is made, not epochs later
        (RunConfig has none: how a run executes cannot contradict what it computes)."""
        for name in GROUPS:
            group = getattr(self, name)
            if hasattr(group, "validate"):
                group.validate()
        self.capture.validate()

    @classmethod
    def from_flat(cls, **settings) -> TrainConfig:
        """Flat settings (a recipe's, the command line's, a checkpoint's train_config) -> the groups.
        `augment` and `capture` may be tables (dicts, lists for tuples) or the dataclasses."""
        owner = {f.name: group for group, kind in GROUPS.items() for f in dataclasses.fields(kind)}
        top = {f.name for f in dataclasses.fields(cls)} - set(GROUPS)
        unknown = sorted(k for k in settings if k not in owner and k not in top)
        if unknown:
            raise ValueError(f"unknown settings {', '.join(unknown)} (see training/train_config.py)")
        grouped: dict[str, dict] = {group: {} for group in GROUPS}
        for k, v in settings.items():
            if k in owner:
                grouped[owner[k]][k] = v
        data, optim = grouped["data"], grouped["optim"]
        if isinstance(data.get("augment"), dict):
            aug = dict(data["augment"])
            if "low_res_px" in aug:
                aug["low_res_px"] = tuple(aug["low_res_px"])
            data["augment"] = AugmentConfig(**aug)
        if optim.get("lr_steps") is not None:
            optim["lr_steps"] = tuple(optim["lr_steps"])
        plain = {k: v for k, v in settings.items() if k in top}
        if isinstance(plain.get("capture"), dict):
            cap = dict(plain["capture"])
            if "kinds" in cap:
                cap["kinds"] = tuple(cap["kinds"])
            plain["capture"] = CaptureConfig(**cap)
        return cls(**plain, **{group: GROUPS[group](**values) for group, values in grouped.items()})

    def flat(self) -> dict:
        """The settings by their flat names (jsonable() of it is what a checkpoint records)."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in GROUPS:
                out.update(asdict(value))
            else:
                out[f.name] = asdict(value) if dataclasses.is_dataclass(value) else value
        return out

    def updated(self, **settings) -> TrainConfig:
        """A copy with some flat settings changed (and checked again)."""
        return TrainConfig.from_flat(**{**self.flat(), **settings})


def flat_fields() -> list[tuple[dataclasses.Field, type]]:
    """Every flat setting's field and the dataclass that declares it (for its type hint), in
    TrainConfig's order: the command line's flags."""
    out = []
    for f in dataclasses.fields(TrainConfig):
        if f.name in GROUPS:
            out += [(g, GROUPS[f.name]) for g in dataclasses.fields(GROUPS[f.name])]
        else:
            out.append((f, TrainConfig))
    return out


def jsonable(d):
    """Tuples as lists, dataclasses as dicts, anything else JSON cannot hold as its str."""
    return json.loads(json.dumps(d, default=lambda o: asdict(o) if hasattr(o, "__dataclass_fields__") else str(o)))
