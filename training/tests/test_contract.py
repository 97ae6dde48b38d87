"""The contract both languages read (contract/): the shipped manifests fit its JSON Schema, a
manifest that breaks it is refused before it is written, and the graph's outputs are its own."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from training import contract
from training.model import ExportWrapper

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = sorted(REPO.glob("models/al-*/*/manifest.json")) + sorted(REPO.glob("test/fixtures/model/*/*/manifest.json"))


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(REPO)))
def test_the_shipped_manifests_fit_the_schema(path):
    contract.validate_manifest(json.loads(path.read_text()))


@pytest.mark.parametrize("where, patch", [
    ("outputs", lambda m: m.update(outputs=["age", "probs"])),
    ("input.layout", lambda m: m["input"].update(layout="NCHW")),
    ("name", lambda m: m.update(name="../x")),
    ("files.0.sha256", lambda m: m["files"][0].update(sha256="ABC")),
    ("calibration.decision.ages", lambda m: m["calibration"]["decision"]["ages"].update(adult=[])),
])
def test_a_broken_manifest_is_refused_and_not_written(tmp_path, where, patch):
    manifest = copy.deepcopy(json.loads((REPO / "models/al-dlib29-utkface/8/manifest.json").read_text()))
    patch(manifest)
    with pytest.raises(ValueError, match=f"at {where}"):
        contract.write_manifest_json(tmp_path / "manifest.json", manifest)
    assert not (tmp_path / "manifest.json").exists()


def test_the_graph_outputs_and_tiers_are_the_contract_s():
    assert ExportWrapper.output_names == contract.OUTPUT_NAMES == ("age", "probs", "global_age", "local_age", "box")
    assert set(contract.TIERS) == set(json.loads((REPO / "models/active.json").read_text())["tiers"])
