#!/usr/bin/env bash
# A one-rank NCCL run matches the non-distributed run on the same GPU: `RLAIF_NCCL=1 rlaif
# pretrain --device cuda --zero 1` puts the gradients through NCCL's reduce-scatter, the norm
# through its all-reduce and the weights through its all-gather (kernels/device_communicator.h),
# which on one rank must change no bit: the log equals the plain run's, in f32 and in bf16
# (master weights sharded). Exits 77 (CTest: skipped) without a CUDA device or without NCCL.
set -uo pipefail
rlaif="$1"; root="$2"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
head -c 60000 "$root/data/text/tinyshakespeare.txt" > "$tmp/text.txt"
"$rlaif" init --arch llama --layers 2 --d-model 64 --heads 4 --kv-heads 2 --seq 64 \
  --tokenizer "$root/data/models/stories260K/tokenizer.model" --seed 1 --out "$tmp/init" >/dev/null || exit 1
common=(--model "$tmp/init" --data "$tmp/text.txt" --batch 4 --seq 64 --steps 5 --lr 3e-3
        --grad-clip 0.5 --eval-every 0 --save-every 0 --device cuda)
skip_if_no_gpu() {
  if grep -qE "without the CUDA backend|no CUDA backend|no usable CUDA device|does not exist|built without it" "$1"; then
    echo "skipped: $(head -c 300 "$1")"; exit 77
  fi
}
train_log() { sed -nE 's/.*"step":([0-9]+),"kind":"train".*"loss":([^,}]+).*"grad_norm":([^,}]+).*/\1 \2 \3/p' "$1"; }
for dtype in f32 bf16; do
  "$rlaif" pretrain "${common[@]}" --dtype $dtype --out "$tmp/plain_$dtype" >/dev/null 2>"$tmp/err" ||
    { skip_if_no_gpu "$tmp/err"; cat "$tmp/err"; exit 1; }
  RLAIF_NCCL=1 "$rlaif" pretrain "${common[@]}" --dtype $dtype --zero 1 --out "$tmp/nccl_$dtype" \
    >/dev/null 2>"$tmp/err" || { skip_if_no_gpu "$tmp/err"; cat "$tmp/err"; exit 1; }
  train_log "$tmp/plain_$dtype/metrics.jsonl" > "$tmp/plain.txt"
  train_log "$tmp/nccl_$dtype/metrics.jsonl" > "$tmp/nccl.txt"
  [[ $(wc -l < "$tmp/plain.txt") -eq 5 ]] || { echo "$dtype: not 5 train lines"; cat "$tmp/plain.txt"; exit 1; }
  diff "$tmp/plain.txt" "$tmp/nccl.txt" ||
    { echo "$dtype: the 1-rank NCCL ZeRO-1 run logs other numbers than the plain GPU run"; exit 1; }
done
echo "one-rank NCCL runs (f32, bf16; --zero 1) match the plain GPU runs bit for bit"
