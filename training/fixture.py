"""`python -m training fixture`: the serving tests' model (test/fixtures/model), a random-weight
network that follows the contract exactly, and the reference images its answers are pinned on
(the TypeScript tests rebuild the same pixels)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from .contract import OUTPUT_NAMES, write_manifest_json
from .export import export_onnx, write_manifest
from .model import create_model


REFERENCE_RECIPES = {
    # Pixel formulas the TypeScript tests rebuild exactly, so workerd's onnxruntime-web can be
    # held to the numbers onnxruntime gives here (x = column, y = row, c = channel).
    "ramp": "(x * 4 + y * 2 + c * 85) % 256",
    "blocks": "((x >> 3) + (y >> 3)) % 2 == 1 ? 40 + c * 60 : 230 - c * 50",
}


def reference_image(recipe: str, size: int) -> np.ndarray:
    y, x, c = np.meshgrid(np.arange(size), np.arange(size), np.arange(3), indexing="ij")
    if recipe == "ramp":
        v = (x * 4 + y * 2 + c * 85) % 256
    elif recipe == "blocks":
        v = np.where(((x >> 3) + (y >> 3)) % 2 == 1, 40 + c * 60, 230 - c * 50)
    else:
        raise ValueError(recipe)
    return v.astype(np.uint8)                                              # [S, S, 3]


def make_fixture(out: str = "test/fixtures/model") -> dict:
    """A random-weight al_resnet_tiny at 64 px that follows the contract exactly: the serving
    tests' model. Deterministic (seed 0), fp32, a few hundred KB. It knows nothing about age.
    Its weights are scaled so that its answers move visibly with the input (a freshly
    initialized network says ~50 for everything), and reference.json holds its outputs for two
    reproducible images, computed with onnxruntime."""
    import onnxruntime as ort

    torch.manual_seed(0)
    model = create_model("al_resnet_tiny").eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                torch.nn.init.ones_(m.weight)       # undo the zero-init: let every branch speak
        model.global_head.weight.mul_(100)
        model.local_head.weight.mul_(100)
        model.attention.location.weight.mul_(10)
        # A non-zero stored LSTM state, so the exported graph really carries one.
        model.attention.h_run.normal_(0, 0.1)
        model.attention.c_run.normal_(0, 0.1)
    root = Path(out)
    directory = root / "al-fixture" / "1"
    directory.mkdir(parents=True, exist_ok=True)
    export_onnx(model, directory / "model.onnx")
    manifest = write_manifest(
        directory, model, "model.onnx", name="al-fixture", version="1", face_margin=0.4,
        metrics={"note": "random weights: a contract fixture for tests, not an age model"},
        training_data={"dataset": "none", "license": "none"})
    manifest["created"] = "fixture"
    write_manifest_json(directory / "manifest.json", manifest)
    (root / "active.json").write_text(json.dumps({"name": "al-fixture", "version": "1"}) + "\n")

    size = model.cfg.input_size
    sess = ort.InferenceSession(str(directory / "model.onnx"), providers=["CPUExecutionProvider"])
    names = list(OUTPUT_NAMES)
    cases = []
    for recipe, formula in REFERENCE_RECIPES.items():
        outs = sess.run(names, {"image": reference_image(recipe, size)[None]})
        cases.append({"recipe": recipe, "pixel": formula,
                      **{k: np.round(v[0].astype(float), 6).tolist() for k, v in zip(names, outs)}})
    (directory / "reference.json").write_text(json.dumps(
        {"size": size, "layout": "NHWC uint8, one image", "tolerance": 1e-3, "cases": cases},
        indent=1) + "\n")
    return manifest
