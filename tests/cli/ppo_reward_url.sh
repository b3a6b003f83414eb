#!/usr/bin/env bash
# `rlaif ppo --reward-url` against the tests' score server (a process scoring 0.25, plus 1 for a
# completion equal to its "answer" column; tests/fixtures/score_server_main.cpp): the rollouts
# reach it with their prompts' columns, its scores are the logged score, a 503 is retried, a
# resumed run asks it nothing it asked before (OUT/reward_requests.jsonl) and continues as the
# uninterrupted run did, and rules add to its scores.
set -uo pipefail
rlaif="$1"; root="$2"
source "$root/tests/cli/lib/test_server.sh"
require_test_server score_server
tmp="$(mktemp -d)"
pid=""
cleanup() { [[ -n "$pid" ]] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

start_test_server --log "$tmp/received.log" --fail-first 1
url="http://127.0.0.1:$port/score"

tok="$root/data/models/stories260K/tokenizer.model"
"$rlaif" init --arch llama --layers 1 --d-model 32 --heads 2 --seq 48 --tokenizer "$tok" --seed 1 \
  --out "$tmp/policy" >/dev/null || fail "init"
"$rlaif" tasks --out "$tmp/tasks" --families sort --prompts 8 --train 0 --eval 0 --critic 0 \
  >/dev/null || fail "tasks"
run=(--model "$tmp/policy" --prompts "$tmp/tasks/prompts.jsonl" --reward-url "$url"
     --reward-url-batch 3 --advantage rloo --samples-per-prompt 2 --batch 2 --max-new-tokens 4
     --max-prompt-length 24 --seed 3 --steps 4 --save-every 2)

# Four steps of 4 completions, at most 3 a request: 2 requests a step, 8 in all, plus the 503.
"$rlaif" ppo "${run[@]}" --out "$tmp/full" > "$tmp/full.out" 2> "$tmp/full.err" ||
  { cat "$tmp/full.err"; fail "ppo --reward-url"; }
[[ $(grep -c . "$tmp/received.log") -eq 9 ]] || fail "the server got $(grep -c . "$tmp/received.log") requests, want 9"
grep -q "reward server: 9 requests (1 retried), 0 cached" "$tmp/full.err" ||
  fail "no reward server summary: $(tail -3 "$tmp/full.err")"
head -1 "$tmp/received.log" | grep -q '"columns":{"answer":"[a-z ]*","family":"sort"}' ||
  fail "the items lack their columns: $(head -c 300 "$tmp/received.log")"
# No policy this small answers right: every score is 0.25.
[[ $(grep -c '"score":0.25,' "$tmp/full/metrics.jsonl") -eq 4 ]] ||
  fail "the logged scores are not the server's: $(grep -o '"score":[^,]*' "$tmp/full/metrics.jsonl")"
[[ $(grep -c . "$tmp/full/reward_requests.jsonl") -eq 8 ]] || fail "the answers were not cached"

# Resumed from step 2 with the same OUT: steps 3 and 4 are answered from the cache.
rm -rf "$tmp/full/checkpoints/step_00000004"
: > "$tmp/received.log"
"$rlaif" ppo "${run[@]}" --out "$tmp/full" --resume "$tmp/full/checkpoints/step_00000002" \
  > /dev/null 2> "$tmp/resume.err" || { cat "$tmp/resume.err"; fail "resume"; }
[[ ! -s "$tmp/received.log" ]] || fail "the resumed run asked the server again: $(grep -c . "$tmp/received.log") requests"
grep -q "reward server: 0 requests (0 retried), 4 cached" "$tmp/resume.err" ||
  fail "resume summary: $(tail -3 "$tmp/resume.err")"
[[ $(grep -c '"score":0.25,' "$tmp/full/metrics.jsonl") -eq 4 ]] || fail "the resumed metrics differ"

# Rules add to the server's scores: length:1 takes 1 for every character past the first, so the
# score falls below 0.25, and length:1@-1 gives as much, so it rises above.
for rule in length:1 length:1@-1; do
  "$rlaif" ppo "${run[@]}" --steps 1 --reward $rule --out "$tmp/sum_$rule" \
    > /dev/null 2> "$tmp/sum.err" || { cat "$tmp/sum.err"; fail "ppo --reward-url --reward $rule"; }
done
below="$(grep -o '"score":[-0-9.e]*' "$tmp/sum_length:1/metrics.jsonl" | cut -d: -f2)"
above="$(grep -o '"score":[-0-9.e]*' "$tmp/sum_length:1@-1/metrics.jsonl" | cut -d: -f2)"
awk -v b="$below" -v a="$above" 'BEGIN { exit !(b < 0.25 && a > 0.25 && a - 0.25 == 0.25 - b) }' ||
  fail "rules did not add to the server's score: $below and $above around 0.25"
echo "ppo --reward-url: scores from the server, a 503 retried, a resume asks nothing twice, rules add"

