"""Dataset adapters: read each face-age dataset in its published layout.

Every adapter takes ``(root, split, **options)`` and returns ``list[Sample]``;
use :func:`load_dataset` as the entry point. Nothing here decodes images: the
adapters only read the index files and build absolute image paths, so loading
even the 500k-row IMDB-WIKI index stays cheap.

Splits are ``'train'``, ``'val'`` and ``'test'`` for every dataset. Where a
dataset publishes no split, the split rule is documented on its adapter.
"""

from __future__ import annotations

import csv
import datetime
import hashlib
import math
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .contract import CLASS_AGES

SPLITS = ("train", "val", "test")
MAX_AGE = CLASS_AGES[1]  # 101-class data: labels 0..100 (contract/contract.json)


@dataclass(frozen=True)
class Sample:
    path: str            # absolute path to the image file
    age: float           # years; for group-labelled data (Adience) the group's midpoint
    label: int           # class index: clip(round(age), 0, 100) for 101-class data; group index 0..7 for Adience
    age_std: float | None = None   # apparent-age standard deviation (ChaLearn) when known
    gender: str | None = None      # 'm' / 'f' when known
    race: str | None = None        # dataset's race label when known
    subject: str | None = None     # person id when known (FG-NET, Adience, MORPH)
    box: tuple[float, float, float, float] | None = None  # face box (x, y, w, h) in pixels when the dataset gives one and the image is not already a crop


ADIENCE_GROUPS = [(0, 2), (4, 6), (8, 12), (15, 20), (25, 32), (38, 43), (48, 53), (60, 100)]


def age_label(age: float) -> int:
    """Class index for 101-class data. Python's round() (half to even) matches torch/numpy."""
    return int(min(max(round(age), 0), MAX_AGE))


def _abs(path: Path) -> str:
    # abspath, not resolve(): keep the path the caller gave (shared data may sit behind symlinks)
    return os.path.abspath(path)


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"{what}: expected {path} (is root pointing at the dataset's top folder?)")
    return path


def _read_csv(path: Path, what: str, delimiter: str = ",") -> list[dict[str, str]]:
    _require(path, what)
    with open(path, newline="", encoding="utf-8-sig") as f:
        return list(csv.DictReader(f, delimiter=delimiter))


def _check_columns(rows: list[dict[str, str]], needed: tuple[str, ...], path: Path) -> None:
    if rows:
        missing = [c for c in needed if c not in rows[0]]
        if missing:
            raise ValueError(f"{path}: missing column(s) {missing}; found {list(rows[0])}")


def _hash_bucket(key: str) -> int:
    """0..99, stable across machines and Python runs (unlike hash())."""
    return int(hashlib.md5(key.encode("utf-8")).hexdigest(), 16) % 100


# --------------------------------------------------------------------------- UTKFace

UTK_RACES = ("White", "Black", "Asian", "Indian", "Others")


def load_utkface(root: Path, split: str, drop_conflicts: bool = False) -> list[Sample]:
    """``root/labels.csv`` (our cleaned index: file, age, gender, race, md5,
    duplicate_group_size, duplicate_age_conflict, split) + ``root/images/<file>``.

    The split column decides the split. ``drop_conflicts`` drops, from train only,
    the rows whose duplicate images carry different ages (their label is unreliable;
    val/test stay fixed so numbers remain comparable).
    """
    csv_path = root / "labels.csv"
    rows = _read_csv(csv_path, "UTKFace index")
    _check_columns(rows, ("file", "age", "gender", "split"), csv_path)
    images = _require(root / "images", "UTKFace image folder")
    samples = []
    for r in rows:
        if r["split"] != split:
            continue
        if drop_conflicts and split == "train" and r.get("duplicate_age_conflict") == "1":
            continue
        age = float(r["age"])
        race = r.get("race", "")
        samples.append(Sample(
            path=_abs(images / r["file"]),
            age=age,
            label=age_label(age),  # ages up to 116 exist; the age is kept, only the label clips
            gender={"0": "m", "1": "f"}.get(r["gender"]),
            race=UTK_RACES[int(race)] if race != "" else None,
        ))
    return samples


# --------------------------------------------------------------------------- IMDB-WIKI

def _matlab_age(dob: float, photo_taken: float) -> int | None:
    """Age on 1 July of the year the photo was taken, in whole years.

    This is the dataset authors' own rule (their MATLAB:
    ``datevec(datenum(photo_taken, 7, 1) - dob)``): only the year of the photo
    is known, so it is assumed to be taken mid-year.
    """
    if not (math.isfinite(dob) and math.isfinite(photo_taken)):
        return None
    try:
        # MATLAB serial day 1 is 0000-01-01; Python ordinal 1 is 0001-01-01 (366 days later)
        born = datetime.date.fromordinal(int(dob) - 366)
        taken = datetime.date(int(photo_taken), 7, 1)
    except ValueError:  # dob before year 1 or absurd years: unusable row
        return None
    return taken.year - born.year - ((taken.month, taken.day) < (born.month, born.day))


def _mat_strings(cells: np.ndarray) -> list[str]:
    # a MATLAB cell array of char arrays loads as an object array of 1-element string arrays
    return [str(c[0]) if np.size(c) else "" for c in np.ravel(cells)]


def load_imdb_wiki(root: Path, split: str, sources: tuple[str, ...] | None = None,
                   min_face_score: float = 1.0) -> list[Sample]:
    """IMDB-WIKI "faces only" release: ``root/imdb_crop/imdb.mat`` and/or
    ``root/wiki_crop/wiki.mat``, images at ``root/<source>_crop/<full_path>``.

    Cleaning as in DEX: keep a row only when face_score is finite and above
    ``min_face_score`` (default 1.0; -inf means no face was found), no second
    face was detected (second_face_score is NaN) and 0 <= age <= 100.

    Split: the dataset has none, so each image goes by the MD5 of
    ``"<source>/<full_path>"``: bucket 0-89 train, 90-94 val, 95-99 test
    (90/5/5). It is deterministic and stays put when rows are added or removed.
    It is not person-exclusive (the same celebrity appears in all splits).

    ``sources``: None (default) reads whichever of imdb/wiki is present; an
    explicit tuple such as ``('wiki',)`` requires each named file.
    """
    from scipy.io import loadmat  # only this adapter needs scipy

    wanted = sources if sources is not None else ("imdb", "wiki")
    unknown = set(wanted) - {"imdb", "wiki"}
    if unknown:
        raise ValueError(f"imdb_wiki: unknown source(s) {sorted(unknown)}; use 'imdb' and/or 'wiki'")
    mats = {s: root / f"{s}_crop" / f"{s}.mat" for s in wanted}
    if sources is not None:
        for s, p in mats.items():
            _require(p, f"IMDB-WIKI {s} metadata")
    present = {s: p for s, p in mats.items() if p.exists()}
    if not present:
        raise FileNotFoundError(
            "IMDB-WIKI metadata: expected " + " and/or ".join(str(p) for p in mats.values()))

    lo, hi = {"train": (0, 90), "val": (90, 95), "test": (95, 100)}[split]
    samples = []
    for source, mat_path in present.items():
        meta = loadmat(mat_path)[source][0, 0]
        dob = np.ravel(meta["dob"]).astype(float)
        taken = np.ravel(meta["photo_taken"]).astype(float)
        gender = np.ravel(meta["gender"]).astype(float)
        score = np.ravel(meta["face_score"]).astype(float)
        second = np.ravel(meta["second_face_score"]).astype(float)
        paths = _mat_strings(meta["full_path"])
        for i, rel in enumerate(paths):
            if not (math.isfinite(score[i]) and score[i] > min_face_score and math.isnan(second[i])):
                continue
            age = _matlab_age(dob[i], taken[i])
            if age is None or not 0 <= age <= MAX_AGE:
                continue
            if not lo <= _hash_bucket(f"{source}/{rel}") < hi:
                continue
            samples.append(Sample(
                path=_abs(root / f"{source}_crop" / rel),
                age=float(age),
                label=age_label(age),
                # 0 female, 1 male, NaN unknown (dataset README)
                gender=None if math.isnan(gender[i]) else ("m" if gender[i] == 1 else "f"),
            ))
    return samples


# --------------------------------------------------------------------------- Adience

# Labels outside the 8 protocol groups that occur in the official fold files, mapped
# the way the widely copied Adience loaders map them (the `age_mapping` table used in
# most public code). That table is not a strict nearest-group rule in two places,
# and we keep its choice there for comparable numbers: '3' -> (0, 2) (tie with (4, 6))
# and '(38, 48)' -> (48, 53). Its one real slip, '42' -> (48, 53), is not copied:
# 42 lies inside (38, 43) and a number inside a group always maps to that group.
_ADIENCE_OFF_PROTOCOL = {
    "(38, 42)": (38, 43), "(38, 48)": (48, 53), "(8, 23)": (15, 20), "(27, 32)": (25, 32),
    "3": (0, 2), "13": (8, 12), "22": (15, 20), "23": (25, 32), "34": (25, 32),
    "35": (38, 43), "36": (38, 43), "45": (38, 43), "46": (48, 53), "55": (48, 53),
    "56": (48, 53), "57": (60, 100), "58": (60, 100),
}
_ADIENCE_COLUMNS = ("user_id", "original_image", "face_id", "age", "gender")


def adience_group(age: str) -> int | None:
    """Group index 0..7 for an Adience age string, or None when the row is unusable.

    Rule: a protocol group string like '(25, 32)' is that group; a bare number
    inside a group's range (e.g. '29', '42') is that group; the off-protocol
    labels in _ADIENCE_OFF_PROTOCOL use that table; anything else ('None',
    '(0, 3)', a bare number between groups not in the table) is skipped.
    """
    age = age.strip()
    for i, (lo, hi) in enumerate(ADIENCE_GROUPS):
        if age == f"({lo}, {hi})":
            return i
    if age in _ADIENCE_OFF_PROTOCOL:
        return ADIENCE_GROUPS.index(_ADIENCE_OFF_PROTOCOL[age])
    if age.isdigit():
        n = int(age)
        for i, (lo, hi) in enumerate(ADIENCE_GROUPS):
            if lo <= n <= hi:
                return i
    return None


def _read_adience_fold(path: Path) -> list[dict[str, str]]:
    rows = _read_csv(path, "Adience fold file", delimiter="\t")
    _check_columns(rows, _ADIENCE_COLUMNS, path)
    return rows


def load_adience(root: Path, split: str, test_fold: int = 0) -> list[Sample]:
    """Adience aligned faces: ``root/fold_{0..4}_data.txt`` (tab-separated) and
    ``root/faces/<user_id>/coarse_tilt_aligned_face.<face_id>.<original_image>``.

    Standard 5-fold protocol: 'test' = fold ``test_fold``, 'val' = fold
    ``(test_fold + 1) % 5``, 'train' = the remaining three folds (val is taken
    out of the four training folds so no image is both trained and validated on).
    The official folds are subject-exclusive; that is checked, and a user_id found
    in two folds raises ValueError. Age groups: see :func:`adience_group`; ``age``
    is the group midpoint. No box: the aligned images are already face crops.
    """
    if test_fold not in range(5):
        raise ValueError(f"adience: test_fold must be 0..4, got {test_fold!r}")
    folds = [_read_adience_fold(root / f"fold_{k}_data.txt") for k in range(5)]
    faces = _require(root / "faces", "Adience aligned face folder")

    owner: dict[str, int] = {}
    for k, rows in enumerate(folds):
        for r in rows:
            if owner.setdefault(r["user_id"], k) != k:
                raise ValueError(f"adience: user_id {r['user_id']} appears in folds {owner[r['user_id']]} "
                                 f"and {k}; the folds must be subject-exclusive")

    val_fold = (test_fold + 1) % 5
    wanted = {"test": [test_fold], "val": [val_fold],
              "train": [k for k in range(5) if k not in (test_fold, val_fold)]}[split]
    samples = []
    for k in wanted:
        for r in folds[k]:
            group = adience_group(r["age"])
            if group is None:
                continue
            lo, hi = ADIENCE_GROUPS[group]
            name = f"coarse_tilt_aligned_face.{r['face_id']}.{r['original_image']}"
            samples.append(Sample(
                path=_abs(faces / r["user_id"] / name),
                age=(lo + hi) / 2,
                label=group,
                gender=r["gender"] if r["gender"] in ("m", "f") else None,  # 'u' / '' = unknown
                subject=r["user_id"],
            ))
    return samples


# --------------------------------------------------------------------------- MORPH

# Academic release first: it is the one used in the age-estimation literature.
MORPH_CSVS = ("morph_2008_nonCommercial.csv", "MORPH_Album2_Commercial.csv")


def load_morph(root: Path, split: str, seed: int = 0, subject_exclusive: bool = False,
               csv_name: str | None = None) -> list[Sample]:
    """MORPH Album 2: a CSV in ``root`` plus the images it names, relative to ``root``.

    CSV: ``morph_2008_nonCommercial.csv`` (academic release; columns id_num,
    picture_num, dob, doa, race, gender, facial_hair, age, age_diff, glasses,
    photo) or, failing that, ``MORPH_Album2_Commercial.csv``; ``csv_name``
    overrides. Needed columns: id_num, age, photo (e.g. ``Album2/003250_00M20.JPG``);
    gender (M/F) and race (B/W/A/H/O) are used when present.

    Split (the dataset publishes none; this is the usual random 80/20 protocol):
    rows are shuffled with ``seed``; the first 20% are 'test', and 10% of the
    remaining 80% are held out as 'val', so train/val/test = 72/8/20 %. With
    ``subject_exclusive=True`` whole people (id_num) are shuffled and split the
    same way, so nobody is in two splits.
    """
    names = (csv_name,) if csv_name else MORPH_CSVS
    csv_path = next((root / n for n in names if (root / n).exists()), None)
    if csv_path is None:
        raise FileNotFoundError("MORPH index: expected " + " or ".join(str(root / n) for n in names))
    rows = _read_csv(csv_path, "MORPH index")
    _check_columns(rows, ("id_num", "age", "photo"), csv_path)

    keys = sorted({r["id_num"] for r in rows}) if subject_exclusive else list(range(len(rows)))
    order = [keys[i] for i in np.random.default_rng(seed).permutation(len(keys))]
    n_test = round(0.2 * len(order))
    n_val = round(0.1 * (len(order) - n_test))
    part = {"test": order[:n_test], "val": order[n_test:n_test + n_val], "train": order[n_test + n_val:]}
    chosen = set(part[split])

    samples = []
    for i, r in enumerate(rows):
        if (r["id_num"] if subject_exclusive else i) not in chosen:
            continue
        age = float(r["age"])
        g = r.get("gender", "").strip().upper()
        samples.append(Sample(
            path=_abs(root / r["photo"].strip()),
            age=age,
            label=age_label(age),
            gender={"M": "m", "F": "f"}.get(g),
            race=r.get("race", "").strip() or None,
            subject=r["id_num"],
        ))
    return samples


# --------------------------------------------------------------------------- FG-NET

# 001A02.JPG = subject 001 at age 02; a trailing letter (001A43a.JPG) marks a second photo at that age
_FGNET_NAME = re.compile(r"^(\d{3})A(\d{2})([a-z]?)\.jpe?g$", re.IGNORECASE)


def load_fgnet(root: Path, split: str, test_subject: str | int | None = None,
               val_subject: str | int | None = None) -> list[Sample]:
    """FG-NET: ``root/images/`` (or ``root/`` itself) with files like ``001A02.JPG``.

    Leave-one-person-out, the standard FG-NET protocol: 'test' = ``test_subject``
    ('001'..'082', required), 'train' = everyone else, 'val' = ``val_subject``
    when given (then also left out of train), else empty.
    """
    if test_subject is None:
        raise ValueError("fgnet: pass test_subject ('001'..'082'); FG-NET is evaluated leave-one-person-out")
    test_id = f"{int(test_subject):03d}"
    val_id = f"{int(val_subject):03d}" if val_subject is not None else None
    if val_id == test_id:
        raise ValueError(f"fgnet: val_subject and test_subject are both {test_id}")

    folder = root / "images" if (root / "images").is_dir() else root
    files = sorted(f for f in os.listdir(folder) if _FGNET_NAME.match(f)) if folder.is_dir() else []
    if not files:
        raise FileNotFoundError(f"FG-NET images: expected files like 001A02.JPG in {root / 'images'} or {root}")

    samples = []
    for f in files:
        subject, age = _FGNET_NAME.match(f).group(1, 2)
        which = "test" if subject == test_id else "val" if subject == val_id else "train"
        if which == split:
            samples.append(Sample(path=_abs(folder / f), age=float(age), label=age_label(int(age)),
                                  subject=subject))
    return samples


# --------------------------------------------------------------------------- ChaLearn LAP

def _chalearn_2016(root: Path, split: str, face_crops: bool) -> list[Sample]:
    part = {"train": "train", "val": "valid", "test": "test"}[split]
    avg = root / f"gt_avg_{part}.csv"
    v2 = root / f"{part}_gt.csv"
    if avg.exists() or not v2.exists():
        # APPA-REAL release: per-image summary with real age as well
        rows = _read_csv(avg, "ChaLearn ground truth")
        _check_columns(rows, ("file_name", "apparent_age_avg", "apparent_age_std"), avg)
        triples = [(r["file_name"], r["apparent_age_avg"], r["apparent_age_std"]) for r in rows]
    else:
        # CVPR'16 challenge release: image,mean,stdv
        rows = _read_csv(v2, "ChaLearn ground truth")
        _check_columns(rows, ("image", "mean", "stdv"), v2)
        triples = [(r["image"], r["mean"], r["stdv"]) for r in rows]
    images = _require(root / part, "ChaLearn image folder")
    samples = []
    for name, mean, std in triples:
        # APPA-REAL ships X.jpg_face.jpg next to X.jpg: the rotated face crop with 40% margin
        path = images / (name + "_face.jpg" if face_crops else name)
        samples.append(Sample(path=_abs(path), age=float(mean), label=age_label(float(mean)),
                              age_std=float(std)))
    return samples


def _chalearn_2015(root: Path, split: str) -> list[Sample]:
    part = {"train": "Train", "val": "Validation", "test": "Test"}[split]
    path = _require(root / f"{part}.csv", "ChaLearn 2015 ground truth")
    images = _require(root / part, "ChaLearn 2015 image folder")
    samples = []
    with open(path, newline="", encoding="utf-8-sig") as f:
        for fields in csv.reader(f, delimiter=";"):
            if len(fields) < 3 or not fields[0].strip():
                continue
            try:
                mean, std = float(fields[1]), float(fields[2])
            except ValueError:  # a header line, if the file has one
                continue
            samples.append(Sample(path=_abs(images / fields[0].strip()), age=mean,
                                  label=age_label(mean), age_std=std))
    return samples


def load_chalearn(root: Path, split: str, year: int = 2016, face_crops: bool = False) -> list[Sample]:
    """ChaLearn LAP apparent age; ``age`` = mean apparent age, ``age_std`` = its std.

    ``year=2016``: ``root/gt_avg_{train,valid,test}.csv`` (file_name, num_ratings,
    apparent_age_avg, apparent_age_std, real_age; the APPA-REAL release) with
    images in ``root/{train,valid,test}/``. If a gt_avg file is absent, the
    CVPR'16 challenge file ``root/{train,valid,test}_gt.csv`` (image, mean, stdv)
    is read instead. ``face_crops=True`` points at APPA-REAL's ``X.jpg_face.jpg``.

    ``year=2015``: ``root/{Train,Validation,Test}.csv`` with ``image;mean;std``
    lines (semicolon-separated, no header) and images in
    ``root/{Train,Validation,Test}/``.
    """
    if year == 2016:
        return _chalearn_2016(root, split, face_crops)
    if year == 2015:
        return _chalearn_2015(root, split)
    raise ValueError(f"chalearn: year must be 2015 or 2016, got {year!r}")


# --------------------------------------------------------------------------- entry point

DATASETS: dict[str, Callable[..., list[Sample]]] = {
    "utkface": load_utkface,
    "imdb_wiki": load_imdb_wiki,
    "adience": load_adience,
    "morph": load_morph,
    "fgnet": load_fgnet,
    "chalearn": load_chalearn,
}


def load_dataset(name: str, root: str | Path, split: str, **options) -> list[Sample]:
    """Samples of one split of one dataset, read from its published layout under ``root``."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} for {name}; use one of {', '.join(SPLITS)}")
    return DATASETS[name](Path(root), split, **options)


def summarize(samples: list[Sample]) -> dict:
    """Count, age min/mean/max and label histogram (label -> count, sorted by label)."""
    ages = [s.age for s in samples]
    return {
        "count": len(samples),
        "age_min": min(ages) if ages else None,
        "age_mean": sum(ages) / len(ages) if ages else None,
        "age_max": max(ages) if ages else None,
        "label_hist": dict(sorted(Counter(s.label for s in samples).items())),
    }
