"""TrainConfig's groups: flat names in and out (recipes, the command line, checkpoints), and each
group refusing what breaks its rules when it is made."""
import dataclasses

import pytest

from training.capture import CaptureConfig
from training.data import AugmentConfig
from training.train_config import (DataConfig, DistillConfig, LossConfig, OptimConfig, SelectConfig,
                                   TrainConfig, flat_fields)

# The settings a checkpoint has recorded since --resume existed (TrainConfig's fields before the
# groups): the flat names must stay these, or older checkpoints stop resuming.
FLAT_NAMES = {
    "model", "stage", "dataset", "data_root", "dataset_options", "model_options", "input_size", "face_margin",
    "init", "out", "epochs", "batch_size", "lr", "momentum", "weight_decay", "lr_steps", "lr_gamma", "schedule",
    "optimizer", "head_lr_mult", "warmup_epochs", "label_sigma", "local_loss", "age_weight", "global_age_weight",
    "teacher", "teacher_weight", "augment", "capture", "val_capture", "limit_train", "limit_val", "max_steps",
    "resume", "framed_share", "photo_crops", "val_photo_crops", "select_on", "detector", "framing_from", "seed",
    "device", "bf16", "budget_minutes", "progress_file", "channels_last", "progress", "balance",
}


def test_the_flat_names_are_unique_and_the_ones_checkpoints_hold():
    names = [f.name for f, _ in flat_fields()]
    assert len(names) == len(set(names)) == 48
    assert set(names) == FLAT_NAMES == set(TrainConfig().flat())


def test_flat_settings_go_to_their_groups_and_back():
    cfg = TrainConfig.from_flat(lr=0.2, lr_steps=[3, 5], label_sigma=2, teacher="t.pt", val_capture=8,
                                select_on="capture", device="cpu", data_root="x",
                                augment={"low_res": 0.1, "low_res_px": [40, 60]},
                                capture={"share": 0.5, "kinds": ["dark"]})
    assert (cfg.optim.lr, cfg.optim.lr_steps, cfg.loss.label_sigma, cfg.distill.teacher) == (0.2, (3, 5), 2, "t.pt")
    assert (cfg.select.val_capture, cfg.run.device, cfg.data.data_root) == (8, "cpu", "x")
    assert cfg.data.augment == AugmentConfig(low_res=0.1, low_res_px=(40, 60))
    assert cfg.capture == CaptureConfig(share=0.5, kinds=("dark",))
    assert TrainConfig.from_flat(**cfg.flat()) == cfg
    assert cfg.updated(lr=0.3).optim == dataclasses.replace(cfg.optim, lr=0.3)
    assert cfg.updated(lr=0.3).select == cfg.select


def test_an_unknown_setting_is_refused():
    with pytest.raises(ValueError, match="learning_rate"):
        TrainConfig.from_flat(learning_rate=0.1)


@pytest.mark.parametrize("group, bad, message", [
    (OptimConfig, {"schedule": "linear"}, "schedule"),
    (OptimConfig, {"optimizer": "lion"}, "optimizer"),
    (LossConfig, {"local_loss": "global"}, "local_loss"),
    (SelectConfig, {"select_on": "photos"}, "select_on"),
    (SelectConfig, {"select_on": "mean"}, "val_photo_crops"),        # mean of chips and photos needs the photos
    (SelectConfig, {"select_on": "capture"}, "val_capture"),         # and capture needs the degraded faces
    (DataConfig, {"framed_share": 1.5}, "framed_share"),
    (DistillConfig, {"teacher_weight": -0.1}, "teacher_weight"),
])
def test_each_group_refuses_what_breaks_its_rules(group, bad, message):
    with pytest.raises(ValueError, match=message):
        group(**bad)
    with pytest.raises(ValueError, match=message):
        TrainConfig.from_flat(**bad)


def test_the_rules_hold_together_where_they_span_settings():
    assert TrainConfig.from_flat(select_on="mean", val_photo_crops="p/val").select.select_on == "mean"
    assert TrainConfig.from_flat(select_on="capture", val_capture=10).select.select_on == "capture"
