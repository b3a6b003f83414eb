#!/usr/bin/env bash
# --recompute: pretraining with activation recomputation logs bit for bit the losses of a run
# without it (GPT-2 and Llama, with gradient accumulation), and every training command takes it.
set -euo pipefail
rlaif="$1"; root="$2"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
head -c 60000 "$root/data/text/tinyshakespeare.txt" > "$tmp/text.txt"
losses() {  # the train and eval records of a metrics.jsonl (losses, gradient norms), less timings
  grep -E '"kind":"(train|eval)"' "$1" | sed -E 's/,"[a-z_]*(per_s|elapsed_s)":[^,}]*//g'
}
for arch in gpt2 llama; do
  "$rlaif" init --arch "$arch" --layers 2 --d-model 32 --heads 4 --seq 32 \
    --tokenizer "$root/data/models/stories260K/tokenizer.model" --seed 1 \
    --out "$tmp/init_$arch" >/dev/null
  common=(--model "$tmp/init_$arch" --data "$tmp/text.txt" --batch 4 --seq 32 --steps 8
          --lr 3e-3 --eval-every 4 --eval-batches 2 --save-every 0 --grad-accum 2)
  "$rlaif" pretrain "${common[@]}" --out "$tmp/plain_$arch" >/dev/null 2>&1
  "$rlaif" pretrain "${common[@]}" --recompute --out "$tmp/re_$arch" >/dev/null 2>&1
  losses "$tmp/plain_$arch/metrics.jsonl" > "$tmp/plain_$arch.txt"
  losses "$tmp/re_$arch/metrics.jsonl" > "$tmp/re_$arch.txt"
  [[ $(wc -l < "$tmp/plain_$arch.txt") -ge 8 ]] || { echo "$arch: too few losses logged"; exit 1; }
  if ! diff -q "$tmp/plain_$arch.txt" "$tmp/re_$arch.txt" >/dev/null; then
    echo "$arch: losses with --recompute differ from those without:"
    diff "$tmp/plain_$arch.txt" "$tmp/re_$arch.txt" | head -10
    exit 1
  fi
done
for cmd in pretrain sft rm dpo ppo "bench train"; do
  # shellcheck disable=SC2086
  help="$("$rlaif" $cmd --help 2>&1)"  # whole, not piped: grep -q may exit before the writer ends
  grep -q -- "--recompute" <<<"$help" || { echo "$cmd --help lacks --recompute"; exit 1; }
done
echo "ok"
