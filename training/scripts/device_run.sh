#!/usr/bin/env bash
# The default model on a lent GPU (the `device` tool: H100/H200, torch 2.11, no internet, 64 MiB
# upload, files back through $OUT at most 8 x 16 MiB). Prepare here, then run there:
#   training/.venv/bin/python -m training carry --size 112 --out .cache/utkface-112.carry.pt
#   device run: carry [".cache/utkface-112.carry.pt"], command "bash training/scripts/device_run.sh"
# Afterwards here: cat each tarball's parts together (see below) and pick the model to ship on `val`:
# a served `val` MAE near 4.62 is what 4.8 on `test` has needed (`val`->`test` gap +0.17..+0.29);
# a lead under ~0.1 over version 3's 4.759 is within what seeds alone move it.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PYTHONUNBUFFERED=1
out=${OUT:-/tmp/out}
mkdir -p "$out"
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 || true)
common=(WARM_EPOCHS="${WARM_EPOCHS:-0}" SIZE="${SIZE:-112}" EPOCHS="${EPOCHS:-45}" LOCAL_EPOCHS="${LOCAL_EPOCHS:-10}"
        THREADS="${THREADS:-8}" PY="${PY:-python3}" DATA="${DATA:-.cache/utkface-112.carry.pt}"
        TRAINING_NOTE="${TRAINING_NOTE:-"Trained on one ${gpu:-GPU} with training/scripts/device_run.sh."}")

ship() {  # name version: the model directory, reports, metrics and logs into $OUT, in parts under
          # 16 MiB, as soon as they exist, so a later step's timeout loses nothing. No checkpoints,
          # and of the other arm's release only its report: two AL-ResNet-34-sized int8 graphs
          # (44 MB each with the region branch) would not fit in the 8 parts that come back.
  tar czf "/tmp/$1-$2.tgz" --exclude="*.pt" --exclude="runs/$1-$2/*-release/model.*" "models/$1/$2" "runs/$1-$2"
  split -b 15M "/tmp/$1-$2.tgz" "$out/$1-$2.tgz.part-"
  # here: cat <files_at>/$1-$2.tgz.part-* | tar xzf -
}

# 1. The paper's comparison: AL-ResNet-34 and AL-RoR-34 at 112 px, both stages, one view. With the
#    region-reading local branch such a graph is 44 MB int8, ~112 ms and 69 MiB of wasm heap in
#    workerd (training/scripts/serving_cost.sh), over the 64 MiB budget: these two are the
#    comparison and the teachers, not the model to ship.
name=${NAME:-al-resnet34-utkface}; version=${VERSION:-1}
env "${common[@]}" NAME="$name" VERSION="$version" ARCHS="${ARCHS:-"al_resnet34 al_ror34"}" \
  RELEASE_OPTIONS="${RELEASE_OPTIONS:-"--no-flip --framing-from training/framings/utkface-blazeface-short-range-1.json"}" bash training/scripts/train_default.sh
ship "$name" "$version"

# 2. The candidate to ship: the edge model taught by both. Their averaged answers (each with its
#    mirror) on the training faces become part of its targets; served with the mirror (~99 ms, 23 MiB).
[ "${STUDENT:-1}" = 1 ] || exit 0
tag="$name-$version"
first=${ARCHS:-"al_resnet34 al_ror34"}
checkpoints=()
for arch in $first; do checkpoints+=(--checkpoint "runs/$tag/$arch-local/best.pt"); done
"${PY:-python3}" -m training teach "${checkpoints[@]}" --out "runs/$tag/teacher.pt"
student=${STUDENT_NAME:-al-resnet18-edge-utkface}; student_version=${STUDENT_VERSION:-4}
# No AL-RoR arm of its own: the paper's comparison is the teachers', in $name's card.
env "${common[@]}" NAME="$student" VERSION="$student_version" ARCHS="${STUDENT_ARCH:-al_resnet18_edge}" \
  TEACHER="runs/$tag/teacher.pt" RELEASE_OPTIONS="--flip --framing-from training/framings/utkface-blazeface-short-range-1.json" COMPARE="" \
  TRAINING_NOTE="Trained on one ${gpu:-GPU} with training/scripts/device_run.sh, taught by $first ($name $version)." \
  bash training/scripts/train_default.sh
ship "$student" "$student_version"
