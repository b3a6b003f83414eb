#!/usr/bin/env bash
# Data-parallel PPO, RLOO and GRPO on CPU ranks, with the tiny models and sorting prompts of
# ppo_cli.sh: `mpirun -np 2 rlaif ppo` logs the per-step losses and rollout statistics of the same
# run on one process (each rank samples, scores and evaluates half of the sequences, the rollout is
# gathered, each rank trains half of every micro-batch, weighted by its tokens); with --zero 1
# too; a checkpoint written by 2 ranks resumes on 1 and continues as the uninterrupted run; rank 0
# alone writes; a batch the ranks cannot share is a usage error naming --batch.
set -euo pipefail
rlaif="$1"; root="$2"
source "$root/tests/cli/lib/mpi_env.sh"  # skips without MPI; Open MPI settings for CI
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
source "$root/tests/cli/lib/sort_ppo_fixture.sh"  # $tmp/policy, pairs, prompts, rm

common=(--model "$tmp/policy" --reward-model "$tmp/rm" --prompts "$tmp/prompts.jsonl"
        --max-new-tokens 4 --max-prompt-length 24 --ppo-epochs 2 --lr 1e-4 --missing-eos-penalty 1
        --seed 3 --steps 3)
# "step key value" for the metrics compared: the update's loss and rollout statistics (not kl:
# a sum of log-prob differences near 0, it keeps only their absolute rounding, ~1e-7).
values() {
  for key in loss score entropy advantage_std; do
    sed -nE "s/.*\"step\":([0-9]+),.*\"$key\":([^,}]+).*/\\1 $key \\2/p" "$1"
  done
}
# Within 1e-5 relative; a value below 0.01 in magnitude (GRPO's loss at ratio 1 is the token mean
# of group-normalised advantages, about 0) within 1e-7 absolute.
same() {  # run A, run B
  values "$tmp/$1/metrics.jsonl" > "$tmp/$1.txt"
  values "$tmp/$2/metrics.jsonl" > "$tmp/$2.txt"
  [[ $(wc -l < "$tmp/$1.txt") -eq 12 && $(wc -l < "$tmp/$2.txt") -eq 12 ]] ||
    { cat "$tmp/$1.txt" "$tmp/$2.txt"; fail "$1 and $2 do not log 3 steps of 4 values"; }
  paste -d' ' "$tmp/$1.txt" "$tmp/$2.txt" | awk -v a="$1" -v b="$2" '
    { if ($1 != $4 || $2 != $5) { print "line " NR ": " $0; bad = 1; next }
      d = $3 - $6; if (d < 0) d = -d; s = $3 < 0 ? -$3 : $3; if (s < 0.01) s = 0.01
      if (d > 1e-5 * s) { print "step " $1 " " $2 ": " a " " $3 ", " b " " $6; bad = 1 } }
    END { exit bad }' || fail "$1 and $2 differ by more than 1e-5 relative"
}
one() {  # name, flags
  local name="$1"; shift
  "$rlaif" ppo "${common[@]}" "$@" --out "$tmp/$name" >/dev/null 2>"$tmp/$name.err" ||
    { cat "$tmp/$name.err"; fail "ppo $name on 1 rank"; }
}
two() {  # name, flags
  local name="$1"; shift
  mpirun -np 2 "$rlaif" ppo "${common[@]}" "$@" --out "$tmp/$name" >"$tmp/$name.out" \
    2>"$tmp/$name.err" || { cat "$tmp/$name.err"; fail "mpirun -np 2 ppo $name failed"; }
  [[ $(grep -c '"model":' "$tmp/$name.out") -eq 1 ]] || { cat "$tmp/$name.out"; fail "$name: want one result line"; }
  [[ $(grep -c 'policy parameters, 2 data-parallel ranks' "$tmp/$name.err") -eq 1 ]] ||
    { cat "$tmp/$name.err"; fail "$name: want rank 0 alone to report, and 2 ranks"; }
}

# gae: 2 mini-batches of 2 sequences per epoch, one per rank; the value model trains beside.
gae=(--batch 4 --mini-batches 2)
one gae1 "${gae[@]}"
two gae2 "${gae[@]}"
same gae1 gae2
[[ -f "$tmp/gae2/model.safetensors" && -f "$tmp/gae2/value_model/model.safetensors" ]] ||
  fail "the 2-rank run wrote no policy or value model"
# rloo: 3 prompts x 2 samples, micro-batches of 2 (--grad-accum 3): groups straddle the ranks.
rloo=(--advantage rloo --batch 3 --samples-per-prompt 2 --grad-accum 3 --kl-estimator k3)
one rloo1 "${rloo[@]}"
two rloo2 "${rloo[@]}"
same rloo1 rloo2
# grpo with ZeRO-1 on 2 ranks (the optimizer state sharded) against replicated AdamW on 1.
grpo=(--advantage grpo --batch 2 --samples-per-prompt 3 --mini-batches 3 --adaptive-kl 0.5)
one grpo1 "${grpo[@]}"
two grpo2 "${grpo[@]}" --zero 1
same grpo1 grpo2
# The reward model plus a rule (--reward; a vowel somewhere, which about half of this policy's
# answers hold): each rank scores its own sequences by both.
one rule1 "${grpo[@]}" --reward 'regex:[aeiou]@2'
two rule2 "${grpo[@]}" --reward 'regex:[aeiou]@2'
same rule1 rule2
cmp -s "$tmp/grpo1.txt" "$tmp/rule1.txt" && fail "the rule changed no score"

# A checkpoint of 2 ranks (ZeRO-1: the state gathered by every rank, written by rank 0) resumes
# on 1 rank, and its last step repeats the uninterrupted 1-rank run's.
two ck2 "${gae[@]}" --zero 1 --save-every 2 --keep 0
[[ -d "$tmp/ck2/checkpoints/step_00000002" ]] || fail "the 2-rank run wrote no checkpoint"
"$rlaif" ppo "${common[@]}" "${gae[@]}" --resume "$tmp/ck2/checkpoints/step_00000002" \
  --out "$tmp/ck1" >/dev/null 2>"$tmp/ck1.err" || { cat "$tmp/ck1.err"; fail "resume on 1 rank"; }
grep -q "resuming from" "$tmp/ck1.err" || fail "no resume message: $(cat "$tmp/ck1.err")"
[[ $(wc -l < "$tmp/ck1/metrics.jsonl") -eq 1 ]] || fail "the resumed run logged $(wc -l < "$tmp/ck1/metrics.jsonl") steps"
grep '"step":3,' "$tmp/gae1/metrics.jsonl" > "$tmp/last1.jsonl"
mkdir -p "$tmp/last"; cp "$tmp/ck1/metrics.jsonl" "$tmp/last/metrics.jsonl"
values "$tmp/last1.jsonl" > "$tmp/a.txt"; values "$tmp/last/metrics.jsonl" > "$tmp/b.txt"
paste -d' ' "$tmp/a.txt" "$tmp/b.txt" | awk '
  { d = $3 - $6; if (d < 0) d = -d; s = $3 < 0 ? -$3 : $3; if (s < 0.01) s = 0.01
    if ($2 != $5 || d > 1e-5 * s) { print; bad = 1 } } END { exit bad || NR != 4 }' ||
  fail "step 3 resumed on 1 rank from 2 ranks' checkpoint differs from the 1-rank run"

# A micro-batch the ranks cannot share: usage error (exit 2) naming --batch.
set +e
msg="$(mpirun -np 2 "$rlaif" ppo "${common[@]}" --batch 3 --out "$tmp/odd" 2>&1)"; code=$?
set -e
[[ $code -ne 0 ]] || fail "--batch 3 on 2 ranks was accepted"
grep -q -- "--batch 3 × 1 samples per prompt / (1 mini-batches × --grad-accum 1) = 3 sequences per micro-batch, which is not divisible by the 2 data-parallel ranks" <<<"$msg" ||
  fail "uneven batch not refused clearly: $msg"
echo "2-rank data-parallel ppo (gae, rloo, grpo with ZeRO-1, a rule beside the reward model) matches 1 rank; a 2-rank checkpoint resumes on 1; uneven batches refused"
