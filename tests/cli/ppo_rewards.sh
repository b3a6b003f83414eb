#!/usr/bin/env bash
# `rlaif ppo --reward`: rule rewards on a sort-task prompts file written by `rlaif tasks` (records
# with the answer column) and a tiny policy from `rlaif init`. exact-match:answer runs and logs its
# score; with a regex rule beside it the score rises over the run; --reward is repeatable, also in
# --config as an array, and a resume must repeat it; usage errors exit 2 naming what is wrong, and
# a prompts file without the column exits 1 naming the file, line and column.
set -euo pipefail
rlaif="$1"; root="$2"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
tok="$root/data/models/stories260K/tokenizer.model"
"$rlaif" init --arch llama --layers 1 --d-model 32 --heads 2 --seq 48 --tokenizer "$tok" --seed 1 \
  --out "$tmp/policy" >/dev/null
"$rlaif" tasks --out "$tmp/tasks" --families sort --prompts 16 --train 0 --eval 0 --critic 0 >/dev/null
prompts="$tmp/tasks/prompts.jsonl"
[[ $(wc -l < "$prompts") -eq 16 ]] || { echo "tasks wrote $(wc -l < "$prompts") prompts"; exit 1; }
if grep -v '"family":"sort"' "$prompts" | grep -q .; then echo "tasks --families sort wrote others"; exit 1; fi
grep -q '"prompt":"Sort the letters [a-z ]*\.","answer":"[a-z ]*"' "$prompts" ||
  { echo "no answer column in $prompts:"; head -2 "$prompts"; exit 1; }

common=(--model "$tmp/policy" --prompts "$prompts" --advantage grpo --max-new-tokens 4
        --max-prompt-length 24 --seed 3)

# exact-match:answer alone: runs, logs the score and writes a model.
"$rlaif" ppo "${common[@]}" --reward exact-match:answer --samples-per-prompt 2 --batch 2 --steps 2 \
  --out "$tmp/exact" > "$tmp/exact.out" 2> "$tmp/exact.err" || { echo "ppo --reward failed:"; cat "$tmp/exact.err"; exit 1; }
grep -q '"score":' "$tmp/exact.out" || { echo "no score printed"; cat "$tmp/exact.out"; exit 1; }
[[ $(grep -c '"score":' "$tmp/exact/metrics.jsonl") -eq 2 ]] || { echo "score not logged each step"; exit 1; }
[[ -f "$tmp/exact/model.safetensors" ]] || { echo "no model written"; exit 1; }

# Beside it, a rule a random policy meets half the time (the first visible character is a
# lower-case letter): the summed score rises, from about 0.4 over the first five steps to 0.7-0.9
# over the last five (seeds 1, 2, 3).
"$rlaif" ppo "${common[@]}" --reward exact-match:answer --reward 'regex:^\s*[a-z]' \
  --samples-per-prompt 4 --batch 8 --steps 20 --lr 1e-2 --out "$tmp/rise" >/dev/null 2>"$tmp/rise.err" ||
  { echo "ppo with two rules failed:"; cat "$tmp/rise.err"; exit 1; }
grep -o '"score":[-0-9.e]*' "$tmp/rise/metrics.jsonl" | cut -d: -f2 | awk '
  { s[NR] = $1 }
  END {
    for (i = 1; i <= 5; ++i) { first += s[i] / 5; last += s[NR - 5 + i] / 5 }
    if (NR != 20 || last < first + 0.2) { printf "score did not rise: %.3f -> %.3f over %d steps\n", first, last, NR; exit 1 }
  }'

# The same rules from --config (an array, a regex with commas and an '@' in it) give the same run.
rules=(--reward 'regex:^[a-z]( [a-z]){0,9}$@0.5' --reward 'regex:a@b' --reward length:8@0.25 --reward json@-1)
printf '{"reward": ["regex:^[a-z]( [a-z]){0,9}$@0.5", "regex:a@b", "length:8@0.25", "json@-1"]}\n' > "$tmp/rules.json"
"$rlaif" ppo "${common[@]}" "${rules[@]}" --samples-per-prompt 2 --batch 2 --steps 2 --out "$tmp/flags" >/dev/null 2>&1
"$rlaif" ppo "${common[@]}" --config "$tmp/rules.json" --samples-per-prompt 2 --batch 2 --steps 2 \
  --out "$tmp/config" >/dev/null 2>&1
strip() { sed -E 's/,"(elapsed_s|rollout_tokens_per_s|train_tokens_per_s|time\/[a-z_]+)":[^,}]*//g' "$1"; }
diff <(strip "$tmp/flags/metrics.jsonl") <(strip "$tmp/config/metrics.jsonl") >/dev/null ||
  { echo "--reward from --config differs from the command line"; exit 1; }

# A resume must repeat --reward.
"$rlaif" ppo "${common[@]}" --reward exact-match:answer --reward json --samples-per-prompt 2 --batch 2 \
  --steps 2 --save-every 1 --out "$tmp/resume" >/dev/null 2>&1
set +e
msg="$("$rlaif" ppo "${common[@]}" --reward exact-match:answer --samples-per-prompt 2 --batch 2 --steps 2 \
  --out "$tmp/resume" --resume "$tmp/resume/checkpoints/step_00000001" 2>&1)"; code=$?
set -e
[[ $code -ne 0 ]] && grep -q -- '--reward: checkpoint has' <<<"$msg" ||
  { echo "a resume with other rules was not refused ($code): $msg"; exit 1; }

# Data errors exit 1 and name the file, the line and the column.
set +e
msg="$("$rlaif" ppo "${common[@]}" --reward number:solution --steps 1 --out "$tmp/bad" 2>&1)"; code=$?
set -e
[[ $code -eq 1 ]] && grep -q -- "$prompts:1: no column \"solution\"" <<<"$msg" ||
  { echo "expected a missing-column error ($code): $msg"; exit 1; }

# Usage errors exit 2 and say what is wrong.
expect_usage() {  # message, then flags
  local want="$1"; shift
  set +e
  msg="$("$rlaif" ppo "${common[@]}" --steps 1 --out "$tmp/bad" "$@" 2>&1)"; code=$?
  set -e
  [[ $code -eq 2 ]] && grep -q -- "$want" <<<"$msg" || { echo "expected usage error '$want' ($code): $msg"; exit 1; }
}
expect_usage "give a reward: --reward-model, --critic-api, --reward-url or --reward"
expect_usage "unknown kind 'exact'" --reward exact:answer
expect_usage "exact-match needs the column" --reward exact-match
expect_usage "the weight after '@' must be a finite number, got 'x'" --reward length:8@x
expect_usage "does not compile at offset 4" --reward 'regex:ab(c'
expect_usage "length needs a positive number" --reward length:0
expect_usage "at most one of --reward-model, --critic-api and --reward-url" --reward json \
  --reward-model "$tmp/policy" --reward-url http://127.0.0.1:9/score
expect_usage "--reward-url-batch needs --reward-url" --reward json --reward-url-batch 8
expect_usage "--reward-url ftp://x/score: not an http" --reward-url ftp://x/score
expect_usage "--reward-url-concurrency must be at least 1" --reward-url http://127.0.0.1:9/score \
  --reward-url-concurrency 0
set +e
msg="$("$rlaif" tasks --out "$tmp/bad_tasks" --families sort,divide 2>&1)"; code=$?
set -e
[[ $code -eq 2 ]] && grep -q "unknown family 'divide'" <<<"$msg" || { echo "tasks --families: ($code) $msg"; exit 1; }
echo "rlaif ppo --reward: exact-match on rlaif tasks' prompts runs and logs its score, rules raise it, --config and resume agree, errors exit 2 or 1 and name the problem"
