"""What fine-tuning a pretrained backbone adds to the trainer: AdamW with the heads at a higher
lr, the cosine schedule, and faces shrunk to photo resolution."""
import math
from pathlib import Path

import pytest
import torch

from training.data import AugmentConfig, augment
from training.model import create_model
from training.recipe import load_recipe
from training.stage import set_stage
from training.train import lr_at, make_optimizer
from training.train_config import OptimConfig

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
PLAIN = dict(scale=(1.0, 1.0), aspect=(1.0, 1.0), translate=0.0, flip=False, brightness=0.0, contrast=0.0)


def test_cosine_runs_from_lr_to_zero_after_the_warmup():
    cfg = OptimConfig(lr=0.3, epochs=10, schedule="cosine", warmup_epochs=0.0)
    assert lr_at(cfg, 0.0) == pytest.approx(0.3)
    assert lr_at(cfg, 5.0) == pytest.approx(0.15)
    assert lr_at(cfg, 10.0) == pytest.approx(0.0, abs=1e-12)
    assert lr_at(OptimConfig(lr=0.3, epochs=10, schedule="cosine", warmup_epochs=1.0), 0.5) < 0.3 * 0.51
    with pytest.raises(ValueError, match="schedule"):
        lr_at(OptimConfig(schedule="linear"), 1.0)


def test_adamw_groups_split_backbone_from_heads_and_decay_from_none():
    model = create_model("al_dlib29", input_size=112)
    params = set_stage(model, "global")
    opt = make_optimizer(model, params, OptimConfig(optimizer="adamw", lr=3e-4, head_lr_mult=10, weight_decay=0.01))
    assert isinstance(opt, torch.optim.AdamW)
    grouped = [p for g in opt.param_groups for p in g["params"]]
    assert len(grouped) == len(params) == len({id(p) for p in grouped})
    backbone = {id(p) for p in model.backbone.parameters()}
    for g in opt.param_groups:
        in_backbone = {id(p) in backbone for p in g["params"]}
        assert len(in_backbone) == 1
        assert g["lr_mult"] == (1.0 if in_backbone.pop() else 10)
        # No decay on affines and biases (1-d): it would pull their scales, not regularise.
        assert g["weight_decay"] == (0.01 if all(p.ndim > 1 for p in g["params"]) else 0.0)
    with pytest.raises(ValueError, match="optimizer"):
        make_optimizer(model, params, OptimConfig(optimizer="lion"))


def test_low_res_shrinks_the_chosen_faces_only():
    g = torch.Generator().manual_seed(0)
    # Fine stripes: a face shrunk to 40-60 px and scaled back loses them.
    stripes = ((torch.arange(64) % 2) * 255).to(torch.uint8).view(1, 64, 1, 1).expand(8, 64, 64, 3).contiguous()
    none = augment(stripes, 64, AugmentConfig(**PLAIN), torch.Generator().manual_seed(0))
    half = augment(stripes, 64, AugmentConfig(**PLAIN, low_res=0.5, low_res_px=(40, 60)), g)
    blurred = [(half[i] - none[i]).abs().max().item() > 0.1 for i in range(8)]
    assert 0 < sum(blurred) < 8
    all_faces = augment(stripes, 64, AugmentConfig(**PLAIN, low_res=1.0, low_res_px=(40, 60)), g)
    assert all((all_faces[i] - none[i]).abs().max().item() > 0.1 for i in range(8))
    assert all_faces.shape == none.shape and all_faces.min() >= 0 and all_faces.max() <= 1


def test_the_version_7_recipes_load_with_their_settings():
    accurate = load_recipe(RECIPES / "al-dlib29-utkface-7.toml")
    (_, g), (_, l) = accurate.stages
    assert (g.model, g.optim.optimizer, g.optim.schedule, g.optim.head_lr_mult, g.init) == ("al_dlib29", "adamw", "cosine", 10,
                                                                        ".cache/pretrained/dlib.pt")
    assert g.data.augment.low_res == 0.2 and isinstance(g.data.augment.low_res_px, tuple)
    assert l.init.endswith("al-dlib29-utkface-7/global/best.pt")
    fast = load_recipe(RECIPES / "al-dlib29-fast-utkface-7.toml")
    assert fast.stages[0][1].model == "al_dlib29_fast" and fast.release["flip"] is False
    assert math.isclose(fast.stages[0][1].optim.lr, 3e-4)
