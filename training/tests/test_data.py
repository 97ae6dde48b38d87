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
