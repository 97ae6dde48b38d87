"""A released int8 graph back to a PyTorch checkpoint, so that a shipped model can be fine-tuned
or cut down when its training runs are gone (version 3's `runs/` did not survive its session).

The exporter folds every BatchNorm into its convolution (weight W * g / s, bias b - m * g / s)
and the int8 graph keeps each weight as integers with a per-channel scale and zero point. Here
each weight is dequantized ((q - z) * scale, the numbers the served graph multiplies by) and put
back into the network; each BatchNorm becomes the identity plus the folded bias. For fine-tuning,
`recalibrate_batchnorm` then re-expresses every BatchNorm with the statistics of the
convolution's output on real faces (same function in eval mode, and train mode's batch
statistics start where the running ones are), so the first training steps do not jolt it.
Only the int8 rounding of the weights is lost: the recovered network answers like the served
graph to within that rounding (`python -m training recover` prints the difference).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from .data import UTKFACE_ROOT
from .model import ALNet, ModelConfig, checkpoint_dict


def _initializers(path: Path) -> dict[str, np.ndarray]:
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path), load_external_data=True)
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    weights = {}
    for node in model.graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0] in inits:
            weights[node.input[0].removesuffix("_quantized")] = _dequantize(node, inits)
    for name, v in inits.items():
        if v.dtype in (np.float32, np.float64) and name.startswith("model."):
            weights.setdefault(name, v.astype(np.float32))
    # Where onnxruntime's optimizer fused a per-channel affine into the convolution before it
    # (dlib's backbone: ConvMulFusion_W_<name>, the bias a ConvAddFusion constant named by
    # position), the names are found through the Conv nodes: <weight>_bias is the conv's bias.
    producer = {out: node for node in model.graph.node for out in node.output}

    def constant(name: str):
        if name in inits:
            return inits[name].astype(np.float32)
        node = producer.get(name)
        if node is not None and node.op_type == "DequantizeLinear" and node.input[0] in inits:
            return _dequantize(node, inits)
        return None

    # The LSTM's stored state (h_run, c_run) is exported as constants the graph expands to the
    # batch: [1, hidden] initializers under generated names, the first h, the second c.
    states = [inits[n.input[0]] for n in model.graph.node
              if n.op_type == "Expand" and n.input[0] in inits and inits[n.input[0]].ndim == 2 and inits[n.input[0]].shape[0] == 1]
    if len(states) == 2 and "model.attention.h_run" not in weights:
        weights["model.attention.h_run"], weights["model.attention.c_run"] = (v[0].astype(np.float32) for v in states)
    for node in model.graph.node:
        if node.op_type != "Conv":
            continue
        src = producer.get(node.input[1])
        raw = src.input[0] if src is not None and src.op_type == "DequantizeLinear" else node.input[1]
        if not raw.startswith("ConvMulFusion_W_"):
            continue
        key = re.sub(r"(_token_\d+)?_quantized$", "", raw.removeprefix("ConvMulFusion_W_"))
        weights.setdefault(key, constant(node.input[1]))
        if len(node.input) > 2 and node.input[2]:
            weights.setdefault(f"{key}_bias", constant(node.input[2]))
    return weights


def _dequantize(node, inits) -> np.ndarray:
    q = inits[node.input[0]].astype(np.float32)
    scale = inits[node.input[1]].astype(np.float32)
    zero = inits[node.input[2]].astype(np.float32) if len(node.input) > 2 else np.zeros_like(scale)
    axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
    if scale.ndim == 1 and scale.size > 1:
        shape = [1] * q.ndim
        shape[axis] = -1
        scale, zero = scale.reshape(shape), zero.reshape(shape)
    return (q - zero) * scale


def recover(model_dir: str | Path) -> tuple[ALNet, dict]:
    """models/<name>/<version> -> (network, its release report's train config)."""
    model_dir = Path(model_dir)
    manifest = json.loads((model_dir / "manifest.json").read_text())
    report_path = model_dir / "report.json"
    tc = json.loads(report_path.read_text()).get("train_config", {}) if report_path.exists() else {}
    from .model import MODEL_CONFIGS
    from dataclasses import replace
    # The served graph's options: its views and its fusion. A graph served without the local
    # branch does not hold it, so a recovered network that kept the default fusion would add an
    # untrained branch to its answer.
    fusion = manifest.get("fusion", {})
    served = {"test_flip": "mirror" in manifest.get("views", []), "test_gray": "gray" in manifest.get("views", []),
              **({"fusion_global": float(fusion["global"])} if "global" in fusion else {}),
              **({"fusion_local": float(fusion["local"])} if "local" in fusion else {})}
    cfg = replace(MODEL_CONFIGS[manifest["arch"]], input_size=manifest["input"]["size"],
                  **{**tc.get("model_options", {}), **served})
    model = ALNet(cfg)
    w = _initializers(model_dir / manifest["model"])
    state = model.state_dict()
    loaded = set()

    def put(key: str, value: np.ndarray):
        want = tuple(state[key].shape)
        if value.shape != want and value.ndim == 2 and value.T.shape == want:
            value = value.T                                      # Gemm with transB
        if value.size != state[key].numel():
            raise ValueError(f"{key}: graph has {value.shape}, network {want}")
        t = torch.from_numpy(np.ascontiguousarray(value)).reshape(want)
        state[key] = t.to(state[key].dtype)
        loaded.add(key)

    for key in list(state):
        prefix = key.rsplit(".", 1)[0]
        if key.endswith(".weight") and isinstance(model.get_submodule(prefix.removeprefix("")), nn.Conv2d):
            put(key, w[f"model.{key}"])
            bn = _bn_after(model, prefix)
            affine = _affine_after(model, prefix)
            if affine is not None:
                # dlib's per-channel affine was folded into this conv: it becomes the identity plus
                # the folded bias (trainable again, as the dlib conversion left it).
                bias = w.get(f"model.{key}_bias")
                put(f"{affine}.weight", np.ones(state[f"{affine}.weight"].shape, np.float32))
                put(f"{affine}.bias", bias if bias is not None else np.zeros(state[f"{affine}.bias"].shape, np.float32))
            elif bn is not None:
                bias = w.get(f"model.{key}_bias")
                put(f"{bn}.weight", np.ones(state[f"{bn}.weight"].shape, np.float32))
                put(f"{bn}.bias", bias if bias is not None else np.zeros(state[f"{bn}.bias"].shape, np.float32))
                put(f"{bn}.running_mean", np.zeros(state[f"{bn}.running_mean"].shape, np.float32))
                eps = model.get_submodule(bn).eps
                put(f"{bn}.running_var", np.full(state[f"{bn}.running_var"].shape, 1 - eps, np.float32))
        elif f"model.{key}" in w and key not in loaded:
            put(key, w[f"model.{key}"])
    model.load_state_dict(state)
    model.temperature.fill_(float(manifest.get("temperature", 1.0)))
    missing = sorted(k for k in state if k not in loaded and not k.endswith("num_batches_tracked"))
    return model.eval(), {"train_config": tc, "not_in_graph": missing}


def _affine_after(model: nn.Module, conv: str) -> str | None:
    """The Affine that follows a convolution in DlibBackbone (convN -> affineN, stem.0 -> stem.1)."""
    from .model import Affine

    parent, _, leaf = conv.rpartition(".")
    name = f"{parent}.affine{leaf[4:]}" if leaf.startswith("conv") else f"{parent}.1" if leaf == "0" else None
    if name is None:
        return None
    try:
        return name if isinstance(model.get_submodule(name), Affine) else None
    except AttributeError:
        return None


def _bn_after(model: nn.Module, conv: str) -> str | None:
    """The BatchNorm that follows a convolution in Backbone / torchvision's blocks."""
    parent, _, leaf = conv.rpartition(".")
    if leaf.startswith("conv"):                                  # block.convN -> block.bnN
        name = f"{parent}.bn{leaf[4:]}"
    elif leaf == "0":                                            # stem.0 / downsample.0 -> .1
        name = f"{parent}.1"
    else:
        return None
    try:
        return name if isinstance(model.get_submodule(name), nn.BatchNorm2d) else None
    except AttributeError:
        return None


@torch.no_grad()
def recalibrate_batchnorm(model: ALNet, images: torch.Tensor, batch_size: int = 64) -> None:
    """Re-express each BatchNorm (running mean 0, var 1: identity plus bias) with the mean and
    variance of its input on `images` (uint8 NHWC): gamma = sqrt(var + eps), beta = mean + bias,
    so that eval mode computes exactly the same function and train mode starts close to it."""
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    sums = {id(m): [0.0, 0.0, 0] for m in bns}

    def hook(m, inp, _out):
        x = inp[0].float()
        s = sums[id(m)]
        s[0] = s[0] + x.sum(dim=(0, 2, 3))
        s[1] = s[1] + (x * x).sum(dim=(0, 2, 3))
        s[2] += x.numel() // x.shape[1]

    handles = [m.register_forward_hook(hook) for m in bns]
    model.eval()
    for i in range(0, len(images), batch_size):
        x = model.preprocess(images[i:i + batch_size])
        fmap = model.backbone(x)
        if model.local_backbone is not None:
            model.local_backbone(x)
        del fmap
    for h in handles:
        h.remove()
    for m in bns:
        s1, s2, n = sums[id(m)]
        if n == 0:
            continue
        mean = s1 / n
        var = (s2 / n - mean * mean).clamp_min(0)
        # old: f(x) = a * (x - m0) + b0 with a = gamma0 / sqrt(v0 + eps); new: the same f with
        # the running statistics (mean, var): gamma = a * sqrt(var + eps), beta = b0 + a * (mean - m0)
        a = m.weight / torch.sqrt(m.running_var + m.eps)
        m.bias.copy_(m.bias + a * (mean - m.running_mean))
        m.weight.copy_(a * torch.sqrt(var + m.eps))
        m.running_mean.copy_(mean)
        m.running_var.copy_(var)


def write_recovered(model_dir: str, out: str, data_root: str = UTKFACE_ROOT,
                    input_size: int | None = None, arch: str | None = None,
                    calib: int = 1024, overrides: dict | None = None) -> dict:
    """A released model -> a checkpoint at `out` (optionally its weights in another registered
    architecture, e.g. without the local branch's backbone, and at another input size), with the
    BatchNorms recalibrated on `calib` train faces at the new size, and how it compares with the
    served graph."""
    from .data import load_packed
    from .model import create_model

    src, info = recover(model_dir)
    model = src
    if arch or input_size or overrides:
        opts = dict(overrides or {})
        if input_size or not arch:          # the released size unless another architecture says otherwise
            opts["input_size"] = input_size or src.cfg.input_size
        model = create_model(arch or src.cfg.arch, **opts)
        own = model.state_dict()
        taken = {k: v for k, v in src.state_dict().items() if k in own and own[k].shape == v.shape}
        model.load_state_dict(taken, strict=False)
        info["fresh"] = sorted(k for k in own if k not in taken)
    size = model.cfg.input_size
    faces = load_packed("utkface", data_root, "train", size, limit=calib, progress=False).images
    recalibrate_batchnorm(model, faces)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint_dict(model, recovered_from=str(model_dir), train_config=info["train_config"]), out)
    return {"out": out, "arch": model.cfg.arch, "input_size": size,
            "not_in_graph": info["not_in_graph"], "fresh": info.get("fresh", [])}
