#!/usr/bin/env bash
# Reward modelling and DPO on the shipped LLaMA-Factory preference data (data/preferences/
# dpo_en_demo.json, 300 pairs) with a small model: `rlaif rm`, `rlaif score` and `rlaif dpo` each
# run a few steps, log their metrics under TRL's names (loss, rewards/*, logps/*), and write model directories;
# --precompute-ref matches a live reference, its cache is reused, and a resumed DPO run repeats
# the uninterrupted one.
set -euo pipefail
rlaif="$1"; root="$2"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
prefs="$root/data/preferences/dpo_en_demo.json"
fail() { echo "FAIL: $*"; exit 1; }
source "$root/tests/cli/lib/losses.sh"  # losses METRICS: "step loss" per train line

"$rlaif" init --arch llama --layers 2 --d-model 32 --heads 4 --kv-heads 2 --seq 64 \
  --tokenizer "$root/data/models/stories260K/tokenizer.model" --seed 1 --out "$tmp/init" >/dev/null
short=(--max-length 64 --max-prompt-length 40 --batch 4 --eval-every 0 --save-every 0)

# ---- rm -------------------------------------------------------------------------------------
out="$("$rlaif" rm --model "$tmp/init" --data "$prefs" --out "$tmp/rm" --steps 3 --lr 1e-3 \
  --center-rewards 0.01 "${short[@]}" 2>"$tmp/rm.err")" || { cat "$tmp/rm.err"; fail "rm exited non-zero"; }
grep -q '"val_accuracy"' <<<"$out" || fail "rm printed no held-out accuracy: $out"
grep -q "285 training pairs, 15 held out" "$tmp/rm.err" || fail "rm split: $(cat "$tmp/rm.err")"
[[ $(grep -c '"kind":"train"' "$tmp/rm/metrics.jsonl") -eq 3 ]] || fail "rm logged $(grep -c train "$tmp/rm/metrics.jsonl") steps"
for key in loss accuracy margin; do
  grep '"kind":"train"' "$tmp/rm/metrics.jsonl" | grep -q "\"$key\":" || fail "rm train metrics lack $key"
  grep '"kind":"eval"' "$tmp/rm/metrics.jsonl" | grep -q "\"val_$key\":" || fail "rm eval metrics lack val_$key"
done
grep -q '"num_labels": *1' "$tmp/rm/config.json" || fail "the reward model's config lacks num_labels 1"

# ---- score ----------------------------------------------------------------------------------
"$rlaif" score --model "$tmp/rm" --data "$prefs" --max-length 64 --max-prompt-length 40 \
  > "$tmp/scores.jsonl" 2>"$tmp/score.err" || { cat "$tmp/score.err"; fail "score exited non-zero"; }
[[ $(wc -l < "$tmp/scores.jsonl") -eq 300 ]] || fail "score wrote $(wc -l < "$tmp/scores.jsonl") lines for 300 pairs"
head -1 "$tmp/scores.jsonl" | grep -q '"chosen_reward":-\?[0-9]' || fail "no chosen_reward: $(head -c 300 "$tmp/scores.jsonl")"
grep -q "accuracy (chosen > rejected)" "$tmp/score.err" || fail "no score summary"
"$rlaif" score --model "$tmp/rm" --data "$root/data/instructions/alpaca_en_demo.json" \
  --max-length 64 --max-prompt-length 40 --out "$tmp/sft_scores.jsonl" 2>/dev/null
head -1 "$tmp/sft_scores.jsonl" | grep -q '"reward":-\?[0-9]' || fail "no reward for an SFT record"
set +e
msg="$("$rlaif" score --model "$tmp/init" --data "$prefs" 2>&1)"; code=$?
set -e
[[ $code -eq 1 ]] && grep -q "no scalar head" <<<"$msg" || fail "scoring with a plain LM: ($code) $msg"

# ---- dpo ------------------------------------------------------------------------------------
dpo=(--model "$tmp/init" --data "$prefs" --steps 4 --lr 1e-3 "${short[@]}")
out="$("$rlaif" dpo "${dpo[@]}" --out "$tmp/dpo_live" 2>"$tmp/dpo.err")" || { cat "$tmp/dpo.err"; fail "dpo exited non-zero"; }
grep -q '"val_rewards/margins"' <<<"$out" || fail "dpo printed no held-out margin: $out"
for key in rewards/chosen rewards/rejected rewards/accuracies rewards/margins logps/chosen logps/rejected; do
  grep '"kind":"train"' "$tmp/dpo_live/metrics.jsonl" | grep -q "\"$key\":" || fail "dpo train metrics lack $key"
  grep '"kind":"eval"' "$tmp/dpo_live/metrics.jsonl" | grep -q "\"val_$key\":" || fail "dpo eval metrics lack val_$key"
done
first="$(losses "$tmp/dpo_live/metrics.jsonl" | head -1 | cut -d' ' -f2)"
awk -v l="$first" 'BEGIN { exit !(l > 0.6926 && l < 0.6937) }' || fail "first DPO loss $first, want ln 2"
[[ -f "$tmp/dpo_live/model.safetensors" ]] || fail "dpo wrote no model"

# --precompute-ref: the same losses as the live reference, a cache file, reused on a re-run.
"$rlaif" dpo "${dpo[@]}" --out "$tmp/dpo_pre" --precompute-ref >/dev/null 2>"$tmp/pre.err"
grep -q "reference log-probs written to" "$tmp/pre.err" || fail "no cache written: $(cat "$tmp/pre.err")"
[[ -f "$tmp/dpo_pre/ref_logprobs.safetensors" ]] || fail "no ref_logprobs.safetensors"
paste <(losses "$tmp/dpo_live/metrics.jsonl") <(losses "$tmp/dpo_pre/metrics.jsonl") |
  awk '{ d = $2 - $4; if (d < 0) d = -d; if (d > 1e-5) { print "step " $1 ": live " $2 ", precomputed " $4; bad = 1 } }
       END { exit bad }' || fail "precomputed reference losses differ from the live reference's"

# Resume: an uninterrupted run with checkpoints, then a run resumed from its step 2 repeats its
# last two losses. Both find the cached reference log-probs (same reference, same pairs).
mkdir "$tmp/dpo_ck" "$tmp/dpo_resumed"
cp "$tmp/dpo_pre/ref_logprobs.safetensors" "$tmp/dpo_ck/"
cp "$tmp/dpo_pre/ref_logprobs.safetensors" "$tmp/dpo_resumed/"
"$rlaif" dpo "${dpo[@]}" --out "$tmp/dpo_ck" --precompute-ref --save-every 2 --keep 0 >/dev/null 2>&1
"$rlaif" dpo "${dpo[@]}" --out "$tmp/dpo_resumed" --precompute-ref \
  --resume "$tmp/dpo_ck/checkpoints/step_00000002" >/dev/null 2>"$tmp/resume.err"
grep -q "reference log-probs read from" "$tmp/resume.err" || fail "cache not reused: $(cat "$tmp/resume.err")"
diff <(losses "$tmp/dpo_ck/metrics.jsonl" | tail -2) <(losses "$tmp/dpo_resumed/metrics.jsonl") >/dev/null ||
  fail "resumed DPO losses differ from the uninterrupted run"

# Variants run; bad settings are usage errors.
"$rlaif" dpo "${dpo[@]}" --steps 1 --out "$tmp/ipo" --loss ipo >/dev/null 2>&1 || fail "ipo failed"
"$rlaif" dpo "${dpo[@]}" --steps 1 --out "$tmp/robust" --loss robust --label-smoothing 0.1 >/dev/null 2>&1 ||
  fail "robust failed"
# TRL's combined form: DPO plus the chosen answers' NLL (RPO), which is then logged.
"$rlaif" dpo "${dpo[@]}" --steps 1 --out "$tmp/rpo" --loss sigmoid,sft --loss-weights 1,0.5 \
  >/dev/null 2>&1 || fail "sigmoid,sft failed"
grep '"kind":"train"' "$tmp/rpo/metrics.jsonl" | grep -q '"nll_loss":' || fail "sigmoid,sft logged no nll_loss"
set +e
"$rlaif" dpo "${dpo[@]}" --out "$tmp/x" --loss kto >/dev/null 2>&1; c1=$?
"$rlaif" dpo "${dpo[@]}" --out "$tmp/x" --loss hinge --label-smoothing 0.1 >/dev/null 2>&1; c2=$?
"$rlaif" dpo "${dpo[@]}" --out "$tmp/x" --loss sigmoid,sft --loss-weights 1 >/dev/null 2>&1; c3=$?
"$rlaif" dpo "${dpo[@]}" --out "$tmp/x" --loss sft >/dev/null 2>&1; c4=$?
set -e
[[ $c1 -eq 2 && $c2 -eq 2 && $c3 -eq 2 && $c4 -eq 2 ]] ||
  fail "bad DPO settings exited $c1, $c2, $c3 and $c4, want 2"
echo "rm, score and dpo ran on the shipped preference data"
