"""The facts the server and training share, read from contract/contract.json (src/contract.ts
reads the same file), and the manifest's JSON Schema (contract/manifest.schema.json, generated
from the server's zod schema in src/registry/manifest.ts), which every manifest written here is
validated against before it is written."""
from __future__ import annotations

import json
from functools import cache
from pathlib import Path

CONTRACT_DIR = Path(__file__).resolve().parent.parent / "contract"
_CONTRACT = json.loads((CONTRACT_DIR / "contract.json").read_text())

TIERS: tuple[str, ...] = tuple(_CONTRACT["tiers"])
# The serving graph's outputs, in the order ExportWrapper returns them.
OUTPUT_NAMES: tuple[str, ...] = tuple(_CONTRACT["outputs"])
# The ages of the classes of `probs`, one per whole year.
CLASS_AGES: tuple[int, int] = (_CONTRACT["class_ages"]["min"], _CONTRACT["class_ages"]["max"])
# Capture quality's bands, best first: [lower bound, upper bound) of the score.
QUALITY_BANDS: tuple[tuple[float, float], ...] = tuple((float(lo), float(hi)) for lo, hi in _CONTRACT["quality_bands"])
# A second age far from the distribution's peak (metrics.far_mode): gap, window, smooth, min_mass.
FAR_MODE: dict = {k: v for k, v in _CONTRACT["far_mode"].items() if not k.startswith("$")}


@cache
def _manifest_validator():
    import jsonschema  # only the release writes manifests: training runs without it

    return jsonschema.Draft202012Validator(json.loads((CONTRACT_DIR / "manifest.schema.json").read_text()))


def validate_manifest(manifest: dict) -> None:
    """Raises ValueError naming the first place `manifest` breaks the contract's JSON Schema."""
    import jsonschema

    error = jsonschema.exceptions.best_match(_manifest_validator().iter_errors(manifest))
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path) or "manifest"
        raise ValueError(f"manifest.json breaks contract/manifest.schema.json at {where}: {error.message}")


def write_manifest_json(path: Path, manifest: dict) -> None:
    """Validates `manifest` against the contract, then writes it (indent 2, newline at the end)."""
    validate_manifest(manifest)
    Path(path).write_text(json.dumps(manifest, indent=2) + "\n")
