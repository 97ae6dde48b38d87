#!/usr/bin/env bash
# What an architecture would cost to serve, before anyone trains it: size on disk, inference time
# and wasm heap in workerd do not depend on the weights, so a one-step run is released (int8,
# external data) and benchmarked like a shipped model (bench/cost.mjs).
#   bash training/scripts/serving_cost.sh al_resnet34 112 --model-option local_grid=2 --model-option local_source=region
#   RELEASE_OPTIONS=--flip bash training/scripts/serving_cost.sh al_resnet18_edge 112 ...   # with the mirror
# Everything but the printed table goes to a temporary folder.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-training/.venv/bin/python}
arch=$1 size=$2
shift 2
dir=$(mktemp -d)
"$PY" -m training train --model "$arch" --input-size "$size" --stage global --max-steps 1 --limit-train 64 \
  --limit-val 64 --batch-size 32 --out "$dir/run" --no-progress "$@" > "$dir/train.log"
# shellcheck disable=SC2086  # RELEASE_OPTIONS is a list of flags
"$PY" -m training release --checkpoint "$dir/run/best.pt" --out "$dir/models/$arch/0" --name "$arch" \
  --version 0 --external-data --limit-eval 64 ${RELEASE_OPTIONS:-} > "$dir/release.log"
printf '{"name": "%s", "version": "0"}\n' "$arch" > "$dir/models/active.json"
npm run bench -- --n "${N:-30}" --models "$dir/models"
