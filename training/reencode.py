"""`python -m training reencode`: a released version's int8 graph as a new version with portable
weights, for versions whose checkpoint is gone (notes/al-resnet18-edge-utkface-3.1.md)."""
from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

from .contract import write_manifest_json
from .export import file_entry, portable_weights
from .served import measure_served


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
    write_manifest_json(out / "manifest.json", manifest)
    report = json.loads((out / "report.json").read_text())
    report["reencoded_from"] = manifest["reencoded_from"]
    (out / "report.json").write_text(json.dumps(report) + "\n")
    return {"weights_rewritten": rewritten, **measure_served(str(out), data_root=data_root)}
