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
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from .model import ALNet, ModelConfig, checkpoint_dict


def _initializers(path: Path) -> dict[str, np.ndarray]:
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path), load_external_data=True)
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    weights = {}
    for node in model.graph.node:
        if node.op_type != "DequantizeLinear" or node.input[0] not in inits:
            continue
        q = inits[node.input[0]].astype(np.float32)
        scale = inits[node.input[1]].astype(np.float32)
        zero = inits[node.input[2]].astype(np.float32) if len(node.input) > 2 else np.zeros_like(scale)
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        if scale.ndim == 1 and scale.size > 1:
            shape = [1] * q.ndim
            shape[axis] = -1
            scale, zero = scale.reshape(shape), zero.reshape(shape)
        weights[node.input[0].removesuffix("_quantized")] = (q - zero) * scale
    for name, v in inits.items():
        if v.dtype in (np.float32, np.float64) and name.startswith("model."):
            weights.setdefault(name, v.astype(np.float32))
    return weights


def recover(model_dir: str | Path) -> tuple[ALNet, dict]:
    """models/<name>/<version> -> (network, its release report's train config)."""
    model_dir = Path(model_dir)
    manifest = json.loads((model_dir / "manifest.json").read_text())
    report_path = model_dir / "report.json"
    tc = json.loads(report_path.read_text()).get("train_config", {}) if report_path.exists() else {}
    from .model import MODEL_CONFIGS
    from dataclasses import replace
    cfg = replace(MODEL_CONFIGS[manifest["arch"]], input_size=manifest["input"]["size"],
                  test_flip=manifest.get("views") == ["face", "mirror"], **tc.get("model_options", {}))
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
            if bn is not None:
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


def write_recovered(model_dir: str, out: str, data_root: str = "../shared/data/utkface",
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
