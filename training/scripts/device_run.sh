#!/usr/bin/env bash
# The current recipe on a lent GPU (the `device` tool: H100/H200, no internet, an upload of 64 MiB
# for the working tree and what it carries, files back through $OUT: at most 8 of 16 MiB).
#
# 1. Here: pack the faces into a carry that fits beside the tree (the size is measured and printed):
#      bash training/scripts/device_run.sh pack
#    UTKFace's train and val splits as JPEGs at the recipe's input size (quality 65), the train
#    split cut to a fixed random subset that keeps tree + carry under the cap. No photo-cut faces
#    (1.2 GB raw) and no checkpoints travel: the GPU host recovers the starting version from
#    models/ (it is in the tree) and computes the teacher itself.
# 2. There: device run with carry [".cache/device"] and command
#      bash training/scripts/device_run.sh train
#    It recovers $FROM, teaches with it (face + mirror) on the carried faces, runs $RECIPE with the
#    carry as its data (overrides: no photo-cut faces; $SETS adds more, e.g. "input_size=200"),
#    and ships the last stage's best.pt with every stage's metrics.jsonl and progress.log to
#    $OUT in 15 MiB parts as soon as the recipe stops (a budget stop too: the same command resumes
#    on a machine that still has runs/).
# 3. Here again: cat <files_at>/device-run.tgz.part-* | tar xzf -   (into runs/device/...), then
#    score and release from there like any run (python -m training release / the recipe's release).
set -euo pipefail
cd "$(dirname "$0")/../.."
export PYTHONUNBUFFERED=1

RECIPE=${RECIPE:-training/recipes/al-dlib29-utkface-9.toml}
FROM=${FROM:-models/al-dlib29-utkface/8}                         # the version the recipe's init recovers
INIT=${INIT:-runs/recovered/al-dlib29-utkface-8.pt}             # the recipe's init
TEACHER=${TEACHER:-runs/teacher/8-flip.pt}                      # the recipe's teacher
SIZE=${SIZE:-150}                                               # the recipe's input size
CARRY=${CARRY:-.cache/device/utkface-$SIZE.carry.pt}
CAP_MB=${CAP_MB:-67.1}                                          # 64 MiB
PY=${PY:-python3}
[ -x training/.venv/bin/python ] && PY=${PY_LOCAL:-training/.venv/bin/python}

case "${1:-}" in
pack)
  # What travels besides the carry: tracked files and untracked ones git does not ignore.
  tree=$(git ls-files -z --cached --others --exclude-standard | xargs -0 -r du -cb 2>/dev/null | tail -1 | cut -f1)
  room=$(awk -v cap="$CAP_MB" -v t="$tree" 'BEGIN { printf "%.2f", cap - t / 1e6 - 1.0 }')   # 1 MB spare
  echo "working tree: $((tree / 1000000)) MB; room for the carry: $room MB of the $CAP_MB MB cap"
  "$PY" -m training carry --size "$SIZE" --quality 65 --splits train,val --max-mb "$room" --out "$CARRY" \
    --data-root "${DATA:-../shared/data/utkface}" ${PACK_LIMITS:-}
  total=$(( tree + $(stat -c %s "$CARRY") ))
  echo "tree + carry: $((total / 1000000)).$(( (total % 1000000) / 10000 )) MB (cap $CAP_MB MB)"
  [ "$total" -le "$(awk -v c="$CAP_MB" 'BEGIN { printf "%d", c * 1e6 }')" ] || { echo "over the cap" >&2; exit 1; }
  ;;
train)
  out=${OUT:-/tmp/out}
  mkdir -p "$out"
  nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null || echo "no GPU: running on the CPU"
  [ -f "$INIT" ] || "$PY" -m training recover --model-dir "$FROM" --out "$INIT" --data-root "$CARRY" --calib 256
  [ -f "$TEACHER" ] || "$PY" -m training teach --checkpoint "$INIT" --tta flip --out "$TEACHER" --data-root "$CARRY"
  runs=${RUNS:-runs/device/$(basename "$RECIPE" .toml)}
  first=$("$PY" -c "import sys, tomllib; print(tomllib.load(open(sys.argv[1], 'rb'))['stages'][0]['id'])" "$RECIPE")
  sets=(--set "data_root=$CARRY" --set framed_share=0 --set photo_crops=null --set val_photo_crops=null
        --set select_on=capture --set "teacher=$TEACHER" --set "$first.init=$INIT")
  for kv in ${SETS:-}; do sets+=(--set "$kv"); done
  status=0
  "$PY" -m training recipe "$RECIPE" --no-release --runs "$runs" --budget-minutes "${BUDGET:-8}" "${sets[@]}" || status=$?
  last=$(ls -d "$runs"/*/ | tail -1)
  tar czf /tmp/device-run.tgz "$runs"/*/metrics.jsonl "$runs"/progress.log "$last"best.pt 2>/dev/null \
    || tar czf /tmp/device-run.tgz "$runs"
  split -b 15M /tmp/device-run.tgz "$out/device-run.tgz.part-"
  ls -l "$out"
  exit $status
  ;;
*)
  echo "usage: bash training/scripts/device_run.sh pack | train   (the header says where each runs)" >&2
  exit 2
  ;;
esac
