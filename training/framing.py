"""How a face box becomes the crop the age model sees (docs/model-contract.md, `framing`).

The training faces are UTKFace chips: the age model learnt faces framed the way those chips
frame them. `measure_framing` runs the face detector on the training chips, set into a plain
canvas the way a face appears in a photo, and finds the square crop around the detector's box
that reproduces the chip: side = scale * sqrt(w * h), centre shifted by (offset_x, offset_y)
times sqrt(w * h) from the box centre, or by `keypoints` (offset_x, offset_y) from the point
halfway between the eyes' midpoint and the mouth when the detector's keypoints are known. The crop is never clamped to the image: what falls outside is black, as in
UTKFace's own chips of faces near a photo's edge, so the face keeps its aspect ratio.
`src/image/crop.ts` (`framedCrop`) is the serving copy of `crop_rect`.
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

# Chip sizes (px) and the canvas around each, as multiples of the chip: a face at 100-200 px
# in a photo two to four times its size, which is how the photo path meets faces.
PLACEMENTS = [(200, 2), (150, 3), (100, 4)]
CANVAS_GREY = 128


def from_margin(margin: float) -> dict:
    """The framing of a manifest without one: the old `face_margin` grown box, made square."""
    return {"scale": 1.0 + 2.0 * margin, "offset_x": 0.0, "offset_y": 0.0}


def _centre(box, framing: dict, keypoints) -> tuple[float, float, float, float]:
    """Where the crop's centre is measured from, and the offsets from it (in units of sqrt(w*h))."""
    x, y, w, h = box
    k = framing.get("keypoints")
    if k and keypoints is not None and len(keypoints) >= 4:
        (rx, ry), (lx, ly), _, (mx, my) = keypoints[:4]
        # Halfway between the eyes' midpoint and the mouth: on the chips it varies half as
        # much as the box centre does (measure_framing's spreads).
        return ((rx + lx) / 2 + mx) / 2, ((ry + ly) / 2 + my) / 2, k["offset_x"], k["offset_y"]
    return x + w / 2, y + h / 2, framing["offset_x"], framing["offset_y"]


def crop_rect(box, framing: dict, roll: float = 0.0, keypoints=None) -> tuple[float, float, float, float]:
    """Face box (x, y, w, h) -> square crop (x, y, side, side) in the same pixels, unclamped.
    With the detector's `keypoints` (and a framing that has `keypoints`) the centre is placed
    from the eyes and mouth, otherwise from the box. `roll` (radians): the face's tilt; the
    offsets follow the face's axes (the server turns the crop by it, see src/image/crop.ts)."""
    _, _, w, h = box
    s = math.sqrt(w * h)
    side = framing["scale"] * s
    cx0, cy0, fx, fy = _centre(box, framing, keypoints)
    ox, oy = fx * s, fy * s
    cx = cx0 + math.cos(roll) * ox - math.sin(roll) * oy
    cy = cy0 + math.sin(roll) * ox + math.cos(roll) * oy
    return (cx - side / 2, cy - side / 2, side, side)


# The detector's keypoints the similarity framing is fitted to: the eyes, the nose tip and the
# mouth. The ears (4, 5) are left out: on a turned head the far one is hidden and its point is
# a guess.
TEMPLATE_POINTS = (0, 1, 2, 3)


def similarity(template, points, indices=TEMPLATE_POINTS) -> tuple[float, float, float, float]:
    """The least-squares similarity (scale s, angle a, shift tx, ty) that maps the template's
    points onto `points` (x' = s R(a) x + t, y down, a clockwise): Umeyama's closed form in 2D,
    no reflection. src/image/crop.ts `similarity` is the serving copy."""
    q = np.array([template[i] for i in indices], dtype=np.float64)
    p = np.array([points[i] for i in indices], dtype=np.float64)
    qc, pc = q - q.mean(0), p - p.mean(0)
    n = float((qc ** 2).sum())
    a = float((qc[:, 0] * pc[:, 0] + qc[:, 1] * pc[:, 1]).sum()) / n
    b = float((qc[:, 0] * pc[:, 1] - qc[:, 1] * pc[:, 0]).sum()) / n
    s, angle = math.hypot(a, b), math.atan2(b, a)
    tx = p[:, 0].mean() - (a * q[:, 0].mean() - b * q[:, 1].mean())
    ty = p[:, 1].mean() - (b * q[:, 0].mean() + a * q[:, 1].mean())
    return s, angle, float(tx), float(ty)


def frame_face(box, keypoints, framing: dict) -> tuple[tuple[float, float, float, float], float]:
    """A detected face -> (crop rect, roll in radians): the one definition of how the photo path
    frames a face (src/image/crop.ts `frameFace`). With a framing that has a keypoint `template`
    (the chips' own keypoints, measured by measure_framing), the crop is the chip's square carried
    by the similarity that best maps the template onto the face's keypoints: its centre, side and
    turn all follow the face. Without one, the box and the eye line frame it (crop_rect, eye_roll).
    A turn under MIN_ROLL_DEGREES is not made: the chips' own eye lines spread that much."""
    kp_framing = framing.get("keypoints") or {}
    template, points = kp_framing.get("template"), kp_framing.get("template_points", TEMPLATE_POINTS)
    if template is None or keypoints is None or len(keypoints) <= max(points):
        roll = eye_roll(keypoints) if keypoints is not None and len(keypoints) >= 2 else 0.0
        return crop_rect(box, framing, roll, keypoints), roll
    s, angle, tx, ty = similarity(template, keypoints, points)
    c, k = math.cos(angle), math.sin(angle)
    cx, cy = s * (c * 0.5 - k * 0.5) + tx, s * (k * 0.5 + c * 0.5) + ty
    roll = 0.0 if abs(math.degrees(angle)) < MIN_ROLL_DEGREES else angle
    return (cx - s / 2, cy - s / 2, s, s), roll


def chip_canvas(path, index: int):
    """A training chip set into a plain canvas the way a face appears in a photo (PLACEMENTS,
    taken in turn by the chip's index in its split) -> (PIL canvas, chip's offset, chip's side)."""
    from PIL import Image

    side, mult = PLACEMENTS[index % len(PLACEMENTS)]
    with Image.open(path) as im:
        chip = im.convert("RGB").resize((side, side), Image.BOX)
    canvas = Image.new("RGB", (side * mult, side * mult), (CANVAS_GREY,) * 3)
    off = (side * mult - side) // 2
    canvas.paste(chip, (off, off))
    return canvas, off, side


# Below this tilt of the eye line the server does not turn the crop (src/image/crop.ts).
MIN_ROLL_DEGREES = 8.0


def eye_roll(keypoints) -> float:
    """The server's eyeRoll (src/image/crop.ts): radians from the right eye to the left, 0 under
    MIN_ROLL_DEGREES."""
    (rx, ry), (lx, ly) = keypoints[:2]
    roll = math.atan2(ly - ry, lx - rx)
    return 0.0 if abs(math.degrees(roll)) < MIN_ROLL_DEGREES else roll


def crop_pixels(im, rect, size: int) -> np.ndarray:
    """The server's pixels for a crop rectangle: the rectangle rounded to whole pixels, black
    past the image's edge (padded, not squashed), Pillow BOX down to size x size (the server's
    resize is the same rule: src/image/resize.ts, checked by test/parity.test.ts)."""
    from PIL import Image

    left, top, side, _ = rect
    im = im.crop((round(left), round(top), round(left + side), round(top + side)))
    return np.array(im.resize((size, size), Image.BOX), dtype=np.uint8)


DETECTIONS_DIR = Path(__file__).resolve().parent.parent / ".cache" / "detections"


def detect_chips(detector_dir: str, paths: list[str], tag: str, progress: bool = True) -> list[dict | None]:
    """The detector's largest face on each chip's canvas (chip_canvas, index = position in
    `paths`): {"box", "keypoints", "score"} in canvas pixels, or None where it found none.
    Cached under .cache/detections/ (UTKFace-derived: never in git), keyed by detector and chips."""
    import hashlib

    from .detector import Detector

    manifest = json.loads((Path(detector_dir) / "manifest.json").read_text())
    # `letterbox=area`: detections made before training's letterbox followed the server's resize are not reused.
    key = hashlib.sha1((f"{manifest['name']}/{manifest['version']}|{manifest.get('files', '')}|letterbox=area|" +
                        "\n".join(paths)).encode()).hexdigest()[:16]
    cache = DETECTIONS_DIR / f"{tag}-{key}.json"
    if cache.exists():
        return json.loads(cache.read_text())
    detector = Detector(detector_dir)
    it = enumerate(paths)
    if progress:
        from tqdm import tqdm
        it = tqdm(it, total=len(paths), desc=f"detecting faces on {len(paths)} chips", leave=False)
    out = []
    for i, path in it:
        canvas, _, _ = chip_canvas(path, i)
        dets = detector.detect(np.asarray(canvas))
        if not dets:
            out.append(None)
            continue
        best = max(dets, key=lambda d: d["box"][2] * d["box"][3])
        out.append({"box": [float(v) for v in best["box"]], "score": float(best["score"]),
                    "keypoints": [[float(x), float(y)] for x, y in best["keypoints"]]})
    DETECTIONS_DIR.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp")
    tmp.write_text(json.dumps(out))
    tmp.replace(cache)
    return out


def detector_framed_chip(path: str, index: int, detection: dict | None, framing: dict, size: int) -> np.ndarray | None:
    """What the server feeds the age model for this detection of the chip's canvas: the framed
    crop (crop_rect with the detector's keypoints) at `size`. None where the detector missed or
    the server would turn the crop (an eye line tilted past MIN_ROLL_DEGREES: rare on the upright
    chips), so the caller keeps the chip."""
    if detection is None:
        return None
    rect, roll = frame_face(detection["box"], detection["keypoints"], framing)
    if roll != 0.0:
        return None
    canvas, _, _ = chip_canvas(path, index)
    return crop_pixels(canvas, rect, size)


def measure_framing(detector_dir: str, data_root: str | None = None, split: str = "train",
                    limit: int | None = None, out: str | None = None) -> dict:
    """Median scale and centre shift that turn the detector's box into the chip, over `split`."""
    from PIL import Image

    from .detector import Detector

    root = Path(data_root) if data_root else Path(__file__).resolve().parents[2] / "shared" / "data" / "utkface"
    labels = root / "labels.csv"
    if not labels.exists():
        raise SystemExit(f"{labels} not found: the framing is measured on UTKFace's chips (--data-root)")
    detector = Detector(detector_dir)
    with labels.open() as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == split]
    rows = rows[:limit] if limit else rows
    scale, dx, dy, kdx, kdy, roll = [], [], [], [], [], []
    found = []  # (box, keypoints, chip offset, chip side) of every chip the detector found
    missed = 0
    for i, r in enumerate(rows):
        canvas, off, side = chip_canvas(root / "images" / r["file"], i)
        dets = detector.detect(np.asarray(canvas))
        if not dets:
            missed += 1
            continue
        best = max(dets, key=lambda d: d["box"][2] * d["box"][3])
        found.append((best["box"], best["keypoints"], off, side))
        x, y, w, h = best["box"]
        (rx, ry), (lx, ly) = best["keypoints"][:2]
        roll.append(math.degrees(math.atan2(ly - ry, lx - rx)))
        s = math.sqrt(w * h)
        scale.append(side / s)
        dx.append((off + side / 2 - (x + w / 2)) / s)
        dy.append((off + side / 2 - (y + h / 2)) / s)
        kx, ky, _, _ = _centre(best["box"], {"keypoints": {"offset_x": 0, "offset_y": 0}}, best["keypoints"])
        kdx.append((off + side / 2 - kx) / s)
        kdy.append((off + side / 2 - ky) / s)
    if not scale:
        raise SystemExit("the detector found no face on any chip")
    q = lambda a: [round(float(v), 4) for v in np.percentile(a, [10, 90])]
    # The keypoint template: where each of the detector's points lies on the chip, in units of
    # the chip's side (the median over the chips).
    chip_points = np.array([[((kx - off) / side, (ky - off) / side) for kx, ky in kps] for _, kps, off, side in found])
    template = [[round(float(v), 4) for v in np.median(chip_points[:, i], axis=0)] for i in range(chip_points.shape[1])]
    box_framing = {"scale": float(np.median(scale)), "offset_x": float(np.median(dx)), "offset_y": float(np.median(dy)),
                   "keypoints": {"offset_x": float(np.median(kdx)), "offset_y": float(np.median(kdy))}}
    result = {
        "scale": round(float(np.median(scale)), 4),
        "offset_x": round(float(np.median(dx)), 4),
        "offset_y": round(float(np.median(dy)), 4),
        "keypoints": {"offset_x": round(float(np.median(kdx)), 4), "offset_y": round(float(np.median(kdy)), 4),
                      "template": template, "template_points": list(TEMPLATE_POINTS)},
        "measured": {
            "command": f"python -m training detector framing --detector {detector_dir} --split {split}"
                       + (f" --limit {limit}" if limit else ""),
            "detector": f"{detector.manifest['name']}/{detector.manifest['version']}",
            "dataset": "utkface", "split": split, "chips": len(rows), "missed": missed,
            "placements": [f"{s} px chip centred on a {s * m} px grey canvas" for s, m in PLACEMENTS],
            "scale_p10_p90": q(scale), "offset_x_p10_p90": q(dx), "offset_y_p10_p90": q(dy),
            "keypoints_offset_x_p10_p90": q(kdx), "keypoints_offset_y_p10_p90": q(kdy),
            # The chips are aligned: the detector's eye line is level on them, within this spread.
            "eye_roll_degrees_median": round(float(np.median(roll)), 2), "eye_roll_degrees_p10_p90": q(roll),
        },
    }
    # How far each framing's crop lies from the chip itself (centre in chip sides, |log side
    # ratio|): the box with the eyes-and-mouth centre, against the keypoint similarity.
    errors = {"box": ([], []), "template": ([], [])}
    for box, kps, off, side in found:
        for name, rect in (("box", crop_rect(box, box_framing, 0.0, kps)), ("template", frame_face(box, kps, result)[0])):
            errors[name][0].append(math.hypot(rect[0] + rect[2] / 2 - off - side / 2, rect[1] + rect[3] / 2 - off - side / 2) / side)
            errors[name][1].append(abs(math.log(rect[2] / side)))
    result["measured"]["crop_error_p50_p90"] = {
        name: {"centre": [round(float(v), 4) for v in np.percentile(c, [50, 90])],
               "side_log": [round(float(v), 4) for v in np.percentile(z, [50, 90])]} for name, (c, z) in errors.items()}
    if out:
        Path(out).write_text(json.dumps(result, indent=2) + "\n")
    return result
