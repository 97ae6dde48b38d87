"""What a capture does to a face, defined once: the capture benchmark's images (`python -m
training capture write`, read by bench/capture.mjs), the training faces' on-the-fly degradation
(train.py, `capture`), and the release's calibration faces (calibration.py) all come from
`degrade` here, so what is trained is what is measured.

Each kind is a function of an aligned face (uint8 [H, W, 3] RGB, the face filling the image the
way UTKFace's chips frame it: eyes at about 0.25-0.35 of the height, chin near the bottom) and a
severity parameter in the kind's own unit. KINDS holds one entry per kind with all it knows:
the function, the benchmark's two named levels, the range training draws from (it spans both
levels and goes past them), which end of that range is mild, and how a training draw jitters.

Capture quality (`input_quality`) is what the face crop itself shows: its size, exposure,
sharpness, noise and how much of it is flat (a band, a mask, clipped light). The server computes
the same numbers on the same crop (src/model/quality.ts, held to these by
test/fixtures/parity/quality.json).
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from PIL import Image, ImageFilter


# ---------------------------------------------------------------------------------------------
# Degradations
# ---------------------------------------------------------------------------------------------

def small(img: np.ndarray, side_px: float, rng: np.random.Generator) -> np.ndarray:
    """The face at `side_px` pixels across, area-averaged, and *sent at that size*: a face
    across the room. The model's input is then scaled up from it (the server's resize)."""
    side = max(8, int(round(side_px)))
    h, w = img.shape[:2]
    size = (max(1, round(w * side / max(h, w))), max(1, round(h * side / max(h, w))))
    return np.array(Image.fromarray(img).resize(size, Image.BOX), dtype=np.uint8)


def blur(img: np.ndarray, sigma_frac: float, rng: np.random.Generator) -> np.ndarray:
    """Out of focus or shaken: a Gaussian blur of sigma = `sigma_frac` of the face's side."""
    radius = sigma_frac * max(img.shape[:2])
    return np.array(Image.fromarray(img).filter(ImageFilter.GaussianBlur(radius)), dtype=np.uint8)


def dark(img: np.ndarray, light: float, rng: np.random.Generator) -> np.ndarray:
    """Low light: the scene's linear light times `light`, then the sensor's noise. A camera
    that meets too little light amplifies its signal, and its noise with it: the noise's sigma
    (in 8-bit steps, after gamma) grows as the light falls (2 steps at light 1, 12 at 0.05),
    with a chroma part, as a phone's low-light frame shows."""
    x = (img.astype(np.float64) / 255.0) ** 2.2 * light
    x = x ** (1 / 2.2) * 255.0
    sigma = 2.0 + 10.0 * min(1.0, max(0.0, math.log(1.0 / light) / math.log(20.0)))
    luma_noise = rng.normal(0.0, sigma, size=img.shape[:2] + (1,))
    chroma_noise = rng.normal(0.0, sigma * 0.5, size=img.shape)
    return np.clip(np.round(x + luma_noise + chroma_noise), 0, 255).astype(np.uint8)


def jpeg(img: np.ndarray, quality: float, rng: np.random.Generator) -> np.ndarray:
    """Recompressed hard (a messaging app, a cheap webcam): JPEG at `quality`, 4:2:0."""
    return np.array(Image.open(io.BytesIO(jpeg_bytes(img, int(round(quality))))).convert("RGB"), dtype=np.uint8)


def jpeg_bytes(img: np.ndarray, quality: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=max(1, min(95, quality)), subsampling=2)
    return buf.getvalue()


def gray(img: np.ndarray, saturation: float, rng: np.random.Generator) -> np.ndarray:
    """Colour lost: `saturation` of the chroma kept (0 = grayscale, ITU-R 601 luma)."""
    x = img.astype(np.float64)
    luma = (x @ np.array([0.299, 0.587, 0.114]))[..., None]
    return np.clip(np.round(luma + saturation * (x - luma)), 0, 255).astype(np.uint8)


EYES_ROWS = (0.19, 0.41)            # the sunglasses' band, top and bottom, as fractions of the height
MASK_COLOUR = (226, 232, 238)


def eyes(img: np.ndarray, opacity: float, rng: np.random.Generator, rows: tuple[float, float] = EYES_ROWS) -> np.ndarray:
    """Sunglasses: a dark band over the eyes (`rows` of the face, columns 0.08-0.92), `opacity`
    1 = opaque, less = tinted lenses the eyes show through."""
    return _band(img, rows[0], rows[1], 0.08, 0.92, (12, 12, 14), opacity)


def eyes_jitter(rng: np.random.Generator) -> dict:
    """Training moves the band a little, and stretches it."""
    shift = rng.uniform(-0.03, 0.03)
    return {"rows": (EYES_ROWS[0] + shift, EYES_ROWS[1] + shift + rng.uniform(-0.02, 0.02))}


def lower(img: np.ndarray, top: float, rng: np.random.Generator, colour: tuple[int, int, int] = MASK_COLOUR) -> np.ndarray:
    """A face mask: an opaque light band from `top` (fraction of the height: 0.5 = from the
    nose, 0.64 = from the mouth) to the bottom, columns 0.1-0.9."""
    return _band(img, top, 1.0, 0.10, 0.90, colour, 1.0)


def lower_jitter(rng: np.random.Generator) -> dict:
    """Training varies the mask's colour."""
    return {"colour": tuple(int(c) for c in rng.integers(170, 250, size=3))}


def _band(img, top, bottom, left, right, colour, opacity) -> np.ndarray:
    h, w = img.shape[:2]
    out = img.astype(np.float64)
    r0, r1 = int(round(top * h)), int(round(bottom * h))
    c0, c1 = int(round(left * w)), int(round(right * w))
    out[r0:r1, c0:c1] = (1 - opacity) * out[r0:r1, c0:c1] + opacity * np.array(colour, dtype=np.float64)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Kind:
    """One capture kind, all it is known by."""
    degrade: Callable[..., np.ndarray]   # (face uint8 [H, W, 3], parameter, rng, **jitter) -> face
    levels: dict[str, float]             # the benchmark's conditions: {"moderate": p, "severe": p}
    train_range: tuple[float, float, str]  # training's draws: (low, high, "lin" | "log"), past both levels
    mild_end: str                        # "low" | "high": the end of train_range a low severity stays near
    jitter: Callable[[np.random.Generator], dict] | None = None   # a training draw's extra arguments

    def __post_init__(self):
        if self.mild_end not in ("low", "high") or self.train_range[2] not in ("lin", "log"):
            raise ValueError(f"a capture kind's mild_end is 'low' or 'high' and its scale 'lin' or 'log': {self}")


# The benchmark's conditions are two levels of every kind: "moderate" is what an ordinary phone
# photo often shows; "severe" what a poor or deliberate capture shows. The order is the
# conditions' order, which each face's seed depends on (condition_seed).
KINDS = {
    # face side, px: the mild end is the larger face
    "small": Kind(small, {"moderate": 48, "severe": 32}, (24.0, 96.0, "log"), mild_end="high"),
    # sigma / face side (2.4 and 5 px on a 200 px face)
    "blur": Kind(blur, {"moderate": 0.012, "severe": 0.025}, (0.004, 0.032, "lin"), mild_end="low"),
    # linear light kept
    "dark": Kind(dark, {"moderate": 0.2, "severe": 0.06}, (0.04, 0.5, "log"), mild_end="high"),
    # JPEG quality
    "jpeg": Kind(jpeg, {"moderate": 20, "severe": 7}, (5.0, 40.0, "log"), mild_end="high"),
    # saturation kept
    "gray": Kind(gray, {"moderate": 0.4, "severe": 0.0}, (0.0, 0.6, "lin"), mild_end="high"),
    # band opacity
    "eyes": Kind(eyes, {"moderate": 0.7, "severe": 1.0}, (0.55, 1.0, "lin"), mild_end="low", jitter=eyes_jitter),
    # band top: the mild end is the lower band (0.72 of the height covers less than 0.45)
    "lower": Kind(lower, {"moderate": 0.64, "severe": 0.5}, (0.45, 0.72, "lin"), mild_end="high", jitter=lower_jitter),
}
LEVELS = {name: kind.levels for name, kind in KINDS.items()}        # as the benchmark's index.json writes them
CONDITIONS = ["clean"] + [f"{k}-{lvl}" for k in KINDS for lvl in ("moderate", "severe")]
# The benchmark's bar for adults who pass names these the mild conditions.
MILD = ["blur-moderate", "gray-moderate", "gray-severe", "jpeg-moderate", "small-moderate"]


def condition_parameter(condition: str) -> tuple[str, float | None]:
    """'dark-severe' -> ('dark', 0.06); 'clean' -> ('clean', None)."""
    if condition == "clean":
        return "clean", None
    kind, level = condition.rsplit("-", 1)
    return kind, KINDS[kind].levels[level]


def degrade(img: np.ndarray, kind: str, parameter: float | None, rng: np.random.Generator,
            jitter: bool = False) -> np.ndarray:
    """One face through one capture kind: uint8 [H, W, 3] -> uint8 [H', W', 3] (a smaller image
    for 'small', the same size otherwise). `jitter`: training's draws also move the bands a little
    and vary the mask's colour (the kind's `jitter`); the benchmark's faces keep them fixed."""
    if kind == "clean":
        return img
    k = ALL_KINDS[kind]
    extra = k.jitter(rng) if jitter and k.jitter else {}
    return k.degrade(img, parameter, rng, **extra)


def degrade_condition(img: np.ndarray, condition: str, seed: int) -> np.ndarray:
    """A benchmark condition, deterministic per (face, condition) through `seed`."""
    kind, p = condition_parameter(condition)
    return degrade(img, kind, p, np.random.default_rng(seed))


def condition_seed(base: int, index: int, condition: str) -> int:
    """A face's seed for one condition: stable across runs and independent of the other faces."""
    return (base * 1_000_003 + index * 101 + CONDITIONS.index(condition)) % (2**63)


# ---------------------------------------------------------------------------------------------
# On-the-fly training degradation
# ---------------------------------------------------------------------------------------------

@dataclass
class CaptureConfig:
    share: float = 0.0                  # share of training faces degraded (0 = off)
    kinds: tuple[str, ...] = tuple(KINDS)   # any of ALL_KINDS: the capture kinds and VIEW_KINDS
    severity: float = 1.0               # 0..1: how far into each kind's train_range draws go (1 = all
                                        # of it); a schedule can raise it (severity_warmup_epochs)
    severity_warmup_epochs: float = 0.0
    teacher_weight: float | None = None  # target mix for degraded faces (None = the run's teacher_weight):
                                        # the teacher answered on the clean face, so more of it tells the
                                        # student what the face was rather than what it now looks like

    def validate(self):
        _check_kinds(self.kinds)


def _check_kinds(kinds) -> None:
    unknown = [k for k in kinds if k not in ALL_KINDS]
    if unknown:
        raise ValueError(f"unknown capture kinds {unknown}: choose from {sorted(ALL_KINDS)}")


def train_parameter(kind: str, u: float, severity: float) -> float:
    """u in [0, 1) -> a parameter of `kind` in its training range, the first `severity` of it
    (the milder end first)."""
    lo, hi, scale = ALL_KINDS[kind].train_range
    if ALL_KINDS[kind].mild_end == "high":   # a larger face, more light, higher quality...: draw from `hi` down
        lo, hi = hi, lo
    t = u * severity
    if scale == "log":
        return float(math.exp(math.log(lo) + t * (math.log(hi) - math.log(lo))))
    return float(lo + t * (hi - lo))


def degrade_batch(faces, cfg: CaptureConfig, seed: int, severity: float | None = None):
    """uint8 [B, S, S, 3] (torch, CPU) -> (the same with cfg.share of the faces degraded, at S
    again as the server would scale them (Pillow BOX), and bool [B]: which). Deterministic in `seed`."""
    import torch

    _check_kinds(cfg.kinds)
    rng = np.random.default_rng(seed)
    b, s = faces.shape[0], faces.shape[1]
    picked = rng.random(b) < cfg.share
    kinds = [cfg.kinds[i] for i in rng.integers(0, len(cfg.kinds), size=b)]
    us = rng.random(b)
    sev = cfg.severity if severity is None else severity
    if not picked.any():
        return faces, torch.from_numpy(picked)
    out = faces.clone()
    arr = faces.numpy()
    for i in np.nonzero(picked)[0]:
        img = degrade(arr[i], kinds[i], train_parameter(kinds[i], us[i], sev), rng, jitter=True)
        if img.shape[0] != s:
            img = np.array(Image.fromarray(img).resize((s, s), Image.BOX), dtype=np.uint8)
        out[i] = torch.from_numpy(img)
    return out, torch.from_numpy(picked)


# ---------------------------------------------------------------------------------------------
# Capture quality
# ---------------------------------------------------------------------------------------------

ANALYSIS_SIZE = 64          # the face is read at (at most) this many pixels across
CENTRE = (0.15, 0.85)       # the part of the crop that is face, not background or hair
FLAT_STEPS = 2.0            # luma steps a neighbourhood may vary by and still count as flat


def luma(rgb: np.ndarray) -> np.ndarray:
    """uint8 [H, W, 3] -> float64 [H, W] in 0..255, ITU-R 601."""
    x = rgb.astype(np.float64)
    return 0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2]


def analysis_size(face_px: float) -> int:
    """The side the measures read the face at: ANALYSIS_SIZE, or the face's own side if smaller
    (scaling a small face up would invent its detail), and at least 16 so the 5x5 windows fit."""
    return int(max(16, min(ANALYSIS_SIZE, round(face_px))))


def measure_quality(face: np.ndarray, face_px: float, detector_score: float | None = None,
                    block: float | None = None, pose: tuple[float, float] | None = None) -> dict:
    """The capture measures of one face. `face`: uint8 [A, A, 3], the model's input shrunk
    (Pillow BOX) to A = analysis_size(face_px); face_px: the crop's side in source pixels;
    `block`: blockiness of the crop in the source image; `pose`: head_pose of the detector's
    keypoints (None without a detector). Returns the raw measures; quality_score turns them into
    a score and reasons."""
    y = luma(face)
    n = y.shape[0]
    c0, c1 = int(math.floor(CENTRE[0] * n)), int(math.ceil(CENTRE[1] * n))
    centre = y[c0:c1, c0:c1]
    brightness = float(centre.mean()) / 255.0
    contrast = float(centre.std()) / 255.0
    # Sharpness: gradient energy at this scale over the energy at half of it (2x2 means). A
    # blurred face has lost its finest scale (ratio towards 1); edges and skin detail give 2-4.
    half = y[: n // 2 * 2, : n // 2 * 2].reshape(n // 2, 2, n // 2, 2).mean(axis=(1, 3))
    e1 = _gradient_energy(y, CENTRE)
    e2 = _gradient_energy(half, CENTRE)
    sharpness = float(e1 / e2) if e2 > 1e-9 else 0.0
    # Noise: Immerkaer's estimate (1996) of the sigma of white noise, in 8-bit steps, over the centre.
    k = (centre[:-2, :-2] - 2 * centre[:-2, 1:-1] + centre[:-2, 2:]
         - 2 * centre[1:-1, :-2] + 4 * centre[1:-1, 1:-1] - 2 * centre[1:-1, 2:]
         + centre[2:, :-2] - 2 * centre[2:, 1:-1] + centre[2:, 2:])
    noise = float(np.abs(k).mean() * math.sqrt(math.pi / 2) / 6.0)
    # Flat: centre pixels whose 5x5 neighbourhood varies by at most 2 steps: a solid band, a
    # mask, tape, or light/shadow clipped to one value. Skin at this scale varies more, and a
    # hard JPEG's 8x8 blocks are smaller than the window at this scale.
    win = np.stack([y[c0 - 2 + dy:c1 - 2 + dy, c0 - 2 + dx:c1 - 2 + dx] for dy in range(5) for dx in range(5)])
    flat = float(((win.max(0) - win.min(0)) <= FLAT_STEPS).mean())
    along, across = light_colour(face[c0:c1, c0:c1])
    return {"face_px": round(float(face_px), 1), "brightness": round(brightness, 4),
            "contrast": round(contrast, 4), "sharpness": round(sharpness, 4),
            "noise": round(noise, 3), "flat": round(flat, 4),
            "chroma_along": round(along, 4), "chroma_across": round(across, 4),
            "blockiness": None if block is None else round(float(block), 4),
            "detector_score": None if detector_score is None else round(float(detector_score), 4),
            "yaw": None if pose is None else round(float(pose[0]), 4),
            "pitch": None if pose is None else round(float(pose[1]), 4)}


def head_pose(keypoints) -> tuple[float, float]:
    """How far the head is turned and tilted, from the detector's keypoints (right eye, left eye,
    nose tip, ...; any frame, any roll): the nose tip's offset from the eyes' midpoint in the
    eyes' own frame, over the eyes' distance. yaw: sideways (0 facing the camera; 99 % of `val`
    chips within +-0.31); pitch: down the face (0.56 for the median chip, 0.28-0.75 for 99 %;
    less when the head tilts back, more when it bows)."""
    (rx, ry), (lx, ly), (nx, ny) = keypoints[0], keypoints[1], keypoints[2]
    ex, ey = (rx + lx) / 2, (ry + ly) / 2
    dist = max(math.hypot(lx - rx, ly - ry), 1e-9)
    ux, uy = (lx - rx) / dist, (ly - ry) / dist           # along the eye line
    dx, dy = nx - ex, ny - ey
    return (dx * ux + dy * uy) / dist, (-dx * uy + dy * ux) / dist


def blockiness(image: np.ndarray, rect=None, lines: int = 64) -> float:
    """How much a JPEG's 8x8 grid shows in the crop: the mean luma step across block boundaries
    (columns and rows at multiples of 8 of the *source* image, where the encoder put them) over
    the mean step elsewhere, each plus half a step. About 1 for an image with no grid (a PNG, a
    re-scaled photo), 1.1-1.4 for UTKFace's own JPEG chips, 2+ at quality 20, 3+ at 7. `image`
    uint8 [H, W, 3] as stored (no EXIF turn), `rect` (x, y, w, h) in whole pixels (None: all);
    every k-th line is read so that about `lines` rows and columns are."""
    h, w = image.shape[:2]
    x, y, cw, ch = rect if rect is not None else (0, 0, w, h)
    x0, y0, x1, y1 = max(0, x), max(0, y), min(w, x + cw), min(h, y + ch)
    if x1 - x0 < 9 or y1 - y0 < 9:
        return 1.0
    lum = luma(image[y0:y1, x0:x1])
    rs, cs = max(1, (y1 - y0) // lines), max(1, (x1 - x0) // lines)
    dh = np.abs(np.diff(lum[::rs, :], axis=1))                  # steps between columns x-1 and x
    dv = np.abs(np.diff(lum[:, ::cs], axis=0))
    on_h = np.arange(x0 + 1, x1) % 8 == 0
    on_v = np.arange(y0 + 1, y1) % 8 == 0
    across = np.concatenate([dh[:, on_h].ravel(), dv[on_v, :].ravel()])
    within = np.concatenate([dh[:, ~on_h].ravel(), dv[~on_v, :].ravel()])
    return float((across.mean() + 0.5) / (within.mean() + 0.5))


# The mean chroma (YCbCr's Cb, Cr over luma) of skin under white light: the median of `val` chips'
# face centres. Skin of every tone lies near this direction; light of another colour moves the
# face off it (cyan, green, blue and magenta lamps across it, a strong blue cast against it).
SKIN_CHROMA = (-0.1292, 0.1793)


def light_colour(centre_rgb: np.ndarray) -> tuple[float, float]:
    """The face centre's mean chroma over its luma, (along, across) the direction of skin under
    white light: gray reads (0, 0), `val` chips along 0.00-0.46 (1st-99th percentile) and across
    under 0.11."""
    c = centre_rgb.reshape(-1, 3).astype(np.float64).mean(axis=0)
    y = max(float(c @ np.array([0.299, 0.587, 0.114])), 1.0)
    cb = (-0.168736 * c[0] - 0.331264 * c[1] + 0.5 * c[2]) / y
    cr = (0.5 * c[0] - 0.418688 * c[1] - 0.081312 * c[2]) / y
    norm = math.hypot(*SKIN_CHROMA)
    ux, uy = SKIN_CHROMA[0] / norm, SKIN_CHROMA[1] / norm
    return float(cb * ux + cr * uy), float(abs(cb * uy - cr * ux))


def _gradient_energy(y: np.ndarray, region) -> float:
    n = y.shape[0]
    c0, c1 = int(math.floor(region[0] * n)), int(math.ceil(region[1] * n))
    c1 = min(c1, n - 1)
    dx = y[c0:c1, c0 + 1:c1 + 1] - y[c0:c1, c0:c1]
    dy = y[c0 + 1:c1 + 1, c0:c1] - y[c0:c1, c0:c1]
    return float((dx * dx + dy * dy).mean())


def _ramp(v: float, bad: float, good: float) -> float:
    """0 at `bad`, 1 at `good`, linear between (either direction)."""
    t = (v - bad) / (good - bad)
    return float(min(1.0, max(0.0, t)))


LIGHT_REASON = "unusual light colour: use white light"
POSE_REASON = "head turned or tilted: face the camera"

# Each measure's ramp from "cannot carry an answer" (0) to "as good as a training chip" (1),
# and the reason a person is shown when its part of the score is under REASON_BELOW. Chosen on
# `val` chips and their degraded copies (docs/capture.md has the distributions).
RAMPS = {
    "face_px": ("too small: come closer", 24.0, 64.0),
    "dark": ("too dark: add light", 0.12, 0.35),        # brightness, 0..1
    "bright": ("too bright: avoid direct light", 0.97, 0.85),
    "sharpness": ("blurred: hold still and focus", 0.28, 0.36),
    "noise": ("grainy: add light", 0.30, 0.12),        # noise sigma / (255 * contrast)
    "flat": ("face covered: remove sunglasses or mask", 0.18, 0.06),
    "blockiness": ("compressed: send the original photo", 3.0, 1.5),
    "detector_score": ("face unclear: face the camera", 0.5, 0.75),
    # Light of an unusual colour (bar, stage and party lamps; a white balance gone wrong): the
    # face's chroma off skin's direction, against it, or far along it. Each ramp starts past what
    # 99 % of `val` chips show, so a face in ordinary light keeps its score.
    "light_hue": (LIGHT_REASON, 0.22, 0.12),          # chroma across skin's direction
    "light_blue": (LIGHT_REASON, -0.12, 0.0),         # chroma against it
    "light_red": (LIGHT_REASON, 0.75, 0.55),          # chroma far along it
    # A head turned or tilted further than the training faces (head_pose): each ramp starts past
    # what 99 % of `val` chips show (yaw within +-0.31, pitch 0.28-0.75).
    "turned": (POSE_REASON, 0.55, 0.31),              # |yaw|
    "tilted_back": (POSE_REASON, 0.12, 0.28),         # pitch
    "bowed": (POSE_REASON, 0.95, 0.75),               # pitch
}
REASON_BELOW = 0.5


def quality_score(m: dict) -> dict:
    """Measures -> {"score": 0..1, "parts": {...}, "reasons": [...]}: the score is the product
    of the parts, so any one lost property pulls it down."""
    # Noise counts against the face's own contrast: 4 steps of grain hide a dim, flat face but not
    # a well-lit one, and skin texture at small sizes reads as "noise" too.
    value = {"face_px": m["face_px"], "dark": m["brightness"], "bright": m["brightness"],
             "sharpness": m["sharpness"], "noise": m["noise"] / max(255.0 * m["contrast"], 1.0), "flat": m["flat"],
             "blockiness": m.get("blockiness"), "detector_score": m.get("detector_score"),
             "light_hue": m.get("chroma_across"), "light_blue": m.get("chroma_along"), "light_red": m.get("chroma_along"),
             "turned": None if m.get("yaw") is None else abs(m["yaw"]), "tilted_back": m.get("pitch"), "bowed": m.get("pitch")}
    parts, reasons = {}, []
    for name, (reason, bad, good) in RAMPS.items():
        if value[name] is None:
            continue
        parts[name] = round(_ramp(value[name], bad, good), 4)
        if parts[name] < REASON_BELOW and reason not in reasons:
            reasons.append(reason)
    score = 1.0
    for p in parts.values():
        score *= p
    return {"score": round(score, 4), "parts": parts, "reasons": reasons}


def input_quality(model_input: np.ndarray, face_px: float, detector_score: float | None = None,
                  block: float | None = None, pose: tuple[float, float] | None = None) -> dict:
    """The server's quality of a face: measured on the model's input (uint8 [S, S, 3], the crop
    as the model reads it) shrunk by Pillow BOX to analysis_size(face_px), where face_px is the
    crop's side in source pixels (sqrt(w * h)), with the crop's blockiness in its source image
    -> measures + score, as POST /v1/age reports them."""
    a = analysis_size(face_px)
    face = model_input if model_input.shape[0] == a else np.array(
        Image.fromarray(model_input).resize((a, a), Image.BOX), dtype=np.uint8)
    m = measure_quality(face, face_px, detector_score, block, pose)
    return {**m, **quality_score(m)}


def face_quality(image: np.ndarray, model_size: int, detector_score: float | None = None) -> dict:
    """input_quality of a whole image sent as the face (crop=image): the image resized to the
    model's input the way the server resizes it (Pillow BOX)."""
    h, w = image.shape[:2]
    model_input = np.array(Image.fromarray(image).resize((model_size, model_size), Image.BOX), dtype=np.uint8)
    return input_quality(model_input, math.sqrt(w * h), detector_score, blockiness(image))


# ---------------------------------------------------------------------------------------------
# The capture benchmark's images
# ---------------------------------------------------------------------------------------------

BENCH_SEED = 1          # the benchmark's draws on `test`; training and calibration use others


def write_benchmark(data_root: str, out: str, split: str = "test", faces: int | None = None,
                    seed: int = BENCH_SEED) -> dict:
    """Every face of `split` (or `faces` of them, evenly spaced in labels.csv order) clean and
    under every degraded condition, as the files a person would send: PNG, and the JPEG kind as
    its JPEG bytes. Writes OUT/images/<row>-<condition>.(png|jpg) and OUT/index.json (the faces'
    labels, the conditions, the seed). UTKFace-derived: keep it under .cache/, never in git."""
    import csv
    import json
    from pathlib import Path

    rows = [r for r in csv.DictReader(open(Path(data_root) / "labels.csv")) if r["split"] == split]
    if faces is not None and faces < len(rows):
        rows = [rows[int(i * len(rows) / faces)] for i in range(faces)]
    d = Path(out)
    (d / "images").mkdir(parents=True, exist_ok=True)
    index = {"split": split, "seed": seed, "conditions": CONDITIONS, "levels": LEVELS, "faces": []}
    for i, r in enumerate(rows):
        with Image.open(Path(data_root) / "images" / r["file"]) as im:
            chip = np.array(im.convert("RGB"), dtype=np.uint8)
        files = {}
        for cond in CONDITIONS:
            kind, p = condition_parameter(cond)
            rng = np.random.default_rng(condition_seed(seed, i, cond))
            name = f"{i:05d}-{cond}"
            if kind == "jpeg":
                (d / "images" / f"{name}.jpg").write_bytes(jpeg_bytes(chip, int(p)))
                files[cond] = f"images/{name}.jpg"
            else:
                Image.fromarray(degrade(chip, kind, p, rng)).save(d / "images" / f"{name}.png", compress_level=1)
                files[cond] = f"images/{name}.png"
        index["faces"].append({"file": r["file"], "age": int(r["age"]), "gender": r["gender"], "race": r["race"],
                               "images": files})
    (d / "index.json").write_text(json.dumps(index) + "\n")
    return {"out": str(d), "faces": len(rows), "conditions": len(CONDITIONS), "images": len(rows) * len(CONDITIONS)}


# ---------------------------------------------------------------------------------------------
# Views that should not change the age: the stability benchmark's variants
# ---------------------------------------------------------------------------------------------
# The same face framed a little differently (as a detector frames it, and as the photo path turns
# a tilted head back upright), under coloured light, in gray, mirrored or re-encoded. A face's
# answers over its views should agree; bench/stability.mjs sends them (`python -m training
# capture stability` writes them). Colour works in linear light, as light mixes: a cast or a
# tinted lamp multiplies each channel's light, then the camera's gamma.

def reframe(img: np.ndarray, dx: float, dy: float, scale: float, roll_deg: float = 0.0) -> np.ndarray:
    """The face cut by another square window: its centre moved by (dx, dy) of the side, its side
    times `scale`, turned by `roll_deg` (counter-clockwise) about its centre, read bilinearly back
    to the same size. Pixels past the chip repeat its border, as training's augmentation fills
    them (data.augment, padding_mode="border"), so a window past the edge shows no black band."""
    h, w = img.shape[:2]
    pad = int(math.ceil(max(h, w) * (abs(scale) * 0.75 + max(abs(dx), abs(dy)))))
    big = Image.fromarray(np.pad(img, ((pad, pad), (pad, pad), (0, 0)), mode="edge"))
    a = math.radians(roll_deg)
    cos, sin = math.cos(a) * scale, math.sin(a) * scale
    cx, cy = pad + w / 2 + dx * w, pad + h / 2 + dy * h
    # PIL's AFFINE maps each output pixel (x, y) to the input (a x + b y + c, d x + e y + f).
    ox, oy = w / 2, h / 2
    coeffs = (cos, -sin, cx - cos * ox + sin * oy, sin, cos, cy - sin * ox - cos * oy)
    return np.array(big.transform((w, h), Image.AFFINE, coeffs, resample=Image.BILINEAR), dtype=np.uint8)


def turned_back(img: np.ndarray, roll_deg: float, residual_deg: float) -> np.ndarray:
    """A head tilted by `roll_deg` that the photo path turns back upright, short of the truth by
    `residual_deg` (its roll estimate's error): two resamplings, and a face left that far off."""
    return reframe(reframe(img, 0.0, 0.0, 1.0, roll_deg), 0.0, 0.0, 1.0, -roll_deg + residual_deg)


def to_linear(img: np.ndarray) -> np.ndarray:
    return (img.astype(np.float64) / 255.0) ** 2.2


def from_linear(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(np.clip(x, 0.0, 1.0) ** (1 / 2.2) * 255.0), 0, 255).astype(np.uint8)


LUMA = np.array([0.299, 0.587, 0.114])


def cast(img: np.ndarray, gains: tuple[float, float, float]) -> np.ndarray:
    """Light of another colour over the whole face: each channel's linear light times its gain,
    the gains scaled so that the face's luma stays (a white balance the camera did not make)."""
    g = np.array(gains, dtype=np.float64)
    g = g / float(LUMA @ g)
    return from_linear(to_linear(img) * g)


def tinted_gradient(img: np.ndarray, gains: tuple[float, float, float], angle_deg: float,
                    strength: float = 1.0) -> np.ndarray:
    """A coloured lamp from one side (stage and bar light): the cast `gains` reaches `strength`
    at the lit edge and fades linearly to none at the far edge, along `angle_deg` (0 = lit from
    the right, 90 = from below)."""
    h, w = img.shape[:2]
    g = np.array(gains, dtype=np.float64)
    g = g / float(LUMA @ g)
    a = math.radians(angle_deg)
    ys, xs = np.mgrid[0:h, 0:w]
    along = ((xs + 0.5) / w - 0.5) * math.cos(a) + ((ys + 0.5) / h - 0.5) * math.sin(a)
    t = (np.clip(along / (0.5 * (abs(math.cos(a)) + abs(math.sin(a)))), -1, 1) + 1) / 2 * strength   # 0..strength
    mix = 1.0 + t[..., None] * (g - 1.0)
    return from_linear(to_linear(img) * mix)


def mirror(img: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(img[:, ::-1])


# Casts as white balance misses them: tungsten and candle light (warm), shade and screens (cool),
# fluorescent tubes and LED strips (magenta). And saturated lamps for the gradient: bar and stage
# light (cyan, blue, red, magenta, green). Linear-light gains, R, G, B.
WARM = (1.0, 0.7, 0.42)
COOL = (0.55, 0.78, 1.0)
MAGENTA = (1.0, 0.66, 0.95)
LAMPS = {"cyan": (0.1, 0.75, 1.0), "blue": (0.15, 0.3, 1.0), "red": (1.0, 0.15, 0.2),
         "magenta": (1.0, 0.15, 0.9), "green": (0.25, 1.0, 0.3)}
REFRAME_SHIFT = 0.06        # of the side: a detector's box moves about this much between frames
REFRAME_SCALE = 0.10        # and its side about this much
TILT_DEG = 15.0             # a tilted head, turned back by the photo path...
ROLL_RESIDUAL_DEG = 3.0     # ...to within #51's bar on its roll error


@dataclass(frozen=True)
class View:
    """One change that should not change the age. `apply(face, rng)` draws what it needs (a
    direction, a sign, a lamp) from rng, so a face's view is fixed by its seed. `group`: how the
    report gathers the views (frame, light, other)."""
    apply: Callable[[np.ndarray, np.random.Generator], np.ndarray]
    group: str
    file: str = "png"         # the file the benchmark sends: "jpg" where the view is the encoding


def _shifted(img, rng):
    a = rng.uniform(0, 2 * math.pi)
    return reframe(img, REFRAME_SHIFT * math.cos(a), REFRAME_SHIFT * math.sin(a), 1.0)


def _tilted(img, rng):
    return turned_back(img, TILT_DEG * rng.choice([-1.0, 1.0]), ROLL_RESIDUAL_DEG * rng.choice([-1.0, 1.0]))


def _lamp(img, rng):
    name = list(LAMPS)[int(rng.integers(len(LAMPS)))]
    return tinted_gradient(img, LAMPS[name], rng.uniform(0, 360))


# The order is the benchmark's, which each face's seed depends on (view_seed).
VIEWS = {
    "clean": View(lambda img, rng: img, "other"),
    "shift": View(_shifted, "frame"),
    "zoom-in": View(lambda img, rng: reframe(img, 0.0, 0.0, 1 - REFRAME_SCALE), "frame"),
    "zoom-out": View(lambda img, rng: reframe(img, 0.0, 0.0, 1 + REFRAME_SCALE), "frame"),
    "tilt": View(_tilted, "frame"),
    "warm": View(lambda img, rng: cast(img, WARM), "light"),
    "cool": View(lambda img, rng: cast(img, COOL), "light"),
    "magenta": View(lambda img, rng: cast(img, MAGENTA), "light"),
    "lamp": View(_lamp, "light"),
    "gray": View(lambda img, rng: gray(img, 0.0, rng), "light"),
    "mirror": View(lambda img, rng: mirror(img), "other"),
    "jpeg80": View(lambda img, rng: img, "other", file="jpg"),
}
STABILITY_SEED = 2          # the benchmark's draws on `test` (the capture benchmark's is BENCH_SEED)


# What training draws from to hold the answer still under these views (model version 9): the same
# functions, with ranges that span the benchmark's views and go past them. The parameter of each
# is a strength t in [0, 1] (severity scales it, as for the capture kinds); the rest is drawn.

def reframed(img: np.ndarray, t: float, rng: np.random.Generator) -> np.ndarray:
    """Framed as a detector frames a face, off by up to `t` of the way: the window moved up to 8 %
    of its side, its side times 0.88-1.14, and half the time a head tilted up to 20 degrees and
    turned back upright by all but up to 4 degrees (the photo path's roll error)."""
    if rng.random() < 0.5:
        img = turned_back(img, rng.choice([-1.0, 1.0]) * rng.uniform(5.0, 20.0), rng.uniform(-4.0, 4.0) * t)
    a = rng.uniform(0, 2 * math.pi)
    shift = 0.08 * t * rng.uniform(0.5, 1.0)
    scale = math.exp(rng.uniform(-1.0, 1.0) * t * math.log(1.14))
    return reframe(img, shift * math.cos(a), shift * math.sin(a), scale)


def coloured(img: np.ndarray, t: float, rng: np.random.Generator) -> np.ndarray:
    """Light of any colour over the whole face: red and blue light each up to 2.5x (at t = 1)
    above or below green's, luma kept (warm, cool and magenta casts are points of this)."""
    r, b = np.exp(rng.uniform(-1.0, 1.0, size=2) * t * math.log(2.5))
    return cast(img, (float(r), 1.0, float(b)))


def lamped(img: np.ndarray, t: float, rng: np.random.Generator) -> np.ndarray:
    """A saturated lamp (LAMPS) from a random side, reaching strength `t` at the lit edge."""
    name = list(LAMPS)[int(rng.integers(len(LAMPS)))]
    return tinted_gradient(img, LAMPS[name], rng.uniform(0, 360), strength=t)


RGB_TO_YIQ = np.array([[0.299, 0.596, 0.211], [0.587, -0.274, -0.523], [0.114, -0.322, 0.312]])   # x @ M
YIQ_TO_RGB = np.linalg.inv(RGB_TO_YIQ)


def hue_shifted(img: np.ndarray, t: float, rng: np.random.Generator) -> np.ndarray:
    """Colours turned and their strength changed, as phone filters and stage light do: the chroma
    (YIQ's I, Q) turned by up to 90 degrees either way and scaled by 0.3-1.9 (at t = 1), luma kept."""
    yiq = img.astype(np.float64) @ RGB_TO_YIQ
    a = math.radians(rng.uniform(-90.0, 90.0) * t)
    sat = math.exp(rng.uniform(math.log(0.3), math.log(1.9)) * t)
    i, q = yiq[..., 1].copy(), yiq[..., 2].copy()
    yiq[..., 1] = sat * (i * math.cos(a) - q * math.sin(a))
    yiq[..., 2] = sat * (i * math.sin(a) + q * math.cos(a))
    rgb = yiq @ YIQ_TO_RGB
    return np.clip(np.round(rgb), 0, 255).astype(np.uint8)


# Training-only kinds (no benchmark levels: bench:stability measures them through VIEWS).
VIEW_KINDS = {
    "reframed": Kind(reframed, {}, (0.0, 1.0, "lin"), mild_end="low"),
    "coloured": Kind(coloured, {}, (0.0, 1.0, "lin"), mild_end="low"),
    "lamped": Kind(lamped, {}, (0.0, 1.0, "lin"), mild_end="low"),
    "hue_shifted": Kind(hue_shifted, {}, (0.0, 1.0, "lin"), mild_end="low"),
}
ALL_KINDS = {**KINDS, **VIEW_KINDS}


def view_seed(base: int, index: int, view: str) -> int:
    """A face's seed for one view: stable across runs and independent of the other faces."""
    return (base * 1_000_003 + index * 101 + list(VIEWS).index(view)) % (2**63)


def apply_view(img: np.ndarray, view: str, seed: int) -> np.ndarray:
    """One face through one view, deterministic in `seed` (the jpeg view's pixels are the face's:
    its change is the encoding, which write_stability does)."""
    return VIEWS[view].apply(img, np.random.default_rng(seed))


def write_stability(data_root: str, out: str, split: str = "test", faces: int | None = 500,
                    seed: int = STABILITY_SEED) -> dict:
    """`faces` faces of `split` (evenly spaced in labels.csv order) in every view, as the files a
    person would send: PNG, and the jpeg80 view as JPEG 80 bytes (4:2:0). Writes
    OUT/images/<row>-<view>.(png|jpg) and OUT/index.json (labels, views, groups, seed).
    UTKFace-derived: keep it under .cache/, never in git."""
    import csv
    import json
    from pathlib import Path

    rows = [r for r in csv.DictReader(open(Path(data_root) / "labels.csv")) if r["split"] == split]
    if faces is not None and faces < len(rows):
        rows = [rows[int(i * len(rows) / faces)] for i in range(faces)]
    d = Path(out)
    (d / "images").mkdir(parents=True, exist_ok=True)
    index = {"split": split, "seed": seed, "views": list(VIEWS), "groups": {v: VIEWS[v].group for v in VIEWS},
             "faces": []}
    for i, r in enumerate(rows):
        with Image.open(Path(data_root) / "images" / r["file"]) as im:
            chip = np.array(im.convert("RGB"), dtype=np.uint8)
        files = {}
        for view, spec in VIEWS.items():
            img = apply_view(chip, view, view_seed(seed, i, view))
            name = f"images/{i:05d}-{view}.{spec.file}"
            if spec.file == "jpg":
                (d / name).write_bytes(jpeg_bytes(img, 80))
            else:
                Image.fromarray(img).save(d / name, compress_level=1)
            files[view] = name
        index["faces"].append({"file": r["file"], "age": int(r["age"]), "gender": r["gender"], "race": r["race"],
                               "images": files})
    (d / "index.json").write_text(json.dumps(index) + "\n")
    return {"out": str(d), "faces": len(rows), "views": len(VIEWS), "images": len(rows) * len(VIEWS)}
