"""A soup is the element-wise mean of runs of one network, loads as a checkpoint of its own, and
refuses runs of different networks; the greedy soup keeps a run only if val says it helps."""
import pytest
import torch

from training.model import checkpoint_dict, create_model, load_checkpoint
from training.soup import average_weights, write_soup


def _runs(tmp_path, data_root="../shared/data/utkface"):
    paths = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        model = create_model("al_resnet_tiny")
        for m in model.modules():  # distinct BatchNorm statistics, so they are averaged too
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
        path = tmp_path / f"run{seed}.pt"
        torch.save(checkpoint_dict(model, train_config={"data_root": str(data_root)}, epoch=3), path)
        paths.append(str(path))
    return paths


def test_soup_is_the_mean_of_the_runs(tmp_path):
    a, b = _runs(tmp_path)
    soup = average_weights([a, b])
    sa, sb = (torch.load(p, weights_only=False)["state_dict"] for p in (a, b))
    for k, v in soup["state_dict"].items():
        assert v.dtype == sa[k].dtype
        if v.is_floating_point():
            torch.testing.assert_close(v, (sa[k] + sb[k]) / 2)
    assert soup["soup_of"] == [a, b] and "epoch" not in soup
    assert not torch.equal(soup["state_dict"]["global_head.weight"], sa["global_head.weight"])


def test_soup_refuses_different_networks(tmp_path):
    a, _ = _runs(tmp_path)
    other = tmp_path / "other.pt"
    torch.save(checkpoint_dict(create_model("al_resnet_tiny", local_grid=2)), other)
    with pytest.raises(ValueError, match="not the same network"):
        average_weights([a, str(other)])


def test_soup_loads_and_is_scored_on_val(utkface_root, tmp_path):
    a, b = _runs(tmp_path, utkface_root)
    info = write_soup([a, b], str(tmp_path / "soup" / "best.pt"), tta="single", limit=32)
    assert set(info["val_mae"]) == {"global", "local", "fused"}
    assert all(0 < v < 101 for v in info["val_mae"].values())
    model, ckpt = load_checkpoint(info["out"])
    assert ckpt["soup_of"] == [a, b]


def test_greedy_soup_keeps_only_runs_that_help(utkface_root, tmp_path):
    a, b = _runs(tmp_path, utkface_root)
    info = write_soup([a, b], str(tmp_path / "soup" / "best.pt"), tta="single", greedy=True, limit=32)
    start, step = info["greedy"]
    assert step["kept"] == (step["soup_val_fused"] <= start["val_fused"])
    assert info["soup_of"] == ([start["start"], step["add"]] if step["kept"] else [start["start"]])
    assert info["val_mae"]["fused"] == min(start["val_fused"], step["soup_val_fused"])
    # The file is the kept soup, also when the last soup tried was left out.
    assert torch.load(info["out"], weights_only=False)["soup_of"] == info["soup_of"]
