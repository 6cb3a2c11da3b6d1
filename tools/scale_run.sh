#!/usr/bin/env bash
# The RSNA-scale run of docs/scale.md: a phantom set with RSNA's patient count, views,
# prevalence and machine mix (small images), preprocessing at 64 px, one epoch of resnet18 on
# fold 0 and that fold's out-of-fold metrics, each stage timed with its peak RSS.
#
#   tools/scale_run.sh MAMMO_BINARY WORK_DIR PATIENTS [PATIENTS ...]
#
# SIZE (default small) is the phantom's image size: `small`, or WxH for every image.
# TRAIN=0 stops after preprocessing (to remeasure the data stages alone).
#
# Prints one Markdown table row per stage and size; the working folders are removed after
# each size. Needs GNU time (/usr/bin/time).
set -euo pipefail
mammo=$1
work=$2
shift 2
[ -x "$mammo" ] || { echo "$mammo: not an executable" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "needs GNU time (/usr/bin/time)" >&2; exit 2; }
mkdir -p "$work"
size=${SIZE:-small}
metrics=()

# Runs a stage under GNU time; prints "| patients | stage | images | seconds | peak RSS MB |".
stage() {
  local patients=$1 name=$2 images=$3
  shift 3
  local log="$work/time-$patients-$name.txt"
  /usr/bin/time -f '%e %M' -o "$log" "$@" >"$work/out-$patients-$name.txt" 2>&1 || {
    echo "stage $name at $patients patients failed:" >&2
    tail -20 "$work/out-$patients-$name.txt" >&2
    exit 1
  }
  read -r secs kb <"$log"
  printf '| %s | %s | %s | %.1f | %.0f |\n' "$patients" "$name" "$images" "$secs" "$((kb / 1024))"
}

echo "| patients | stage | images | seconds | peak RSS (MB) |"
echo "|---:|---|---:|---:|---:|"
for n in "$@"; do
  d="$work/p$n"
  rm -rf "$d"
  stage "$n" phantom "?" "$mammo" phantom --out "$d/data" --patients "$n" --size "$size" --seed 1 --quiet
  images=$(($(wc -l <"$d/data/train.csv") - 1))
  stage "$n" "preprocess 64 px" "$images" "$mammo" preprocess --csv "$d/data/train.csv" \
    --images "$d/data/train_images" --out "$d/processed" --size 64 --flip-to left --quiet
  if [ "${TRAIN:-1}" != 0 ]; then
    stage "$n" "train resnet18, 1 epoch, fold 0 of 5" "$images" "$mammo" train \
      --manifest "$d/processed/64/manifest.csv" --out "$d/run" --model resnet18 --folds 5 \
      --fold 0 --epochs 1 --batch-size 64 --lr 1e-3 --device flex
    # The fold's out-of-fold metrics, from train's epoch line.
    metrics+=("$n patients: $(grep -m1 'fold 1/5 epoch 1/1' "$work/out-$n-train resnet18, 1 epoch, fold 0 of 5.txt" || echo 'no epoch line')")
  fi
  rm -rf "$d"
done
echo
printf '%s\n' "${metrics[@]}"
