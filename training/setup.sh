#!/usr/bin/env bash
# Creates training/.venv with the pinned requirements. Idempotent: a venv whose stamp matches
# requirements.txt is left alone, so `npm test` pays the ~1.5 min install once per machine.
# requirements-test.txt (dlib, for one parity test) has its own stamp and may fail to install:
# the test that needs it then skips with a message.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
if ! { [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; }; then
  python="${PYTHON:-python3}"
  echo "training/setup.sh: creating $venv with $($python --version) (torch from PyPI, ~2 GB, 1-2 minutes)"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --upgrade pip
  "$venv/bin/pip" install --quiet -r "$here/requirements.txt"
  echo "$want" > "$stamp"
  rm -f "$venv/.requirements-test.sha256"
  echo "training/setup.sh: ready ($("$venv/bin/python" -c 'import torch; print("torch", torch.__version__)'))"
fi
test_stamp="$venv/.requirements-test.sha256"
want_test="$(sha256sum "$here/requirements-test.txt" | cut -d' ' -f1)"
if [ "$(cat "$test_stamp" 2>/dev/null)" != "$want_test" ]; then
  if "$venv/bin/pip" install --quiet -r "$here/requirements-test.txt"; then
    echo "$want_test" > "$test_stamp"
  else
    echo "training/setup.sh: requirements-test.txt did not install (no dlib wheel here): the dlib parity test will skip" >&2
  fi
fi
