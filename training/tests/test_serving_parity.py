"""Training-vs-serving preprocessing parity: the fixture test/parity.test.ts compares against.

`data.load_face` (what training, evaluation and release feed the model) makes the 112 px input
of a generated image for three boxes, and `framing.detector_framed_chip` (training's
detector-framed faces) the input for a detection of that image set into a canvas; the fixture
holds the images (PNG) and those inputs. The
TypeScript test runs the serving path (PNG decode, `framedCrop`, `estimateAge`'s resize) on the
same image and boxes and compares pixel by pixel. This test regenerates the fixture and checks
it equals the committed one, so it cannot go stale.

Regenerate: training/.venv/bin/python -m training.tests.test_serving_parity
"""
from __future__ import annotations

import base64
import io
import json
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from training.data import load_face
from training.datasets import Sample
from training.detector import letterbox_pixels
from training.framing import chip_canvas, detector_framed_chip

FIXTURE = Path(__file__).resolve().parents[2] / "test" / "fixtures" / "parity" / "preprocessing.json"
SIZE = 112
MARGIN = 0.4  # the fixture model's face_margin: a square of 1.8 * sqrt(w * h)
# name -> face box (x, y, w, h) in the 200 x 200 image, or None for crop=image (the whole chip).
CASES = {
    "middle": [61.3, 47.6, 80.5, 92.2],      # upright face in the middle: a 156 px crop, inside
    "edge": [131.7, 2.4, 66.1, 70.9],        # at the top-right corner: the crop leaves the image
    "whole": None,                           # crop=image: the chip itself resized to 112
}
# A detected face, as training's detector-framed faces are made (framing.detector_framed_chip):
# the chip set into its canvas (index 0: 200 px on 400 px), a detection of it (box and keypoints
# in canvas pixels, fixed here: the detector's own parity is test/detector tests'), and a
# framing with keypoints (version 3.1's measured one).
DETECTION = {"box": [155.4, 137.2, 90.6, 116.3],
             "keypoints": [[180.2, 180.4], [220.7, 181.5], [200.3, 201.0], [199.6, 226.8], [158.0, 184.0], [242.0, 185.5]]}
# The detector's input (training/detector.py letterbox_pixels vs the server's detectorPixels) at
# BlazeFace's 128 px: the detected case's canvas (400 px, a 3.125x downscale) and a wide photo
# whose letterbox starts half a pixel into the padding (the image's top 151 rows).
DETECTOR_SIZE = 128
FRAMING = {"scale": 1.0859, "offset_x": 0.0025, "offset_y": -0.0257, "keypoints": {"offset_x": 0.0044, "offset_y": -0.013}}


def generated_image() -> np.ndarray:
    """200 x 200 RGB: smooth shading, fine texture and hard edges, so a resize that samples the
    wrong place or weights pixels wrongly shows."""
    y, x = np.mgrid[0:200, 0:200].astype(np.float64)
    r = 128 + 90 * np.sin(x / 9.0) * np.cos(y / 13.0)
    g = 30 + 0.55 * (x + y) + 20 * np.sin(x / 2.3)
    b = np.where(((x // 10) + (y // 10)) % 2 == 0, 205.0, 55.0)
    face = ((x - 100) / 45) ** 2 + ((y - 95) / 58) ** 2 < 1
    r, g = np.where(face, r * 0.6 + 70, r), np.where(face, g * 0.7, g)
    return np.clip(np.rint(np.stack([r, g, b], axis=-1)), 0, 255).astype(np.uint8)


def build() -> dict:
    img = generated_image()
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "PNG")
    cases = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "image.png"
        path.write_bytes(buf.getvalue())
        for name, box in CASES.items():
            sample = Sample(path=str(path), age=30.0, label=30, box=None if box is None else tuple(box))
            face = load_face(sample, SIZE, MARGIN if box is not None else 0.0)
            assert face.shape == (SIZE, SIZE, 3) and face.dtype == np.uint8
            cases.append({"name": name, "box": box, "margin": MARGIN if box is not None else None,
                          "expected": base64.b64encode(face.tobytes()).decode()})
        canvas, _, _ = chip_canvas(path, 0)
        canvas_png = io.BytesIO()
        canvas.save(canvas_png, "PNG")
        face = detector_framed_chip(str(path), 0, DETECTION, FRAMING, SIZE)
        cases.append({"name": "detected", "box": DETECTION["box"], "margin": None,
                      "keypoints": DETECTION["keypoints"], "framing": FRAMING,
                      "image_png": base64.b64encode(canvas_png.getvalue()).decode(),
                      "expected": base64.b64encode(face.tobytes()).decode()})
    detector_cases = []
    for name, pixels in [("canvas", np.asarray(canvas)), ("wide", img[:151])]:
        png = io.BytesIO()
        Image.fromarray(pixels).save(png, "PNG")
        letterboxed, _ = letterbox_pixels(pixels, DETECTOR_SIZE)
        detector_cases.append({"name": name, "image_png": base64.b64encode(png.getvalue()).decode(),
                               "expected": base64.b64encode(letterboxed.tobytes()).decode()})
    return {
        "what": "training.data.load_face's model input for a generated image, and the face detector's "
                "input (training.detector.letterbox_pixels); compared with the serving path by test/parity.test.ts",
        "command": "training/.venv/bin/python -m training.tests.test_serving_parity",
        "size": SIZE,
        "image_png": base64.b64encode(buf.getvalue()).decode(),
        "cases": cases,
        "detector_size": DETECTOR_SIZE,
        "detector_cases": detector_cases,
    }


def _pixels(png_b64: str) -> np.ndarray:
    with Image.open(io.BytesIO(base64.b64decode(png_b64))) as im:
        return np.asarray(im.convert("RGB"))


def test_committed_fixture_is_what_training_makes_now():
    assert FIXTURE.exists(), f"{FIXTURE} is missing: run {build()['command']}"
    committed, fresh = json.loads(FIXTURE.read_text()), build()
    # Pixels, not PNG bytes: another zlib may compress the same image differently.
    np.testing.assert_array_equal(_pixels(committed["image_png"]), _pixels(fresh["image_png"]))
    assert committed["size"] == fresh["size"]
    assert [(c["name"], c["box"], c["margin"]) for c in committed["cases"]] == \
           [(c["name"], c["box"], c["margin"]) for c in fresh["cases"]]
    for old, new in zip(committed["cases"], fresh["cases"]):
        assert old["expected"] == new["expected"], \
            f"case {old['name']}: training's preprocessing changed; regenerate with {fresh['command']}"
    assert committed.get("detector_size") == fresh["detector_size"]
    assert [c["name"] for c in committed.get("detector_cases", [])] == [c["name"] for c in fresh["detector_cases"]]
    for old, new in zip(committed["detector_cases"], fresh["detector_cases"]):
        np.testing.assert_array_equal(_pixels(old["image_png"]), _pixels(new["image_png"]))
        assert old["expected"] == new["expected"], \
            f"detector case {old['name']}: training's letterbox changed; regenerate with {fresh['command']}"


def test_the_cases_exercise_padding_and_downscaling():
    fixture = build()
    faces = {c["name"]: np.frombuffer(base64.b64decode(c["expected"]), np.uint8).reshape(SIZE, SIZE, 3)
             for c in fixture["cases"]}
    # The edge crop's top rows and right columns lie outside the image: black (padded, not squashed).
    assert faces["edge"][:8].max() == 0 and faces["edge"][:, -8:].max() == 0
    assert faces["middle"].min(axis=(0, 1)).max() > 0  # inside the image: no padding
    assert faces["whole"].std() > 30
    assert faces["detected"].std() > 30 and not np.array_equal(faces["detected"], faces["middle"])
    inputs = {c["name"]: np.frombuffer(base64.b64decode(c["expected"]), np.uint8).reshape(DETECTOR_SIZE, DETECTOR_SIZE, 3)
              for c in fixture["detector_cases"]}
    # The wide photo is letterboxed: black bands above and below it, the image between.
    assert inputs["wide"][:15].max() == 0 and inputs["wide"][-15:].max() == 0 and inputs["wide"][64].std() > 30
    assert inputs["canvas"].std() > 10


if __name__ == "__main__":
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    FIXTURE.write_text(json.dumps(build(), indent=1) + "\n")
    print(f"wrote {FIXTURE}")
