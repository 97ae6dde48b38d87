#!/usr/bin/env bash
# A candidate successor to version 3 of the default model (tried, not shipped), after
# train_default.sh has trained version 3 with both arms (ARCHS="al_resnet18_edge al_ror18_edge"):
# version 3's two arms teach fresh fine-tunes of its global backbone, one per seed, and the
# weights of those runs and of version 3's AL-ResNet are averaged into one model (`python -m
# training soup --greedy`: best on `val` first, each other run kept only if it helps), which
# would ship with the same size and cost as version 3.
#   bash training/scripts/distill_soup.sh        # ~40 min per seed on 2 cores, plus ~20 min to teach
# What it gave: `val` 4.759 -> 4.651 (int8, as served), `test` 4.930 -> 4.936: the gain on `val` was
# the best of three seeds chosen on `val` (training/notes/al-resnet18-edge-utkface-3.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-training/.venv/bin/python}
FROM=${FROM:-runs/al-resnet18-edge-utkface-3}   # train_default.sh's runs of version 3
SEEDS=${SEEDS:-"0 1 2"}
NAME=${NAME:-al-resnet18-edge-utkface}
VERSION=${VERSION:-3-distilled}   # not 4: that is the next shipped version (device_run.sh's student)
TAG=${TAG:-$NAME-$VERSION}
DATA=${DATA:-../shared/data/utkface}
export OMP_NUM_THREADS=${THREADS:-$(nproc)}
mkdir -p "runs/$TAG"

[ -f "runs/$TAG/teacher.pt" ] || "$PY" -m training teach --out "runs/$TAG/teacher.pt" \
  --checkpoint "$FROM/al_resnet18_edge-local/best.pt" --checkpoint "$FROM/al_ror18_edge-local/best.pt"

stage() {  # stage epochs lr out init seed [extra options...]
  local stage=$1 epochs=$2 lr=$3 out=$4 init=$5 seed=$6
  shift 6
  "$PY" -m training train --model al_resnet18_edge --stage "$stage" --epochs "$epochs" --lr "$lr" \
    --input-size 112 --batch-size 64 --label-sigma 2 --seed "$seed" --data-root "$DATA" --no-progress \
    --teacher "runs/$TAG/teacher.pt" --teacher-weight 0.5 --out "$out" --init "$init" "$@"
}

ingredients=("$FROM/al_resnet18_edge-local/best.pt")
for seed in $SEEDS; do
  dir="runs/$TAG/seed$seed"
  ingredients+=("$dir-local/best.pt")
  [ -f "$dir-local/best.pt" ] && continue   # done by an earlier, interrupted run of this script
  # The global stage again, from version 3's backbone, with the expectation's error in the loss
  # (--global-age-weight): a tenth of the first runs' rate, divided by 10 twice more.
  stage global 12 0.01 "$dir-global" "$FROM/al_resnet18_edge-global/best.pt" "$seed" \
    --lr-steps 6 9 --global-age-weight 0.5 > "$dir-global.log" 2>&1
  # Version 3's local stage (train_default.sh's LOCAL_OPTIONS) on that backbone.
  stage local 8 0.02 "$dir-local" "$dir-global/best.pt" "$seed" --model-option local_grid=2 \
    --model-option local_source=region --local-loss local+age --age-weight 0.5 > "$dir-local.log" 2>&1
done

"$PY" -m training soup --greedy --out "runs/$TAG/soup/best.pt" "${ingredients[@]/#/--checkpoint=}" \
  | tee "runs/$TAG/soup.json"
# Released beside the runs, not into models/: on `test` it only tied version 3, which still ships
# (training/notes/al-resnet18-edge-utkface-3.md). Its graph is version 3's, so is its serving cost.
"$PY" -m training release --checkpoint "runs/$TAG/soup/best.pt" --out "runs/$TAG/release" \
  --name "$NAME" --version "$VERSION" --external-data --flip
"$PY" -m training card --model-dir "runs/$TAG/release" --compare training/reports/al_ror18_edge-112px-region.report.json \
  --training-note "Trained with training/scripts/distill_soup.sh (FROM=$FROM SEEDS=$SEEDS)."
