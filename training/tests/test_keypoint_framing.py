"""The keypoint framing (framing.similarity, frame_face): the same rule as src/image/crop.ts
(similarity, frameFace), checked on the same synthetic faces as src/image/crop.test.ts."""
import math

import pytest

from training.framing import MIN_ROLL_DEGREES, crop_rect, eye_roll, frame_face, similarity

TEMPLATE = [[0.37, 0.44], [0.63, 0.44], [0.5, 0.57], [0.5, 0.7], [0.22, 0.49], [0.78, 0.49]]
FRAMING = {"scale": 1.09, "offset_x": 0, "offset_y": -0.03,
           "keypoints": {"offset_x": 0, "offset_y": -0.01, "template": TEMPLATE, "template_points": [0, 1, 2, 3]}}


def carry(s, a, tx, ty, pts=TEMPLATE):
    return [[s * (math.cos(a) * x - math.sin(a) * y) + tx, s * (math.sin(a) * x + math.cos(a) * y) + ty] for x, y in pts]


@pytest.mark.parametrize("s,deg,tx,ty", [(180, 0, 40, 60), (95.5, 23, -12, 300), (400, -35, 1000, 20), (60, 170, 5, 5)])
def test_similarity_recovers_a_known_transform(s, deg, tx, ty):
    got = similarity(TEMPLATE, carry(s, math.radians(deg), tx, ty), (0, 1, 2, 3))
    assert got == pytest.approx((s, math.radians(deg), tx, ty), abs=1e-9)


def test_frame_face_is_the_chip_square_carried_onto_the_face():
    s, a = 240, math.radians(30)
    rect, roll = frame_face((0, 0, 1, 1), carry(s, a, 500, 100), FRAMING)
    assert math.degrees(roll) == pytest.approx(30, abs=1e-6)
    (cx, cy), = carry(s, a, 500, 100, [[0.5, 0.5]])
    assert rect == pytest.approx((cx - s / 2, cy - s / 2, s, s), abs=1e-6)


def test_a_nearly_level_face_stays_upright_and_no_template_frames_by_the_box():
    assert frame_face((0, 0, 1, 1), carry(150, math.radians(MIN_ROLL_DEGREES - 3), 0, 0), FRAMING)[1] == 0.0
    box, plain = (100, 100, 100, 100), {"scale": 1.2, "offset_x": 0, "offset_y": 0}
    tilted = carry(100, math.radians(20), 100, 100)
    rect, roll = frame_face(box, tilted, plain)
    assert roll == pytest.approx(eye_roll(tilted))
    assert rect == pytest.approx(crop_rect(box, plain, roll, tilted))


def test_reframe_makes_a_version_with_the_new_framing_and_the_same_graph(tmp_path):
    import hashlib
    import json
    from pathlib import Path

    from training.reframe import reframe

    root = Path(__file__).resolve().parents[2]
    src = root / "test" / "fixtures" / "model" / "al-fixture" / "1"
    framing_file = root / "training" / "framings" / "utkface-blazeface-short-range-1-template.json"
    reframe(str(src), str(framing_file), str(tmp_path / "2"), "2")
    before, after = json.loads((src / "manifest.json").read_text()), json.loads((tmp_path / "2" / "manifest.json").read_text())
    assert after["version"] == "2" and after["reframed_from"] == f"{before['name']}/{before['version']}"
    assert after["framing"] == json.loads(framing_file.read_text())["framing"]
    assert after["framing"]["keypoints"]["template_points"] == [0, 1, 2, 3]
    assert after["files"] == before["files"]
    for f in before["files"]:
        assert hashlib.sha256((tmp_path / "2" / f["path"]).read_bytes()).hexdigest() == f["sha256"]
