#!/usr/bin/env bash
# Makes the models of the offline miniature experiment (data/miniature/): a tokenizer, a base
# model that has seen the tasks only as plain text, and a teacher trained in the chat format on
# demonstrations and critic examples, whose checkpoints serve as teachers and critics of graded
# strength. Everything comes from `rlaif tasks`; nothing is downloaded. About 30 minutes on
# 2 CPU cores.
#   tools/miniature/make_models.sh [BUILD_DIR] [WORK_DIR]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
rlaif="${1:-$root/build}/tools/rlaif"
work="${2:-$root/runs/miniature-models}"
mkdir -p "$work"

"$rlaif" tasks --out "$work/tasks" --seed 1
"$rlaif" tokenizer train --input "$work/tasks/tokenizer.txt" --vocab-size 400 \
  --out "$work/tokenizer.model"
if [[ ! -f "$work/init/config.json" ]]; then
  "$rlaif" init --arch llama --layers 4 --d-model 128 --heads 4 --kv-heads 2 --seq 128 \
    --tokenizer "$work/tokenizer.model" --seed 1 --out "$work/init"
fi
resume() { [[ -d "$1/checkpoints" ]] && ls "$1/checkpoints" | grep -q '^step_' && echo "--resume $1"; }

# The base: the tasks as plain text ("Q: ...\nA: ..."), no chat format, no critic examples.
[[ -f "$work/base/model.safetensors" ]] ||
  "$rlaif" pretrain --model "$work/init" --data "$work/tasks/pretrain.txt" --out "$work/base" \
    --steps 1500 --batch 16 --seq 128 --lr 3e-3 --min-lr 3e-4 --warmup 50 --eval-every 500 \
    --save-every 500 $(resume "$work/base")

# The teacher, from the base: demonstrations and critic examples in the chat format. Its
# checkpoints are the teachers and critics of graded strength.
cat "$work/tasks/train.jsonl" "$work/tasks/critic_train.jsonl" > "$work/teacher_data.jsonl"
[[ -f "$work/teacher/model.safetensors" ]] ||
  "$rlaif" sft --model "$work/base" --data "$work/teacher_data.jsonl" --out "$work/teacher" \
    --steps 6000 --batch 32 --lr 3e-3 --min-lr 3e-4 --warmup 100 --max-length 128 \
    --max-prompt-length 128 --eval-every 1000 --save-every 500 --keep 0 $(resume "$work/teacher")
