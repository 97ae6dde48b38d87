"""Which detector finds the faces of a group photo, and at what cost: MediaPipe's short-range
BlazeFace (served) over the whole photo plus tiles of 1/2, 1/3, 1/4 of the long side, against the
full-range model (192 px), alone and with half tiles. On group photos composed from UTKFace `val`
faces (the choice is made on val; bench:photos reports on test), in Python onnxruntime with the
same decoding as the server (training/detector.py). Times are this machine's and only compare
strategies within one run.

  python -m training detector convert --variant full --out runs/detectors/blazeface-full-range/1
  training/.venv/bin/python training/scripts/detector_strategies.py --full runs/detectors/blazeface-full-range/1
"""
from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from training.data import UTKFACE_ROOT  # noqa: E402
from training.detector import Detector, area_resize, decode, weighted_nms  # noqa: E402

FRAMING = Path(__file__).resolve().parents[1] / "framings" / "utkface-blazeface-short-range-1.json"
# (width, height, faces, smallest and largest face box as a fraction of the long side, tilt up to, degrees)
PHOTOS = [(1920, 1440, 16, 0.04, 0.07, 0), (1920, 1080, 12, 0.04, 0.10, 35), (2448, 3264, 10, 0.04, 0.10, 20),
          (4000, 3000, 20, 0.04, 0.08, 35), (4000, 3000, 8, 0.04, 0.10, 0), (3024, 4032, 14, 0.04, 0.10, 30)]


def run_square(det: Detector, img: np.ndarray, sq) -> list[dict]:
    """One detector pass over a square of the photo (it may reach past the photo: black)."""
    S = det.size
    lo, hi = det.manifest["input"]["range"]
    t = (area_resize(img, sq, S).astype(np.float64) * ((hi - lo) / 255) + lo).astype(np.float32).transpose(2, 0, 1)[None]
    reg, cls = det.raw(t)
    x, y, w, h = sq
    return [{"box": (x + d["box"][0] * w, y + d["box"][1] * h, (d["box"][2] - d["box"][0]) * w, (d["box"][3] - d["box"][1]) * h),
             "score": d["score"]}
            for d in weighted_nms(decode(reg, cls, det.anchor_xy, S, det.manifest["score_threshold"]), det.manifest["nms_iou"])]


def tiles(W: int, H: int, fraction: float) -> list[tuple]:
    """src/detector/tiles.ts tileRects."""
    t = math.ceil(max(W, H) * fraction)
    if t < 160:
        return []

    def starts(L):
        if L <= t:
            return [(L - t) / 2]
        n = math.ceil((L - t) / (2 * t / 3)) + 1
        return [(L - t) * i / (n - 1) for i in range(n)]
    return [(x, y, t, t) for y in starts(H) for x in starts(W)]


def inter(a, b) -> float:
    return max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])) * max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))


def iou(a, b) -> float:
    i = inter(a, b)
    return i / (a[2] * a[3] + b[2] * b[3] - i)


def detect(det: Detector, img: np.ndarray, fractions) -> tuple[list[dict], int]:
    """The whole photo, then each level of tiles; a tile's face joins, and a box holding two smaller
    faces leaves, as src/detector/tiles.ts mergeTiles does."""
    H, W = img.shape[:2]
    side = max(W, H)
    kept, runs = run_square(det, img, ((W - side) / 2, (H - side) / 2, side, side)), 1
    for f in fractions:
        found = []
        for tl in tiles(W, H, f):
            runs += 1
            m = 0.02 * tl[2]
            found += [d for d in run_square(det, img, tl)
                      if d["box"][0] >= tl[0] + m and d["box"][1] >= tl[1] + m and d["box"][0] + d["box"][2] <= tl[0] + tl[2] - m
                      and d["box"][1] + d["box"][3] <= tl[1] + tl[3] - m and d["box"][2] <= tl[2] / 2]
        for d in sorted(found, key=lambda d: -d["score"]):
            if not any(max(k["box"][2], d["box"][2]) <= 2 * min(k["box"][2], d["box"][2])
                       and inter(k["box"], d["box"]) > 0.5 * min(k["box"][2] * k["box"][3], d["box"][2] * d["box"][3]) for k in kept):
                kept.append(d)
        kept = [k for k in kept if sum(1 for d in kept if d is not k and d["box"][2] < k["box"][2] / 2
                                       and inter(k["box"], d["box"]) > 0.8 * d["box"][2] * d["box"][3]) < 2]
    return kept, runs


def group_photo(rng, rows, framing, W, H, n, lo, hi, tilt):
    """n val faces in rows on a colour ramp, each box lo..hi of the long side; truth boxes as bench:photos draws them."""
    t = (np.mgrid[0:H, 0:W][1] / W)[..., None]
    c1, c2 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    canvas = (c1 * (1 - t) + c2 * t).astype(np.uint8)
    cols = math.ceil(math.sqrt(n * W / H))
    cw, ch = W / cols, H / math.ceil(n / cols)
    truth = []
    for i in range(n):
        r = rows[rng.integers(len(rows))]
        chip_side = min(int(round(rng.uniform(lo, hi) * max(W, H) * framing["scale"])), int(min(cw, ch) / 1.5))
        chip = Image.open(Path(UTKFACE_ROOT) / "images" / r["file"]).convert("RGB").resize((chip_side, chip_side), Image.BOX)
        ang = float(rng.uniform(-tilt, tilt)) if tilt else 0.0
        turned = np.array(chip.convert("RGBA").rotate(-ang, resample=Image.BILINEAR, expand=True))
        cx = (i % cols + 0.5 + rng.uniform(-0.1, 0.1)) * cw
        cy = (i // cols + 0.5 + rng.uniform(-0.1, 0.1)) * ch
        h, w = turned.shape[:2]
        x0, y0 = int(round(cx - w / 2)), int(round(cy - h / 2))
        alpha = turned[..., 3:4] / 255.0
        region = canvas[y0:y0 + h, x0:x0 + w]
        region[:] = (region * (1 - alpha) + turned[..., :3] * alpha).astype(np.uint8)
        b, a = chip_side / framing["scale"], math.radians(ang)
        ox, oy = -framing["offset_x"] * b, -framing["offset_y"] * b
        bx, by = cx + math.cos(a) * ox - math.sin(a) * oy, cy + math.sin(a) * ox + math.cos(a) * oy
        truth.append(((bx - b / 2, by - b / 2, b, b), b / max(W, H)))
    return canvas, truth


def main():
    import json

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--short", default="models/detectors/blazeface-short-range/1")
    ap.add_argument("--full", default=None, help="a converted full-range detector (see above); left out without it")
    ap.add_argument("--seed", type=int, default=5)
    args = ap.parse_args()
    framing = json.loads(FRAMING.read_text())["framing"]
    with open(Path(UTKFACE_ROOT) / "labels.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == "val"]
    short = Detector(args.short)
    strategies = {"short, whole + 1/2 tiles (before)": (short, [0.5]), "short, whole + 1/3": (short, [1 / 3]),
                  "short, whole + 1/4": (short, [0.25]), "short, whole + 1/2 + 1/4 (served)": (short, [0.5, 0.25])}
    if args.full:
        full = Detector(args.full)
        strategies |= {"full range, whole": (full, []), "full range, whole + 1/2": (full, [0.5])}
    bands = [("under 5 %", 0.0, 0.05), ("5–7 %", 0.05, 0.07), ("7 % and over", 0.07, 1.0)]
    res = {k: {"hit": {b[0]: 0 for b in bands}, "n": {b[0]: 0 for b in bands}, "false": 0, "runs": [], "s": 0.0} for k in strategies}
    rng = np.random.default_rng(args.seed)
    for W, H, n, lo, hi, tilt in PHOTOS:
        img, truth = group_photo(rng, rows, framing, W, H, n, lo, hi, tilt)
        for k, (det, fractions) in strategies.items():
            t0 = time.perf_counter()
            found, runs = detect(det, img, fractions)
            res[k]["s"] += time.perf_counter() - t0
            res[k]["runs"].append(runs)
            used = set()
            for box, frac in truth:
                band = next(b[0] for b in bands if b[1] <= frac < b[2])
                res[k]["n"][band] += 1
                best = max((j for j in range(len(found)) if j not in used), key=lambda j: iou(box, found[j]["box"]), default=None)
                if best is not None and iou(box, found[best]["box"]) >= 0.5:
                    used.add(best)
                    res[k]["hit"][band] += 1
            res[k]["false"] += len(found) - len(used)
    print(f"{len(PHOTOS)} group photos of val faces (2-12 megapixels, {sum(p[2] for p in PHOTOS)} faces)\n")
    print("| detector | " + " | ".join(f"recall, box {b[0]}" for b in bands) + " | false faces | detector runs per photo | time per photo (this machine) |")
    print("|---|" + "---|" * (len(bands) + 3))
    for k, r in res.items():
        print(f"| {k} | " + " | ".join(f"{r['hit'][b[0]]}/{r['n'][b[0]]}" for b in bands)
              + f" | {r['false']} | {min(r['runs'])}–{max(r['runs'])} | {r['s'] / len(PHOTOS):.2f} s |")


if __name__ == "__main__":
    main()
