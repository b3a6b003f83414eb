#!/usr/bin/env bash
# Data-parallel reward modelling, DPO and KTO on CPU ranks, on the shipped preference data with a
# small model: `mpirun -np 2 rlaif rm` and `rlaif dpo` (live reference, and --precompute-ref with its
# tables computed in two slices and gathered) log the per-step losses of the same runs on one
# process, and train the same tokens; rank 0 alone writes (the result line, the reference cache;
# its reuse over ranks is in tests/mpi/alignment_mpi_test.cpp); a --batch the ranks cannot share
# is refused, naming it. KTO's reference point, a mean over the whole batch, is summed over the
# ranks' shares, so its 2-rank run logs the 1-rank losses too.
set -euo pipefail
rlaif="$1"; root="$2"
source "$root/tests/cli/lib/mpi_env.sh"  # skips without MPI; Open MPI settings for CI
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
"$rlaif" init --arch llama --layers 2 --d-model 32 --heads 4 --kv-heads 2 --seq 64 \
  --tokenizer "$root/data/models/stories260K/tokenizer.model" --seed 1 --out "$tmp/init" >/dev/null
# --batch 4 --grad-accum 2: each rank trains 2 pairs of each of a step's two micro-batches.
common=(--model "$tmp/init" --data "$root/data/preferences/dpo_en_demo.json" --max-length 64
        --max-prompt-length 40 --batch 4 --grad-accum 2 --steps 3 --lr 1e-3 --eval-every 2
        --save-every 0)
values() {  # "kind step value" of every train loss and eval val_loss in a metrics.jsonl
  sed -nE -e 's/.*"step":([0-9]+),"kind":"train".*"loss":([^,}]+).*/train \1 \2/p' \
    -e 's/.*"step":([0-9]+),"kind":"eval".*"val_loss":([^,}]+).*/eval \1 \2/p' "$1"
}
tokens() { sed -nE 's/.*"kind":"train".*"tokens":([0-9.]+).*/\1/p' "$1"; }
same() {  # run A, run B: the same steps, losses within 1e-5 relative, the same tokens trained
  values "$tmp/$1/metrics.jsonl" > "$tmp/$1.txt"
  values "$tmp/$2/metrics.jsonl" > "$tmp/$2.txt"
  [[ $(grep -c '^train' "$tmp/$1.txt") -eq 3 && $(grep -c '^eval' "$tmp/$2.txt") -eq 2 ]] ||
    { cat "$tmp/$1.txt" "$tmp/$2.txt"; fail "$1 and $2 do not log each step once"; }
  paste -d' ' "$tmp/$1.txt" "$tmp/$2.txt" | awk -v a="$1" -v b="$2" '
    { if ($1 != $4 || $2 != $5) { print "line " NR ": " $0; bad = 1; next }
      d = $3 - $6; if (d < 0) d = -d; s = $3 < 0 ? -$3 : $3
      if (d > 1e-5 * s) { print "step " $2 " " $1 ": " a " " $3 ", " b " " $6; bad = 1 } }
    END { exit bad }' || fail "the losses of $1 and $2 differ by more than 1e-5 relative"
  # Summed over ranks: twice the tokens would mean that each rank trained the whole batch.
  [[ "$(tokens "$tmp/$1/metrics.jsonl")" == "$(tokens "$tmp/$2/metrics.jsonl")" ]] ||
    fail "$1 and $2 trained different token counts: $(tokens "$tmp/$1/metrics.jsonl" | tr '\n' ' ')/ $(tokens "$tmp/$2/metrics.jsonl" | tr '\n' ' ')"
}
two() {  # command, out name, flags: a 2-rank run
  local cmd="$1" name="$2"; shift 2
  mpirun -np 2 "$rlaif" "$cmd" "${common[@]}" "$@" --out "$tmp/$name" >"$tmp/$name.out" \
    2>"$tmp/$name.err" || { cat "$tmp/$name.err"; fail "mpirun -np 2 $cmd ($name) failed"; }
  [[ $(grep -c '"loss":' "$tmp/$name.out") -eq 1 ]] || { cat "$tmp/$name.out"; fail "$name: want one result line"; }
  [[ $(grep -c 'training \(pairs\|examples\)' "$tmp/$name.err") -eq 1 ]] || { cat "$tmp/$name.err"; fail "$name: ranks other than 0 report"; }
}

# ---- rm: Bradley-Terry with the centring term ------------------------------------------------
"$rlaif" rm "${common[@]}" --center-rewards 0.01 --out "$tmp/rm1" >/dev/null 2>&1 || fail "rm on 1 rank"
two rm rm2 --center-rewards 0.01
same rm1 rm2
[[ -f "$tmp/rm2/model.safetensors" ]] || fail "the 2-rank reward model was not written"

# ---- dpo: live reference, then precomputed tables (2 slices gathered) --------------------------
"$rlaif" dpo "${common[@]}" --out "$tmp/dpo1" >/dev/null 2>&1 || fail "dpo on 1 rank"
two dpo dpo2
same dpo1 dpo2
two dpo pre2 --precompute-ref
same dpo1 pre2
[[ $(grep -c 'reference log-probs written to' "$tmp/pre2.err") -eq 1 ]] ||
  { cat "$tmp/pre2.err"; fail "want one 'written to' line"; }
[[ -f "$tmp/pre2/ref_logprobs.safetensors" ]] || fail "no ref_logprobs.safetensors"

# ---- kto: z0 over both ranks' shares --------------------------------------------------------
"$rlaif" kto "${common[@]}" --out "$tmp/kto1" >/dev/null 2>&1 || fail "kto on 1 rank"
two kto kto2
same kto1 kto2

# ---- a --batch the ranks cannot share (dpo checks it with the same function before its
# reference passes; tests/algorithms/alignment_data_parallel_test.cpp) ----------------------------
set +e
msg="$(mpirun -np 2 "$rlaif" rm "${common[@]}" --batch 3 --out "$tmp/odd" 2>&1)"; code=$?
set -e
[[ $code -ne 0 ]] || fail "rm --batch 3 on 2 ranks was accepted"
grep -q -- "rm: --batch 3 is not divisible by the 2 data-parallel ranks" <<<"$msg" ||
  fail "rm: uneven batch not refused clearly: $msg"
echo "2-rank data-parallel rm, dpo (live and precomputed reference) and kto match 1 rank; rank 0 alone writes; uneven batches refused"
