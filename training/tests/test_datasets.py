"""Adapters in training/datasets.py, each checked on a tiny fixture written in the
dataset's published layout (8x8 JPEGs in tmp_path)."""

from __future__ import annotations

import csv
import datetime
import hashlib
import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from training.datasets import (
    ADIENCE_GROUPS, DATASETS, Sample, adience_group, load_dataset, summarize,
)

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"

_buf = io.BytesIO()
Image.new("RGB", (8, 8), (120, 90, 60)).save(_buf, "JPEG")
JPEG = _buf.getvalue()


def jpeg(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(JPEG)


def write_csv(path: Path, header: list[str], rows: list[list], delimiter: str = ",") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f, delimiter=delimiter)
        w.writerow(header)
        w.writerows(rows)


def check_paths(samples: list[Sample]) -> None:
    for s in samples:
        assert os.path.isabs(s.path) and os.path.isfile(s.path), s.path


# ----------------------------------------------------------------------------- entry point

def test_registry_and_unknown_name_or_split(tmp_path):
    assert set(DATASETS) == {"utkface", "imdb_wiki", "adience", "morph", "fgnet", "chalearn"}
    with pytest.raises(ValueError, match="unknown dataset 'celeba'.*utkface"):
        load_dataset("celeba", tmp_path, "train")
    with pytest.raises(ValueError, match="unknown split 'valid'"):
        load_dataset("utkface", tmp_path, "valid")


def test_summarize():
    s = [Sample("/a", 10.0, 10), Sample("/b", 30.0, 30), Sample("/c", 30.4, 30)]
    assert summarize(s) == {"count": 3, "age_min": 10.0, "age_mean": pytest.approx(70.4 / 3),
                            "age_max": 30.4, "label_hist": {10: 1, 30: 2}}
    assert summarize([])["count"] == 0 and summarize([])["age_mean"] is None


# ----------------------------------------------------------------------------- UTKFace

UTK_HEADER = ["file", "age", "gender", "race", "md5", "duplicate_group_size", "duplicate_age_conflict", "split"]


@pytest.fixture
def utk_root(tmp_path):
    rows = [
        ["25_0_0_a.jpg.chip.jpg", 25, 0, 0, "m1", 1, 0, "train"],
        ["116_1_2_b.jpg.chip.jpg", 116, 1, 2, "m2", 1, 0, "train"],
        ["30_1__c.jpg.chip.jpg", 30, 1, "", "m3", 1, 0, "train"],
        ["40_0_3_d.jpg.chip.jpg", 40, 0, 3, "m4", 2, 1, "train"],   # duplicate with conflicting age
        ["41_0_4_e.jpg.chip.jpg", 41, 0, 4, "m5", 1, 0, "val"],
        ["1_1_1_f.jpg.chip.jpg", 1, 1, 1, "m6", 1, 0, "test"],
        ["2_1_1_g.jpg.chip.jpg", 2, 1, 1, "m7", 2, 1, "test"],      # conflicts are kept outside train
    ]
    write_csv(tmp_path / "labels.csv", UTK_HEADER, rows)
    for r in rows:
        jpeg(tmp_path / "images" / r[0])
    return tmp_path


def test_utkface_splits_and_fields(utk_root):
    train = load_dataset("utkface", str(utk_root), "train")
    assert [len(load_dataset("utkface", utk_root, s)) for s in ("train", "val", "test")] == [4, 1, 2]
    check_paths(train)
    by_age = {s.age: s for s in train}
    assert by_age[116.0].label == 100                      # age kept, label clipped
    assert (by_age[116.0].gender, by_age[116.0].race) == ("f", "Asian")
    assert (by_age[25.0].gender, by_age[25.0].race, by_age[25.0].label) == ("m", "White", 25)
    assert by_age[30.0].race is None                        # empty race column
    assert by_age[40.0].race == "Indian"
    assert by_age[25.0].path == os.path.join(str(utk_root), "images", "25_0_0_a.jpg.chip.jpg")
    assert all(s.subject is None and s.box is None and s.age_std is None for s in train)


def test_utkface_drop_conflicts_only_touches_train(utk_root):
    train = load_dataset("utkface", utk_root, "train", drop_conflicts=True)
    assert sorted(s.age for s in train) == [25.0, 30.0, 116.0]
    assert len(load_dataset("utkface", utk_root, "test", drop_conflicts=True)) == 2


def test_utkface_missing_labels(tmp_path):
    with pytest.raises(FileNotFoundError, match="labels.csv"):
        load_dataset("utkface", tmp_path, "train")


def test_utkface_real_labels():
    root = SHARED_DATA / "utkface"
    if not (root / "labels.csv").exists():
        pytest.skip(f"real UTKFace not found at {root} (shared data is only on the team's machines)")
    sizes = [len(load_dataset("utkface", root, s)) for s in ("train", "val", "test")]
    assert sizes == [17267, 2069, 2078]
    assert len(load_dataset("utkface", root, "train", drop_conflicts=True)) == 17267 - 419


# ----------------------------------------------------------------------------- IMDB-WIKI

def datenum(y: int, m: int, d: int) -> float:
    """MATLAB serial date number, as stored in dob."""
    return float(datetime.date(y, m, d).toordinal() + 366)


def write_mat(root: Path, source: str, rows: list[dict]) -> None:
    from scipy.io import savemat
    n = len(rows)
    paths = np.empty((1, n), dtype=object)
    names = np.empty((1, n), dtype=object)
    locs = np.empty((1, n), dtype=object)
    for i, r in enumerate(rows):
        paths[0, i] = np.array([r["path"]])
        names[0, i] = np.array([f"person {i}"])
        locs[0, i] = np.array([[10.0, 10.0, 50.0, 50.0]])
        jpeg(root / f"{source}_crop" / r["path"])
    meta = {
        "dob": np.array([[r["dob"] for r in rows]]),
        "photo_taken": np.array([[r["taken"] for r in rows]], dtype=np.uint16),
        "full_path": paths,
        "gender": np.array([[r.get("gender", 1.0) for r in rows]]),
        "name": names,
        "face_location": locs,
        "face_score": np.array([[r.get("score", 3.0) for r in rows]]),
        "second_face_score": np.array([[r.get("second", np.nan) for r in rows]]),
    }
    savemat(root / f"{source}_crop" / f"{source}.mat", {source: meta})


def bucket(key: str) -> str:
    b = int(hashlib.md5(key.encode()).hexdigest(), 16) % 100
    return "train" if b < 90 else "val" if b < 95 else "test"


@pytest.fixture
def imdb_root(tmp_path):
    clean = [{"path": f"{i:02d}/nm{i:07d}_rm1_1970-1-1_2000.jpg", "dob": datenum(1970, 1, 1),
              "taken": 2000, "gender": float(i % 2)} for i in range(40)]
    edge = [
        {"path": "90/born_march.jpg", "dob": datenum(1980, 3, 15), "taken": 2000},     # 20
        {"path": "90/born_sept.jpg", "dob": datenum(1980, 9, 15) + 0.4, "taken": 2000},  # 19
        {"path": "90/no_gender.jpg", "dob": datenum(1950, 1, 1), "taken": 2000, "gender": np.nan},
        {"path": "91/no_face.jpg", "dob": datenum(1970, 1, 1), "taken": 2000, "score": -np.inf},
        {"path": "91/weak_face.jpg", "dob": datenum(1970, 1, 1), "taken": 2000, "score": 0.9},
        {"path": "91/two_faces.jpg", "dob": datenum(1970, 1, 1), "taken": 2000, "second": 1.5},
        {"path": "91/too_old.jpg", "dob": datenum(1890, 1, 1), "taken": 2000},
        {"path": "91/negative.jpg", "dob": datenum(2005, 1, 1), "taken": 2000},
        {"path": "91/bad_dob.jpg", "dob": 10.0, "taken": 2000},
    ]
    write_mat(tmp_path, "imdb", clean + edge)
    write_mat(tmp_path, "wiki", [{"path": "12/wiki_person.jpg", "dob": datenum(1960, 6, 30), "taken": 2010,
                                  "gender": 0.0}])
    return tmp_path


def test_imdb_wiki_cleaning_ages_and_hash_split(imdb_root):
    splits = {s: load_dataset("imdb_wiki", imdb_root, s) for s in ("train", "val", "test")}
    every = [x for s in splits.values() for x in s]
    names = sorted(os.path.relpath(x.path, imdb_root) for x in every)
    kept = [f"imdb_crop/{i:02d}/nm{i:07d}_rm1_1970-1-1_2000.jpg" for i in range(40)] + [
        "imdb_crop/90/born_march.jpg", "imdb_crop/90/born_sept.jpg", "imdb_crop/90/no_gender.jpg",
        "wiki_crop/12/wiki_person.jpg"]
    assert names == sorted(kept)                   # the 6 unclean rows are gone, nothing duplicated
    check_paths(every)
    for split, samples in splits.items():          # split = md5 of "<source>/<full_path>", 90/5/5
        for x in samples:
            source, rel = os.path.relpath(x.path, imdb_root).split("/", 1)
            assert bucket(f"{source[:-5]}/{rel}") == split
    assert len(splits["train"]) > len(splits["val"]) + len(splits["test"])

    by_name = {os.path.basename(x.path): x for x in every}
    assert by_name["born_march.jpg"].age == 20.0   # birthday before 1 July of the photo year
    assert by_name["born_sept.jpg"].age == 19.0    # birthday after it
    assert by_name["wiki_person.jpg"].age == 50.0  # born 30 June: turned 50 on the assumed date
    assert by_name["no_gender.jpg"].gender is None and by_name["no_gender.jpg"].label == 50
    assert by_name["wiki_person.jpg"].gender == "f"
    assert by_name["nm0000001_rm1_1970-1-1_2000.jpg"].gender == "m"
    assert all(x.box is None for x in every)       # crops already


def test_imdb_wiki_sources_and_threshold(imdb_root):
    wiki = [x for s in ("train", "val", "test") for x in load_dataset("imdb_wiki", imdb_root, s, sources=("wiki",))]
    assert [os.path.basename(x.path) for x in wiki] == ["wiki_person.jpg"]
    loose = sum(len(load_dataset("imdb_wiki", imdb_root, s, sources=("imdb",), min_face_score=0.5))
                for s in ("train", "val", "test"))
    assert loose == 44                             # weak_face (0.9) passes a 0.5 threshold
    (imdb_root / "wiki_crop" / "wiki.mat").unlink()
    assert sum(len(load_dataset("imdb_wiki", imdb_root, s)) for s in ("train", "val", "test")) == 43
    with pytest.raises(FileNotFoundError, match="wiki_crop/wiki.mat"):
        load_dataset("imdb_wiki", imdb_root, "train", sources=("imdb", "wiki"))
    with pytest.raises(ValueError, match="unknown source"):
        load_dataset("imdb_wiki", imdb_root, "train", sources=("flickr",))


def test_imdb_wiki_missing_metadata(tmp_path):
    with pytest.raises(FileNotFoundError, match="imdb_crop/imdb.mat and/or .*wiki_crop/wiki.mat"):
        load_dataset("imdb_wiki", tmp_path, "train")


# ----------------------------------------------------------------------------- Adience

ADIENCE_HEADER = ["user_id", "original_image", "face_id", "age", "gender", "x", "y", "dx", "dy",
                  "tilt_ang", "fiducial_yaw_angle", "fiducial_score"]

# fold -> (user_id, age, gender) rows; users never cross folds, as in the official files
ADIENCE_FOLDS = {
    0: [("u0", "(25, 32)", "f"), ("u0", "(38, 42)", "m"), ("u0", "None", "f"), ("u0b", "35", "u")],
    1: [("u1", "(0, 2)", "m"), ("u1", "(60, 100)", "f")],
    2: [("u2", "(8, 12)", "f"), ("u2", "42", "m"), ("u2", "(0, 3)", "f")],  # '(0, 3)' is not mappable
    3: [("u3", "(15, 20)", ""), ("u3", "(8, 23)", "m")],
    4: [("u4", "(48, 53)", "m"), ("u4", "57", "f"), ("u4", "3", "f")],
}


def write_adience(root: Path, folds: dict) -> None:
    for k, rows in folds.items():
        lines = []
        for j, (user, age, gender) in enumerate(rows):
            image = f"{k}{j}_orig.jpg"
            lines.append([user, image, 100 + j, age, gender, 10, 20, 300, 300, 0, 0, 50])
            jpeg(root / "faces" / user / f"coarse_tilt_aligned_face.{100 + j}.{image}")
        write_csv(root / f"fold_{k}_data.txt", ADIENCE_HEADER, lines, delimiter="\t")


def test_adience_group_rule():
    protocol = [f"({lo}, {hi})" for lo, hi in ADIENCE_GROUPS]
    assert [adience_group(a) for a in protocol] == list(range(8))
    off = {"(38, 42)": 5, "(8, 23)": 3, "(27, 32)": 4, "(38, 48)": 6, "35": 5, "13": 2, "22": 3,
           "34": 4, "23": 4, "45": 5, "55": 6, "36": 5, "57": 7, "3": 0, "29": 4, "58": 7, "2": 0,
           "42": 5, "46": 6, "56": 6, "1": 0, "70": 7}
    assert {a: adience_group(a) for a in off} == off
    assert [adience_group(a) for a in ("None", "", "(0, 3)", "7", "24")] == [None] * 5


def test_adience_folds(tmp_path):
    write_adience(tmp_path, ADIENCE_FOLDS)
    test = load_dataset("adience", tmp_path, "test", test_fold=0)
    val = load_dataset("adience", tmp_path, "val", test_fold=0)
    train = load_dataset("adience", tmp_path, "train", test_fold=0)
    assert [(s.subject, s.label, s.age, s.gender) for s in test] == [
        ("u0", 4, 28.5, "f"), ("u0", 5, 40.5, "m"), ("u0b", 5, 40.5, None)]   # 'None' row skipped
    assert [(s.label, s.age) for s in val] == [(0, 1.0), (7, 80.0)]          # fold 1
    assert sorted(s.label for s in train) == [0, 2, 3, 3, 5, 6, 7]          # folds 2-4, '(0, 3)' skipped
    assert {s.subject for s in train} == {"u2", "u3", "u4"}
    check_paths(test + val + train)
    assert test[0].path == os.path.join(str(tmp_path), "faces", "u0", "coarse_tilt_aligned_face.100.00_orig.jpg")
    assert all(s.box is None for s in test)                                 # aligned crops

    assert {s.subject for s in load_dataset("adience", tmp_path, "val", test_fold=4)} == {"u0", "u0b"}
    with pytest.raises(ValueError, match="test_fold"):
        load_dataset("adience", tmp_path, "test", test_fold=5)


def test_adience_subject_in_two_folds_raises(tmp_path):
    folds = dict(ADIENCE_FOLDS)
    folds[3] = folds[3] + [("u1", "(25, 32)", "f")]
    write_adience(tmp_path, folds)
    with pytest.raises(ValueError, match="u1 appears in folds 1 and 3"):
        load_dataset("adience", tmp_path, "test", test_fold=0)


def test_adience_missing_fold(tmp_path):
    write_adience(tmp_path, ADIENCE_FOLDS)
    (tmp_path / "fold_3_data.txt").unlink()
    with pytest.raises(FileNotFoundError, match="fold_3_data.txt"):
        load_dataset("adience", tmp_path, "train")


# ----------------------------------------------------------------------------- MORPH

MORPH_HEADER = ["id_num", "picture_num", "dob", "doa", "race", "gender", "facial_hair", "age",
                "age_diff", "glasses", "photo"]


def write_morph(root: Path, name: str = "morph_2008_nonCommercial.csv") -> None:
    rows = []
    for subj in range(10):                       # 10 people x 3 photos
        for pic in range(3):
            age = 18 + subj * 4 + pic
            photo = f"Album2/{subj:06d}_{pic:02d}M{age}.JPG"
            rows.append([f"{subj:06d}", pic, "01/01/1970", "01/01/2003", "BWAHO"[subj % 5],
                         "MF"[subj % 2], 0, age, 0, 0, photo])
            jpeg(root / photo)
    write_csv(root / name, MORPH_HEADER, rows)


def test_morph_random_split(tmp_path):
    write_morph(tmp_path)
    parts = {s: load_dataset("morph", tmp_path, s) for s in ("train", "val", "test")}
    assert [len(parts[s]) for s in ("train", "val", "test")] == [22, 2, 6]   # 20% test, 10% of the rest val
    every = [x for p in parts.values() for x in p]
    assert len({x.path for x in every}) == 30                              # disjoint and complete
    check_paths(every)
    again = load_dataset("morph", tmp_path, "test", seed=0)
    assert [x.path for x in again] == [x.path for x in parts["test"]]
    assert {x.path for x in load_dataset("morph", tmp_path, "test", seed=1)} != {x.path for x in again}

    first = next(x for p in parts.values() for x in p if x.path.endswith("000001_02M24.JPG"))
    assert (first.age, first.label, first.subject, first.gender, first.race) == (24.0, 24, "000001", "f", "W")


def test_morph_subject_exclusive(tmp_path):
    write_morph(tmp_path)
    parts = {s: load_dataset("morph", tmp_path, s, subject_exclusive=True, seed=3) for s in ("train", "val", "test")}
    people = {s: {x.subject for x in p} for s, p in parts.items()}
    assert [len(people[s]) for s in ("train", "val", "test")] == [7, 1, 2]
    assert [len(parts[s]) for s in ("train", "val", "test")] == [21, 3, 6]
    assert not (people["train"] & people["test"]) and not (people["train"] & people["val"])


def test_morph_commercial_name_and_missing(tmp_path):
    write_morph(tmp_path, "MORPH_Album2_Commercial.csv")
    assert len(load_dataset("morph", tmp_path, "test")) == 6
    with pytest.raises(FileNotFoundError, match="morph_2008_nonCommercial.csv"):
        load_dataset("morph", tmp_path / "nowhere", "test")


# ----------------------------------------------------------------------------- FG-NET

FGNET_FILES = ["001A02.JPG", "001A43a.JPG", "001A43b.JPG", "002A10.JPG", "002a16.jpg", "082A61.JPG"]


@pytest.fixture
def fgnet_root(tmp_path):
    for f in FGNET_FILES:
        jpeg(tmp_path / "images" / f)
    (tmp_path / "images" / "Thumbs.db").write_bytes(b"x")   # stray files are ignored
    return tmp_path


def test_fgnet_leave_one_person_out(fgnet_root):
    test = load_dataset("fgnet", fgnet_root, "test", test_subject="001")
    assert [(os.path.basename(s.path), s.age, s.label, s.subject) for s in test] == [
        ("001A02.JPG", 2.0, 2, "001"), ("001A43a.JPG", 43.0, 43, "001"), ("001A43b.JPG", 43.0, 43, "001")]
    train = load_dataset("fgnet", fgnet_root, "train", test_subject=1)
    assert sorted(s.age for s in train) == [10.0, 16.0, 61.0]
    assert load_dataset("fgnet", fgnet_root, "val", test_subject="001") == []
    check_paths(test + train)

    val = load_dataset("fgnet", fgnet_root, "val", test_subject="001", val_subject="082")
    assert [s.subject for s in val] == ["082"]
    assert {s.subject for s in load_dataset("fgnet", fgnet_root, "train", test_subject="001",
                                            val_subject="082")} == {"002"}


def test_fgnet_flat_root_and_errors(tmp_path):
    for f in FGNET_FILES[:2]:
        jpeg(tmp_path / f)                                   # images directly under root
    assert len(load_dataset("fgnet", tmp_path, "test", test_subject="001")) == 2
    with pytest.raises(ValueError, match="test_subject"):
        load_dataset("fgnet", tmp_path, "test")
    with pytest.raises(FileNotFoundError, match="001A02.JPG"):
        load_dataset("fgnet", tmp_path / "images_missing", "test", test_subject="001")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="001A02.JPG"):
        load_dataset("fgnet", tmp_path / "empty", "test", test_subject="001")


# ----------------------------------------------------------------------------- ChaLearn

def test_chalearn_2016(tmp_path):
    header = ["file_name", "num_ratings", "apparent_age_avg", "apparent_age_std", "real_age"]
    data = {"train": [["000000.jpg", 38, 36.5, 4.25, 40], ["000001.jpg", 40, 101.2, 3.0, 99]],
            "valid": [["004113.jpg", 35, 24.5, 2.5, 25]],
            "test": [["005613.jpg", 30, 8.2, 1.75, 8], ["005614.jpg", 31, 60.0, 6.0, 58], ["005615.jpg", 30, 1, 1, 1]]}
    for part, rows in data.items():
        write_csv(tmp_path / f"gt_avg_{part}.csv", header, rows)
        for r in rows:
            jpeg(tmp_path / part / r[0])
            jpeg(tmp_path / part / (r[0] + "_face.jpg"))
    assert [len(load_dataset("chalearn", tmp_path, s)) for s in ("train", "val", "test")] == [2, 1, 3]
    train = load_dataset("chalearn", tmp_path, "train", year=2016)
    assert [(s.age, s.age_std, s.label) for s in train] == [(36.5, 4.25, 36), (101.2, 3.0, 100)]
    val = load_dataset("chalearn", tmp_path, "val")
    assert val[0].path == os.path.join(str(tmp_path), "valid", "004113.jpg")
    faces = load_dataset("chalearn", tmp_path, "val", face_crops=True)
    assert faces[0].path.endswith("004113.jpg_face.jpg")
    check_paths(train + val + faces)

    (tmp_path / "gt_avg_valid.csv").unlink()
    with pytest.raises(FileNotFoundError, match="gt_avg_valid.csv"):
        load_dataset("chalearn", tmp_path, "val")
    write_csv(tmp_path / "valid_gt.csv", ["image", "mean", "stdv"], [["004113.jpg", 22.75, 5.5]])
    assert [(s.age, s.age_std, s.label) for s in load_dataset("chalearn", tmp_path, "val")] == [(22.75, 5.5, 23)]


def test_chalearn_2015(tmp_path):
    data = {"Train": [["image_1.jpg", 31.2, 4.1], ["image_2.jpg", 7.5, 1.2]],
            "Validation": [["image_3.jpg", 55.0, 8.0]],
            "Test": [["image_4.jpg", 18.0, 2.0]]}
    for part, rows in data.items():
        with open(tmp_path / f"{part}.csv", "w", newline="") as f:
            csv.writer(f, delimiter=";").writerows(rows)
        for r in rows:
            jpeg(tmp_path / part / r[0])
    train = load_dataset("chalearn", tmp_path, "train", year=2015)
    assert [(os.path.basename(s.path), s.age, s.age_std, s.label) for s in train] == [
        ("image_1.jpg", 31.2, 4.1, 31), ("image_2.jpg", 7.5, 1.2, 8)]
    val = load_dataset("chalearn", tmp_path, "val", year=2015)
    assert val[0].path == os.path.join(str(tmp_path), "Validation", "image_3.jpg") and val[0].age == 55.0
    assert len(load_dataset("chalearn", tmp_path, "test", year=2015)) == 1
    check_paths(train + val)

    (tmp_path / "Validation.csv").unlink()
    with pytest.raises(FileNotFoundError, match="Validation.csv"):
        load_dataset("chalearn", tmp_path, "val", year=2015)
    with pytest.raises(ValueError, match="year"):
        load_dataset("chalearn", tmp_path, "val", year=2017)
