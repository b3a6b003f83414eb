#!/usr/bin/env bash
# `rlaif ppo` end to end on tiny models: a reward model made by `rlaif init` + a short `rlaif rm`
# run; PPO (gae, the value model starting from the reward model), RLOO and GRPO each run a few
# steps and write a model directory and their metrics (TRL's names, and the step's time split); a
# run resumed from its checkpoint logs what the uninterrupted run logged, and so does one stopped
# by SIGINT; bad flag combinations exit with 2.
set -euo pipefail
rlaif="$1"; root="$2"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
source "$root/tests/cli/lib/sort_ppo_fixture.sh"  # $tmp/policy, pairs, prompts, rm

common=(--model "$tmp/policy" --reward-model "$tmp/rm" --prompts "$tmp/prompts.jsonl" --batch 2
        --max-new-tokens 4 --max-prompt-length 24 --ppo-epochs 2 --lr 1e-4 --missing-eos-penalty 1
        --seed 3)
keys=(score kl entropy clip_fraction approx_kl response_length rollout_tokens_per_s train_tokens_per_s)

run() {  # name, "extra metric names", then flags
  local name="$1" extra="$2"; shift 2
  "$rlaif" ppo "${common[@]}" "$@" --out "$tmp/$name" > "$tmp/$name.out" 2> "$tmp/$name.err" ||
    { echo "ppo $name failed:"; cat "$tmp/$name.err"; exit 1; }
  [[ -f "$tmp/$name/model.safetensors" && -f "$tmp/$name/config.json" && -f "$tmp/$name/tokenizer.model" ]] ||
    { echo "ppo $name wrote no model directory"; ls "$tmp/$name"; exit 1; }
  grep -q '"model":' "$tmp/$name.out" || { echo "ppo $name printed no result"; cat "$tmp/$name.out"; exit 1; }
  local line; line="$(tail -1 "$tmp/$name/metrics.jsonl")"
  for k in "${keys[@]}" $extra; do
    grep -q "\"$k\":" <<<"$line" || { echo "ppo $name: metric $k missing in $line"; exit 1; }
  done
}

run gae "value_loss explained_variance value_clip_fraction" --steps 2 --mini-batches 2 \
  --tensorboard "$tmp/gae_tb"
# The step's time split: generation, scoring and evaluation are positive parts of the rollout's
# time (together at most all of it), and the update took time too.
awk -F'"time/' 'NF > 1 { for (i = 2; i <= NF; i++) { split($i, kv, "\":"); v[kv[1]] = kv[2] + 0 }
  parts = v["generate_s"] + v["score_s"] + v["evaluate_s"]
  if (!(v["generate_s"] > 0 && v["score_s"] > 0 && v["evaluate_s"] > 0 && v["update_s"] > 0 &&
        parts <= v["rollout_s"] + 1e-6)) bad = 1 }
  END { exit bad || NR != 2 }' "$tmp/gae/metrics.jsonl" ||
  { echo "ppo: the time split is wrong: $(tail -1 "$tmp/gae/metrics.jsonl")"; exit 1; }
# The same metrics as TensorBoard scalars, tagged train/NAME.
grep -aq "train/explained_variance" "$tmp"/gae_tb/events.out.tfevents.* ||
  { echo "ppo --tensorboard wrote no train/explained_variance scalar"; ls -la "$tmp/gae_tb"; exit 1; }
[[ -f "$tmp/gae/value_model/model.safetensors" ]] || { echo "no value model written"; exit 1; }
[[ $(wc -l < "$tmp/gae/metrics.jsonl") -eq 2 ]] || { echo "gae logged $(wc -l < "$tmp/gae/metrics.jsonl") steps"; exit 1; }
run rloo "non_score_reward" --steps 2 --advantage rloo --samples-per-prompt 2 --kl-estimator k3
run grpo "kl_loss" --steps 2 --advantage grpo --samples-per-prompt 3 --adaptive-kl 0.5
# Dr. GRPO's centred advantages with DAPO's clip-higher, and the share of groups scored alike.
run drgrpo "kl_loss frac_reward_zero_std" --steps 2 --advantage grpo --samples-per-prompt 3 \
  --scale-rewards off --clip-high 0.28
"$rlaif" generate --model "$tmp/grpo" --prompt "sort: b a" --max-new-tokens 3 >/dev/null 2>&1 ||
  { echo "the trained policy does not load"; exit 1; }

# Resume: 4 steps straight vs. 2 steps, a checkpoint, and the rest.
strip() { sed -E 's/,"(elapsed_s|rollout_tokens_per_s|train_tokens_per_s|time\/[a-z_]+)":[^,}]*//g' "$1"; }
resume_flags=(--steps 4 --save-every 2 --adaptive-kl 0.1 --adaptive-kl-horizon 20)
"$rlaif" ppo "${common[@]}" "${resume_flags[@]}" --out "$tmp/full" >/dev/null 2>&1
"$rlaif" ppo "${common[@]}" "${resume_flags[@]}" --out "$tmp/part" >/dev/null 2>&1
rm -rf "$tmp/part/checkpoints/step_00000004"
"$rlaif" ppo "${common[@]}" "${resume_flags[@]}" --out "$tmp/part" --resume "$tmp/part/checkpoints/step_00000002" \
  >/dev/null 2>"$tmp/resume.err"
grep -q "resuming from" "$tmp/resume.err" || { echo "no resume message"; cat "$tmp/resume.err"; exit 1; }
diff <(strip "$tmp/full/metrics.jsonl") <(strip "$tmp/part/metrics.jsonl") >/dev/null ||
  { echo "resumed metrics differ:"; diff <(strip "$tmp/full/metrics.jsonl") <(strip "$tmp/part/metrics.jsonl") | head; exit 1; }
cmp "$tmp/full/model.safetensors" "$tmp/part/model.safetensors" || { echo "resumed weights differ"; exit 1; }

# SIGINT: the step finishes, a checkpoint is written, the exit code is 128+2 with a resume hint,
# and resuming finishes the run with the uninterrupted run's metrics and weights.
sig_flags=(--steps 12 --save-every 0)
"$rlaif" ppo "${common[@]}" "${sig_flags[@]}" --out "$tmp/sig_full" >/dev/null 2>&1
"$rlaif" ppo "${common[@]}" "${sig_flags[@]}" --out "$tmp/sig" >/dev/null 2>"$tmp/sig.err" &
pid=$!
for _ in $(seq 600); do grep -q '"step":1,' "$tmp/sig/metrics.jsonl" 2>/dev/null && break; sleep 0.05; done
kill -INT "$pid"
set +e; wait "$pid"; code=$?; set -e
[[ $code -eq 130 ]] || { echo "ppo: SIGINT exit code $code, want 130"; cat "$tmp/sig.err"; exit 1; }
grep -q "continue with --resume" "$tmp/sig.err" || { echo "ppo: no resume hint after SIGINT"; cat "$tmp/sig.err"; exit 1; }
ckpt="$(ls -d "$tmp/sig/checkpoints"/step_* | tail -1)"
"$rlaif" ppo "${common[@]}" "${sig_flags[@]}" --out "$tmp/sig" --resume "$ckpt" >/dev/null 2>&1 ||
  { echo "ppo: resuming from $ckpt after SIGINT failed"; exit 1; }
diff <(strip "$tmp/sig_full/metrics.jsonl") <(strip "$tmp/sig/metrics.jsonl") >/dev/null ||
  { echo "ppo: metrics after SIGINT + resume differ:"; diff <(strip "$tmp/sig_full/metrics.jsonl") <(strip "$tmp/sig/metrics.jsonl") | head; exit 1; }
cmp "$tmp/sig_full/model.safetensors" "$tmp/sig/model.safetensors" || { echo "ppo: weights after SIGINT + resume differ"; exit 1; }

# Usage errors exit with 2 and name the flag.
expect_usage() {  # message, then flags
  local want="$1"; shift
  set +e
  msg="$("$rlaif" ppo "${common[@]}" --out "$tmp/bad" "$@" 2>&1)"; code=$?
  set -e
  [[ $code -eq 2 ]] && grep -q -- "$want" <<<"$msg" || { echo "expected usage error '$want' ($code): $msg"; exit 1; }
}
expect_usage "--samples-per-prompt" --advantage rloo --samples-per-prompt 1
expect_usage "--value-model" --advantage grpo --value-model "$tmp/rm"
expect_usage "--mini-batches" --mini-batches 3
expect_usage "gae, rloo or grpo" --advantage ppo
expect_usage "--scale-rewards off is for --advantage grpo" --scale-rewards off
expect_usage "--scale-rewards must be on or off" --advantage grpo --scale-rewards maybe
expect_usage "--clip-high" --clip-high -1
echo "rlaif ppo: gae, rloo and grpo train and write models; resume is exact, after SIGINT too; bad flags exit 2"
