"""Evaluation: run a model (PyTorch or an exported ONNX file) over a packed split and report
MAE, median error, CS@5, epsilon-error, Adience accuracy / 1-off, the 80% range's coverage and
MAE by age band, gender and race -- global-only, local-only and fused side by side."""
from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import torch

from . import metrics
from .calibration import range_levels_for
from .contract import OUTPUT_NAMES
from .data import Packed, load_split, resize, ten_crop
from .model import ALNet, average_views, dex, gray_view, load_checkpoint

BRANCHES = ("global", "local", "fused")


@torch.no_grad()
def predict_packed(model: ALNet, data: Packed, device="cpu", tta: str = "single",
                   batch_size: int = 256, temperature: float | None = None) -> dict:
    """-> {'global'|'local'|'fused': {'age': [N], 'probs': [N, M]}, 'box': [N, 4]} as numpy.
    Ten-crop (and flip: the face and its mirror) averages each branch's distribution over the
    views before DEX."""
    was_training = model.training
    model.eval()
    size = model.cfg.input_size
    t = torch.tensor(float(temperature), device=device) if temperature is not None else None
    keys = {"global": "p_global", "local": "p_local", "fused": "probs"}
    probs = {b: [] for b in BRANCHES}
    boxes = []
    for start in range(0, len(data), batch_size):
        chunk = data.images[start:start + batch_size].to(device)
        pred = average_views([model.predict(model(model.normalize(v)), temperature=t)
                              for v in _views(chunk, size, tta)], model.class_ages)
        for b in BRANCHES:
            probs[b].append(pred[keys[b]].cpu())
        boxes.append(pred["box"].cpu())
    model.train(was_training)
    ages = model.class_ages.cpu()
    out = {}
    for b in BRANCHES:
        p = torch.cat(probs[b])
        out[b] = {"probs": p.numpy(), "age": dex(p, ages).numpy()}
    out["box"] = torch.cat(boxes).numpy()
    return out


def _views(images: torch.Tensor, size: int, tta: str) -> list[torch.Tensor]:
    """uint8 [N, S0, S0, 3] -> the float [N, 3, S, S] views a prediction averages over."""
    if tta == "ten":
        return ten_crop(images, size)
    x = resize(images, size)
    if tta == "flip":
        return [x, x.flip(3)]
    if tta == "gray":
        return [x, gray_view(x)]
    if tta == "flip+gray":
        g = gray_view(x)
        return [x, x.flip(3), g, g.flip(3)]
    if tta != "single":
        raise ValueError(f"unknown tta {tta!r}")
    return [x]


def served_tta(cfg) -> str:
    """The tta that reads a network as its served graph does (ModelConfig.test_flip, test_gray)."""
    return {(False, False): "single", (True, False): "flip", (False, True): "gray", (True, True): "flip+gray"}[
        (bool(cfg.test_flip), bool(cfg.test_gray))]


def predict_onnx(path: str, data: Packed, batch_size: int = 256) -> dict:
    """The same predictions from an exported graph, through Python onnxruntime on this CPU:
    fp32 graphs and parity checks (an int8 graph's served numbers come from predict_wasm)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = list(OUTPUT_NAMES)
    cols = {k: [] for k in names}
    for start in range(0, len(data), batch_size):
        batch = data.images[start:start + batch_size].numpy()
        for k, v in zip(names, sess.run(names, {"image": batch})):
            cols[k].append(v)
    cat = {k: np.concatenate(v) for k, v in cols.items()}
    return {"fused": {"age": cat["age"], "probs": cat["probs"]},
            "global": {"age": cat["global_age"]}, "local": {"age": cat["local_age"]},
            "box": cat["box"]}


REPO = Path(__file__).resolve().parents[1]
WASM_PREDICT = REPO / "training" / "js" / "wasm-predict.mjs"


def wasm_runtime() -> str:
    """The serving runtime's name and version, as the reports quote it."""
    version = json.loads((REPO / "node_modules" / "onnxruntime-web" / "package.json").read_text())["version"]
    return f"onnxruntime-web {version} wasm (SIMD, 1 thread)"


def predict_wasm(path: str, data: Packed, batch_size: int = 16) -> dict:
    """The predictions of predict_onnx, from onnxruntime-web's wasm build in Node: the runtime
    the Worker serves with. Python onnxruntime picks int8 kernels by CPU (U8S8 saturates on x86
    without VNNI), wasm has one set, so this is the number a model card reports."""
    node = REPO / "node_modules" / ".bin" / "node"
    if not node.exists() or not (REPO / "node_modules" / "onnxruntime-web").exists():
        raise RuntimeError("onnxruntime-web is not installed: run `node scripts/ensure-install.mjs` first")
    size = data.images.shape[1]
    with tempfile.TemporaryDirectory(prefix="wasm-predict-") as tmp:
        faces, preds = Path(tmp) / "faces.u8", Path(tmp) / "preds.f32"
        data.images.numpy().tofile(faces)
        subprocess.run([str(node), str(WASM_PREDICT), "--model", str(path), "--images", str(faces),
                        "--size", str(size), "--out", str(preds), "--batch", str(batch_size)],
                       check=True, cwd=REPO, env={**os.environ, "NODE_NO_WARNINGS": "1"})
        rows = np.fromfile(preds, dtype=np.float32).reshape(len(data), -1)  # [N, 7 + ages]
    return {"fused": {"age": rows[:, 0], "probs": rows[:, 7:]},
            "global": {"age": rows[:, 1]}, "local": {"age": rows[:, 2]}, "box": rows[:, 3:7]}


def summarize_predictions(preds: dict, data: Packed) -> dict:
    """Headline metrics per branch. Group-labelled data (Adience) adds accuracy and 1-off."""
    out = {}
    true = data.ages.numpy()
    std = data.age_std.numpy()
    for b in BRANCHES:
        if b not in preds:
            continue
        rep = metrics.age_report(preds[b]["age"], true, std)
        if "probs" in preds[b] and preds[b]["probs"].shape[1] != 101:
            cls = preds[b]["probs"].argmax(1)
            rep["accuracy"] = metrics.accuracy(cls, data.labels.numpy())
            rep["one_off"] = metrics.one_off_accuracy(cls, data.labels.numpy())
        out[b] = rep
    return out


def detailed_report(preds: dict, data: Packed, range_levels: list[dict] | None = None) -> dict:
    """Everything the model card needs about one set of predictions. `range_levels`: the range's
    per-band calibration (calibration.fit_range_levels) the served answer applies; the coverage
    without it is reported beside."""
    true = data.ages.numpy()
    fused = preds["fused"]
    rep = {"branches": summarize_predictions(preds, data)}
    if "global" in preds:  # what the attention branch adds, beyond resampling noise or not
        rep["fused_minus_global"] = metrics.paired_bootstrap(np.abs(fused["age"] - true),
                                                             np.abs(preds["global"]["age"] - true))
    if fused["probs"].shape[1] == 101:
        clipped = np.clip(true, 0, 100)
        level = range_levels_for(fused["age"], range_levels)
        rep["range80_coverage"] = metrics.interval_coverage(fused["probs"], clipped, level)
        rep["range80_by_band"] = metrics.coverage_by_band(fused["probs"], clipped, level)
        rep["range80_by_estimate_band"] = metrics.coverage_by_band(fused["probs"], clipped, level, by=fused["age"])
        if range_levels:
            rep["range_levels"] = range_levels
            rep["range80_uncalibrated"] = {
                "coverage": metrics.interval_coverage(fused["probs"], clipped, 0.8),
                "by_band": metrics.coverage_by_band(fused["probs"], clipped, 0.8),
                "by_estimate_band": metrics.coverage_by_band(fused["probs"], clipped, 0.8, by=fused["age"])}
        rep["minors"] = metrics.minors_placed_adult(fused["age"], true)
    err_source = fused["age"]
    rep["by_band"] = metrics.grouped_mae(err_source, true, [metrics.band_of(a) for a in true])
    rep["by_gender"] = metrics.grouped_mae(err_source, true, data.gender)
    rep["by_race"] = metrics.grouped_mae(err_source, true, data.race)
    worst = []
    for axis in ("by_band", "by_gender", "by_race"):
        for g, v in rep[axis].items():
            worst.append((v["mae"], axis, g, v["n"]))
    if worst:
        m, axis, g, n = max(worst)
        rep["worst_group"] = {"axis": axis, "group": g, "n": n, "mae": m}
    return rep


def evaluate_checkpoint(checkpoint: str, split: str = "val", tta: str = "single",
                        data_root: str | None = None, limit: int | None = None) -> dict:
    """`python -m training evaluate`: detailed_report of a checkpoint on a split of the data it
    trained on (or of `data_root`), on the GPU where there is one."""
    model, ckpt = load_checkpoint(checkpoint)
    data = load_split(ckpt, split, model.cfg.input_size, data_root, limit)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device)
    return detailed_report(predict_packed(model, data, device=device, tta=tta), data)


# ---------------------------------------------------------------------------------------------
# The graph's softmax temperature (calibration.py fits the rest of the served answer)
# ---------------------------------------------------------------------------------------------

TEMPERATURE_GRID = tuple(np.round(np.arange(0.5, 3.01, 0.05), 2))


def fit_temperature(model: ALNet, data: Packed, device="cpu", tta: str = "single",
                    grid=TEMPERATURE_GRID) -> dict:
    """The temperature whose 80% range covers the true age of the `val` faces closest to 80% of
    the time (NLL breaks ties). Coverage is what users see, so it is what we fit. The network runs
    once; each temperature re-reads its outputs through ALNet.predict, the served fusion."""
    best = None
    true = np.clip(data.ages.numpy(), 0, 100)
    outputs = _logits(model, data, device, tta)
    home = model.class_ages.device
    model.cpu()              # the outputs are on the CPU: read them there, on any training device
    try:
        for t in grid:
            probs = np.mean([model.predict(out, temperature=t)["probs"].numpy() for out in outputs], axis=0)
            cov = metrics.interval_coverage(probs, true, 0.8)
            nll = float(-np.mean(np.log(probs[np.arange(len(true)), data.labels.numpy()] + 1e-12)))
            score = (abs(cov - 0.8), nll)
            if best is None or score < best[0]:
                best = (score, float(t), cov, nll)
    finally:
        model.to(home)
    return {"temperature": best[1], "val_coverage": best[2], "val_nll": best[3]}


@torch.no_grad()
def _logits(model: ALNet, data: Packed, device, tta: str, batch_size: int = 256) -> list[dict]:
    """-> per view, the network's outputs over the whole split, on the CPU: {"global": [N, M],
    "local": [N, M], "box": [N, 4]} (the logits as float32)."""
    model.eval()
    per_view = None
    for start in range(0, len(data), batch_size):
        views = _views(data.images[start:start + batch_size].to(device), model.cfg.input_size, tta)
        outs = [model(model.normalize(v)) for v in views]
        if per_view is None:
            per_view = [{"global": [], "local": [], "box": []} for _ in outs]
        for acc, out in zip(per_view, outs):
            for k in acc:
                acc[k].append(out[k].float().cpu())
    return [{k: torch.cat(v) for k, v in acc.items()} for acc in per_view]
