#!/usr/bin/env bash
# A one-rank NCCL run matches the non-distributed run on the same GPU: `RLAIF_NCCL=1 rlaif
# pretrain --device cuda` puts the gradients through NCCL (kernels/device_communicator.h) bucket
# by bucket while the last micro-batch's backward pass runs, on NCCL's own stream: with --zero 0
# through its all-reduce, with --zero 1 through its reduce-scatter, the norm through its
# all-reduce and the weights through its all-gather. On one rank that must change no bit: the
# log equals the plain run's, in f32 and in bf16 (master weights sharded), which also shows that
# every kernel waits for the collective it reads. Exits 77 (CTest: skipped) without a CUDA device
# or without NCCL.
set -uo pipefail
rlaif="$1"; root="$2"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
head -c 60000 "$root/data/text/tinyshakespeare.txt" > "$tmp/text.txt"
"$rlaif" init --arch llama --layers 2 --d-model 64 --heads 4 --kv-heads 2 --seq 64 \
  --tokenizer "$root/data/models/stories260K/tokenizer.model" --seed 1 --out "$tmp/init" >/dev/null || exit 1
common=(--model "$tmp/init" --data "$tmp/text.txt" --batch 4 --seq 64 --steps 5 --lr 3e-3
        --grad-clip 0.5 --grad-accum 2 --eval-every 0 --save-every 0 --device cuda)
skip_if_no_gpu() {
  if grep -qE "without the CUDA backend|no CUDA backend|no usable CUDA device|does not exist|built without it" "$1"; then
    echo "skipped: $(head -c 300 "$1")"; exit 77
  fi
}
train_log() { sed -nE 's/.*"step":([0-9]+),"kind":"train".*"loss":([^,}]+).*"grad_norm":([^,}]+).*/\1 \2 \3/p' "$1"; }
for dtype in f32 bf16; do
  "$rlaif" pretrain "${common[@]}" --dtype $dtype --out "$tmp/plain_$dtype" >/dev/null 2>"$tmp/err" ||
    { skip_if_no_gpu "$tmp/err"; cat "$tmp/err"; exit 1; }
  train_log "$tmp/plain_$dtype/metrics.jsonl" > "$tmp/plain.txt"
  [[ $(wc -l < "$tmp/plain.txt") -eq 5 ]] || { echo "$dtype: not 5 train lines"; cat "$tmp/plain.txt"; exit 1; }
  for zero in 0 1; do
    # A run takes seconds: a hang in NCCL fails the test instead of stalling gpu_check.
    RLAIF_NCCL=1 timeout 180 "$rlaif" pretrain "${common[@]}" --dtype $dtype --zero $zero \
      --out "$tmp/nccl_${dtype}_$zero" >/dev/null 2>"$tmp/err" ||
      { status=$?; skip_if_no_gpu "$tmp/err"; cat "$tmp/err"
        [[ $status -eq 124 ]] && echo "$dtype --zero $zero: timed out after 180 s (a hang?)"; exit 1; }
    train_log "$tmp/nccl_${dtype}_$zero/metrics.jsonl" > "$tmp/nccl.txt"
    diff "$tmp/plain.txt" "$tmp/nccl.txt" ||
      { echo "$dtype: the 1-rank NCCL --zero $zero run logs other numbers than the plain GPU run"; exit 1; }
  done
done
echo "one-rank NCCL runs (f32, bf16; --zero 0 and 1, overlapped) match the plain GPU runs bit for bit"
