"""A released version framed anew: the same int8 graph, calibration and numbers on chips, with the
framing (how a detected face becomes the crop, `python -m training detector framing`) of a newer
measurement, as a new version. Only the photo path's answers change: chips (`crop=image`) and a
caller's `box=` are read exactly as before. The card keeps its numbers and says what changed."""
from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

from .contract import write_manifest_json


def reframe(model_dir: str, framing_from: str, out: str, version: str, note: str = "") -> dict:
    src, dst = Path(model_dir), Path(out)
    manifest = json.loads((src / "manifest.json").read_text())
    framing = json.loads(Path(framing_from).read_text())["framing"]
    dst.mkdir(parents=True, exist_ok=True)
    for f in manifest["files"]:
        shutil.copy(src / f["path"], dst / f["path"])
    origin_version = manifest["version"]
    origin = f"{manifest['name']}/{origin_version}"
    manifest.update(version=version, framing=framing, reframed_from=origin,
                    created=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    write_manifest_json(dst / "manifest.json", manifest)
    for extra in ("report.json", "bench.json"):
        if (src / extra).exists():
            data = json.loads((src / extra).read_text())
            data["reframed_from"] = origin
            (dst / extra).write_text(json.dumps(data) + "\n")
    card = (src / "MODEL_CARD.md").read_text() if (src / "MODEL_CARD.md").exists() else f"# {manifest['name']}\n"
    template = framing.get("keypoints", {}).get("template")
    what = (f"the keypoint template of `{framing_from}` (the similarity fitted to points "
            f"{framing['keypoints'].get('template_points')})" if template else f"the framing of `{framing_from}`")
    (dst / "MODEL_CARD.md").write_text(
        f"# Version {version}: version {origin_version} framed anew\n\n"
        f"Version {version} is {origin} with the same int8 graph (same sha256), calibration and numbers on "
        f"chips; a face the detector finds is framed by {what}. Only the photo path's answers change. "
        f"{note}\n\nThe card of {origin} follows unchanged.\n\n" + card)
    return {"from": origin, "version": version, "framing": framing}
