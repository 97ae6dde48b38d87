"""A soup is the element-wise mean of runs of one network, loads as a checkpoint of its own, and
refuses runs of different networks; the greedy soup keeps a run only if val says it helps."""
import pytest
import torch

from training.data import load_packed
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


def _constant_run(tmp_path, name, data_root, tilt):
    """A network whose answer ignores the face: both heads' weights are zero, so it predicts
    softmax(bias) everywhere; the bias is a bump around age 30 tilted by `tilt` per year
    (positive: older). Its val MAE is then known from the labels alone."""
    torch.manual_seed(0)
    model = create_model("al_resnet_tiny")
    ages = torch.arange(101.0)
    bias = -0.5 * ((ages - 30) / 6) ** 2 + tilt * (ages - 50)
    with torch.no_grad():
        for head in (model.global_head, model.local_head):
            head.weight.zero_()
            head.bias.copy_(bias)
    path = tmp_path / f"{name}.pt"
    torch.save(checkpoint_dict(model, train_config={"data_root": str(data_root)}, epoch=3), path)
    return str(path), float((torch.softmax(bias, 0) * ages).sum())


def _val_mae(data_root, age):
    val = load_packed("utkface", str(data_root), "val", 64, limit=32, progress=False)
    return round(float((val.ages - age).abs().mean()), 3)


def test_greedy_soup_keeps_a_run_that_helps(utkface_root, tmp_path):
    """Two runs tilted the opposite ways (one answers ~66, the other ~2) average to the
    untilted network (~30), which is better on val than either: greedy keeps both."""
    old, old_age = _constant_run(tmp_path, "old", utkface_root, tilt=1.0)
    young, young_age = _constant_run(tmp_path, "young", utkface_root, tilt=-1.0)
    _, mid_age = _constant_run(tmp_path, "mid", utkface_root, tilt=0.0)
    maes = {p: _val_mae(utkface_root, a) for p, a in ((old, old_age), (young, young_age))}
    assert old_age > 60 and young_age < 10 and abs(mid_age - 30) < 1
    info = write_soup([old, young], str(tmp_path / "soup" / "best.pt"), tta="single", greedy=True, limit=32)
    first = min(maes, key=maes.get)
    assert info["soup_of"] == [first, old if first == young else young]
    assert info["val_mae"]["fused"] == pytest.approx(_val_mae(utkface_root, mid_age), abs=2e-3)
    assert info["val_mae"]["fused"] < min(maes.values())
    bias = torch.load(info["out"], weights_only=False)["state_dict"]["global_head.bias"]
    torch.testing.assert_close(bias, -0.5 * ((torch.arange(101.0) - 30) / 6) ** 2)


def test_greedy_soup_leaves_out_a_run_that_hurts(utkface_root, tmp_path):
    """A good run (~30) and one that answers ~88: their mean (~59) is worse than the good run
    alone, so the soup is the good run, and the file on disk is exactly it."""
    good, good_age = _constant_run(tmp_path, "good", utkface_root, tilt=0.0)
    bad, bad_age = _constant_run(tmp_path, "bad", utkface_root, tilt=1.6)
    assert bad_age > 85
    info = write_soup([bad, good], str(tmp_path / "soup" / "best.pt"), tta="single", greedy=True, limit=32)
    assert info["soup_of"] == [good]
    assert info["greedy"][1]["add"] == bad and info["greedy"][1]["kept"] is False
    assert info["val_mae"]["fused"] == pytest.approx(_val_mae(utkface_root, good_age), abs=2e-3)
    # The last soup tried (good + bad) was written to the file last; it must be the kept one now.
    written = torch.load(info["out"], weights_only=False)
    assert written["soup_of"] == [good]
    kept = torch.load(good, weights_only=False)["state_dict"]
    assert all(torch.equal(written["state_dict"][k], kept[k]) for k in kept)
