"""Export the fused network as one ONNX graph (docs/model-contract.md), check it against
PyTorch, quantize it to int8 with onnxruntime's static quantization, and write the manifest."""
from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import onnx
import torch

from .contract import write_manifest_json
from .data import load_packed
from .model import ALNet, ExportWrapper, create_model, load_checkpoint, served_views

OPSET = 18


def export_onnx(model: ALNet, path: str | Path, external_data: bool = False) -> Path:
    """fp32 graph: uint8 NHWC image in, the contract's outputs out, dynamic batch."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wrapper = ExportWrapper(model.cpu().float().to(memory_format=torch.contiguous_format)).eval()
    s = model.cfg.input_size
    example = torch.randint(0, 256, (2, s, s, 3), dtype=torch.uint8)
    program = torch.onnx.export(
        wrapper, (example,), dynamo=True, opset_version=OPSET,
        input_names=["image"], output_names=list(ExportWrapper.output_names),
        dynamic_shapes={"image": {0: torch.export.Dim("batch", min=1, max=1024)}},
        optimize=True, verbose=False)
    for f in (path, Path(str(path) + ".data")):
        f.unlink(missing_ok=True)
    program.save(str(path), external_data=external_data)
    onnx.checker.check_model(str(path))
    return path


@torch.no_grad()
def parity(model: ALNet, onnx_path: str | Path, images: np.ndarray) -> dict:
    """Largest differences between PyTorch and onnxruntime on the same uint8 images."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    names = list(ExportWrapper.output_names)
    got = dict(zip(names, sess.run(names, {"image": images})))
    want = dict(zip(names, (t.numpy() for t in ExportWrapper(model.cpu().eval())(torch.from_numpy(images)))))
    return {f"max_abs_{k}": float(np.max(np.abs(got[k] - want[k]))) for k in names}


class _Calibration:
    """Feeds real faces to onnxruntime's calibrator, a batch at a time."""

    def __init__(self, images: np.ndarray, batch_size: int = 32):
        self.batches = [images[i:i + batch_size] for i in range(0, len(images), batch_size)]
        self.i = 0

    def get_next(self):
        if self.i >= len(self.batches):
            return None
        self.i += 1
        return {"image": self.batches[self.i - 1]}

    def rewind(self):
        self.i = 0


def quantize_int8(fp32_path: str | Path, int8_path: str | Path, calib_images: np.ndarray,
                  external_data: bool = False) -> Path:
    """Static int8 (QDQ, per-channel weights stored as uint8: portable_weights) calibrated on
    real faces. Only convolutions and fully connected layers are quantized: they hold the weights and the time, while the small
    attention arithmetic (LSTM gates, box, crop) stays float so the box does not jitter."""
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType,
                                          quant_pre_process, quantize_static)

    int8_path = Path(int8_path)
    pre = int8_path.with_suffix(".pre.onnx")
    inline = int8_path.with_suffix(".inline.onnx")
    # The pre-processor copies the graph to a temp folder and loses an external-data file
    # beside it; hand it a self-contained copy (fine below protobuf's 2 GB).
    onnx.save(onnx.load(str(fp32_path)), str(inline))
    quant_pre_process(str(inline), str(pre), skip_symbolic_shape=True)
    inline.unlink()
    for f in (int8_path, Path(str(int8_path) + ".data")):
        f.unlink(missing_ok=True)
    quantize_static(
        str(pre), str(int8_path), _Calibration(calib_images),
        quant_format=QuantFormat.QDQ, per_channel=True,
        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
        op_types_to_quantize=["Conv", "Gemm"],
        calibrate_method=CalibrationMethod.MinMax,
        use_external_data_format=external_data,
        extra_options={"ActivationSymmetric": False, "WeightSymmetric": True})
    pre.unlink(missing_ok=True)
    Path(str(pre) + ".data").unlink(missing_ok=True)
    portable_weights(int8_path, external_data=external_data)
    return int8_path


def portable_weights(path: str | Path, external_data: bool = False) -> int:
    """Stores an int8 QDQ graph's int8 weights as uint8 with their zero points moved by +128:
    the same numbers (q + 128 - (z + 128) = q - z), so the same answers, but a uint8 x uint8
    product. On x86 without VNNI onnxruntime's uint8 x int8 kernels (VPMADDUBSW) saturate their
    16-bit pair sums, which cost the shipped model 0.15 years on AVX2-only hosts; its uint8 x
    uint8 kernels widen to 16 bits first and give the same integers on every CPU. Wasm runs
    both with one kernel, so serving speed does not change. Returns the tensors rewritten."""
    from onnx import numpy_helper

    path = Path(path)
    model = onnx.load(str(path))
    initializers = {t.name: t for t in model.graph.initializer}
    rewritten = 0
    for node in model.graph.node:
        if node.op_type != "DequantizeLinear" or node.input[0] not in initializers:
            continue
        weight = initializers[node.input[0]]
        if weight.data_type != onnx.TensorProto.INT8:
            continue
        zero = initializers[node.input[2]]
        for t in (weight, zero):
            shifted = numpy_helper.to_array(t).astype(np.int16) + 128
            t.CopyFrom(numpy_helper.from_array(shifted.astype(np.uint8), t.name))
        rewritten += 1
    data = Path(str(path) + ".data")
    data.unlink(missing_ok=True)
    if external_data:
        onnx.save(model, str(path), save_as_external_data=True, location=data.name, size_threshold=1024)
    else:
        onnx.save(model, str(path))
    for f in (path, data):
        if f.exists():
            f.chmod(0o644)  # onnx writes external data owner-only
    return rewritten


def _number(t: torch.Tensor):
    v = float(t)
    return int(v) if v.is_integer() else v


def file_entry(path: Path, role: str) -> dict:
    data = path.read_bytes()
    return {"path": path.name, "role": role, "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data)}


def write_manifest(directory: str | Path, model: ALNet, model_file: str, *, name: str,
                   version: str, face_margin: float, metrics: dict | None = None,
                   training_data: dict | None = None, extra: dict | None = None) -> dict:
    directory = Path(directory)
    model_path = directory / model_file
    files = [file_entry(model_path, "model")]
    data_file = Path(str(model_path) + ".data")
    if data_file.exists():
        files.append(file_entry(data_file, "external_data"))
    cfg = model.cfg
    ages = model.class_ages
    manifest = {
        "schema": 1,
        "name": name,
        "version": version,
        "arch": cfg.arch,
        "input": {"name": "image", "size": cfg.input_size, "dtype": "uint8", "layout": "NHWC",
                  "color": "RGB"},
        "outputs": list(ExportWrapper.output_names),
        "face_margin": face_margin,
        "ages": {"min": _number(ages.min()), "max": _number(ages.max())},
        "fusion": {"global": cfg.fusion_global, "local": cfg.fusion_local},
        "views": served_views(cfg),
        "temperature": float(model.temperature),
        "model": model_file,
        "files": files,
        "metrics": metrics or {},
        "training_data": training_data or {},
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        **(extra or {}),
    }
    write_manifest_json(directory / "manifest.json", manifest)
    return manifest


# ---------------------------------------------------------------------------------------------
# `python -m training export`: graphs without a release
# ---------------------------------------------------------------------------------------------

def export_only(checkpoint: str | None, model_name: str | None, input_size: int | None, out: str,
                data_root: str, calib: int = 256, external_data: bool = False,
                model_options: dict | None = None) -> dict:
    """fp32 and int8 graphs of a checkpoint, or of an untrained registered model (their size and
    speed do not depend on the weights), with parity figures. Calibrates on real faces."""
    if checkpoint:
        model, _ = load_checkpoint(checkpoint)
        if model_options:                       # serving options of a trained network (test_flip, test_gray, fusion)
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
