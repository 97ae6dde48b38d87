"""From a trained checkpoint to a model directory the server can load:
calibrate on val -> export fp32 -> parity -> int8 -> evaluate (val, then test) -> manifest.

The release's neighbours: served.py measures a released version again in the serving runtime
(`measure`), reencode.py re-encodes one without its checkpoint (`reencode`), export.py writes
graphs without a release (`export`), fixture.py the serving tests' contract fixture (`fixture`)."""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from .calibration import calibrate_release
from .data import data_source, load_split
from .evaluate import detailed_report, fit_temperature, predict_onnx, predict_packed, served_tta, summarize_predictions
from .export import export_onnx, parity, quantize_int8, write_manifest
from .model import load_checkpoint
from .served import served_int8_report

UTKFACE_LICENSE = ("UTKFace: non-commercial research purposes only; image copyright stays with "
                   "the owners. A model trained on it inherits that restriction.")


def release(checkpoint: str, out: str, *, name: str, version: str, face_margin: float = 0.4,
            calib: int = 512, external_data: bool = False, keep_fp32: bool = False,
            flip: bool = False, gray: bool = False, limit_eval: int | None = None,
            framing_from: str | None = None, fusion: dict | None = None) -> dict:
    """framing_from: a manifest.json whose `framing` (how a detector's box becomes the crop, measured
    by `python -m training detector framing` for this training data) the release carries; without
    it the server frames a face by face_margin alone.
    flip: the served graph averages the face and its mirror (ModelConfig.test_flip); the
    temperature is then fitted on that averaged answer, and the report adds it beside the
    single-crop ablation.
    gray: the served graph also averages the face in gray (and its mirror with flip)
    (ModelConfig.test_gray): the temperature and the val numbers read that average too.
    fusion: the served weights of the two branches, e.g. {"global": 1, "local": 0} when the
    local branch does not help on `val`: the graph then skips that branch (local_age is the global
    head's, the box the whole crop), and costs only what it uses."""
    model, ckpt = load_checkpoint(checkpoint)
    model.cfg.test_flip, model.cfg.test_gray = flip, gray
    if fusion is not None:
        model.cfg.fusion_global = float(fusion.get("global", model.cfg.fusion_global))
        model.cfg.fusion_local = float(fusion.get("local", model.cfg.fusion_local))
    served = served_tta(model.cfg)
    model.eval()
    size = model.cfg.input_size
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    val = load_split(ckpt, "val", size, limit=limit_eval)
    test = load_split(ckpt, "test", size, limit=limit_eval)
    calib_faces = load_split(ckpt, "train", size, limit=calib).images.numpy()

    device = "cuda" if torch.cuda.is_available() else "cpu"
    calibration = fit_temperature(model.to(device), val, device=device, tta=served)
    model.temperature.fill_(calibration["temperature"])

    work = Path(tempfile.mkdtemp(prefix="release-"))
    try:
        fp32 = export_onnx(model, work / "model.fp32.onnx", external_data=external_data)
        par = parity(model, fp32, val.images[:32].numpy())
        int8 = quantize_int8(fp32, out / "model.int8.onnx", calib_faces, external_data=external_data)
        if keep_fp32:
            for f in work.glob("model.fp32.onnx*"):
                shutil.copy(f, out / f.name)
        model.to(device)  # export left it on the CPU
        val_torch = summarize_predictions(predict_packed(model, val, device=device, tta=served), val)
        val_fp32 = summarize_predictions(predict_onnx(fp32, val), val)
        test_fp32_onnx = predict_onnx(fp32, test)
        fp32_bytes = sum(f.stat().st_size for f in work.glob("model.fp32.onnx*"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    served_int8 = served_int8_report(int8, val, test, range_levels="fit")
    test_single = predict_packed(model, test, device=device)
    test_ten = predict_packed(model, test, device=device, tta="ten")
    test_flip = predict_packed(model, test, device=device, tta="flip")

    report = {
        "checkpoint": str(checkpoint),
        "arch": model.cfg.arch,
        "input_size": size,
        "served_views": served,
        "train_config": ckpt.get("train_config", {}),
        "calibration": calibration,
        "parity_fp32": par,
        "sizes_bytes": {"fp32": fp32_bytes,
                        "int8": sum(f.stat().st_size for f in out.glob("model.int8.onnx*"))},
        "runtime_int8": served_int8["runtime"],
        "val": {"torch": val_torch, "onnx_fp32": val_fp32, **served_int8["val"]},
        "test": {
            "int8": served_int8["test"],
            "fp32_single": detailed_report(test_single, test),
            "fp32_flip": detailed_report(test_flip, test),
            "fp32_ten_crop": detailed_report(test_ten, test),
            "onnx_fp32": summarize_predictions(test_fp32_onnx, test),
        },
        "test_errors": {  # per-face absolute errors, for paired comparisons between models
            b: np.abs(test_single[b]["age"] - test.ages.numpy()).round(3).tolist()
            for b in ("global", "local", "fused")},
    }
    metrics = {
        "dataset": data_source(ckpt).dataset, "split": "test", "n": len(test),
        "mae_fp32": round(report["test"]["fp32_single"]["branches"]["fused"]["mae"], 3),
        "mae_global_only_fp32": round(report["test"]["fp32_single"]["branches"]["global"]["mae"], 3),
        "val_mae_fp32": round(val_fp32["fused"]["mae"], 3),
        **served_int8["metrics"],
    }
    framing = json.loads(Path(framing_from).read_text())["framing"] if framing_from else None
    pretrained = pretrained_origin(ckpt)
    report["pretrained"] = pretrained
    write_manifest(out, model, "model.int8.onnx", name=name, version=version,
                   face_margin=face_margin, metrics=metrics,
                   training_data={"dataset": "UTKFace (train split, 17,267 faces)",
                                  "license": UTKFACE_LICENSE},
                   extra={**({"framing": framing} if framing else {}), "range_levels": served_int8["range_levels"],
                          **({"pretrained": {k: pretrained[k] for k in ("name", "package", "licence", "provenance")}}
                             if pretrained else {})})
    (out / "report.json").write_text(json.dumps(report) + "\n")
    # The served answer's calibration (range, widening for the capture, decision rule), fitted on
    # val clean and degraded: it replaces the clean-only range levels fitted above.
    capture = calibrate_release(str(out), data_source(ckpt).root)
    report["capture_calibration"] = capture
    report["summary"] = {"metrics": metrics, "parity_fp32": par, "sizes_bytes": report["sizes_bytes"],
                         "calibration": calibration,
                         "capture_calibration": {"widening": capture["calibration"]["widening"],
                                                 "val": capture["val"]["conditions"]}}
    return report


def pretrained_origin(ckpt: dict, depth: int = 8) -> dict | None:
    """The pretrained weights a checkpoint descends from (training/pretrained.py's record: name,
    package, licence, provenance), found by following each run's `init` back; None when the chain
    starts from random weights or a file that is gone."""
    for _ in range(depth):
        if ckpt.get("pretrained"):
            return ckpt["pretrained"]
        if ckpt.get("recovered_from"):
            # Recovered from a released graph: that release recorded where its weights came from.
            manifest = Path(ckpt["recovered_from"]) / "manifest.json"
            pretrained = json.loads(manifest.read_text()).get("pretrained") if manifest.exists() else None
            return {**pretrained, "via": f"recovered from {ckpt['recovered_from']}"} if pretrained else None
        init = (ckpt.get("train_config") or {}).get("init")
        if not init or not Path(init).exists():
            return None
        ckpt = torch.load(init, map_location="cpu", weights_only=False)
    return None
