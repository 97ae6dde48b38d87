"""Faces in memory and their augmentation.

A split is decoded once into a uint8 tensor [N, S, S, 3] (cached under .cache/packed/), then
batches are augmented on whatever device trains: a whole batch of affine crops in one
grid_sample call is fast on a GPU and tolerable on a CPU, and the data stays compact enough to
carry to a GPU host (UTKFace's train split is ~200 MB at 64 px, ~650 MB at 112 px, raw).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from .datasets import Sample, load_dataset
from .framing import crop_pixels, crop_rect, detect_chips, detector_framed_chip, from_margin

CACHE_DIR = Path(__file__).resolve().parent.parent / ".cache" / "packed"
# Where UTKFace lives, relative to the project root (read-only, never committed; README).
UTKFACE_ROOT = "../shared/data/utkface"


@dataclass
class Packed:
    images: torch.Tensor       # uint8 [N, S, S, 3] RGB
    ages: torch.Tensor         # float32 [N], years (group midpoints for group data)
    labels: torch.Tensor       # int64 [N], class index
    age_std: torch.Tensor      # float32 [N], apparent-age std; NaN where unknown
    gender: list               # per sample, None where unknown
    race: list

    def __len__(self) -> int:
        return self.images.shape[0]

    def subset(self, idx) -> "Packed":
        idx = torch.as_tensor(idx, dtype=torch.long)
        return Packed(self.images[idx], self.ages[idx], self.labels[idx], self.age_std[idx],
                      [self.gender[i] for i in idx.tolist()], [self.race[i] for i in idx.tolist()])


def load_face(sample: Sample, size: int, margin: float = 0.0) -> np.ndarray:
    """One face as uint8 [S, S, 3]: EXIF-upright, the given box framed as the server frames a
    box (framing.crop_rect: the square of (1 + 2 * margin) * sqrt(w * h), black past the
    image's edge, see docs/model-contract.md), area-averaged down to S x S."""
    with Image.open(sample.path) as im:
        im = ImageOps.exif_transpose(im).convert("RGB")
        rect = crop_rect(sample.box, from_margin(margin)) if sample.box is not None else (0, 0, im.width, im.height)
        return crop_pixels(im, rect, size)


def pack(samples: list[Sample], size: int, margin: float = 0.0, cache: bool = True,
         progress: bool = True) -> Packed:
    # Boxes are framed square since the detector's framing; chips without a box keep their key.
    framed = "square|" if any(s.box is not None for s in samples) else ""
    key = hashlib.sha1(f"{size}|{margin}|{framed}".encode() + "\n".join(
        f"{s.path}|{s.box}" for s in samples).encode()).hexdigest()[:16]
    cache_file = CACHE_DIR / f"{key}.pt"
    if cache and cache_file.exists():
        images = torch.load(cache_file, weights_only=True)
    else:
        images = torch.empty((len(samples), size, size, 3), dtype=torch.uint8)
        it = samples
        if progress:
            from tqdm import tqdm
            it = tqdm(samples, desc=f"decoding {len(samples)} faces at {size}px", leave=False)
        for i, s in enumerate(it):
            images[i] = torch.from_numpy(load_face(s, size, margin))
        if cache:
            CACHE_DIR.mkdir(parents=True, exist_ok=True)
            tmp = cache_file.with_suffix(f".{os.getpid()}.tmp")
            torch.save(images, tmp)
            tmp.replace(cache_file)  # atomic: parallel runs never read a half-written cache
    nan = float("nan")
    return Packed(
        images=images,
        ages=torch.tensor([s.age for s in samples], dtype=torch.float32),
        labels=torch.tensor([s.label for s in samples], dtype=torch.long),
        age_std=torch.tensor([nan if s.age_std is None else s.age_std for s in samples],
                             dtype=torch.float32),
        gender=[s.gender for s in samples],
        race=[s.race for s in samples],
    )


def load_packed(dataset: str, root: str, split: str, size: int, margin: float = 0.0,
                limit: int | None = None, seed: int = 0, progress: bool = True,
                **options) -> Packed:
    """A split in memory. `root` is the dataset's folder, or a carry file from write_carry."""
    if str(root).endswith(CARRY_SUFFIX):
        return _read_carry(root, split, size, limit, seed)
    samples = load_dataset(dataset, root, split, **options)
    if limit is not None and limit < len(samples):
        samples = [samples[i] for i in fixed_subset(len(samples), limit, seed)]
    return pack(samples, size, margin, progress=progress)


@dataclass(frozen=True)
class DataSource:
    """Where a trained network's faces come from, as its run's train_config names them."""
    dataset: str
    root: str                  # the dataset's folder, or a carry file
    margin: float
    options: dict              # the dataset adapter's options


def data_source(run: dict, data_root: str | None = None) -> DataSource:
    """`run`: a checkpoint, or a released version's report.json (both keep the run's
    train_config). `data_root` overrides its folder; a run that names none trained on UTKFace."""
    tc = run.get("train_config", {})
    return DataSource(dataset=tc.get("dataset", "utkface"), root=data_root or tc.get("data_root", UTKFACE_ROOT),
                      margin=tc.get("face_margin", 0.0), options=tc.get("dataset_options", {}))


def load_split(run: dict, split: str, size: int, data_root: str | None = None, limit: int | None = None) -> Packed:
    """A split of the faces a run trained on (data_source) at `size`, as evaluating, releasing,
    measuring or distilling a trained network reads it."""
    src = data_source(run, data_root)
    return load_packed(src.dataset, src.root, split, size, src.margin, limit=limit, **src.options)


def load_framed(dataset: str, root: str, split: str, size: int, detector: str, framing: dict,
                limit: int | None = None, seed: int = 0, progress: bool = True,
                **options) -> tuple[torch.Tensor, int]:
    """The same faces as load_packed's, each as the served photo path would crop it: the chip
    set into a canvas (framing.chip_canvas), found by the detector and framed by the model's
    `framing` -> (uint8 [N, S, S, 3], how many are framed). A face the detector missed, or one it
    would turn upright, stays its chip. Cached under .cache/packed/ like the chips."""
    if dataset != "utkface" or str(root).endswith(CARRY_SUFFIX):
        raise ValueError("detector-framed faces are made from UTKFace's chips in their folder, not a carry file")
    samples = load_dataset(dataset, root, split, **options)
    paths = [s.path for s in samples]
    detections = detect_chips(detector, paths, f"{dataset}-{split}", progress)
    if limit is not None and limit < len(samples):
        keep = fixed_subset(len(samples), limit, seed)
        samples, paths, detections = [samples[i] for i in keep], [paths[i] for i in keep], [detections[i] for i in keep]
        index = keep
    else:
        index = list(range(len(samples)))
    key = hashlib.sha1(json.dumps([size, framing, detections, paths, index], sort_keys=True).encode()).hexdigest()[:16]
    cache_file = CACHE_DIR / f"framed-{key}.pt"
    if cache_file.exists():
        saved = torch.load(cache_file, weights_only=True)
        return saved["images"], int(saved["framed"])
    images = torch.empty((len(samples), size, size, 3), dtype=torch.uint8)
    framed = 0
    for j, (s, i, det) in enumerate(zip(samples, index, detections)):
        crop = detector_framed_chip(s.path, i, det, framing, size)
        framed += crop is not None
        images[j] = torch.from_numpy(crop if crop is not None else load_face(s, size))
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    tmp = cache_file.with_suffix(f".{os.getpid()}.tmp")
    torch.save({"images": images, "framed": framed}, tmp)
    tmp.replace(cache_file)
    return images, framed


def load_photo_crops(prefix: str, dataset: str, root: str, split: str, size: int,
                     limit: int | None = None, seed: int = 0, **options) -> tuple[torch.Tensor, torch.Tensor]:
    """The faces of `split` as the served photo path cut them out of composed photos
    (training/js/photo-crops.mjs wrote prefix.u8 and prefix.json) -> (uint8 [N, S, S, 3], bool [N]:
    which faces a detection matched; the others are zeros, for the caller to fill). Rows follow
    load_packed's (the same `limit` subset). Faces cut larger than `size` are shrunk by area
    averaging, as the server shrinks: one cutting (minutes of workerd) then serves a smaller
    model too, at the cost of one more resampling than the served path makes."""
    meta = json.loads(Path(f"{prefix}.json").read_text())
    samples = load_dataset(dataset, root, split, **options)
    files = [os.path.basename(s.path) for s in samples]
    if meta["split"] != split or meta["files"] != files:
        raise ValueError(f"{prefix}.json holds {meta['split']} faces of another index than {root}'s {split} split: rerun training/js/photo-crops.mjs")
    if meta["size"] < size:
        raise ValueError(f"{prefix}.u8 holds {meta['size']} px faces, smaller than the model's {size}: "
                         "rerun training/js/photo-crops.mjs with that model active")
    cut = meta["size"]
    images = torch.from_numpy(np.fromfile(f"{prefix}.u8", dtype=np.uint8).reshape(len(files), cut, cut, 3))
    if cut != size:
        images = torch.cat([_shrink(images[i:i + 1024], size) for i in range(0, len(images), 1024)])
    matched = torch.tensor([c is not None for c in meta["crops"]])
    if limit is not None and limit < len(samples):
        keep = torch.tensor(fixed_subset(len(samples), limit, seed))
        images, matched = images[keep], matched[keep]
    return images, matched


def _shrink(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 [N, S0, S0, 3] -> uint8 [N, size, size, 3], area averaging (size < S0)."""
    x = F.interpolate(to_float(images), size=(size, size), mode="area")     # [N, 3, size, size]
    return x.mul_(255).round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def fixed_subset(n: int, limit: int, seed: int) -> list[int]:
    # A fixed random subset, so small runs still see every age.
    return sorted(np.random.default_rng(seed).choice(n, limit, replace=False).tolist())


# ---------------------------------------------------------------------------------------------
# Carry files: every split re-encoded as small JPEGs in one file, to take a dataset to a GPU
# host whose upload is capped (UTKFace at 112 px, quality 75: ~51 MB for all three splits).
# ---------------------------------------------------------------------------------------------
CARRY_SUFFIX = ".carry.pt"


def write_carry(dataset: str, root: str, out: str, size: int, quality: int = 75,
                margin: float = 0.0, splits: tuple[str, ...] = ("train", "val", "test"),
                limits: dict | None = None, max_bytes: int | None = None, seed: int = 0, **options) -> dict:
    """`splits` re-encoded as JPEGs in one file. `limits` {split: n}: a fixed random subset of
    that split (fixed_subset, seed: load_packed(limit=...) on the dataset picks the same faces).
    `max_bytes`: the train split is cut to the largest subset that keeps the file under it (the
    other splits whole), for an upload with a cap."""
    import io
    limits = dict(limits or {})
    blobs_by_split = {}
    for split in splits:
        samples = load_dataset(dataset, root, split, **options)
        if limits.get(split) is not None and limits[split] < len(samples):
            samples = [samples[i] for i in fixed_subset(len(samples), limits[split], seed)]
        blobs = []
        for s in samples:
            buf = io.BytesIO()
            Image.fromarray(load_face(s, size, margin)).save(buf, "JPEG", quality=quality, optimize=True)
            blobs.append(buf.getvalue())
        blobs_by_split[split] = (samples, blobs)
    if max_bytes is not None and "train" in blobs_by_split:
        others = sum(len(b) for k, (_, bl) in blobs_by_split.items() if k != "train" for b in bl)
        samples, blobs = blobs_by_split["train"]
        room = max_bytes - others - 64 * 1024 - 60 * (len(blobs) + sum(len(bl) for _, bl in blobs_by_split.values()))
        per_face = sum(len(b) for b in blobs) / max(1, len(blobs))
        keep = min(len(blobs), max(0, int(room / (per_face + 60))))
        while keep and sum(len(blobs[i]) for i in fixed_subset(len(blobs), keep, seed)) > room - 60 * keep:
            keep = int(keep * 0.98)
        idx = fixed_subset(len(blobs), keep, seed) if keep < len(blobs) else list(range(len(blobs)))
        blobs_by_split["train"] = ([samples[i] for i in idx], [blobs[i] for i in idx])
    content = {"dataset": dataset, "size": size, "quality": quality, "splits": {}}
    for split, (samples, blobs) in blobs_by_split.items():
        # One byte tensor plus offsets: pickled bytes objects would grow by half on disk.
        ends = torch.tensor([len(b) for b in blobs], dtype=torch.int64).cumsum(0)
        content["splits"][split] = {
            "jpeg": torch.frombuffer(bytearray(b"".join(blobs)), dtype=torch.uint8), "ends": ends,
            "age": [s.age for s in samples], "label": [s.label for s in samples],
            "age_std": [s.age_std for s in samples], "gender": [s.gender for s in samples],
            "race": [s.race for s in samples]}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    torch.save(content, out)
    return {"file": out, "bytes": Path(out).stat().st_size, "size": size, "quality": quality,
            **{k: len(v["ends"]) for k, v in content["splits"].items()}}


def _read_carry(path: str, split: str, size: int, limit: int | None, seed: int) -> Packed:
    import io
    content = torch.load(path, weights_only=False)
    if content["size"] != size:
        raise ValueError(f"{path} holds {content['size']} px faces, the model wants {size}")
    d = content["splits"][split]
    ends = d["ends"].tolist()
    idx = list(range(len(ends)))
    if limit is not None and limit < len(idx):
        idx = fixed_subset(len(idx), limit, seed)
    images = torch.empty((len(idx), size, size, 3), dtype=torch.uint8)
    for j, i in enumerate(idx):
        start = ends[i - 1] if i else 0
        with Image.open(io.BytesIO(d["jpeg"][start:ends[i]].numpy().tobytes())) as im:
            images[j] = torch.from_numpy(np.array(im.convert("RGB"), dtype=np.uint8))
    nan = float("nan")
    return Packed(images=images,
                  ages=torch.tensor([d["age"][i] for i in idx], dtype=torch.float32),
                  labels=torch.tensor([d["label"][i] for i in idx], dtype=torch.long),
                  age_std=torch.tensor([nan if d["age_std"][i] is None else d["age_std"][i]
                                        for i in idx], dtype=torch.float32),
                  gender=[d["gender"][i] for i in idx], race=[d["race"][i] for i in idx])


# Bands of true age that balance_weights keeps each group's mix of (bench/lib/age-check-metrics.ts
# FAIRNESS_BANDS, which the published fairness tables re-weight by).
FAIRNESS_BANDS = ((0, 12), (13, 15), (16, 17), (18, 24), (25, 29), (30, 39), (40, 49), (50, 59), (60, 200))


def balance_weights(ages, groups) -> torch.Tensor:
    """Per-face drawing weights [N] under which every group (gender or race; None is a group of its
    own) weighs the same and each has the whole set's age mix by FAIRNESS_BANDS: a face in band b
    of group g weighs share(b) / count(g, b). A group's total is the set's share of the bands it
    has faces in (1 where it has all of them)."""
    ages = np.asarray(ages, float)
    band = np.searchsorted([hi for _, hi in FAIRNESS_BANDS], np.floor(ages), side="left")
    keys = [str(g) for g in groups]
    share = np.bincount(band, minlength=len(FAIRNESS_BANDS)) / len(band)
    counts: dict[tuple[str, int], int] = {}
    for k, b in zip(keys, band):
        counts[(k, b)] = counts.get((k, b), 0) + 1
    return torch.tensor([share[b] / counts[(k, b)] for k, b in zip(keys, band)], dtype=torch.float64)


@dataclass
class AugmentConfig:
    scale: tuple[float, float] = (0.8, 1.05)      # side of the sampled window, fraction of the image
    aspect: tuple[float, float] = (0.8, 1.25)     # width/height ratio jitter of that window
    translate: float = 0.08                      # extra shift, fraction of the image
    flip: bool = True
    brightness: float = 0.2
    contrast: float = 0.2
    rotate: float = 0.0                          # degrees, uniform in +-rotate: the roll a detector's eye
                                                 # line leaves (about 3.5 deg spread on the upright chips)
    low_res: float = 0.0                         # share of faces shrunk to low_res_px and scaled back up:
    low_res_px: tuple[int, int] = (40, 120)      # photos deliver faces of 40-120 px, the chips are 200


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 [N, S, S, 3] -> float [N, 3, S, S] in [0, 1]."""
    return images.permute(0, 3, 1, 2).float().div_(255.0)


def augment(images: torch.Tensor, size: int, cfg: AugmentConfig,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """Random resized crop with scale/aspect jitter, shift, flip and photometric jitter for a
    whole batch at once: uint8 [N, S0, S0, 3] -> float [N, 3, size, size] in [0, 1]."""
    n, dev = images.shape[0], images.device
    x = to_float(images)                                                         # [N, 3, S0, S0]

    # All random numbers of the batch in one draw and one copy to the device (a training step
    # runs this once; eight small host-to-device copies would each cost a sync on a GPU).
    draws = iter(torch.rand(9, n, generator=generator).to(dev))

    def uniform(lo, hi):
        return lo + (hi - lo) * next(draws)

    scale = uniform(*cfg.scale)
    aspect = torch.exp(uniform(math.log(cfg.aspect[0]), math.log(cfg.aspect[1])))
    sx, sy = scale * aspect.sqrt(), scale / aspect.sqrt()
    # Shift the window anywhere it fits, plus a little beyond (border pixels fill in).
    tx = (1 - sx).clamp(min=0) * uniform(-1, 1) + cfg.translate * uniform(-1, 1)
    ty = (1 - sy).clamp(min=0) * uniform(-1, 1) + cfg.translate * uniform(-1, 1)
    flip = uniform(0, 1)
    if cfg.flip:
        sx = sx * torch.where(flip < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3, device=dev)
    theta[:, 0, 0], theta[:, 0, 2] = sx, tx
    theta[:, 1, 1], theta[:, 1, 2] = sy, ty
    if cfg.rotate:
        # A separate draw, taken only when rotating, so runs without it keep their random stream.
        angle = torch.deg2rad(cfg.rotate * (2 * torch.rand(n, generator=generator) - 1)).to(dev)
        cos, sin = torch.cos(angle), torch.sin(angle)
        theta[:, :, :2] = torch.stack([torch.stack([cos * sx, -sin * sy], -1),
                                       torch.stack([sin * sx, cos * sy], -1)], 1)
    grid = F.affine_grid(theta, [n, 3, size, size], align_corners=False)          # [N, size, size, 2]
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if cfg.brightness or cfg.contrast:
        b = 1 + cfg.brightness * uniform(-1, 1)
        c = 1 + cfg.contrast * uniform(-1, 1)
        mean = out.mean(dim=(1, 2, 3), keepdim=True)
        out = ((out - mean) * c.view(n, 1, 1, 1) + mean) * b.view(n, 1, 1, 1)
    if cfg.low_res:
        # Its own draws, taken only when on, so runs without it keep their random stream. One side
        # per batch: the shrink is one resize, the choice of faces is per face.
        side = int(torch.randint(cfg.low_res_px[0], cfg.low_res_px[1] + 1, (1,), generator=generator))
        pick = (torch.rand(n, generator=generator) < cfg.low_res).to(dev)
        if side < size:  # no pick.any(): it would stop a GPU step to ask the host
            small = F.interpolate(out, size=(side, side), mode="area")
            back = F.interpolate(small, size=(size, size), mode="bilinear", align_corners=False)
            out = torch.where(pick.view(n, 1, 1, 1), back, out)
    return out.clamp_(0, 1)


def resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """Evaluation view: the whole crop at the model's size, uint8 [N, S0, S0, 3] -> float
    [N, 3, size, size] in [0, 1] (area averaging when shrinking, like the server)."""
    x = to_float(images)
    if x.shape[-1] == size:
        return x
    mode = "area" if x.shape[-1] > size else "bilinear"
    return F.interpolate(x, size=(size, size), mode=mode)


def ten_crop(images: torch.Tensor, size: int, frac: float = 0.875) -> list[torch.Tensor]:
    """The classic ten views (four corners, centre, and their mirror images), each a window of
    `frac` of the side, resized to `size`: a list of ten float [N, 3, size, size] tensors."""
    x = to_float(images)
    s0 = x.shape[-1]
    c = round(s0 * frac)
    offsets = [(0, 0), (0, s0 - c), (s0 - c, 0), (s0 - c, s0 - c), ((s0 - c) // 2, (s0 - c) // 2)]
    views = []
    for top, left in offsets:
        v = F.interpolate(x[:, :, top:top + c, left:left + c], size=(size, size),
                          mode="bilinear", antialias=True, align_corners=False)
        views += [v, v.flip(-1)]
    return views
