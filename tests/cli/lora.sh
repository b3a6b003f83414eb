#!/usr/bin/env bash
# LoRA adapters through the commands: `sft --lora-r` writes a PEFT adapter directory (and adapter
# checkpoints) and resumes bit for bit; generate, eval-loss and score take --adapter; `merge`
# folds an adapter in (same losses up to rounding) and will not overwrite a model; `rm`, `dpo`,
# `ppo` and `pretrain` train adapters (the reward and value models their head too); DPO's first
# loss is log 2 (the reference is the base with the adapters off); flag mistakes exit 2.
set -euo pipefail
rlaif="$1"; root="$2"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
source "$root/tests/cli/lib/losses.sh"  # losses METRICS: "step loss" per train line
json_number() {  # key, JSON text: the number after "key":
  sed -E "s/.*\"$1\": *([-0-9.eE+]+).*/\1/" <<<"$2"
}
is_adapter_dir() {  # dir: PEFT's two files, and no base weights
  [[ -f "$1/adapter_config.json" && -f "$1/adapter_model.safetensors" ]] || fail "$1 is no adapter: $(ls "$1")"
  [[ ! -e "$1/model.safetensors" ]] || fail "$1 holds base weights beside the adapter"
}
tok="$root/data/models/stories260K/tokenizer.model"
"$rlaif" init --arch llama --layers 2 --d-model 32 --heads 4 --kv-heads 2 --seq 128 \
  --tokenizer "$tok" --seed 1 --out "$tmp/init" >/dev/null

# ---- sft: adapters only, PEFT's files, resume bit for bit ---------------------------------------
sft=(--model "$tmp/init" --data "$root/data/instructions/alpaca_en_demo.json" --batch 4
     --max-length 128 --max-prompt-length 64 --lr 1e-2 --eval-every 0 --save-every 2 --keep 0
     --lora-r 4 --lora-alpha 8 --lora-dropout 0.1 --lora-targets all-linear)
"$rlaif" sft "${sft[@]}" --steps 4 --out "$tmp/sft" >"$tmp/sft.out" 2>"$tmp/sft.err" ||
  { cat "$tmp/sft.err"; fail "sft --lora-r exited non-zero"; }
grep -q "training LoRA adapters (r 4, alpha 8" "$tmp/sft.err" || fail "sft did not say it trains adapters: $(cat "$tmp/sft.err")"
is_adapter_dir "$tmp/sft"
is_adapter_dir "$tmp/sft/checkpoints/step_00000002"
[[ -f "$tmp/sft/tokenizer.model" ]] || fail "the adapter directory lacks the tokenizer"
grep -q '"peft_type": "LORA"' "$tmp/sft/adapter_config.json" || fail "adapter_config.json: $(cat "$tmp/sft/adapter_config.json")"
grep -q '"base_model_name_or_path": ".*init"' "$tmp/sft/adapter_config.json" || fail "no base model recorded"
grep -q '"down_proj"' "$tmp/sft/adapter_config.json" || fail "all-linear not expanded"
# The optimizer state holds the adapters' moments only: far smaller than the base's 41120 weights
# would need (2 · 4 bytes each).
state_bytes=$(stat -c %s "$tmp/sft/checkpoints/step_00000002/trainer_state/state.safetensors")
(( state_bytes < 41120 * 8 / 4 )) || fail "the checkpoint's optimizer state is $state_bytes bytes"
"$rlaif" sft "${sft[@]}" --steps 4 --out "$tmp/resumed" --resume "$tmp/sft/checkpoints/step_00000002" \
  >/dev/null 2>&1 || fail "resuming an adapter checkpoint failed"
diff <(losses "$tmp/sft/metrics.jsonl" | tail -2) <(losses "$tmp/resumed/metrics.jsonl" | tail -2) ||
  fail "resumed losses differ"
cmp "$tmp/sft/adapter_model.safetensors" "$tmp/resumed/adapter_model.safetensors" ||
  fail "resumed adapter differs from the uninterrupted run's"
# Dropout acts in training: without it the first loss differs.
"$rlaif" sft "${sft[@]}" --lora-dropout 0 --steps 2 --save-every 0 --out "$tmp/nodrop" >/dev/null 2>&1
[[ "$(losses "$tmp/sft/metrics.jsonl" | sed -n 2p)" != "$(losses "$tmp/nodrop/metrics.jsonl" | sed -n 2p)" ]] ||
  fail "--lora-dropout changed nothing"

# A resume must keep the adapters' flags.
set +e
"$rlaif" sft "${sft[@]}" --lora-r 8 --steps 4 --out "$tmp/x" --resume "$tmp/sft" >/dev/null 2>"$tmp/e1.txt"; c1=$?
"$rlaif" sft "${sft[@]}" --adapter "$tmp/sft" --steps 1 --out "$tmp/x" >/dev/null 2>"$tmp/e2.txt"; c2=$?
"$rlaif" sft "${sft[@]}" --lora-targets q_proj,w_proj --steps 1 --out "$tmp/x" >/dev/null 2>"$tmp/e3.txt"; c3=$?
sft_plain=("${sft[@]/--lora-r/--seed}")  # --lora-r 4 becomes --seed 4: adapter flags without a rank
"$rlaif" sft "${sft_plain[@]}" --steps 1 --out "$tmp/x" >/dev/null 2>"$tmp/e5.txt"; c5=$?
set -e
[[ $c5 -eq 2 ]] && grep -q "give --lora-r too" "$tmp/e5.txt" || fail "adapter flags without --lora-r: exit $c5: $(cat "$tmp/e5.txt")"
[[ $c1 -eq 1 ]] && grep -q "lora-r: checkpoint has '4', this run has '8'" "$tmp/e1.txt" || fail "resume with another --lora-r: exit $c1: $(cat "$tmp/e1.txt")"
[[ $c2 -eq 2 ]] && grep -q "cannot be given with --adapter" "$tmp/e2.txt" || fail "--adapter with --lora-r: exit $c2: $(cat "$tmp/e2.txt")"
[[ $c3 -eq 1 ]] && grep -q "w_proj" "$tmp/e3.txt" || fail "unknown target: exit $c3: $(cat "$tmp/e3.txt")"

# ---- --adapter and merge ------------------------------------------------------------------------
text="$root/data/text/tinyshakespeare.txt"
el=(--data "$text" --seq 64 --batches 2)
base_loss="$(json_number loss "$("$rlaif" eval-loss --model "$tmp/init" "${el[@]}" 2>/dev/null)")"
adapted_loss="$(json_number loss "$("$rlaif" eval-loss --model "$tmp/init" --adapter "$tmp/sft" "${el[@]}" 2>/dev/null)")"
"$rlaif" merge --model "$tmp/init" --adapter "$tmp/sft" --out "$tmp/merged" >/dev/null
[[ -f "$tmp/merged/model.safetensors" && -f "$tmp/merged/tokenizer.model" ]] || fail "merge wrote no model directory"
merged_loss="$(json_number loss "$("$rlaif" eval-loss --model "$tmp/merged" "${el[@]}" 2>/dev/null)")"
awk -v b="$base_loss" -v a="$adapted_loss" -v m="$merged_loss" 'BEGIN {
  d = a - m; if (d < 0) d = -d; e = a - b; if (e < 0) e = -e;
  if (d > 1e-4) { print "merged loss " m " differs from the adapted " a; exit 1 }
  if (e < 1e-3) { print "the adapter changed nothing: " a " vs base " b; exit 1 } }' || fail "merge"
set +e
"$rlaif" merge --model "$tmp/init" --adapter "$tmp/sft" --out "$tmp/merged" >/dev/null 2>"$tmp/e4.txt"; c4=$?
set -e
[[ $c4 -eq 2 ]] && grep -q "already holds a model" "$tmp/e4.txt" || fail "merge over a model: exit $c4"
"$rlaif" merge --model "$tmp/init" --adapter "$tmp/sft" --out "$tmp/merged" --force >/dev/null
a="$("$rlaif" generate --model "$tmp/init" --adapter "$tmp/sft" --prompt "Give three tips" --max-new-tokens 6 --temperature 0 2>/dev/null)"
[[ -n "$a" ]] || fail "generate --adapter wrote nothing"
# Continued training from an adapter.
"$rlaif" sft --model "$tmp/init" --data "$root/data/instructions/alpaca_en_demo.json" --batch 4 \
  --max-length 128 --max-prompt-length 64 --lr 1e-2 --eval-every 0 --save-every 0 --steps 1 \
  --adapter "$tmp/sft" --out "$tmp/more" >/dev/null 2>&1 || fail "sft --adapter failed"
is_adapter_dir "$tmp/more"

# ---- rm and score: the head trains beside the adapters -------------------------------------------
prefs="$root/data/preferences/dpo_en_demo.json"
short=(--max-length 64 --max-prompt-length 40 --batch 4 --eval-every 0 --save-every 0)
"$rlaif" rm --model "$tmp/init" --data "$prefs" --out "$tmp/rm_lora" --steps 2 --lr 1e-3 --lora-r 2 \
  "${short[@]}" >/dev/null 2>"$tmp/rm.err" || { cat "$tmp/rm.err"; fail "rm --lora-r"; }
is_adapter_dir "$tmp/rm_lora"
grep -q '"task_type": "SEQ_CLS"' "$tmp/rm_lora/adapter_config.json" || fail "rm adapter is not SEQ_CLS"
grep -q '"score"' "$tmp/rm_lora/adapter_config.json" || fail "rm adapter does not save the head"
"$rlaif" score --model "$tmp/init" --adapter "$tmp/rm_lora" --data "$prefs" --max-length 64 \
  --max-prompt-length 40 >"$tmp/scores.jsonl" 2>/dev/null || fail "score --adapter"
[[ $(wc -l < "$tmp/scores.jsonl") -eq 300 ]] || fail "score --adapter wrote $(wc -l < "$tmp/scores.jsonl") lines"

# ---- dpo: the reference is the base with the adapters off --------------------------------------
dpo=(--model "$tmp/init" --data "$prefs" --steps 2 --lr 1e-3 --lora-r 4 --lora-targets all-linear "${short[@]}")
"$rlaif" dpo "${dpo[@]}" --out "$tmp/dpo" >/dev/null 2>"$tmp/dpo.err" || { cat "$tmp/dpo.err"; fail "dpo --lora-r"; }
"$rlaif" dpo "${dpo[@]}" --precompute-ref --out "$tmp/dpo_pre" >/dev/null 2>&1 || fail "dpo --lora-r --precompute-ref"
is_adapter_dir "$tmp/dpo"
first="$(losses "$tmp/dpo/metrics.jsonl" | head -1 | cut -d' ' -f2)"
awk -v l="$first" 'BEGIN { d = l - log(2); if (d < 0) d = -d; exit !(d < 1e-6) }' ||
  fail "DPO's first loss with fresh adapters is $first, not log 2"
diff <(losses "$tmp/dpo/metrics.jsonl") <(losses "$tmp/dpo_pre/metrics.jsonl") >/dev/null ||
  fail "precomputed and live references differ: $(paste <(losses "$tmp/dpo/metrics.jsonl") <(losses "$tmp/dpo_pre/metrics.jsonl"))"

# ---- pretrain -----------------------------------------------------------------------------------
"$rlaif" pretrain --model "$tmp/init" --data "$text" --seq 64 --batch 2 --steps 2 --lr 1e-3 \
  --eval-every 0 --save-every 0 --lora-r 2 --out "$tmp/pre" >/dev/null 2>&1 || fail "pretrain --lora-r"
is_adapter_dir "$tmp/pre"

# ---- ppo: policy and value model train adapters; resume bit for bit --------------------------
source "$root/tests/cli/lib/sort_ppo_fixture.sh"  # $tmp/policy, pairs, prompts, rm
ppo=(--model "$tmp/policy" --reward-model "$tmp/rm" --prompts "$tmp/prompts.jsonl" --batch 2
     --max-new-tokens 4 --max-prompt-length 24 --ppo-epochs 1 --lr 1e-3 --seed 3 --lora-r 2
     --lora-dropout 0.1 --steps 4 --save-every 2)
strip() { sed -E 's/,"(elapsed_s|rollout_tokens_per_s|train_tokens_per_s|time\/[a-z_]+)":[^,}]*//g' "$1"; }
"$rlaif" ppo "${ppo[@]}" --out "$tmp/ppo" >/dev/null 2>"$tmp/ppo.err" || { cat "$tmp/ppo.err"; fail "ppo --lora-r"; }
is_adapter_dir "$tmp/ppo"
is_adapter_dir "$tmp/ppo/value_model"
grep -q '"score"' "$tmp/ppo/value_model/adapter_config.json" || fail "the value adapter does not save the head"
"$rlaif" ppo "${ppo[@]}" --out "$tmp/ppo_part" --resume "$tmp/ppo/checkpoints/step_00000002" \
  >/dev/null 2>&1 || fail "ppo --lora-r resume"
diff <(strip "$tmp/ppo/metrics.jsonl" | tail -2) <(strip "$tmp/ppo_part/metrics.jsonl" | tail -2) >/dev/null ||
  fail "resumed PPO metrics differ"
cmp "$tmp/ppo/adapter_model.safetensors" "$tmp/ppo_part/adapter_model.safetensors" ||
  fail "resumed PPO adapter differs"
cmp "$tmp/ppo/value_model/adapter_model.safetensors" "$tmp/ppo_part/value_model/adapter_model.safetensors" ||
  fail "resumed value adapter differs"
echo "LoRA through sft, rm, dpo, ppo, pretrain, generate, eval-loss, score and merge: ok"
