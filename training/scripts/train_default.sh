#!/usr/bin/env bash
# Trains, releases and documents the default model: the exact commands behind models/ (the same
# runs as one file: training/recipes/al-resnet18-edge-utkface-3.toml, `python -m training recipe`).
#   bash training/scripts/train_default.sh                 # CPU: the shipped model (version 3), ~95 min on 2 cores with AMX
#   ARCHS="al_resnet18_edge al_ror18_edge" bash ...        # ... and the AL-RoR arm at the same setting (in parallel)
#   ARCHS="al_resnet34 al_ror34" WARM_EPOCHS=0 SIZE=112 EPOCHS=45 bash ...   # a GPU host (see device_run.sh)
# Per arch: stage global at WARM_SIZE for WARM_EPOCHS (skipped when 0), stage global at SIZE for
# EPOCHS starting from it (mixed resolution: the cheap small-input epochs teach the filters, the
# large-input ones the detail), POLISH_EPOCHS more of stage global at a tenth of the rate with the
# expectation's error added to the loss (skipped when 0), then stage local on the frozen backbone.
# Outputs: runs/<tag>/<arch>-{warm,global,polish,local}/ (checkpoints, metrics.jsonl), runs/<tag>/<arch>-release/,
# and models/<NAME>/<VERSION>/ for the first arch (the shipped one) with MODEL_CARD.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-training/.venv/bin/python}
ARCHS=${ARCHS:-"al_resnet18_edge"}   # the first ships; a second is the paper's RoR comparison
WARM_SIZE=${WARM_SIZE:-64}
WARM_EPOCHS=${WARM_EPOCHS:-18}
SIZE=${SIZE:-112}
EPOCHS=${EPOCHS:-26}
POLISH_EPOCHS=${POLISH_EPOCHS:-0}   # tried, not in the shipped recipe (training/notes/al-resnet18-edge-utkface-3.md)
LOCAL_EPOCHS=${LOCAL_EPOCHS:-8}
LOCAL_LR=${LOCAL_LR:-0.02}
# The box crops the face and the local branch's own copy of the backbone (started from the global
# one) is fine-tuned on those regions; its head pools a 2x2 grid and also learns from the fused
# age's error. The variants tried, and why this one: training/notes/al-resnet18-edge-utkface-{2,3}.md.
LOCAL_OPTIONS=${LOCAL_OPTIONS:-"--model-option local_grid=2 --model-option local_source=region --local-loss local+age --age-weight 0.5"}
# Distillation: targets from `python -m training teach` mixed into every stage's label (see
# device_run.sh, which teaches a small edge model with GPU-trained AL-ResNet-34/AL-RoR-34).
TEACHER=${TEACHER:-}
# The served graph averages the face and its mirror (2x inference; --no-flip for one view), and
# the manifest carries the measured detector-box -> chip framing (docs/model-contract.md).
RELEASE_OPTIONS=${RELEASE_OPTIONS:-"--flip --framing-from training/framings/utkface-blazeface-short-range-1.json"}
NAME=${NAME:-al-resnet18-edge-utkface}
VERSION=${VERSION:-3}
TAG=${TAG:-$NAME-$VERSION}
DATA=${DATA:-../shared/data/utkface}
# The paper's AL-ResNet vs AL-RoR comparison when ARCHS has one arch: the AL-RoR arm's report from
# this same recipe (its three runs and release, one after the other, on the same machine). With
# two arches the second one's fresh report is used instead; COMPARE="" leaves it out.
COMPARE=${COMPARE-"training/reports/al_ror18_edge-112px-region.report.json"}
arch_count=$(wc -w <<<"$ARCHS")
export OMP_NUM_THREADS=${THREADS:-$(( $(nproc) / arch_count > 0 ? $(nproc) / arch_count : 1 ))}

stage() {  # arch stage size epochs lr out [init] [extra options...]
  local arch=$1 stage=$2 size=$3 epochs=$4 lr=$5 out=$6 init=${7:-}
  shift 7
  "$PY" -m training train --model "$arch" --stage "$stage" --epochs "$epochs" --lr "$lr" \
    --input-size "$size" --batch-size 64 --label-sigma 2 --seed 0 --data-root "$DATA" \
    --out "$out" --no-progress ${init:+--init "$init"} ${TEACHER:+--teacher "$TEACHER"} "$@"
}

arm() {  # arch: both stages of one arm
  local arch=$1 dir="runs/$TAG/$1" init=""
  if [ "$WARM_EPOCHS" -gt 0 ]; then
    stage "$arch" global "$WARM_SIZE" "$WARM_EPOCHS" 0.1 "$dir-warm" ""
    init="$dir-warm/best.pt"
  fi
  stage "$arch" global "$SIZE" "$EPOCHS" "$([ -n "$init" ] && echo 0.05 || echo 0.1)" "$dir-global" "$init"
  init="$dir-global/best.pt"
  if [ "$POLISH_EPOCHS" -gt 0 ]; then
    stage "$arch" global "$SIZE" "$POLISH_EPOCHS" 0.005 "$dir-polish" "$init" --global-age-weight 0.5
    init="$dir-polish/best.pt"
  fi
  # shellcheck disable=SC2086  # LOCAL_OPTIONS is a list of flags
  stage "$arch" local "$SIZE" "$LOCAL_EPOCHS" "$LOCAL_LR" "$dir-local" "$init" $LOCAL_OPTIONS
}

mkdir -p "runs/$TAG"
pids=()
for arch in $ARCHS; do
  arm "$arch" > "runs/$TAG/$arch.log" 2>&1 &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done   # a failed arm stops the script here (see its log)

first=${ARCHS%% *}
printf '{"name": "%s", "version": "%s"}\n' "$NAME" "$VERSION" > models/active.json
for arch in $ARCHS; do
  out="runs/$TAG/$arch-release"
  [ "$arch" = "$first" ] && out="models/$NAME/$VERSION"
  # shellcheck disable=SC2086  # RELEASE_OPTIONS is a list of flags
  "$PY" -m training release --checkpoint "runs/$TAG/$arch-local/best.pt" --out "$out" --name "$NAME" \
    --version "$VERSION" --external-data $RELEASE_OPTIONS
done
compare=()
if [ "$arch_count" -gt 1 ]; then
  for arch in $ARCHS; do [ "$arch" != "$first" ] && compare+=(--compare "runs/$TAG/$arch-release/report.json"); done
elif [ -n "$COMPARE" ]; then
  compare=(--compare "$COMPARE")
fi
npm run bench -- --only default --json "models/$NAME/$VERSION/bench.json" || true   # serving cost, when Node is here
# The card's opening note says where it trained and what the numbers mean: write it by hand in
# training/notes/; until then a line with the settings stands in.
note="training/notes/$NAME-$VERSION.md"
[ -f "$note" ] || echo "${TRAINING_NOTE:-Trained with training/scripts/train_default.sh (ARCHS=$ARCHS WARM_SIZE=$WARM_SIZE WARM_EPOCHS=$WARM_EPOCHS SIZE=$SIZE EPOCHS=$EPOCHS POLISH_EPOCHS=$POLISH_EPOCHS LOCAL_EPOCHS=$LOCAL_EPOCHS LOCAL_LR=$LOCAL_LR${TEACHER:+ TEACHER=$TEACHER}); times in runs/$TAG/*/metrics.jsonl.}" > "$note"
"$PY" -m training card --model-dir "models/$NAME/$VERSION" "${compare[@]}" \
  --bench "models/$NAME/$VERSION/bench.json" --training-note "@$note"
