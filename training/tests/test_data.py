import numpy as np
import torch

from training.data import AugmentConfig, augment, resize, ten_crop


def test_augment_shapes_range_and_randomness():
    imgs = torch.randint(0, 256, (6, 72, 72, 3), dtype=torch.uint8)
    g = torch.Generator().manual_seed(0)
    a = augment(imgs, 64, AugmentConfig(), g)
    b = augment(imgs, 64, AugmentConfig(), g)
    assert a.shape == (6, 3, 64, 64) and a.dtype == torch.float32
    assert a.min() >= 0 and a.max() <= 1
    assert not torch.allclose(a, b)


def test_augment_without_jitter_is_the_resized_image():
    imgs = torch.randint(0, 256, (2, 32, 32, 3), dtype=torch.uint8)
    still = AugmentConfig(scale=(1, 1), aspect=(1, 1), translate=0, flip=False, brightness=0, contrast=0)
    assert torch.allclose(augment(imgs, 32, still), resize(imgs, 32), atol=1e-5)


def test_flip_mirrors():
    imgs = torch.randint(0, 256, (1, 16, 16, 3), dtype=torch.uint8)
    cfg = AugmentConfig(scale=(1, 1), aspect=(1, 1), translate=0, flip=True, brightness=0, contrast=0)
    outs = [augment(imgs, 16, cfg, torch.Generator().manual_seed(s)) for s in range(8)]
    plain = resize(imgs, 16)
    assert any(torch.allclose(o, plain.flip(-1), atol=1e-5) for o in outs)
    assert any(torch.allclose(o, plain, atol=1e-5) for o in outs)


def test_ten_crop_views():
    imgs = torch.randint(0, 256, (3, 64, 64, 3), dtype=torch.uint8)
    views = ten_crop(imgs, 64)
    assert len(views) == 10
    assert all(v.shape == (3, 3, 64, 64) for v in views)
    assert torch.allclose(views[1], views[0].flip(-1))


def test_carry_file_round_trip(utkface_root, tmp_path, monkeypatch):
    """A carry file holds every split as JPEGs and loads like the dataset itself."""
    import training.data as data
    from training.datasets import load_dataset

    real = load_dataset

    def few(name, root, split, **kw):  # 20 faces per split keep the test quick
        return real(name, root, split, **kw)[:20]

    monkeypatch.setattr(data, "load_dataset", few)
    out = tmp_path / "u.carry.pt"
    info = data.write_carry("utkface", str(utkface_root), str(out), size=32)
    assert info["train"] == info["val"] == info["test"] == 20
    carried = data.load_packed("utkface", str(out), "val", 32)
    direct = data.load_packed("utkface", str(utkface_root), "val", 32)
    assert torch.equal(carried.labels, direct.labels) and carried.race == direct.race
    # JPEG at quality 75 is lossy, but close.
    assert (carried.images.float() - direct.images.float()).abs().mean() < 6


def test_load_face_frames_a_box_square_and_pads_past_the_edge(tmp_path):
    # A grey 100x60 photo; a 40x40 box in its top-left corner, margin 0.25: the square of
    # 1.5 * 40 = 60 px from (-10, -10), so its first sixth (10 of 60 px) is black, not stretched.
    from PIL import Image

    from training.data import load_face
    from training.datasets import Sample

    path = tmp_path / "p.jpg"
    Image.new("RGB", (100, 60), (200, 200, 200)).save(path, quality=100)
    face = load_face(Sample(path=str(path), age=30, label=30, box=(0, 0, 40, 40)), 30, margin=0.25)
    assert face.shape == (30, 30, 3)
    assert face[:4, :, 0].max() < 10 and face[:, :4, 0].max() < 10
    assert abs(int(face[15, 15, 0]) - 200) <= 3 and abs(int(face[29, 29, 0]) - 200) <= 3


def test_a_split_is_loaded_from_the_data_its_run_trained_on():
    """data_source reads a checkpoint's (or a release report's) train_config; a run that names no
    data trained on UTKFace chips at data.UTKFACE_ROOT, and `data_root` overrides the folder only."""
    from training.data import UTKFACE_ROOT, DataSource, data_source

    assert data_source({}) == DataSource("utkface", UTKFACE_ROOT, 0.0, {})
    run = {"train_config": {"dataset": "adience", "data_root": "/a", "face_margin": 0.4,
                            "dataset_options": {"test_fold": 0}}}
    assert data_source(run) == DataSource("adience", "/a", 0.4, {"test_fold": 0})
    assert data_source(run, data_root="/b") == DataSource("adience", "/b", 0.4, {"test_fold": 0})


def test_balance_weights_give_every_group_the_same_weight_and_the_sets_age_mix():
    from training.data import FAIRNESS_BANDS, balance_weights
    rng = np.random.default_rng(0)
    # Women younger than men on average, and three times fewer.
    ages = np.concatenate([rng.integers(1, 90, 900), rng.integers(1, 45, 300)]).astype(float)
    groups = ["male"] * 900 + ["female"] * 300
    w = balance_weights(ages, groups).numpy()
    band = np.searchsorted([hi for _, hi in FAIRNESS_BANDS], ages)
    share = np.bincount(band, minlength=len(FAIRNESS_BANDS)) / len(ages)
    for g in ("male", "female"):
        mine = np.array(groups) == g
        has = np.unique(band[mine])
        assert abs(w[mine].sum() - share[has].sum()) < 1e-9
        by_band = np.bincount(band[mine], weights=w[mine], minlength=len(FAIRNESS_BANDS))
        assert np.allclose(by_band[has], share[has])
    assert abs(w[:900].sum() - 1.0) < 1e-9          # the men span every band


def test_balance_is_a_group_the_data_has():
    import pytest
    from training.train_config import TrainConfig
    assert TrainConfig.from_flat(balance="gender").data.balance == "gender"
    with pytest.raises(ValueError, match="balance"):
        TrainConfig.from_flat(balance="age")
