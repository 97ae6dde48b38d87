"""The face detector's Python side: anchors, decoding, suppression, the committed conversion,
and the framing rule shared with serving (src/image/crop.ts)."""
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from training import detector as det
from training.framing import crop_rect, from_margin, measure_framing

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "models" / "detectors" / "blazeface-short-range" / "1"


def test_anchor_grids_match_mediapipe_counts():
    short = det.anchors(det.VARIANTS["short"]["anchors"], 128)
    assert len(short) == 16 * 16 * 2 + 8 * 8 * 6 == 896
    assert np.allclose(short[0], [1 / 32, 1 / 32]) and np.allclose(short[512], [1 / 16, 1 / 16])
    assert len(det.anchors(det.VARIANTS["full"]["anchors"], 192)) == 48 * 48 == 2304


def test_decode_and_weighted_nms_merge_one_face_and_keep_two_apart():
    xy = det.anchors({"strides": [64], "per_layer": 1, "offset": 0.5}, 128)  # 4 anchors at 0.25/0.75
    reg = np.zeros((4, 16))
    reg[:, 2:4] = 32  # 32 px boxes on each anchor
    reg[1, 0] = -64 + 4  # anchor 1 (0.75, 0.25) moved onto anchor 0, 4 px right
    cls = np.array([2.0, 1.0, -5.0, 4.0])
    dets = det.decode(reg, cls, xy, 128, 0.5)
    assert len(dets) == 3
    out = det.weighted_nms(dets, 0.3)
    assert len(out) == 2
    assert out[0]["score"] == pytest.approx(1 / (1 + np.exp(-4)))  # anchor 3 alone
    s0, s1 = 1 / (1 + np.exp(-2)), 1 / (1 + np.exp(-1))
    # the merged box is the score-weighted mean: anchor 1 sits 4/128 to the right
    assert out[1]["box"][0] == pytest.approx(0.125 + s1 / (s0 + s1) * 4 / 128)
    assert out[1]["score"] == pytest.approx(s0)


def test_shipped_detector_matches_its_manifest_and_passed_parity():
    manifest = json.loads((SHIPPED / "manifest.json").read_text())
    for f in manifest["files"]:
        assert det._sha256(SHIPPED / f["path"]) == f["sha256"], f["path"]
        assert (SHIPPED / f["path"]).stat().st_size == f["bytes"]
    assert manifest["source"]["license"] == "Apache-2.0" and "Apache" in (SHIPPED / "NOTICE").read_text()
    worst = manifest["parity"]["max_abs_diff"]
    assert max(worst.values()) <= manifest["parity"]["tolerance"] == det.PARITY_TOLERANCE
    assert json.loads((REPO / "models" / "detectors" / "active.json").read_text()) == {
        "name": manifest["name"], "version": manifest["version"]}


def test_reference_decoding_is_what_this_code_gives():
    ref = json.loads((SHIPPED / "reference.json").read_text())
    m = json.loads((SHIPPED / "manifest.json").read_text())
    xy = det.anchors(m["anchors"], m["input"]["size"])
    assert np.allclose(np.array(ref["anchors"]["xy"]), xy, atol=1e-8)
    for case in ref["decode"]:
        got = det.weighted_nms(det.decode(np.array(case["regressors"]), np.array(case["classificators"]), xy,
                                          m["input"]["size"], m["score_threshold"]), m["nms_iou"])
        assert [d["score"] for d in got] == pytest.approx([d["score"] for d in case["detections"]])
        assert np.allclose([d["box"] for d in got], [d["box"] for d in case["detections"]])


def _cartoon(size: int, canvas: int) -> np.ndarray:
    """The face test/helpers/images.ts drawFace paints, centred on a plain canvas."""
    im = Image.new("RGB", (canvas, canvas), (90, 110, 140))
    d = ImageDraw.Draw(im)
    s, o = size / 200, (canvas - size) / 2
    e = lambda x0, y0, x1, y1, c: d.ellipse([o + x0 * s, o + y0 * s, o + x1 * s, o + y1 * s], fill=c)
    e(45, 20, 155, 110, (60, 40, 30)); e(55, 35, 145, 170, (224, 172, 140))
    e(40, 85, 60, 120, (210, 160, 130)); e(140, 85, 160, 120, (210, 160, 130))
    e(72, 78, 96, 92, (250, 250, 250)); e(104, 78, 128, 92, (250, 250, 250))
    e(79, 79, 89, 91, (50, 35, 25)); e(111, 79, 121, 91, (50, 35, 25))
    d.rectangle([o + 70 * s, o + 68 * s, o + 98 * s, o + 72 * s], fill=(80, 55, 40))
    d.rectangle([o + 102 * s, o + 68 * s, o + 130 * s, o + 72 * s], fill=(80, 55, 40))
    d.polygon([(o + 100 * s, o + 95 * s), (o + 92 * s, o + 122 * s), (o + 108 * s, o + 122 * s)], fill=(205, 150, 120))
    e(82, 135, 118, 148, (170, 80, 80))
    return np.asarray(im)


def test_detector_finds_a_drawn_face_and_nothing_in_noise():
    d = det.Detector(SHIPPED)
    found = d.detect(_cartoon(240, 480))
    assert len(found) == 1 and found[0]["score"] > 0.7
    x, y, w, h = found[0]["box"]
    assert abs(x + w / 2 - 240) < 15 and 0.4 * 240 < w < 0.7 * 240
    rng = np.random.default_rng(0)
    assert d.detect(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)) == []


def test_crop_rect_is_the_square_the_server_uses():
    # the same cases as src/image/crop.test.ts
    assert crop_rect((200, 100, 100, 100), {"scale": 1.8, "offset_x": 0, "offset_y": 0}) == (160, 60, 180, 180)
    assert crop_rect((0, 0, 100, 400), {"scale": 1.25, "offset_x": 0.125, "offset_y": -0.25}) == (-50, 25, 250, 250)
    assert from_margin(0.4) == {"scale": 1.8, "offset_x": 0.0, "offset_y": 0.0}
    kp = [(40, 40), (60, 40), (50, 60), (50, 80), (30, 50), (70, 50)]
    framing = {"scale": 1, "offset_x": 0.5, "offset_y": 0.5, "keypoints": {"offset_x": 0, "offset_y": -0.25}}
    assert crop_rect((0, 0, 100, 100), framing, keypoints=kp) == (0, -15, 100, 100)
    assert crop_rect((0, 0, 100, 100), framing) == (50, 50, 100, 100)
    turned = crop_rect((0, 0, 100, 100), {"scale": 1, "offset_x": 0, "offset_y": -0.25}, roll=np.pi / 2)
    assert turned[0] + 50 == pytest.approx(75) and turned[1] + 50 == pytest.approx(50)


def test_framing_measured_on_chips(utkface_root, tmp_path):
    out = measure_framing(str(SHIPPED), str(utkface_root), "train", limit=30, out=str(tmp_path / "f.json"))
    # UTKFace chips are a little larger than BlazeFace's square box, about centred on it.
    assert 1.0 < out["scale"] < 1.2 and abs(out["offset_x"]) < 0.1 and abs(out["offset_y"]) < 0.1
    assert out["measured"]["missed"] <= 3
    assert abs(out["measured"]["eye_roll_degrees_median"]) < 5
    assert json.loads((tmp_path / "f.json").read_text())["scale"] == out["scale"]
