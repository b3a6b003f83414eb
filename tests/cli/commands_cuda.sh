#!/usr/bin/env bash
# Every command that trains or generates runs on the GPU and computes there what it computes on
# the CPU: from one small Llama, `pretrain`, `sft`, `rm`, `dpo` and `ppo` each run a few steps in
# f32 with --device cpu and with --device cuda, and their logged losses agree step by step within
# 2e-3 relative (cuBLAS and OpenBLAS split their sums differently, and AdamW carries the rounding
# into the next steps); `score` gives the same rewards and greedy `generate` the same text. In
# bf16 on the GPU the same commands finish with losses within 5% of f32's first-step loss.
# Exits 77 (CTest: skipped) without a CUDA device.
#
# RLAIF_TEST_DEVICE=cpu runs the script with the CPU standing in for the GPU (and no bf16 runs):
# a self-test of the script's plumbing on a machine without a GPU.
set -uo pipefail
rlaif="$1"; root="$2"
dev="${RLAIF_TEST_DEVICE:-cuda}"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
tok="$root/data/models/stories260K/tokenizer.model"
prefs="$root/data/preferences/dpo_en_demo.json"
sft_data="$root/data/instructions/alpaca_en_demo.json"
head -c 40000 "$root/data/text/tinyshakespeare.txt" > "$tmp/text.txt"

"$rlaif" init --arch llama --layers 2 --d-model 64 --heads 4 --kv-heads 2 --seq 96 --tokenizer "$tok" \
  --seed 1 --out "$tmp/init" >/dev/null || fail "init"
source "$root/tests/cli/lib/sort_ppo_fixture.sh"  # $tmp/policy, pairs.jsonl, prompts.jsonl, rm (CPU)

# "step loss" per train line of a metrics.jsonl (PPO logs no loss: its score and kl stand in).
losses() {
  grep '"kind":"train"' "$1" |
    sed -E 's/.*"step":([0-9]+).*"(loss|score)":([^,}]+).*/\1 \3/'
}
# Runs `rlaif CMD ARGS... --device DEVICE` into $tmp/SIDE_NAME, SIDE being ref (the CPU) or dut
# (the device under test); on a machine without a usable GPU the first GPU command's message
# makes the whole script a skip.
run() {  # side, name, command, args...
  local side="$1" name="$2" cmd="$3"; shift 3
  local device=cpu; [[ $side == dut ]] && device="$dev"
  timeout 300 "$rlaif" "$cmd" "$@" --device "$device" --out "$tmp/${side}_$name" \
    > "$tmp/${side}_$name.out" 2> "$tmp/${side}_$name.err"
  local status=$?
  if [[ $status -ne 0 ]]; then
    if grep -qE "without the CUDA backend|no CUDA backend|no usable CUDA device|does not exist|built without it" \
         "$tmp/${side}_$name.err"; then
      echo "skipped: $(head -c 300 "$tmp/${side}_$name.err")"; exit 77
    fi
    cat "$tmp/${side}_$name.err"
    [[ $status -eq 124 ]] && echo "(timed out after 300 s)"
    fail "$cmd ($name) on $device exited with $status"
  fi
}
# The two sides' losses: same steps, each pair within rtol relative.
same_losses() {  # name, rtol
  local a="$tmp/ref_$1/metrics.jsonl" b="$tmp/dut_$1/metrics.jsonl"
  [[ -s "$a" && -s "$b" ]] || fail "$1: no metrics"
  paste <(losses "$a") <(losses "$b") | awk -v name="$1" -v rtol="$2" -v dev="$dev" '
    { n++; d = $2 - $4; if (d < 0) d = -d; s = $2 < 0 ? -$2 : $2
      if ($1 != $3 || $4 != $4 + 0 || d > rtol * s + 1e-6) {
        print name ": step " $1 " loss " $2 " on the cpu, step " $3 " loss " $4 " on " dev; bad = 1 } }
    END { if (n < 2) { print name ": fewer than 2 steps logged"; bad = 1 }; exit bad }' ||
    fail "$1 differs between the devices"
}

pretrain=(pretrain --model "$tmp/init" --data "$tmp/text.txt" --batch 4 --seq 96 --steps 3 --lr 3e-3
          --eval-every 0 --save-every 0)
sft=(sft --model "$tmp/init" --data "$sft_data" --batch 4 --max-length 96 --max-prompt-length 48
     --steps 3 --lr 1e-3 --eval-every 0 --save-every 0)
short=(--max-length 64 --max-prompt-length 40 --batch 4 --eval-every 0 --save-every 0 --steps 3)
rm_cmd=(rm --model "$tmp/init" --data "$prefs" --lr 1e-3 "${short[@]}")
dpo=(dpo --model "$tmp/init" --data "$prefs" --lr 1e-3 "${short[@]}")
# PPO samples its rollouts: the uniforms come from the host, so both devices draw the same tokens
# unless a draw falls within rounding of a boundary between two tokens (rare at these sizes).
ppo=(ppo --model "$tmp/policy" --reward-model "$tmp/rm" --prompts "$tmp/prompts.jsonl" --batch 2
     --max-new-tokens 4 --max-prompt-length 24 --ppo-epochs 2 --lr 1e-4 --seed 3 --steps 2
     --save-every 0)

for side in dut ref; do  # the device under test first: without a GPU the script skips at once
  run "$side" pretrain "${pretrain[@]}"
  run "$side" sft "${sft[@]}"
  run "$side" rm "${rm_cmd[@]}"
  run "$side" dpo "${dpo[@]}"
  run "$side" ppo "${ppo[@]}"
done
for name in pretrain sft rm dpo; do same_losses "$name" 2e-3; done
same_losses ppo 1e-3

# The trained models on each device: rewards of the reward model, greedy text of the SFT model.
for side in ref dut; do
  device=cpu; [[ $side == dut ]] && device="$dev"
  timeout 120 "$rlaif" score --model "$tmp/ref_rm" --data "$prefs" --max-length 64 --max-prompt-length 40 \
    --device "$device" --out "$tmp/scores_$side.jsonl" 2>"$tmp/score.err" ||
    { cat "$tmp/score.err"; fail "score on $device"; }
  timeout 120 "$rlaif" generate --model "$tmp/ref_sft" --prompt "Give three tips for staying healthy." \
    --chat --max-new-tokens 24 --temperature 0 --device "$device" > "$tmp/text_$side.txt" 2>"$tmp/gen.err" ||
    { cat "$tmp/gen.err"; fail "generate on $device"; }
done
paste -d' ' <(sed -E 's/.*"chosen_reward":([^,}]+).*"rejected_reward":([^,}]+).*/\1 \2/' "$tmp/scores_ref.jsonl") \
            <(sed -E 's/.*"chosen_reward":([^,}]+).*"rejected_reward":([^,}]+).*/\1 \2/' "$tmp/scores_dut.jsonl") |
  awk '{ n++; for (i = 1; i <= 2; i++) { d = $i - $(i + 2); if (d < 0) d = -d
         if (d > 1e-3 + 1e-3 * ($i < 0 ? -$i : $i)) { print "pair " n ": " $0; bad = 1 } } }
       END { if (n != 300) { print n " scored pairs, want 300"; bad = 1 }; exit bad }' ||
  fail "score: the devices' rewards differ"
cmp -s "$tmp/text_ref.txt" "$tmp/text_dut.txt" ||
  { diff "$tmp/text_ref.txt" "$tmp/text_dut.txt"; fail "generate: greedy text differs between the devices"; }

# bf16 on the GPU: each training command finishes, with a first loss near f32's.
if [[ $dev != cpu ]]; then
  for name in pretrain sft rm dpo; do
    args_var="$name[@]"; [[ $name == rm ]] && args_var="rm_cmd[@]"
    run dut "bf16_$name" "${!args_var}" --dtype bf16
    first32="$(losses "$tmp/dut_$name/metrics.jsonl" | head -1 | cut -d' ' -f2)"
    losses "$tmp/dut_bf16_$name/metrics.jsonl" | awk -v ref="$first32" -v name="$name" '
      { n++; if ($2 != $2 + 0) { print name " bf16: loss " $2 " at step " $1; bad = 1 } }
      n == 1 { d = $2 - ref; if (d < 0) d = -d; if (d > 0.05 * (ref < 0 ? -ref : ref) + 1e-3) {
        print name " bf16: first loss " $2 ", f32 " ref; bad = 1 } }
      END { if (n < 2) { print name " bf16: fewer than 2 steps"; bad = 1 }; exit bad }' ||
      fail "$name in bf16"
  done
  run dut bf16_ppo "${ppo[@]}" --dtype bf16
  # The reference log-probs precomputed from a bf16 reference (its cache key hashes bf16 bytes):
  # the losses of the live reference, up to bf16 rounding of differently batched passes.
  run dut bf16_dpo_pre "${dpo[@]}" --dtype bf16 --precompute-ref
  paste <(losses "$tmp/dut_bf16_dpo/metrics.jsonl") <(losses "$tmp/dut_bf16_dpo_pre/metrics.jsonl") |
    awk '{ d = $2 - $4; if (d < 0) d = -d; if ($1 != $3 || d > 5e-3) { print; bad = 1 } } END { exit bad }' ||
    fail "dpo in bf16: --precompute-ref changed the losses"
fi
echo "pretrain, sft, rm, dpo, ppo, score and generate agree between the cpu and $dev"
