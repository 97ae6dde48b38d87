"""Training speed on this machine: a stage's images per second in fp32 and bf16, and the precision
a run trains in (`choose_precision`: a CPU run measures both at its start).

`python -m training speed --all`: every shipped architecture at its served input size. Rates are
ratios within one run: hosts differ 2x, and so does a machine with other work on it."""
from __future__ import annotations

import copy
import json
import platform
import time
from pathlib import Path

import torch

from .model import ALNet, create_model
from .stage import set_stage, stage_loss, stage_modes

ROOT = Path(__file__).resolve().parent.parent


def bf16_supported(device: torch.device) -> bool:
    """Whether bf16 autocast runs here at all. Whether it is *faster* is another matter: on CPUs
    with AVX512-BF16 but no AMX it is emulated and 1.3-1.4x slower than fp32, so a CPU run
    measures both (choose_precision) instead of trusting this."""
    if device.type == "cuda":
        return True
    return device.type == "cpu" and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def step_rate(model: ALNet, stage: str, batch_size: int, bf16: bool, steps: int = 3,
              channels_last: bool = True) -> float:
    """Training images per second of one stage's step on random data, on a copy of `model` (its
    weights, statistics and the caller's random streams are left alone)."""
    device = next(model.parameters()).device
    m = copy.deepcopy(model)
    params = set_stage(m, stage)
    opt = torch.optim.SGD(params, lr=1e-4, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    size = m.cfg.input_size
    x = torch.rand(batch_size, 3, size, size, generator=g).to(device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, m.cfg.num_classes, (batch_size,), generator=g).to(device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)
    stage_modes(m, stage)
    m.attention.reset_state()
    for i in range(steps + 2):  # two warm-up steps: kernel selection, allocator
        if i == 2:
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        with autocast:
            loss = stage_loss(m, x, labels, stage, 2.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch_size / (time.perf_counter() - t0)


# bf16 must win by this much: fp32 is the safer arithmetic, and a timing of a few steps is noisy.
BF16_MARGIN = 1.05


def choose_precision(rates: dict[str, float]) -> str:
    """'bf16' or 'fp32' from measured {"bf16": img/s, "fp32": img/s}."""
    return "bf16" if rates.get("bf16", 0.0) > BF16_MARGIN * rates["fp32"] else "fp32"


def measure_precision(model: ALNet, stage: str, batch_size: int, steps: int = 3,
                      channels_last: bool = True) -> dict:
    """Both rates on this machine and model, and the choice: {"precision", "fp32_img_s", "bf16_img_s"}."""
    device = next(model.parameters()).device
    rates = {"fp32": step_rate(model, stage, batch_size, False, steps, channels_last)}
    if bf16_supported(device):
        rates["bf16"] = step_rate(model, stage, batch_size, True, steps, channels_last)
    return {"precision": choose_precision(rates),
            **{f"{k}_img_s": round(v, 1) for k, v in rates.items()}}


def precision_for(model: ALNet, stage: str, batch_size: int, forced: bool | None,
                  channels_last: bool = True) -> dict:
    """The precision a run trains in: `forced` (a run's bf16 setting) where set, bf16 on a GPU,
    else the faster of both as measured here on `model`. {"precision", "forced", rates if measured}."""
    device = next(model.parameters()).device
    if forced is not None:
        return {"precision": "bf16" if forced and bf16_supported(device) else "fp32", "forced": True}
    if device.type == "cuda":
        return {"precision": "bf16", "forced": False}
    return {**measure_precision(model, stage, batch_size, channels_last=channels_last), "forced": False}


def train_speed(model_name: str, input_size: int | None = None, batch_size: int = 64,
                steps: int = 5, bf16: bool | None = None, stage: str = "global") -> dict:
    """A stage's training images per second on random data, on this machine (`python -m
    training speed`): fp32 and, where it runs, bf16, and the precision a run would pick (bf16
    None); bf16 True/False times that one alone."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = create_model(model_name, **({"input_size": input_size} if input_size else {})).to(device)
    model.to(memory_format=torch.channels_last)
    out = {"model": model_name, "input_size": model.cfg.input_size, "stage": stage, "device": str(device),
           "threads": torch.get_num_threads(), "batch_size": batch_size}
    if bf16 is None:
        return {**out, **measure_precision(model, stage, batch_size, steps)}
    use_bf16 = bf16 and bf16_supported(device)
    return {**out, "bf16": use_bf16, "images_per_s": round(step_rate(model, stage, batch_size, use_bf16, steps), 1)}


def shipped_architectures(models_dir: Path = ROOT / "models") -> list[tuple[str, int, list[str]]]:
    """(arch, input size, the versions that ship it), from every models/NAME/VERSION/manifest.json."""
    found: dict[tuple[str, int], list[str]] = {}
    for manifest in sorted(models_dir.glob("*/*/manifest.json")):
        m = json.loads(manifest.read_text())
        if "arch" not in m:
            continue  # the detector's manifest
        found.setdefault((m["arch"], m["input"]["size"]), []).append(f"{m['name']}/{m['version']}")
    return [(arch, size, versions) for (arch, size), versions in sorted(found.items())]


def cpu_description() -> str:
    """The CPU's model name and the flags that decide bf16's speed (AVX-512 BF16, AMX)."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and ":" in line:
                name = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and ":" in line:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    wanted = ["avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "avx512_vnni", "avx_vnni"]
    return f"{name}; flags: {' '.join(f for f in wanted if f in flags) or 'none of ' + ', '.join(wanted)}"


def speed_table(batch_size: int = 64, steps: int = 5, stage: str = "global") -> str:
    rows = []
    for arch, size, versions in shipped_architectures():
        r = train_speed(arch, size, batch_size, steps, None, stage)
        bf16 = f"{r['bf16_img_s']:.1f}" if "bf16_img_s" in r else "not available"
        ratio = f"{r['bf16_img_s'] / r['fp32_img_s']:.2f}" if "bf16_img_s" in r else "-"
        rows.append(f"| `{arch}` ({', '.join(versions)}) | {size} px | {r['fp32_img_s']:.1f} | {bf16} | {ratio} | "
                    f"**{r['precision']}** |")
    head = (f"Stage `{stage}`, batch {batch_size}, {steps} timed steps after 2 warm-up steps, "
            f"{torch.get_num_threads()} threads, torch {torch.__version__}, on {cpu_description()}.\n\n"
            "| architecture (shipped as) | input | fp32 img/s | bf16 img/s | bf16 / fp32 | a run picks |\n"
            "|---|---|---|---|---|---|")
    return "\n".join([head, *rows])
