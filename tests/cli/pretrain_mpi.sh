#!/usr/bin/env bash
# Data-parallel pretraining on CPU ranks: `mpirun -np 2 rlaif pretrain` logs the losses of the
# same run on one process (each rank trains half of every batch and the gradients are averaged,
# so only float rounding differs), with or without overlapping the gradients' collectives with the
# backward pass (--no-overlap: bitwise the same); only rank 0 writes the log and reports; a --batch that does not
# split evenly over the ranks is refused, naming both.
set -euo pipefail
rlaif="$1"; root="$2"
source "$root/tests/cli/lib/mpi_env.sh"  # skips without MPI; Open MPI settings for CI
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
head -c 60000 "$root/data/text/tinyshakespeare.txt" > "$tmp/text.txt"
"$rlaif" init --arch llama --layers 2 --d-model 32 --heads 4 --kv-heads 2 --seq 32 \
  --tokenizer "$root/data/models/stories260K/tokenizer.model" --seed 1 --out "$tmp/init" >/dev/null
common=(--model "$tmp/init" --data "$tmp/text.txt" --batch 4 --seq 32 --steps 6 --lr 3e-3
        --warmup 2 --eval-every 3 --eval-batches 2 --grad-accum 2)
values() {  # "kind step value" of every train loss and eval val_loss in a metrics.jsonl
  sed -nE -e 's/.*"step":([0-9]+),"kind":"train".*"loss":([^,}]+).*/train \1 \2/p' \
    -e 's/.*"step":([0-9]+),"kind":"eval".*"val_loss":([^,}]+).*/eval \1 \2/p' "$1"
}

"$rlaif" pretrain "${common[@]}" --out "$tmp/one" >/dev/null 2>&1
mpirun -np 2 "$rlaif" pretrain "${common[@]}" --out "$tmp/two" >"$tmp/two.out" 2>"$tmp/two.err" ||
  { echo "mpirun -np 2 pretrain failed:"; cat "$tmp/two.err"; exit 1; }
values "$tmp/one/metrics.jsonl" > "$tmp/one.txt"
values "$tmp/two/metrics.jsonl" > "$tmp/two.txt"
[[ $(grep -c '^train' "$tmp/one.txt") -eq 6 ]] || { echo "1 rank: not 6 train lines"; cat "$tmp/one.txt"; exit 1; }
# One log, written by rank 0 alone: every step exactly once.
[[ $(grep -c '^train' "$tmp/two.txt") -eq 6 && $(grep -c '^eval' "$tmp/two.txt") -eq 2 ]] ||
  { echo "2 ranks: the log does not hold each step once:"; cat "$tmp/two/metrics.jsonl"; exit 1; }
if ! paste -d' ' "$tmp/one.txt" "$tmp/two.txt" | awk '
    { if ($1 != $4 || $2 != $5) { print "line " NR ": " $0; bad = 1; next }
      d = $3 - $6; if (d < 0) d = -d; s = $3 < 0 ? -$3 : $3
      if (d > 1e-5 * s) { print "step " $2 " " $1 ": 1 rank " $3 ", 2 ranks " $6; bad = 1 } }
    END { exit bad }'; then
  echo "losses of 1 and 2 ranks differ by more than 1e-5 relative"; exit 1
fi
[[ $(grep -c '"steps": 6' "$tmp/two.out") -eq 1 ]] || { echo "want one result line:"; cat "$tmp/two.out"; exit 1; }
[[ $(grep -c 'training tokens' "$tmp/two.err") -eq 1 ]] || { echo "ranks other than 0 report:"; cat "$tmp/two.err"; exit 1; }
grep -q '2 data-parallel ranks' "$tmp/two.err" || { echo "the rank count is not reported"; exit 1; }
[[ -f "$tmp/two/config.json" ]] || { echo "no model written"; ls "$tmp/two"; exit 1; }

# The gradients sent after the backward pass instead of during it: the same log, bit for bit
# (MPI's sums do not depend on how the gradients are bucketed), and the same model.
mpirun -np 2 "$rlaif" pretrain "${common[@]}" --no-overlap --out "$tmp/late" >/dev/null 2>"$tmp/late.err" ||
  { echo "mpirun -np 2 pretrain --no-overlap failed:"; cat "$tmp/late.err"; exit 1; }
values "$tmp/late/metrics.jsonl" > "$tmp/late.txt"
cmp -s "$tmp/two.txt" "$tmp/late.txt" ||
  { echo "--no-overlap changed the losses:"; diff "$tmp/two.txt" "$tmp/late.txt"; exit 1; }
cmp -s "$tmp/two/model.safetensors" "$tmp/late/model.safetensors" ||
  { echo "--no-overlap changed the trained weights"; exit 1; }

# A batch that does not split evenly over the ranks.
set +e
msg="$(mpirun -np 2 "$rlaif" pretrain "${common[@]}" --batch 3 --out "$tmp/odd" 2>&1)"; code=$?
set -e
[[ $code -ne 0 ]] || { echo "--batch 3 on 2 ranks was accepted"; exit 1; }
grep -q -- "--batch 3 is not divisible by the 2 data-parallel ranks" <<<"$msg" ||
  { echo "uneven batch not refused clearly: $msg"; exit 1; }
echo "2-rank data-parallel pretraining matches 1 rank, overlapped or not; rank 0 alone writes; uneven batches refused"
