"""training/scripts/device_run.sh on the CPU with a tiny subset, so that it cannot rot while no GPU
host is at hand: `pack` writes a carry that fits beside the tree and says so, `train` recovers
the recipe's starting version from models/, teaches with it on the carried faces, runs the first
steps of every stage of the current recipe on the carry, and ships the parts back through $OUT."""
import os
import subprocess
import re
import tarfile
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "training" / "scripts" / "device_run.sh"
# The script's default recipe, as its RECIPE line names it.
CURRENT_RECIPE = re.search(r"RECIPE=\$\{RECIPE:-([^}]+)\}", SCRIPT.read_text()).group(1)


def test_pack_then_the_first_steps_of_the_current_recipe(utkface_root, tmp_path):
    env = {**os.environ, "DATA": str(utkface_root), "CARRY": str(tmp_path / "u-150.carry.pt"),
           "INIT": str(tmp_path / "init.pt"), "TEACHER": str(tmp_path / "teacher.pt"), "RUNS": str(tmp_path / "runs"),
           "OUT": str(tmp_path / "out"), "PACK_LIMITS": "--limit train=48 --limit val=24",
           "SETS": "epochs=1 max_steps=1 batch_size=16 limit_val=16 val_capture=2 bf16=false progress=false",
           "BUDGET": "20"}
    packed = subprocess.run(["bash", str(SCRIPT), "pack"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert packed.returncode == 0, packed.stdout + packed.stderr
    assert "room for the carry" in packed.stdout and "tree + carry" in packed.stdout
    assert (tmp_path / "u-150.carry.pt").stat().st_size < 2_000_000

    trained = subprocess.run(["bash", str(SCRIPT), "train"], cwd=REPO, env=env, capture_output=True, text=True, timeout=1200)
    assert trained.returncode == 0, trained.stdout[-4000:] + trained.stderr[-4000:]
    parts = sorted((tmp_path / "out").glob("device-run.tgz.part-*"))
    assert parts
    whole = tmp_path / "whole.tgz"
    whole.write_bytes(b"".join(p.read_bytes() for p in parts))
    with tarfile.open(whole) as tar:
        names = tar.getnames()
    stages = [Path(n).parent.name for n in names if n.endswith("metrics.jsonl")]
    recipe = tomllib.loads((REPO / CURRENT_RECIPE).read_text())
    want = [s["id"] for s in recipe["stages"]]
    assert stages == want, names                            # every stage of the recipe ran
    assert any(n.endswith(f"{want[-1]}/best.pt") for n in names)
    assert any(n.endswith("progress.log") for n in names)
