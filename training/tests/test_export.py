"""The int8 encoding and the serving-runtime evaluator that a release's numbers rest on."""
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from training.data import Packed
from training.evaluate import predict_wasm
from training import export
from training.export import export_onnx, portable_weights, quantize_int8
from training.model import create_model
from training.fixture import reference_image

FIXTURE = Path(__file__).resolve().parents[2] / "test" / "fixtures" / "model" / "al-fixture" / "1"


def _faces(n: int, size: int, seed: int = 0) -> np.ndarray:
    # Smooth images (random gradients), closer to faces than noise for the calibrator.
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    a = rng.uniform(0, 255, (n, 1, 1, 3))
    b = rng.uniform(-128, 128, (n, 1, 1, 3))
    c = rng.uniform(-128, 128, (n, 1, 1, 3))
    return np.clip(a + b * x[None, ..., None] + c * y[None, ..., None], 0, 255).astype(np.uint8)


def _run(path, images, level=ort.GraphOptimizationLevel.ORT_ENABLE_ALL):
    so = ort.SessionOptions()
    so.graph_optimization_level = level
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return sess.run(["age", "probs"], {"image": images})


def _weight_types(path) -> list[int]:
    graph = onnx.load(str(path), load_external_data=False).graph
    types = {t.name: t.data_type for t in graph.initializer}
    return [types[n.input[0]] for n in graph.node if n.op_type == "DequantizeLinear" and n.input[0] in types]


def _tiny_int8(tmp_path) -> tuple[Path, np.ndarray]:
    torch.manual_seed(0)
    model = create_model("al_resnet_tiny").eval()
    size = model.cfg.input_size
    fp32 = export_onnx(model, tmp_path / "model.fp32.onnx")
    int8 = quantize_int8(fp32, tmp_path / "model.int8.onnx", _faces(32, size), external_data=True)
    return int8, _faces(8, size, seed=1)


def test_quantized_weights_are_uint8(tmp_path):
    int8, _ = _tiny_int8(tmp_path)
    types = _weight_types(int8)
    assert onnx.TensorProto.UINT8 in types and onnx.TensorProto.INT8 not in types


def test_portable_weights_keep_every_answer(tmp_path, monkeypatch):
    """Moving int8 weights and zero points by +128 changes the encoding, not the numbers. The
    reference is the graph run without fusions (dequantize, then float ops), which is the same
    on any CPU."""
    monkeypatch.setattr(export, "portable_weights", lambda *args, **kwargs: 0)
    signed, images = _tiny_int8(tmp_path)     # quantize_static's own uint8 x int8 graph
    monkeypatch.undo()
    assert onnx.TensorProto.INT8 in _weight_types(signed)

    portable = tmp_path / "portable.onnx"
    onnx.save(onnx.load(str(signed)), str(portable))
    assert portable_weights(portable) > 0
    assert onnx.TensorProto.INT8 not in _weight_types(portable)
    plain = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    for a, b in zip(_run(signed, images, plain), _run(portable, images, plain)):
        np.testing.assert_array_equal(a, b)
    # Fused int8 kernels: identical integers, so the same answers up to float rounding.
    for a, b in zip(_run(signed, images), _run(portable, images)):
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_wasm_evaluator_reproduces_the_fixture_reference():
    """training/js/wasm-predict.mjs (the release's served numbers) runs a graph as workerd does:
    held to the same reference.json that test/reference.test.ts holds workerd to."""
    reference = json.loads((FIXTURE / "reference.json").read_text())
    size = reference["size"]
    images = np.stack([reference_image(c["recipe"], size) for c in reference["cases"]])
    data = Packed(images=torch.from_numpy(images), labels=torch.zeros(len(images), dtype=torch.long),
                  ages=torch.zeros(len(images)), age_std=torch.zeros(len(images)),
                  gender=["?"] * len(images), race=["?"] * len(images))
    got = predict_wasm(str(FIXTURE / "model.onnx"), data)
    for i, case in enumerate(reference["cases"]):
        # The reference was computed in float32 by Python onnxruntime; 1e-3 is float rounding
        # between two runtimes, far below what a wrong layout or output order would move.
        np.testing.assert_allclose(got["fused"]["age"][i], case["age"], atol=1e-3)
        np.testing.assert_allclose(got["fused"]["probs"][i], case["probs"], atol=1e-3)
        np.testing.assert_allclose(got["global"]["age"][i], case["global_age"], atol=1e-3)
        np.testing.assert_allclose(got["local"]["age"][i], case["local_age"], atol=1e-3)
        np.testing.assert_allclose(got["box"][i], case["box"], atol=1e-3)


def test_a_graph_served_without_the_local_branch_does_not_compute_it(tmp_path):
    """fusion_local 0: the exported graph leaves out the attention branch (no LSTM, no second pass
    over the later groups), answers what the global head answers, and reports the whole crop."""
    torch.manual_seed(0)
    model = create_model("al_dlib29", input_size=112).eval()
    full = export_onnx(model, tmp_path / "full.onnx")
    model.cfg.fusion_local = 0.0
    lean = export_onnx(model, tmp_path / "lean.onnx")
    ops = lambda p: [n.op_type for n in onnx.load(str(p)).graph.node]
    assert "Sigmoid" not in ops(lean) and len(ops(lean)) < len(ops(full)) * 0.8
    images = _faces(3, 112)
    sess = ort.InferenceSession(str(lean), providers=["CPUExecutionProvider"])
    age, probs, global_age, local_age, box = sess.run(["age", "probs", "global_age", "local_age", "box"], {"image": images})
    assert np.allclose(age, global_age, atol=1e-4) and np.allclose(local_age, global_age, atol=1e-4)
    assert np.allclose(box, [[0, 0, 1, 1]] * 3)
    with torch.no_grad():
        pred = model.predict(model(model.preprocess(torch.from_numpy(images)), local=False))
    assert np.allclose(age, pred["age"].numpy(), atol=1e-3)


def test_a_graph_with_the_gray_view_answers_as_the_network_does(tmp_path):
    """test_gray: the exported graph averages the face, its mirror and their gray, as
    predict_packed's flip+gray does, and the manifest lists the four views."""
    from training.data import Packed
    from training.evaluate import predict_packed
    torch.manual_seed(0)
    model = create_model("al_resnet_tiny", input_size=64).eval()
    model.cfg.test_flip, model.cfg.test_gray = True, True
    path = export_onnx(model, tmp_path / "gray.onnx")
    images = _faces(4, 64)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    age, probs = sess.run(["age", "probs"], {"image": images})
    data = Packed(torch.from_numpy(images), torch.zeros(4), torch.zeros(4, dtype=torch.long),
                  torch.full((4,), float("nan")), [None] * 4, [None] * 4)
    want = predict_packed(model, data, tta="flip+gray")["fused"]
    assert np.allclose(probs, want["probs"], atol=1e-5) and np.allclose(age, want["age"], atol=1e-3)

