"""From a trained checkpoint to a model directory the server can load:
calibrate on val -> export fp32 -> parity -> int8 -> evaluate (val, then test) -> manifest."""
from __future__ import annotations

import json
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from .attention import box_statistics
from .calibration import calibrate_release, fit_range_levels, fit_temperature
from .data import fixed_subset, load_packed
from .evaluate import (detailed_report, predict_onnx, predict_packed, predict_wasm,
                       summarize_predictions, wasm_runtime)
from .export import export_onnx, file_entry, parity, portable_weights, quantize_int8, write_manifest
from .model import create_model, load_checkpoint

UTKFACE_LICENSE = ("UTKFace: non-commercial research purposes only; image copyright stays with "
                   "the owners. A model trained on it inherits that restriction.")


def _data_args(ckpt: dict, data_root: str | None = None) -> dict:
    tc = ckpt.get("train_config", {})
    return {"dataset": tc.get("dataset", "utkface"),
            "root": data_root or tc.get("data_root", "../shared/data/utkface"),
            "margin": tc.get("face_margin", 0.0),
            "options": tc.get("dataset_options", {})}


def _split(ckpt, split, size, data_root=None, limit=None):
    a = _data_args(ckpt, data_root)
    return load_packed(a["dataset"], a["root"], split, size, a["margin"], limit=limit, **a["options"])


def evaluate_checkpoint(checkpoint: str, split: str = "val", tta: str = "single",
                        data_root: str | None = None, limit: int | None = None) -> dict:
    model, ckpt = load_checkpoint(checkpoint)
    data = _split(ckpt, split, model.cfg.input_size, data_root, limit)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device)
    return detailed_report(predict_packed(model, data, device=device, tta=tta), data)


def release(checkpoint: str, out: str, *, name: str, version: str, face_margin: float = 0.4,
            calib: int = 512, external_data: bool = False, keep_fp32: bool = False,
            flip: bool = False, limit_eval: int | None = None, framing_from: str | None = None,
            fusion: dict | None = None) -> dict:
    """framing_from: a manifest.json whose `framing` (how a detector's box becomes the crop, measured
    by `python -m training detector framing` for this training data) the release carries; without
    it the server frames a face by face_margin alone.
    flip: the served graph averages the face and its mirror (ModelConfig.test_flip); the
    temperature is then fitted on that averaged answer, and the report adds it beside the
    single-crop ablation.
    fusion: the served weights of the two branches, e.g. {"global": 1, "local": 0} when the
    local branch does not help on `val`: the graph then skips that branch (local_age is the global
    head's, the box the whole crop), and costs only what it uses."""
    model, ckpt = load_checkpoint(checkpoint)
    model.cfg.test_flip = flip
    if fusion is not None:
        model.cfg.fusion_global = float(fusion.get("global", model.cfg.fusion_global))
        model.cfg.fusion_local = float(fusion.get("local", model.cfg.fusion_local))
    served = "flip" if flip else "single"
    model.eval()
    size = model.cfg.input_size
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    val = _split(ckpt, "val", size, limit=limit_eval)
    test = _split(ckpt, "test", size, limit=limit_eval)
    calib_faces = _split(ckpt, "train", size, limit=calib).images.numpy()

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
        "dataset": _data_args(ckpt)["dataset"], "split": "test", "n": len(test),
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
    capture = calibrate_release(str(out), _data_args(ckpt)["root"])
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


# The fixed part of `val` whose served MAE a release records, so a test can check the shipped
# graph in the serving runtime within CI's time (load_packed(limit=VAL_SUBSET) picks the same faces).
VAL_SUBSET = 256


def served_int8_report(int8: Path, val, test, range_levels: list[dict] | str | None = None) -> dict:
    """An int8 graph's numbers as served: onnxruntime-web wasm, the Worker's runtime, on `val`
    and `test`; Python onnxruntime's answers on `val` beside them as a parity check, since its
    int8 kernels differ by CPU. range_levels: the served range's per-band calibration, or "fit"
    to fit it here on the served `val` answers (calibration.fit_range_levels)."""
    val_wasm = predict_wasm(int8, val)
    val_python = predict_onnx(int8, val)
    test_wasm = predict_wasm(int8, test)
    if range_levels == "fit":
        range_levels = fit_range_levels(val_wasm["fused"]["probs"], np.clip(val.ages.numpy(), 0, 100),
                                                val_wasm["fused"]["age"])
    val_served = summarize_predictions(val_wasm, val)
    val_python_served = summarize_predictions(val_python, val)
    test_served = detailed_report(test_wasm, test, range_levels)
    test_served["attention_box"] = box_statistics(test_wasm["box"])
    subset = fixed_subset(len(val), VAL_SUBSET, 0) if VAL_SUBSET < len(val) else list(range(len(val)))
    subset_mae = float(np.mean(np.abs(val_wasm["fused"]["age"][subset] - val.ages.numpy()[subset])))
    parity = {"max_abs_age": float(np.max(np.abs(val_wasm["fused"]["age"] - val_python["fused"]["age"]))),
              "mean_abs_age": float(np.mean(np.abs(val_wasm["fused"]["age"] - val_python["fused"]["age"]))),
              "max_l1_probs": float(np.max(np.abs(val_wasm["fused"]["probs"] - val_python["fused"]["probs"]).sum(1)))}
    runtime = wasm_runtime()
    return {
        "runtime": runtime,
        "range_levels": range_levels,
        "test_boxes": test_wasm["box"],
        "val": {"onnx_int8": val_served, "onnx_int8_python": val_python_served,
                "int8_wasm_vs_python": parity},
        "test": test_served,
        "metrics": {
            "runtime_int8": runtime,
            "mae_int8": round(test_served["branches"]["fused"]["mae"], 3),
            "cs5_int8": round(test_served["branches"]["fused"]["cs5"], 4),
            "range80_coverage_int8": round(test_served["range80_coverage"], 4),
            **({"range80_coverage_int8_uncalibrated": round(test_served["range80_uncalibrated"]["coverage"], 4)}
               if range_levels else {}),
            "val_mae_int8": round(val_served["fused"]["mae"], 3),
            "val_mae_int8_python": round(val_python_served["fused"]["mae"], 3),
            "val_subset": {"n": len(subset), "seed": 0, "mae_int8": round(subset_mae, 4)},
        },
    }


def reencode(model_dir: str, out: str, version: str, data_root: str | None = None) -> dict:
    """A released version's int8 graph as a new version with portable weights (portable_weights:
    the same network and the same answers in wasm, but no CPU-dependent int8 kernels in Python
    onnxruntime), its served numbers measured again in wasm. For versions whose checkpoint is
    gone; a release from a checkpoint gets the same encoding from quantize_int8."""
    src, out = Path(model_dir), Path(out)
    manifest = json.loads((src / "manifest.json").read_text())
    out.mkdir(parents=True, exist_ok=True)
    for f in [*manifest["files"], {"path": "report.json"}]:
        shutil.copy(src / f["path"], out / f["path"])
    external = any(f["role"] == "external_data" for f in manifest["files"])
    rewritten = portable_weights(out / manifest["model"], external_data=external)
    manifest["version"] = version
    manifest["files"] = [file_entry(out / f["path"], f["role"]) for f in manifest["files"]]
    manifest["reencoded_from"] = f"{src.parent.name}/{src.name}"
    manifest["created"] = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    report = json.loads((out / "report.json").read_text())
    report["reencoded_from"] = manifest["reencoded_from"]
    (out / "report.json").write_text(json.dumps(report) + "\n")
    return {"weights_rewritten": rewritten, **measure_served(str(out), data_root=data_root)}


def measure_served(model_dir: str, figure: str | None = None, data_root: str | None = None) -> dict:
    """Measures a released version again in the serving runtime (served_int8_report) and writes
    the results into its report.json (int8 rows) and manifest.json (int8 metrics); `figure`
    draws where its attention box goes on the test split's average face."""
    from .attention import draw_attention

    d = Path(model_dir)
    manifest = json.loads((d / "manifest.json").read_text())
    report = json.loads((d / "report.json").read_text())
    tc = report.get("train_config", {})
    args = {"dataset": tc.get("dataset", "utkface"), "root": data_root or tc.get("data_root", "../shared/data/utkface"),
            "margin": tc.get("face_margin", 0.0), "options": tc.get("dataset_options", {})}
    val, test = (load_packed(args["dataset"], args["root"], split, manifest["input"]["size"], args["margin"],
                             **args["options"]) for split in ("val", "test"))
    served = served_int8_report(d / manifest["model"], val, test, manifest.get("range_levels"))
    report["runtime_int8"] = served["runtime"]
    report["val"].update(served["val"])
    report["test"]["int8"] = served["test"]
    report["sizes_bytes"]["int8"] = sum(f["bytes"] for f in manifest["files"])
    (d / "report.json").write_text(json.dumps(report) + "\n")
    manifest["metrics"] = {**{k: v for k, v in manifest["metrics"].items() if not k.endswith("_int8")},
                           **served["metrics"]}
    (d / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    if figure:
        draw_attention(test.images.numpy(), served["test_boxes"], figure)
    return {"metrics": manifest["metrics"], "int8_wasm_vs_python": served["val"]["int8_wasm_vs_python"],
            "attention_box": served["test"]["attention_box"], "minors": served["test"]["minors"]}


def export_only(checkpoint: str | None, model_name: str | None, input_size: int | None, out: str,
                data_root: str, calib: int = 256, external_data: bool = False,
                model_options: dict | None = None) -> dict:
    """fp32 and int8 graphs of a checkpoint, or of an untrained registered model (their size and
    speed do not depend on the weights), with parity figures. Calibrates on real faces."""
    if checkpoint:
        model, _ = load_checkpoint(checkpoint)
        if model_options:                       # serving options of a trained network (test_flip, fusion)
            from dataclasses import replace
            model.cfg = replace(model.cfg, **model_options)
    else:
        torch.manual_seed(0)
        model = create_model(model_name, **({"input_size": input_size} if input_size else {}),
                             **(model_options or {}))
    model.eval()
    size = model.cfg.input_size
    faces = load_packed("utkface", data_root, "train", size, limit=calib).images.numpy()
    out = Path(out)
    fp32 = export_onnx(model, out / "model.fp32.onnx", external_data=external_data)
    par = parity(model, fp32, faces[:16])
    quantize_int8(fp32, out / "model.int8.onnx", faces, external_data=external_data)
    sizes = {p.name: p.stat().st_size for p in sorted(out.glob("model.*.onnx*"))}
    return {"arch": model.cfg.arch, "input_size": size, "bytes": sizes, "parity_fp32": par}


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
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    (root / "active.json").write_text(json.dumps({"name": "al-fixture", "version": "1"}) + "\n")

    size = model.cfg.input_size
    sess = ort.InferenceSession(str(directory / "model.onnx"), providers=["CPUExecutionProvider"])
    names = ["age", "probs", "global_age", "local_age", "box"]
    cases = []
    for recipe, formula in REFERENCE_RECIPES.items():
        outs = sess.run(names, {"image": reference_image(recipe, size)[None]})
        cases.append({"recipe": recipe, "pixel": formula,
                      **{k: np.round(v[0].astype(float), 6).tolist() for k, v in zip(names, outs)}})
    (directory / "reference.json").write_text(json.dumps(
        {"size": size, "layout": "NHWC uint8, one image", "tolerance": 1e-3, "cases": cases},
        indent=1) + "\n")
    return manifest
