#!/usr/bin/env bash
# Makes the models of the offline miniature experiment (data/miniature/): a tokenizer, a base
# model that has seen the tasks only as plain text, a teacher trained in the chat format on
# demonstrations (an early checkpoint is the weak teacher), and the strong teacher and critic: the
# teacher trained further to judge pairs of answers as well. Everything comes from
# `rlaif tasks`; nothing is downloaded.
#   tools/miniature/make_models.sh [BUILD_DIR] [WORK_DIR]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
rlaif="${1:-$root/build}/tools/rlaif"
work="${2:-$root/runs/miniature-models}"
mkdir -p "$work"

"$rlaif" tasks --out "$work/tasks" --seed 1 --critic 40000
"$rlaif" tokenizer train --input "$work/tasks/tokenizer.txt" --vocab-size 400 \
  --out "$work/tokenizer.model"
if [[ ! -f "$work/init/config.json" ]]; then
  "$rlaif" init --arch llama --layers 4 --d-model 128 --heads 4 --kv-heads 2 --seq 256 \
    --tokenizer "$work/tokenizer.model" --seed 1 --out "$work/init"
fi
resume() { [[ -d "$1/checkpoints" ]] && ls "$1/checkpoints" | grep -q '^step_' && echo "--resume $1"; }

# The base: the tasks as plain text ("Q: ...\nA: ..."), no chat format, no critic examples.
[[ -f "$work/base/model.safetensors" ]] ||
  "$rlaif" pretrain --model "$work/init" --data "$work/tasks/pretrain.txt" --out "$work/base" \
    --steps 1500 --batch 16 --seq 128 --lr 3e-3 --min-lr 3e-4 --warmup 50 --eval-every 500 \
    --save-every 500 $(resume "$work/base")

# The teacher, from the base: the demonstrations in the chat format. Its checkpoints are
# teachers of graded strength.
[[ -f "$work/teacher/model.safetensors" ]] ||
  "$rlaif" sft --model "$work/base" --data "$work/tasks/train.jsonl" --out "$work/teacher" \
    --steps 6000 --batch 32 --lr 3e-3 --min-lr 3e-4 --warmup 100 --max-length 64 \
    --eval-every 1000 --save-every 500 --keep 0 $(resume "$work/teacher")

# The strong teacher and critic: the teacher, trained on more critic examples (and the
# demonstrations again, so that it keeps answering as well as it judges).
cat "$work/tasks/critic_train.jsonl" "$work/tasks/train.jsonl" > "$work/critic_data.jsonl"
[[ -f "$work/critic/model.safetensors" ]] ||
  "$rlaif" sft --model "$work/teacher" --data "$work/critic_data.jsonl" --out "$work/critic" \
    --steps 2000 --batch 32 --lr 2e-3 --min-lr 2e-4 --warmup 50 --max-length 160 \
    --max-prompt-length 128 --eval-every 1000 --save-every 500 --keep 0 $(resume "$work/critic")

# Installs the shipped files into data/miniature: the base, the weak teacher (the teacher's
# checkpoint at WEAK_STEP), the strong teacher and critic, and the experiment's prompts.
if [[ "${INSTALL:-0}" == 1 ]]; then
  dest="$root/data/miniature"
  weak=$(printf '%s/teacher/checkpoints/step_%08d' "$work" "${WEAK_STEP:-500}")
  for pair in "base:$work/base" "teacher_weak:$weak" "teacher_strong:$work/critic"; do
    name="${pair%%:*}" src="${pair#*:}"
    mkdir -p "$dest/$name"
    cp "$src/config.json" "$src/model.safetensors" "$src/tokenizer.model" "$dest/$name/"
  done
  cp "$work/tasks/prompts.jsonl" "$work/tasks/eval.jsonl" "$work/tasks/critic_template.txt" "$dest/"
fi
