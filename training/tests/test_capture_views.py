"""The stability benchmark's views (training/capture.py VIEWS): deterministic under a seed, and
each visibly what it claims on a synthetic face with a known answer."""
import json
import math

import numpy as np
from PIL import Image

from training import capture as C
from training.tests.test_capture import synthetic_face


def test_every_view_is_deterministic_under_its_seed():
    face = synthetic_face()
    for view in C.VIEWS:
        a = C.apply_view(face, view, C.view_seed(2, 5, view))
        b = C.apply_view(face, view, C.view_seed(2, 5, view))
        assert np.array_equal(a, b), view
        assert a.shape == face.shape, view
    drawn = {view: {C.apply_view(face, view, s).tobytes() for s in range(12)} for view in ("shift", "tilt", "lamp")}
    for view, outs in drawn.items():
        assert len(outs) > 1, f"{view} draws its direction from the seed"
    assert C.view_seed(2, 5, "lamp") != C.view_seed(2, 6, "lamp") != C.view_seed(2, 5, "gray")


def centroid(mask):
    ys, xs = np.nonzero(mask)
    return xs.mean(), ys.mean()


def test_reframe_moves_scales_and_turns_the_window_as_asked():
    face = synthetic_face()
    assert np.array_equal(C.reframe(face, 0, 0, 1.0), face)
    eyes = lambda img: C.luma(img) < 60
    x0, y0 = centroid(eyes(face))
    # The window moves right by 10 %: the face moves left by 20 px.
    x1, y1 = centroid(eyes(C.reframe(face, 0.1, 0.0, 1.0)))
    assert abs((x0 - x1) - 20) < 1.5 and abs(y1 - y0) < 1.0
    # A window 20 % larger shows the face smaller: the eyes 0.8x as far apart about the centre.
    wide = C.reframe(face, 0.0, 0.0, 1.25)
    left, right = eyes(wide)[:, :100], eyes(wide)[:, 100:]
    gap = centroid(right)[0] + 100 - centroid(left)[0]
    assert abs(gap - 68 / 1.25) < 2.0
    # Turned by 20 degrees, the eye line tilts by 20 degrees (either way).
    turned = C.reframe(face, 0.0, 0.0, 1.0, 20.0)
    (lx, ly), (rx, ry) = centroid(eyes(turned)[:, :100]), centroid(eyes(turned)[:, 100:])
    assert abs(abs(math.degrees(math.atan2(ry - ly, rx + 100 - lx))) - 20) < 2.0
    # Past the chip's edge the border repeats: no black band.
    assert C.luma(C.reframe(face, 0.3, 0.0, 1.0))[:, -5:].min() > 60


def test_a_tilted_head_turned_back_is_left_off_by_the_residual_only():
    face = synthetic_face()
    back = C.turned_back(face, 15.0, 3.0)
    (lx, ly), (rx, ry) = centroid((C.luma(back) < 60)[:, :100]), centroid((C.luma(back) < 60)[:, 100:])
    assert abs(abs(math.degrees(math.atan2(ry - ly, rx + 100 - lx))) - 3.0) < 1.5


def test_light_views_change_colour_not_brightness_and_the_lamp_lights_one_side():
    face = synthetic_face()
    mean = lambda img: img.reshape(-1, 3).astype(float).mean(0)
    for view, redder in (("warm", True), ("cool", False)):
        out = C.apply_view(face, view, 0)
        assert abs(C.luma(out).mean() - C.luma(face).mean()) < 12, view
        r_b = mean(out)[0] - mean(out)[2]
        assert (r_b > mean(face)[0] - mean(face)[2] + 20) if redder else (r_b < mean(face)[0] - mean(face)[2] - 20), view
    magenta = mean(C.apply_view(face, "magenta", 0))
    assert magenta[1] < mean(face)[1] - 10 and magenta[0] > mean(face)[0] - 5
    # Lit from the right by a red lamp: the right edge red, the left edge as it was.
    lit = C.tinted_gradient(face, C.LAMPS["red"], 0.0)
    assert np.abs(lit[:, :3].astype(int) - face[:, :3]).max() <= 3
    right = lit[:, -10:].reshape(-1, 3).astype(float).mean(0)
    assert right[0] - right[1] > (face[:, -10:, 0].mean() - face[:, -10:, 1].mean()) + 60
    assert np.array_equal(C.tinted_gradient(face, C.LAMPS["red"], 30.0, strength=0.0), face)
    gray = C.apply_view(face, "gray", 0)
    assert np.abs(gray[..., 0].astype(int) - gray[..., 2]).max() <= 1
    assert np.array_equal(C.apply_view(face, "mirror", 0), face[:, ::-1])


def test_write_stability_writes_every_view_of_each_face(tmp_path):
    root = tmp_path / "data"
    (root / "images").mkdir(parents=True)
    rows = ["file,age,gender,race,split"]
    for i in range(3):
        Image.fromarray(synthetic_face(seed=i)).save(root / "images" / f"{i}.jpg")
        rows.append(f"{i}.jpg,{20 + i},0,1,test")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    out = C.write_stability(str(root), str(tmp_path / "out"), faces=2)
    assert out["images"] == 2 * len(C.VIEWS)
    index = json.loads((tmp_path / "out" / "index.json").read_text())
    assert index["views"] == list(C.VIEWS) and len(index["faces"]) == 2
    face = index["faces"][1]
    assert face["age"] == 21 and face["images"]["jpeg80"].endswith(".jpg")
    for view, name in face["images"].items():
        assert (tmp_path / "out" / name).stat().st_size > 0, view


def test_head_pose_reads_the_nose_in_the_eyes_frame_whatever_the_roll():
    upright = [(60.0, 70.0), (140.0, 70.0), (100.0, 115.0)]
    yaw, pitch = C.head_pose(upright)
    assert abs(yaw) < 1e-12 and abs(pitch - 45 / 80) < 1e-12
    turned = [(60.0, 70.0), (140.0, 70.0), (130.0, 115.0)]
    assert abs(C.head_pose(turned)[0] - 30 / 80) < 1e-12
    for deg in (-40, 15, 90):
        a = math.radians(deg)
        rot = [(100 + (x - 100) * math.cos(a) - (y - 90) * math.sin(a), 90 + (x - 100) * math.sin(a) + (y - 90) * math.cos(a))
               for x, y in turned]
        assert np.allclose(C.head_pose(rot), C.head_pose(turned), atol=1e-12), deg


def test_training_draws_the_views_kinds_deterministically_and_strength_zero_changes_no_colour():
    face = synthetic_face()
    for kind in C.VIEW_KINDS:
        a = C.degrade(face, kind, 0.8, np.random.default_rng(3), jitter=True)
        b = C.degrade(face, kind, 0.8, np.random.default_rng(3), jitter=True)
        assert np.array_equal(a, b) and a.shape == face.shape, kind
        assert np.abs(a.astype(int) - face).mean() > 2, f"{kind} at 0.8 changes the face"
    for kind in ("coloured", "lamped", "hue_shifted"):
        out = C.degrade(face, kind, 0.0, np.random.default_rng(4))
        assert np.abs(out.astype(int) - face).max() <= 1, kind
    # hue_shifted keeps luma; coloured keeps it roughly (a cast re-balances the channels)
    turned = C.hue_shifted(face, 1.0, np.random.default_rng(5))
    assert abs(C.luma(turned).mean() - C.luma(face).mean()) < 3


def test_a_batch_can_draw_the_views_kinds_and_an_unknown_kind_is_refused():
    import pytest
    import torch
    faces = torch.from_numpy(np.stack([synthetic_face(seed=i) for i in range(6)]))
    cfg = C.CaptureConfig(share=1.0, kinds=tuple(C.VIEW_KINDS))
    out, picked = C.degrade_batch(faces, cfg, seed=9)
    assert picked.all() and out.shape == faces.shape and not torch.equal(out, faces)
    with pytest.raises(ValueError, match="unknown capture kinds"):
        C.degrade_batch(faces, C.CaptureConfig(share=1.0, kinds=("sepia",)), seed=9)
