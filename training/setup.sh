#!/usr/bin/env bash
# Creates training/.venv with the pinned requirements. Idempotent: a venv whose stamp matches
# requirements.txt is left alone, so `npm test` pays the ~1.5 min install once per machine.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
python="${PYTHON:-python3}"
echo "training/setup.sh: creating $venv with $($python --version) (torch from PyPI, ~2 GB, 1-2 minutes)"
"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
"$venv/bin/pip" install --quiet -r "$here/requirements.txt"
echo "$want" > "$stamp"
echo "training/setup.sh: ready ($("$venv/bin/python" -c 'import torch; print("torch", torch.__version__)'))"
