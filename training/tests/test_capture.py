"""The capture degradations (training/capture.py): deterministic under a seed, each visibly what
it claims on a synthetic face with a known answer; the quality measures' answers on known
images; and the clean-view teacher (a degraded face's target is the teacher's clean answer)."""
import hashlib

import numpy as np
import pytest
import torch

from training import capture as C
from training.stage import soft_targets, stage_loss
from training.train import capture_severity
from training.train_config import TrainConfig
from training.model import create_model


def synthetic_face(size: int = 200, seed: int = 0) -> np.ndarray:
    """A face-like test card: mid-grey skin with fine texture, dark eyes at 0.3 of the height,
    a mouth at 0.75, coloured so saturation is measurable."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    img = np.zeros((size, size, 3))
    img[...] = (180, 140, 120)
    img += rng.normal(0, 5, size=(size, size, 1))                        # skin texture
    for cx in (0.33, 0.67):
        img[((x - cx) ** 2 + (y - 0.3) ** 2) < 0.004] = (30, 25, 20)      # eyes
    img[(np.abs(x - 0.5) < 0.15) & (np.abs(y - 0.75) < 0.025)] = (120, 40, 50)   # mouth
    return np.clip(img, 0, 255).astype(np.uint8)


def quality(img):
    return C.face_quality(img, 150)


def test_every_condition_is_deterministic_under_its_seed_and_differs_across_seeds():
    face = synthetic_face()
    for cond in C.CONDITIONS:
        a = C.degrade_condition(face, cond, 7)
        b = C.degrade_condition(face, cond, 7)
        assert np.array_equal(a, b), cond
    noisy = [C.degrade_condition(face, "dark-severe", s) for s in (1, 2)]
    assert not np.array_equal(*noisy)        # sensor noise is drawn from the seed
    assert C.condition_seed(3, 10, "blur-severe") == C.condition_seed(3, 10, "blur-severe")
    assert C.condition_seed(3, 10, "blur-severe") != C.condition_seed(3, 11, "blur-severe")


def test_each_kind_is_visibly_what_it_claims():
    face = synthetic_face()
    lum = C.luma
    small = C.degrade_condition(face, "small-severe", 0)
    assert small.shape == (32, 32, 3)
    assert C.degrade_condition(face, "small-moderate", 0).shape == (48, 48, 3)

    def hf(img):     # fine-scale energy
        y = lum(img)
        return float(np.mean(np.diff(y, axis=1) ** 2))
    assert hf(C.degrade_condition(face, "blur-severe", 0)) < hf(C.degrade_condition(face, "blur-moderate", 0)) < hf(face) / 3

    dark_m, dark_s = (C.degrade_condition(face, f"dark-{lvl}", 0) for lvl in ("moderate", "severe"))
    assert lum(dark_s).mean() < lum(dark_m).mean() < 0.75 * lum(face).mean()
    assert lum(dark_s).mean() < 0.4 * lum(face).mean()

    import io
    from PIL import Image
    jpg = C.jpeg_bytes(face, 7)
    assert Image.open(io.BytesIO(jpg)).format == "JPEG" and len(jpg) < len(C.jpeg_bytes(face, 20))

    g = C.degrade_condition(face, "gray-severe", 0).astype(int)
    assert np.abs(g[..., 0] - g[..., 1]).max() <= 1 and np.abs(g[..., 1] - g[..., 2]).max() <= 1
    half = C.degrade_condition(face, "gray-moderate", 0).astype(int)
    assert 0 < np.abs(half[..., 0] - half[..., 2]).mean() < np.abs(face[..., 0].astype(int) - face[..., 2]).mean()

    eyes = C.degrade_condition(face, "eyes-severe", 0)
    band = eyes[int(0.2 * 200):int(0.4 * 200), int(0.1 * 200):int(0.9 * 200)]
    assert band.max() <= 20 and np.array_equal(eyes[120:], face[120:])   # covered above, untouched below
    tinted = C.degrade_condition(face, "eyes-moderate", 0)
    assert band.mean() < tinted[45:75, 30:170].mean() < face[45:75, 30:170].mean()

    mask = C.degrade_condition(face, "lower-severe", 0)
    assert (mask[110:, 30:170] == (226, 232, 238)).all() and np.array_equal(mask[:95], face[:95])
    assert np.array_equal(C.degrade_condition(face, "lower-moderate", 0)[:125], face[:125])


def test_quality_knows_sharp_from_blurred_dark_from_bright_and_small_from_large():
    face = synthetic_face()
    sharp, blurred = quality(face), quality(C.blur(face, 0.025, None))
    assert blurred["sharpness"] < sharp["sharpness"]
    assert "blurred: hold still and focus" in blurred["reasons"] and not sharp["reasons"]
    assert sharp["score"] > 0.9 > 0.3 > blurred["score"]

    dim = quality((face * 0.25).astype(np.uint8))
    bright = quality(np.clip(face.astype(int) + 110, 0, 255).astype(np.uint8))
    assert dim["brightness"] < 0.2 < 0.8 < bright["brightness"]
    assert "too dark: add light" in dim["reasons"] and "too bright: avoid direct light" in bright["reasons"]

    tiny = quality(C.small(face, 32, None))
    assert tiny["face_px"] == 32 and sharp["face_px"] == 200
    assert "too small: come closer" in tiny["reasons"] and tiny["score"] < 0.3

    covered = quality(C.degrade_condition(face, "lower-severe", 0))
    assert covered["flat"] > 0.3 > sharp["flat"] and "face covered: remove sunglasses or mask" in covered["reasons"]

    grainy = quality(C.dark(face, 0.06, np.random.default_rng(0)))
    assert grainy["noise"] > sharp["noise"] and "grainy: add light" in grainy["reasons"]


def test_quality_reads_the_model_input_and_knows_the_source_size_and_the_detector():
    face = synthetic_face(200)
    a = C.input_quality(np.array(__import__("PIL.Image").Image.fromarray(face).resize((150, 150)), np.uint8), 400.0, 0.9)
    assert a["face_px"] == 400 and a["detector_score"] == 0.9 and a["parts"]["face_px"] == 1.0
    b = C.input_quality(np.array(__import__("PIL.Image").Image.fromarray(face).resize((150, 150)), np.uint8), 400.0, None)
    assert b["detector_score"] is None and "detector_score" not in b["parts"]
    unsure = C.input_quality(np.array(__import__("PIL.Image").Image.fromarray(face).resize((150, 150)), np.uint8), 400.0, 0.4)
    assert unsure["score"] == 0 and "face unclear: face the camera" in unsure["reasons"]


def test_training_draws_span_both_benchmark_levels_and_severity_holds_them_back():
    for kind, levels in C.LEVELS.items():
        lo, hi = sorted(C.train_parameter(kind, u, 1.0) for u in (0.0, 1.0))
        for v in levels.values():
            assert lo <= v <= hi, (kind, v)
        # At a fifth of the severity the draws stay at the mild end.
        mild = C.train_parameter(kind, 0.999999, 0.2)
        severe = levels["severe"]
        assert abs(mild - C.train_parameter(kind, 0.0, 1.0)) < abs(severe - C.train_parameter(kind, 0.0, 1.0))
    cap = C.CaptureConfig(share=0.5, severity=1.0, severity_warmup_epochs=2)
    assert capture_severity(cap, 0) == pytest.approx(0.2) and capture_severity(cap, 1) == pytest.approx(0.6)
    assert capture_severity(cap, 5) == 1.0


def test_degrade_batch_picks_its_share_keeps_the_size_and_repeats_under_a_seed():
    faces = torch.from_numpy(np.stack([synthetic_face(64, s) for s in range(32)]))
    cfg = C.CaptureConfig(share=0.5)
    a, picked = C.degrade_batch(faces, cfg, seed=3)
    b, again = C.degrade_batch(faces, cfg, seed=3)
    assert torch.equal(a, b) and torch.equal(picked, again)
    assert a.shape == faces.shape and 6 < int(picked.sum()) < 26
    changed = (a != faces).flatten(1).any(1)
    assert not changed[~picked].any()               # the others are untouched
    assert changed[picked].float().mean() > 0.8     # (a mild gray draw may round to the same face)
    none, flags = C.degrade_batch(faces, C.CaptureConfig(share=0.0), seed=3)
    assert torch.equal(none, faces) and not flags.any()


def test_a_degraded_face_learns_the_teachers_clean_answer():
    """With teacher weight 1 for degraded faces, a degraded face's target is exactly the
    teacher's distribution (computed on the clean chip), whatever its label says; clean faces
    keep the label/teacher mix."""
    torch.manual_seed(0)
    model = create_model("al_resnet_tiny")
    x = torch.randn(4, 3, 64, 64)
    labels = torch.tensor([10, 20, 30, 40])
    teacher = torch.softmax(torch.randn(4, 101), 1)
    weight = torch.tensor([1.0, 1.0, 0.5, 0.5])          # faces 0, 1 degraded
    loss = stage_loss(model, x, labels, "global", 2.0, teacher=teacher, teacher_weight=weight)
    logp = torch.log_softmax(model.global_head(model.forward_features(x).mean(dim=(2, 3))).float(), 1)
    target = torch.cat([teacher[:2], 0.5 * soft_targets(labels[2:], 101, 2.0) + 0.5 * teacher[2:]])
    assert loss.item() == pytest.approx(float(-(target * logp).sum(1).mean()), rel=1e-5)
    same = stage_loss(model, x, labels, "global", 2.0, teacher=teacher, teacher_weight=0.5)
    assert same.item() != pytest.approx(loss.item())


def test_a_recipe_reads_its_capture_settings():
    from training.recipe import _train_config
    cfg = _train_config({"capture": {"share": 0.5, "kinds": ["dark", "small"], "teacher_weight": 0.9},
                         "val_capture": 64, "select_on": "capture"}, "test")
    assert isinstance(cfg, TrainConfig) and cfg.capture.share == 0.5 and cfg.capture.kinds == ("dark", "small")
    assert cfg.capture.teacher_weight == 0.9 and cfg.select.val_capture == 64


# Each kind's outputs under fixed seeds, as the capture module gave them before its kinds became
# one registry entry each (commit 7fae739): the benchmark's two conditions, four training draws
# (parameter and jittered face) and a degraded batch. A change here changes what is trained and
# what is measured; it needs new digests and a reason.
KIND_DIGESTS = {
    "small": "d8d79b269ebc59abfd4a5736f12bb1f1cf254b8d377b0fa8aab1354a3e63f7d5",
    "blur": "016b91fc15ecb4fc3efc9c29eec23e91f0fd4fa2a2d598f36c2d8501262d1858",
    "dark": "6f0858d2ec16f54bd5f1a95fad002793e8b10530f012fd03940639fa96f1a568",
    "jpeg": "865a2ef936502449146bb85b152f7764eb75c062fe730ed6b274a85e809efdf1",
    "gray": "1878f99b00ebc540a8d07804d29e6c2857d1111e19907efc5fc522e1b61c6d76",
    "eyes": "21554924ddd5633299a1491913943439f8589d84592db2765f690515b4dd0f38",
    "lower": "b4cd9a7e4d9d497e778dbd0c7f726910a2adc02049be3318bf5fc7c2d293bbdf",
}


def kind_digest(kind: str) -> str:
    face = synthetic_face(96, 5)
    h = hashlib.sha256()
    for level in ("moderate", "severe"):
        cond = f"{kind}-{level}"
        h.update(f"{cond}={C.condition_parameter(cond)[1]!r}@{C.condition_seed(4, 9, cond)}".encode())
        out = C.degrade_condition(face, cond, C.condition_seed(4, 9, cond))
        h.update(f"{out.shape}".encode() + out.tobytes())
    for u, severity in ((0.0, 1.0), (0.37, 1.0), (0.999, 0.5), (0.999999, 1.0)):
        p = C.train_parameter(kind, u, severity)
        out = C.degrade(face, kind, p, np.random.default_rng(12), jitter=True)
        h.update(f"{p!r}{out.shape}".encode() + out.tobytes())
    faces = torch.from_numpy(np.stack([synthetic_face(64, s) for s in range(6)]))
    batch, picked = C.degrade_batch(faces, C.CaptureConfig(share=1.0, kinds=(kind,), severity=0.8), seed=21)
    h.update(batch.numpy().tobytes() + picked.numpy().tobytes())
    return h.hexdigest()


def test_every_kind_degrades_byte_for_byte_as_before():
    assert {kind: kind_digest(kind) for kind in C.KINDS} == KIND_DIGESTS
    # The conditions' order seeds each face's draws; the benchmark's index.json writes the levels.
    assert C.CONDITIONS == ["clean"] + [f"{k}-{lvl}" for k in KIND_DIGESTS for lvl in ("moderate", "severe")]
    assert C.LEVELS == {"small": {"moderate": 48, "severe": 32}, "blur": {"moderate": 0.012, "severe": 0.025},
                        "dark": {"moderate": 0.2, "severe": 0.06}, "jpeg": {"moderate": 20, "severe": 7},
                        "gray": {"moderate": 0.4, "severe": 0.0}, "eyes": {"moderate": 0.7, "severe": 1.0},
                        "lower": {"moderate": 0.64, "severe": 0.5}}

