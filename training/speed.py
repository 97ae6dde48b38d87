"""`python -m training speed --all`: every shipped architecture at its served input size, trained
in fp32 and bf16 on this machine, and the precision a run would pick (train.choose_precision).
Rates are ratios within one run: hosts differ 2x, and so does a machine with other work on it."""
from __future__ import annotations

import json
import platform
from pathlib import Path

from .train import train_speed

ROOT = Path(__file__).resolve().parent.parent


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
    import torch

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
