"""Recipes (training/recipes/*.toml): every shipped file describes runnable stages, and a recipe
run twice trains once (its stages resume, finished ones are skipped)."""
import json
from pathlib import Path

import pytest

from training.model import create_model
from training.recipe import load_recipe, run_recipe

RECIPES = sorted((Path(__file__).resolve().parents[1] / "recipes").glob("*.toml"))


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_every_recipe_builds_its_models(path):
    recipe = load_recipe(path)
    assert recipe.stages
    for sid, cfg in recipe.stages:
        assert cfg.run.resume and cfg.out == f"{recipe.runs}/{sid}"
        create_model(cfg.model, **cfg.model_options, **({"input_size": cfg.input_size} if cfg.input_size else {}))


def _write(tmp_path, text) -> Path:
    p = tmp_path / "r.toml"
    p.write_text(text)
    return p


TINY = """
name = "al-tiny"
version = "1"
runs = "{runs}"
[defaults]
model = "al_resnet_tiny"
data_root = "{data}"
limit_train = 64
limit_val = 32
batch_size = 16
progress = false
bf16 = false
[[stages]]
id = "g"
stage = "global"
epochs = 2
[[stages]]
id = "l"
stage = "local"
init = "g"
epochs = 1
"""


def test_stages_chain_and_defaults_apply(tmp_path):
    recipe = load_recipe(_write(tmp_path, TINY.format(runs=tmp_path / "runs", data="x")))
    (gid, g), (lid, l) = recipe.stages
    assert (gid, lid) == ("g", "l")
    assert l.init == f"{g.out}/best.pt" and g.init is None
    assert g.optim.batch_size == l.optim.batch_size == 16 and g.optim.epochs == 2 and l.optim.epochs == 1


def test_unknown_setting_is_refused(tmp_path):
    with pytest.raises(ValueError, match="learning_rate"):
        load_recipe(_write(tmp_path, TINY.format(runs="r", data="x") + "learning_rate = 0.1\n"))


def test_a_recipe_run_twice_trains_once(tmp_path, utkface_root):
    path = _write(tmp_path, TINY.format(runs=tmp_path / "runs", data=utkface_root))
    first = run_recipe(path)
    log = (tmp_path / "runs" / "g" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line).get("epoch") for line in log] == [None, 1, 2]   # the precision line, then the epochs
    again = run_recipe(path)
    assert (tmp_path / "runs" / "g" / "metrics.jsonl").read_text().splitlines() == log   # nothing retrained
    assert again["stages"] == first["stages"]
