#!/usr/bin/env bash
# Trains, releases and documents the default model: the exact commands behind models/.
#   bash training/scripts/train_default.sh            # CPU: both arms in parallel, one core each
#   ARCHS=al_resnet34 SIZE=112 EPOCHS=45 bash ...     # a GPU host (bf16 + channels_last automatic)
# Outputs: runs/<arch>-{global,local}/ (checkpoints, metrics.jsonl), runs/<arch>-release/, and
# models/<NAME>/<VERSION>/ for the first arch (the shipped one) with MODEL_CARD.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-training/.venv/bin/python}
ARCHS=${ARCHS:-"al_resnet18_edge al_ror18_edge"}   # the first ships; the second is the paper's RoR comparison
SIZE=${SIZE:-64}
EPOCHS=${EPOCHS:-18}
LOCAL_EPOCHS=${LOCAL_EPOCHS:-6}
THREADS=${THREADS:-1}
NAME=${NAME:-al-resnet18-edge-utkface}
VERSION=${VERSION:-1}
DATA=${DATA:-../shared/data/utkface}
export OMP_NUM_THREADS=$THREADS

stage() {  # arch stage epochs lr [init]
  local init=()
  [ -n "${5:-}" ] && init=(--init "$5")
  "$PY" -m training train --model "$1" --stage "$2" --epochs "$3" --lr "$4" --input-size "$SIZE" \
    --batch-size 64 --label-sigma 2 --seed 0 --data-root "$DATA" --out "runs/$1-$2" --no-progress "${init[@]}"
}

mkdir -p runs
for arch in $ARCHS; do
  ( stage "$arch" global "$EPOCHS" 0.1 && stage "$arch" local "$LOCAL_EPOCHS" 0.05 "runs/$arch-global/best.pt" ) \
    > "runs/$arch.log" 2>&1 &
done
wait

first=${ARCHS%% *}
printf '{"name": "%s", "version": "%s"}\n' "$NAME" "$VERSION" > models/active.json
for arch in $ARCHS; do
  out="runs/$arch-release"
  [ "$arch" = "$first" ] && out="models/$NAME/$VERSION"
  "$PY" -m training release --checkpoint "runs/$arch-local/best.pt" --out "$out" --name "$NAME" --version "$VERSION" --external-data
done
compare=()
for arch in $ARCHS; do [ "$arch" != "$first" ] && compare=(--compare "runs/$arch-release/report.json"); done
npm run bench -- --only default --json "models/$NAME/$VERSION/bench.json" || true   # serving cost, when Node is here
# The card's opening note says where it trained and what the numbers mean: write it by hand in
# training/notes/; until then a line with the settings stands in.
note="training/notes/$NAME-$VERSION.md"
[ -f "$note" ] || echo "${TRAINING_NOTE:-Trained with training/scripts/train_default.sh (SIZE=$SIZE EPOCHS=$EPOCHS LOCAL_EPOCHS=$LOCAL_EPOCHS); times in runs/*/metrics.jsonl.}" > "$note"
"$PY" -m training card --model-dir "models/$NAME/$VERSION" "${compare[@]}" \
  --bench "models/$NAME/$VERSION/bench.json" --training-note "@$note"
