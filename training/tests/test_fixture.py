"""The committed serving fixture (test/fixtures/model) follows the contract and matches its
manifest; `python -m training fixture` rebuilds it."""
import hashlib
import json
from pathlib import Path

from training.tests.test_end_to_end import check_contract

FIXTURE = Path(__file__).resolve().parents[2] / "test" / "fixtures" / "model"


def test_fixture_matches_manifest_and_contract():
    active = json.loads((FIXTURE / "active.json").read_text())
    directory = FIXTURE / active["name"] / active["version"]
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["name"] == active["name"] and manifest["version"] == active["version"]
    for f in manifest["files"]:
        data = (directory / f["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == f["sha256"] and len(data) == f["bytes"]
    check_contract(directory / manifest["model"], manifest["input"]["size"])
    assert manifest["input"]["size"] == 64 and 0 < manifest["face_margin"] < 1


def test_fixture_command_builds_a_conforming_model(tmp_path):
    from training.fixture import make_fixture
    manifest = make_fixture(str(tmp_path))
    check_contract(tmp_path / "al-fixture" / "1" / manifest["model"], 64)


def test_reference_vector_matches_the_committed_model():
    """reference.json (what the TypeScript tests hold workerd to) belongs to model.onnx."""
    import numpy as np
    import onnxruntime as ort

    from training.fixture import reference_image

    directory = FIXTURE / "al-fixture" / "1"
    ref = json.loads((directory / "reference.json").read_text())
    sess = ort.InferenceSession(str(directory / "model.onnx"), providers=["CPUExecutionProvider"])
    ages = set()
    for case in ref["cases"]:
        age, probs, g, l, box = sess.run(None, {"image": reference_image(case["recipe"], ref["size"])[None]})
        assert abs(age[0] - case["age"]) < 1e-4 and abs(g[0] - case["global_age"]) < 1e-4
        assert np.allclose(probs[0], case["probs"], atol=1e-5)
        assert np.allclose(box[0], case["box"], atol=1e-5)
        ages.add(round(float(age[0]), 1))
    assert len(ages) == len(ref["cases"])
