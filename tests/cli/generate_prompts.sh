#!/usr/bin/env bash
# `rlaif generate --prompts`: batching never changes the output, and a run that died mid-file
# (complete lines plus a torn one) continues to the same result.
set -euo pipefail
rlaif="$1"; root="$2"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
model="$root/data/models/stories260K"
printf '%s\n' '{"prompt": "Once upon a time"}' '{"prompt": "The cat"}' '{"prompt": ""}' \
  '{"prompt": "Lily and Ben went to the park. They"}' '{"prompt": "One day"}' > "$tmp/prompts.jsonl"
flags=(--model "$model" --prompts "$tmp/prompts.jsonl" --max-new-tokens 12 --temperature 0.8 --top-k 50 --seed 7)
"$rlaif" generate "${flags[@]}" --batch 5 --out "$tmp/b5.jsonl" 2>/dev/null
"$rlaif" generate "${flags[@]}" --batch 2 --out "$tmp/b2.jsonl" 2>/dev/null
cmp "$tmp/b5.jsonl" "$tmp/b2.jsonl" || { echo "batch size changed the generations"; diff "$tmp/b5.jsonl" "$tmp/b2.jsonl"; exit 1; }
[[ $(wc -l < "$tmp/b5.jsonl") -eq 5 ]] || { echo "expected 5 lines"; exit 1; }
grep -q '"completion":' "$tmp/b5.jsonl" && grep -q '"finish_reason":"length"' "$tmp/b5.jsonl"
# A crash after two lines and half of the third.
head -n 2 "$tmp/b5.jsonl" > "$tmp/resumed.jsonl"
printf '{"prompt": "tor' >> "$tmp/resumed.jsonl"
"$rlaif" generate "${flags[@]}" --batch 2 --out "$tmp/resumed.jsonl" 2>"$tmp/err"
grep -q "2 prompts already done" "$tmp/err" || { echo "no continuation message"; cat "$tmp/err"; exit 1; }
cmp "$tmp/b5.jsonl" "$tmp/resumed.jsonl" || { echo "continued run differs"; exit 1; }
# A malformed prompts line is named by file and line.
printf '%s\n' '{"prompt": "ok"}' '{"prompt": 3}' > "$tmp/bad.jsonl"
set +e
msg="$("$rlaif" generate --model "$model" --prompts "$tmp/bad.jsonl" --out "$tmp/o.jsonl" 2>&1)"; code=$?
set -e
[[ $code -eq 1 ]] && grep -q "bad.jsonl:2" <<<"$msg" || { echo "bad line not named ($code): $msg"; exit 1; }
echo "generate --prompts is batch-invariant and resumable"
