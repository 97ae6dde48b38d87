"""The models in models/ are what their manifests say: every file matches its checksum, and the
active model's int8 graph reproduces the validation MAE its manifest reports."""
import hashlib
import json
from pathlib import Path

import pytest

from training.data import load_packed
from training.evaluate import predict_onnx, summarize_predictions

MODELS = Path(__file__).resolve().parents[2] / "models"
VERSIONS = sorted(p.parent for p in MODELS.glob("*/*/manifest.json"))


@pytest.mark.parametrize("version", VERSIONS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_files_match_the_manifest(version):
    manifest = json.loads((version / "manifest.json").read_text())
    assert f"{manifest['name']}/{manifest['version']}" == f"{version.parent.name}/{version.name}"
    for f in manifest["files"]:
        data = (version / f["path"]).read_bytes()
        assert len(data) == f["bytes"] and hashlib.sha256(data).hexdigest() == f["sha256"], f["path"]


def test_active_model_reproduces_its_validation_mae(utkface_root):
    active = json.loads((MODELS / "active.json").read_text())
    version = MODELS / active["name"] / active["version"]
    manifest = json.loads((version / "manifest.json").read_text())
    # The release measured val on the faces as packed for training (whole 200 px crops, no margin).
    val = load_packed("utkface", str(utkface_root), "val", manifest["input"]["size"], progress=False)
    mae = summarize_predictions(predict_onnx(str(version / manifest["model"]), val), val)["fused"]["mae"]
    assert mae == pytest.approx(manifest["metrics"]["val_mae_int8"], abs=0.005)
