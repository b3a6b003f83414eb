#!/usr/bin/env bash
# Installs what rlaif needs, builds it (Release, CUDA backend when the toolkit is present), and
# runs the main job on the shipped data: train a SentencePiece tokenizer on tinyshakespeare,
# initialise a small Llama (~2.6M parameters), pretrain it for a few minutes of CPU, and print a
# sample. Re-running continues an interrupted run from its last checkpoint.
#   tools/setup.sh
# Environment: BUILD_DIR (default build), RUN_DIR (default runs/shakespeare), STEPS (default 200),
#              DEVICE (default cpu), RLAIF_CUDA (AUTO|ON|OFF).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
build="${BUILD_DIR:-build}"
run="${RUN_DIR:-runs/shakespeare}"
steps="${STEPS:-200}"
device="${DEVICE:-cpu}"

tools/install_deps.sh
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DRLAIF_CUDA="${RLAIF_CUDA:-AUTO}" >/dev/null
cmake --build "$build" --target rlaif
rlaif="$build/tools/rlaif"
"$rlaif" version

mkdir -p "$run"
if [[ ! -f "$run/tokenizer.model" ]]; then
  "$rlaif" tokenizer train --input data/text/tinyshakespeare.txt --vocab-size 1024 \
    --out "$run/tokenizer.model"
fi
if [[ ! -f "$run/init/config.json" ]]; then
  "$rlaif" init --arch llama --layers 6 --d-model 192 --heads 6 --kv-heads 2 --seq 256 \
    --tokenizer "$run/tokenizer.model" --seed 1337 --out "$run/init"
fi
resume=()
if [[ -d "$run/model/checkpoints" ]] && ls "$run/model/checkpoints" | grep -q '^step_'; then
  resume=(--resume "$run/model")
fi
"$rlaif" pretrain --model "$run/init" --data data/text/tinyshakespeare.txt --out "$run/model" \
  --steps "$steps" --batch 8 --seq 256 --lr 3e-3 --min-lr 3e-4 --warmup 20 --weight-decay 0.1 \
  --eval-every 50 --eval-batches 10 --save-every 50 --device "$device" "${resume[@]}"
echo "--- sample (temperature 0.8, top-k 40) ---"
"$rlaif" generate --model "$run/model" --prompt "ROMEO:" --max-new-tokens 160 --temperature 0.8 \
  --top-k 40 --seed 1 --device "$device"
