#!/usr/bin/env bash
# The default model on a lent GPU (the `device` tool: H100/H200, torch 2.11, no internet, 64 MiB
# upload, files back through $OUT at most 8 x 16 MiB). Prepare here, then run there:
#   training/.venv/bin/python -m training carry --size 112 --out .cache/utkface-112.carry.pt
#   device run: carry [".cache/utkface-112.carry.pt"], command "bash training/scripts/device_run.sh"
# Afterwards here: cat the parts back together (see the end) into models/$NAME/$VERSION/.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PYTHONUNBUFFERED=1
# One view: AL-ResNet-34 at 112 px reads the face and the attention region with two backbones,
# ~2 x 68 ms in workerd; the mirror as well would break the 150 ms budget.
name=${NAME:-al-resnet34-utkface}; version=${VERSION:-1}
NAME=$name VERSION=$version \
ARCHS=${ARCHS:-"al_resnet34 al_ror34"} WARM_EPOCHS=${WARM_EPOCHS:-0} SIZE=${SIZE:-112} EPOCHS=${EPOCHS:-45} LOCAL_EPOCHS=${LOCAL_EPOCHS:-10} \
RELEASE_OPTIONS=${RELEASE_OPTIONS:-"--no-flip"} THREADS=${THREADS:-8} PY=${PY:-python3} DATA=${DATA:-.cache/utkface-112.carry.pt} \
TRAINING_NOTE=${TRAINING_NOTE:-"Trained on one $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1) with training/scripts/device_run.sh."} \
  bash training/scripts/train_default.sh
out=${OUT:-/tmp/out}
mkdir -p "$out"
# One tarball of the model directory, the reports, metrics and logs (no checkpoints), in parts under 16 MiB.
tar czf /tmp/result.tgz --exclude="*.pt" "models/$name/$version" "runs/$name-$version"
split -b 15M /tmp/result.tgz "$out/result.tgz.part-"
# here: cat /work/.device/.../result.tgz.part-* | tar xzf -
