#!/usr/bin/env bash
# `rlaif tasks`: the files an experiment needs, with the counts asked for, no held-out or fresh
# prompt among the demonstrations, critic answers in the pairwise format, and the same files for
# the same seed.
set -euo pipefail
rlaif="$1"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
args=(--train 500 --prompts 120 --eval 60 --critic 200 --seed 5)
"$rlaif" tasks "${args[@]}" --out "$tmp/a" >/dev/null
"$rlaif" tasks "${args[@]}" --out "$tmp/b" >/dev/null
for f in train.jsonl prompts.jsonl eval.jsonl critic_train.jsonl critic_template.txt pretrain.txt tokenizer.txt; do
  [[ -s "$tmp/a/$f" ]] || { echo "missing or empty: $f"; exit 1; }
  cmp -s "$tmp/a/$f" "$tmp/b/$f" || { echo "$f differs between two runs with the same seed"; exit 1; }
done
[[ $(wc -l < "$tmp/a/train.jsonl") -eq 500 && $(wc -l < "$tmp/a/prompts.jsonl") -eq 120 &&
   $(wc -l < "$tmp/a/eval.jsonl") -eq 60 && $(wc -l < "$tmp/a/critic_train.jsonl") -eq 200 ]] ||
  { echo "wrong record counts"; wc -l "$tmp"/a/*.jsonl; exit 1; }
prompts_of() { sed -E 's/^\{"prompt":"([^"]*)".*/\1/' "$1" | sort; }
prompts_of "$tmp/a/train.jsonl" > "$tmp/train.txt"
for f in prompts eval; do
  prompts_of "$tmp/a/$f.jsonl" > "$tmp/$f.txt"
  [[ -z "$(comm -12 "$tmp/train.txt" "$tmp/$f.txt")" ]] || { echo "$f.jsonl repeats demonstrations"; exit 1; }
  [[ $(sort -u "$tmp/$f.txt" | wc -l) -eq $(wc -l < "$tmp/$f.txt") ]] || { echo "$f.jsonl repeats a prompt"; exit 1; }
done
[[ -z "$(comm -12 "$tmp/prompts.txt" "$tmp/eval.txt")" ]] || { echo "eval and prompts overlap"; exit 1; }
[[ $(grep -c '"answer":"' "$tmp/a/prompts.jsonl") -eq 120 ]] || { echo "prompts.jsonl lacks the answers"; exit 1; }
bad=$(grep -v -c -E '"completion":"<think>\(a\)( [a-z0-9_]{2}[=!])+ \(b\)( [a-z0-9_]{2}[=!])+</think>Output \((a|b)\)"\}$' "$tmp/a/critic_train.jsonl" || true)
[[ $bad -eq 0 ]] || { echo "$bad critic examples without an Output (a)/(b) answer"; exit 1; }
a=$(grep -c 'Output (a)"}' "$tmp/a/critic_train.jsonl"); [[ $a -gt 60 && $a -lt 140 ]] ||
  { echo "the right output is (a) in $a of 200 critic examples: not balanced"; exit 1; }
grep -q '{instruction}' "$tmp/a/critic_template.txt" && grep -q '{output_1}' "$tmp/a/critic_template.txt" ||
  { echo "critic template lacks placeholders"; exit 1; }
"$rlaif" tasks "${args[@]}" --seed 6 --out "$tmp/c" >/dev/null
! cmp -s "$tmp/a/train.jsonl" "$tmp/c/train.jsonl" || { echo "another seed gave the same tasks"; exit 1; }
# An existing output is never replaced by surprise: refused (exit 2, naming it) without
# --overwrite, replaced with it.
set +e
msg="$("$rlaif" tasks "${args[@]}" --seed 6 --out "$tmp/a" 2>&1)"; code=$?
set -e
[[ $code -eq 2 ]] && grep -q "$tmp/a/train.jsonl" <<<"$msg" && grep -q -- "--overwrite" <<<"$msg" ||
  { echo "tasks over existing outputs: exit $code, want 2 naming the file and --overwrite: $msg"; exit 1; }
cmp -s "$tmp/a/train.jsonl" "$tmp/b/train.jsonl" || { echo "a refused run changed train.jsonl"; exit 1; }
"$rlaif" tasks "${args[@]}" --seed 6 --out "$tmp/a" --overwrite >/dev/null
cmp -s "$tmp/a/train.jsonl" "$tmp/c/train.jsonl" || { echo "--overwrite did not replace the outputs"; exit 1; }
echo "tasks: ok"
