#!/usr/bin/env bash
# Data-parallel SFT on CPU ranks: `mpirun -np 2 rlaif sft` logs the losses of the same run on one
# process, although the ranks' shards hold different numbers of completion tokens (each divides
# by the whole batch's count, algorithms/sft.h); only rank 0 writes; an uneven --batch is refused.
set -euo pipefail
rlaif="$1"; root="$2"
source "$root/tests/cli/lib/mpi_env.sh"  # skips without MPI; Open MPI settings for CI
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$rlaif" init --arch llama --layers 2 --d-model 32 --heads 4 --kv-heads 2 --seq 256 \
  --tokenizer "$root/data/models/stories260K/tokenizer.model" --seed 1 --out "$tmp/init" >/dev/null
common=(--model "$tmp/init" --data "$root/data/instructions/alpaca_en_demo.json" --batch 4
        --max-length 256 --max-prompt-length 96 --lr 1e-3 --steps 4 --grad-accum 2
        --eval-every 2 --eval-examples 16)
values() {  # "kind step value" of every train loss and eval val_loss in a metrics.jsonl
  sed -nE -e 's/.*"step":([0-9]+),"kind":"train".*"loss":([^,}]+).*/train \1 \2/p' \
    -e 's/.*"step":([0-9]+),"kind":"eval".*"val_loss":([^,}]+).*/eval \1 \2/p' "$1"
}

"$rlaif" sft "${common[@]}" --out "$tmp/one" >/dev/null 2>&1
mpirun -np 2 "$rlaif" sft "${common[@]}" --out "$tmp/two" >"$tmp/two.out" 2>"$tmp/two.err" ||
  { echo "mpirun -np 2 sft failed:"; cat "$tmp/two.err"; exit 1; }
values "$tmp/one/metrics.jsonl" > "$tmp/one.txt"
values "$tmp/two/metrics.jsonl" > "$tmp/two.txt"
[[ $(grep -c '^train' "$tmp/one.txt") -eq 4 && $(grep -c '^train' "$tmp/two.txt") -eq 4 &&
   $(grep -c '^eval' "$tmp/two.txt") -eq 2 ]] ||
  { echo "the logs do not hold each step once:"; cat "$tmp/one.txt" "$tmp/two.txt"; exit 1; }
if ! paste -d' ' "$tmp/one.txt" "$tmp/two.txt" | awk '
    { if ($1 != $4 || $2 != $5) { print "line " NR ": " $0; bad = 1; next }
      d = $3 - $6; if (d < 0) d = -d; s = $3 < 0 ? -$3 : $3
      if (d > 1e-5 * s) { print "step " $2 " " $1 ": 1 rank " $3 ", 2 ranks " $6; bad = 1 } }
    END { exit bad }'; then
  echo "losses of 1 and 2 ranks differ by more than 1e-5 relative"; exit 1
fi
[[ $(grep -c '"steps": 4' "$tmp/two.out") -eq 1 ]] || { echo "want one result line:"; cat "$tmp/two.out"; exit 1; }
[[ $(grep -c 'training examples' "$tmp/two.err") -eq 1 ]] || { echo "ranks other than 0 report:"; cat "$tmp/two.err"; exit 1; }

set +e
msg="$(mpirun -np 2 "$rlaif" sft "${common[@]}" --batch 3 --out "$tmp/odd" 2>&1)"; code=$?
set -e
[[ $code -ne 0 ]] || { echo "--batch 3 on 2 ranks was accepted"; exit 1; }
grep -q -- "--batch 3 is not divisible by the 2 data-parallel ranks" <<<"$msg" ||
  { echo "uneven batch not refused clearly: $msg"; exit 1; }
echo "2-rank data-parallel SFT matches 1 rank; rank 0 alone writes; uneven batches refused"
