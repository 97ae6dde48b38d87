"""`python -m training recover`: a released int8 graph back to a PyTorch network."""
import json

import numpy as np
import torch

from training.export import export_onnx, quantize_int8
from training.model import create_model
from training.recover import recalibrate_batchnorm, recover


def _faces(n: int, size: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    a = rng.uniform(0, 255, (n, 1, 1, 3))
    b = rng.uniform(-128, 128, (n, 1, 1, 3))
    return np.clip(a + b * x[None, ..., None] + b * y[None, ..., None], 0, 255).astype(np.uint8)


def _released(tmp_path):
    torch.manual_seed(0)
    model = create_model("al_resnet_tiny")
    with torch.no_grad():                       # BatchNorms that are not the identity, as after training
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
        model.temperature.fill_(0.9)
    model.eval()
    fp32 = export_onnx(model, tmp_path / "model.fp32.onnx")
    quantize_int8(fp32, tmp_path / "model.int8.onnx", _faces(32, 64))
    (tmp_path / "manifest.json").write_text(json.dumps({
        "arch": "al_resnet_tiny", "input": {"size": 64}, "views": ["face"], "temperature": 0.9,
        "model": "model.int8.onnx"}))
    return model


@torch.no_grad()
def test_recovered_network_answers_like_the_original(tmp_path):
    original = _released(tmp_path)
    got, info = recover(tmp_path)
    assert info["not_in_graph"] == ["attention.c_run", "attention.h_run"]   # constants folded by the exporter
    assert float(got.temperature) == float(original.temperature)
    x = original.preprocess(torch.from_numpy(_faces(8, 64, seed=1)))
    a, b = original.predict(original(x)), got.predict(got(x))
    # Only the weights' int8 rounding differs.
    assert (a["global_age"] - b["global_age"]).abs().max() < 1.0
    assert (a["p_global"] - b["p_global"]).abs().max() < 0.02


@torch.no_grad()
def test_recalibrated_batchnorm_keeps_the_function(tmp_path):
    _released(tmp_path)
    model, _ = recover(tmp_path)
    faces = torch.from_numpy(_faces(16, 64, seed=2))
    x = model.preprocess(faces)
    before = model.predict(model(x))["global_age"]
    recalibrate_batchnorm(model, faces)
    after = model.predict(model(x))["global_age"]
    assert (before - after).abs().max() < 1e-3
    bn = model.backbone.stem[1]
    assert not torch.allclose(bn.running_var, torch.ones_like(bn.running_var))


@torch.no_grad()
def test_a_graph_served_without_the_local_branch_is_recovered_without_it(tmp_path):
    """Versions 8 serve the global head alone (fusion local 0): the recovered network must answer
    with that fusion, not add the branch the graph does not hold (it would be untrained)."""
    torch.manual_seed(0)
    model = create_model("al_resnet_tiny")
    model.cfg.fusion_local = 0.0
    model.eval()
    fp32 = export_onnx(model, tmp_path / "model.fp32.onnx")
    quantize_int8(fp32, tmp_path / "model.int8.onnx", _faces(32, 64))
    (tmp_path / "manifest.json").write_text(json.dumps({
        "arch": "al_resnet_tiny", "input": {"size": 64}, "views": ["face", "mirror"], "temperature": 1.0,
        "fusion": {"global": 1.0, "local": 0.0}, "model": "model.int8.onnx"}))
    got, info = recover(tmp_path)
    assert (got.cfg.fusion_global, got.cfg.fusion_local, got.cfg.test_flip) == (1.0, 0.0, True)
    assert "local_head.weight" in info["not_in_graph"]
    x = model.preprocess(torch.from_numpy(_faces(8, 64, seed=1)))
    a, b = model.predict(model(x, local=False)), got.predict(got(x, local=False))
    assert (a["age"] - b["age"]).abs().max() < 1.0

