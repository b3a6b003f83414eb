#!/usr/bin/env bash
# A Hugging Face-style model directory end to end: `rlaif init --arch qwen3 --tokenizer DIR` makes
# a random-weight Qwen3 model (q/k norms, a head size that is not hidden / heads) over Qwen3's real
# tokenizer files (151,669 ids with the added tokens), `rlaif sft` and `rlaif dpo` train it a few steps on the shipped demo data, and every
# directory written on the way (the init, each checkpoint, each final model) carries the
# tokenizer, tokenizer_config and generation_config files byte for byte, so that transformers
# loads the result as it loaded the input. Both train with the directory's own chat template
# (multi-turn conversations included); `rlaif tokenize` and `rlaif generate` use the result.
set -euo pipefail
rlaif="$1"; root="$2"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
source "$root/tests/cli/lib/losses.sh"  # losses METRICS: "step loss" per train line

# The tokenizer directory as the Hub ships Qwen3: tokenizer.json (here xz-compressed),
# tokenizer_config.json (with the chat template) and generation_config.json.
mkdir "$tmp/qwen3"
cp "$root/data/tokenizers/qwen3/tokenizer.json.xz" "$root/data/tokenizers/qwen3/tokenizer_config.json" "$tmp/qwen3/"
cat > "$tmp/qwen3/generation_config.json" <<'EOF'
{
  "bos_token_id": 151643,
  "do_sample": true,
  "eos_token_id": [151645, 151643],
  "pad_token_id": 151643,
  "temperature": 0.6,
  "top_k": 20,
  "top_p": 0.95
}
EOF
files=(tokenizer.json.xz tokenizer_config.json generation_config.json)
carries() {  # directory: it holds every tokenizer file of $tmp/qwen3, byte for byte
  for f in "${files[@]}"; do
    cmp -s "$tmp/qwen3/$f" "$1/$f" || fail "$1 does not carry $f byte for byte"
  done
}

"$rlaif" init --arch qwen3 --layers 2 --d-model 32 --heads 4 --kv-heads 2 --head-dim 12 --seq 64 \
  --tokenizer "$tmp/qwen3" --seed 1 --out "$tmp/init" > "$tmp/init.out"
grep -q '"vocab_size": 151669' "$tmp/init/config.json" || fail "init vocab: $(cat "$tmp/init/config.json")"
grep -q '"model_type": "qwen3"' "$tmp/init/config.json" && grep -q '"head_dim": 12' "$tmp/init/config.json" || fail "init is not qwen3 with head_dim 12"
grep -q '"eos_token_id": 151645' "$tmp/init/config.json" || fail "init eos is not <|im_end|>"
carries "$tmp/init"

# SFT: 3 steps, a checkpoint at step 2.
"$rlaif" sft --model "$tmp/init" --data "$root/data/instructions/alpaca_en_demo.json" --steps 3 \
  --batch 2 --max-length 64 --max-prompt-length 40 --lr 1e-3 --eval-every 0 --save-every 2 \
  --keep 0 --out "$tmp/sft" > "$tmp/sft.out" 2> "$tmp/sft.err" || { cat "$tmp/sft.err"; fail "sft exited non-zero"; }
[[ $(losses "$tmp/sft/metrics.jsonl" | wc -l) -eq 3 ]] || fail "sft logged $(losses "$tmp/sft/metrics.jsonl" | wc -l) steps"
losses "$tmp/sft/metrics.jsonl" | awk '{ if (!($2 > 5 && $2 < 20)) { print "sft loss " $2 " at step " $1; bad = 1 } } END { exit bad }' ||
  fail "sft losses are not those of a random 151,669-token model (ln 151669 = 11.9)"
carries "$tmp/sft"
carries "$tmp/sft/checkpoints/step_00000002"
# It used the directory's own chat template, and showed the first sequence with the trained
# reply (Qwen3's empty reasoning block and the answer, here cut by --max-length) between ⟦ ⟧.
grep -q "sft: prompts use the chat template of $tmp/init/tokenizer_config.json" "$tmp/sft.err" ||
  fail "sft did not use the model's template: $(cat "$tmp/sft.err")"
grep -qx '<|im_start|>user' "$tmp/sft.err" && grep -qx '<|im_start|>assistant' "$tmp/sft.err" &&
  grep -qx '⟦<think>' "$tmp/sft.err" && grep -qx '</think>' "$tmp/sft.err" && grep -q '⟧$' "$tmp/sft.err" ||
  fail "sft's first sequence is not Qwen3's rendering: $(cat "$tmp/sft.err")"

# Multi-turn conversations: Qwen3 renders earlier replies without the reasoning block it gives a
# last reply, so each reply becomes its own sequence; --last-turn-only keeps one per record; a
# {prompt} --chat-template overrides the model's.
cat > "$tmp/turns.jsonl" <<'EOF'
{"messages": [{"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "Red."}, {"role": "user", "content": "Another?"}, {"role": "assistant", "content": "Blue."}]}
{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}, {"role": "user", "content": "3+3?"}, {"role": "assistant", "content": "6"}]}
EOF
sft_turns() {  # out-name, extra flags...
  local name="$1"; shift
  "$rlaif" sft --model "$tmp/init" --data "$tmp/turns.jsonl" --val-fraction 0 --steps 1 --batch 2 \
    --max-length 64 --eval-every 0 --out "$tmp/$name" "$@" > /dev/null 2> "$tmp/$name.err" ||
    { cat "$tmp/$name.err"; fail "sft on $name exited non-zero"; }
}
sft_turns turns
grep -q "2 conversations are trained as one sequence per reply" "$tmp/turns.err" ||
  fail "multi-turn split not reported: $(cat "$tmp/turns.err")"
grep -q "sft: 4 training examples" "$tmp/turns.err" || fail "not 4 sequences: $(cat "$tmp/turns.err")"
sft_turns last --last-turn-only
grep -q "sft: 2 training examples" "$tmp/last.err" || fail "--last-turn-only: $(cat "$tmp/last.err")"
grep -q "one sequence per reply" "$tmp/last.err" && fail "--last-turn-only split conversations"
sft_turns slot --chat-template 'Q: {prompt}\nA: '
grep -qF 'sft: prompts use "Q: {prompt}\nA: "' "$tmp/slot.err" || fail "override: $(cat "$tmp/slot.err")"
grep -q "sft: 2 training examples" "$tmp/slot.err" || fail "single-slot turns: $(cat "$tmp/slot.err")"
grep -qx 'Q: Name a colour.' "$tmp/slot.err" && grep -qx 'Assistant: ⟦Red.⟧' "$tmp/slot.err" &&
  grep -qx 'A: ⟦Blue.<|im_end|>⟧' "$tmp/slot.err" ||
  fail "single-slot rendering: $(cat "$tmp/slot.err")"

# DPO from the SFT model: 2 steps, a checkpoint at step 1.
"$rlaif" dpo --model "$tmp/sft" --data "$root/data/preferences/dpo_en_demo.json" --steps 2 \
  --batch 2 --max-length 64 --max-prompt-length 40 --lr 1e-3 --eval-every 0 --save-every 1 \
  --keep 0 --out "$tmp/dpo" > "$tmp/dpo.out" 2> "$tmp/dpo.err" || { cat "$tmp/dpo.err"; fail "dpo exited non-zero"; }
[[ $(losses "$tmp/dpo/metrics.jsonl" | wc -l) -eq 2 ]] || fail "dpo logged $(losses "$tmp/dpo/metrics.jsonl" | wc -l) steps"
carries "$tmp/dpo"
grep -q "dpo: prompts use the chat template of $tmp/sft/tokenizer_config.json" "$tmp/dpo.err" ||
  fail "dpo did not use the model's template: $(cat "$tmp/dpo.err")"
carries "$tmp/dpo/checkpoints/step_00000001"

# The result tokenizes as the input did, chat template included, and generates.
echo '{"messages": [{"role": "user", "content": "Hi"}], "add_generation_prompt": true}' > "$tmp/chat.jsonl"
"$rlaif" tokenize --model "$tmp/qwen3" < "$tmp/chat.jsonl" > "$tmp/chat.want"
"$rlaif" tokenize --model "$tmp/dpo" < "$tmp/chat.jsonl" > "$tmp/chat.got"
cmp -s "$tmp/chat.want" "$tmp/chat.got" || fail "the trained model tokenizes differently: $(cat "$tmp/chat.got")"
grep -qF '{"text":"<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n","ids":[151644,' "$tmp/chat.got" ||
  fail "chat rendering: $(cat "$tmp/chat.got")"
"$rlaif" generate --model "$tmp/dpo" --prompt "Hi" --max-new-tokens 4 --temperature 0 > /dev/null ||
  fail "generate cannot use the DPO model"
# sample renders multi-turn prompt records with the template; its output names each prompt by
# its text (the earlier turns flattened), the key that label and eval match on.
cat > "$tmp/prompts.jsonl" <<'EOF'
{"prompt": "Name a colour."}
{"prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}, {"role": "user", "content": "3+3?"}]}
EOF
"$rlaif" sample --model "$tmp/dpo" --prompts "$tmp/prompts.jsonl" --n 1 --max-new-tokens 2 \
  --out "$tmp/samples.jsonl" > /dev/null 2> "$tmp/sample.err" || { cat "$tmp/sample.err"; fail "sample failed"; }
grep -qF '"prompt":"Be brief.\n\n2+2?\n\nAssistant: 4\n\nHuman: 3+3?"' "$tmp/samples.jsonl" ||
  fail "sample's prompt keys: $(cat "$tmp/samples.jsonl")"
echo "qwen3 over Qwen3's tokenizer: init, sft and dpo carry the tokenizer files byte for byte"
