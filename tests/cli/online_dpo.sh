#!/usr/bin/env bash
# `rlaif online-dpo` end to end: a tiny sorting policy judged by `rlaif serve` (stories260K) as
# the critic over real HTTP on loopback, and by a reward model.
#
# stories260K cannot follow a judge prompt; behind a raw chat template a judge template ending in
# "One day, Lily saw" makes it answer "a" with one token, a perfectly position-biased critic (see
# api_pipeline.sh). So single-order verdicts always prefer the sample shown as (a) and every pair
# trains; in both orders every verdict is a tie and no pair trains. The server logs one line per
# request: a run resumed from its checkpoint asks nothing it already asked. Iterative rounds
# write their pairs; bad flag combinations exit with 2.
set -euo pipefail
rlaif="$1"; root="$2"
tmp="$(mktemp -d)"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
source "$root/tests/cli/lib/sort_ppo_fixture.sh"  # $tmp/policy, prompts.jsonl, rm

source "$root/tests/cli/lib/biased_critic.sh"  # $port, served(), $tmp/biased.txt

common=(--model "$tmp/policy" --prompts "$tmp/prompts.jsonl" --batch 2 --max-new-tokens 4
        --max-prompt-length 24 --lr 1e-4 --seed 3)
critic=(--critic-api "http://127.0.0.1:$port/v1" --critic-model stories260K
        --critic-template "$tmp/biased.txt" --critic-max-tokens 1)
# The value of a top-level number field of a metrics line.
field() { sed -nE "s#.*\"$1\": *(-?[0-9.e+-]+).*#\1#p" <<<"$2"; }
# Whether two numbers are equal ("2" and "2.0" are).
same() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "" && a + 0 == b + 0) }'; }

# Single order, 3 steps: every pair trains; the first step's loss is ln 2 (policy = reference).
"$rlaif" online-dpo "${common[@]}" "${critic[@]}" --steps 3 --save-every 1 --keep 0 \
  --out "$tmp/single" > "$tmp/single.out" 2> "$tmp/single.err" ||
  { cat "$tmp/single.err"; fail "online-dpo with the critic"; }
[[ -f "$tmp/single/model.safetensors" ]] || fail "no model written"
[[ $(wc -l < "$tmp/single/metrics.jsonl") -eq 3 ]] || fail "want 3 logged steps"
first="$(head -1 "$tmp/single/metrics.jsonl")"
for k in loss rewards/chosen rewards/margins rewards/accuracies logps/chosen objective/kl \
         judge/pairs judge/skipped_fraction val/contain_eos_token; do
  grep -q "\"$k\":" <<<"$first" || fail "metric $k missing in $first"
done
awk -v l="$(field loss "$first")" 'BEGIN { d = l - log(2); exit !(d < 1e-5 && d > -1e-5) }' ||
  fail "the first loss is $(field loss "$first"), want ln 2"
same "$(field judge/pairs "$first")" 2 || fail "want 2 pairs judged in step 1: $first"
asked=$(served)
[[ $asked -eq 6 ]] || fail "the critic was asked $asked times, want 6 (3 steps x 2 pairs)"
[[ $(wc -l < "$tmp/single/requests.jsonl") -eq 6 ]] || fail "the critic's cache holds $(wc -l < "$tmp/single/requests.jsonl")"
grep -q "6 requests" "$tmp/single.err" || fail "no critic usage summary: $(tail -3 "$tmp/single.err")"

# Resumed from step 1's checkpoint into the same directory: the same steps, the same weights,
# and not one new request.
cp "$tmp/single/model.safetensors" "$tmp/uninterrupted.safetensors"
rm -rf "$tmp/single/checkpoints/step_00000002" "$tmp/single/checkpoints/step_00000003"
strip() { sed -E 's/,"(elapsed_s|tokens_per_s)":[^,}]*//g' "$1"; }
strip "$tmp/single/metrics.jsonl" > "$tmp/uninterrupted.jsonl"
"$rlaif" online-dpo "${common[@]}" "${critic[@]}" --steps 3 --save-every 1 --keep 0 \
  --out "$tmp/single" --resume "$tmp/single/checkpoints/step_00000001" > /dev/null 2> "$tmp/resume.err" ||
  { cat "$tmp/resume.err"; fail "resume"; }
[[ $(served) -eq $asked ]] || fail "the resumed run asked the critic $(( $(served) - asked )) more times"
cmp "$tmp/uninterrupted.safetensors" "$tmp/single/model.safetensors" || fail "resumed weights differ"
diff "$tmp/uninterrupted.jsonl" <(strip "$tmp/single/metrics.jsonl") > /dev/null ||
  fail "resumed metrics differ: $(diff "$tmp/uninterrupted.jsonl" <(strip "$tmp/single/metrics.jsonl") | head -4)"

# Both orders: every verdict is a tie, so no pair trains.
"$rlaif" online-dpo "${common[@]}" "${critic[@]}" --critic-both-orders --steps 1 \
  --out "$tmp/both" > /dev/null 2> "$tmp/both.err" || { cat "$tmp/both.err"; fail "both orders"; }
line="$(head -1 "$tmp/both/metrics.jsonl")"
same "$(field judge/pairs "$line")" 0 && same "$(field judge/skipped_fraction "$line")" 1 ||
  fail "both orders: want no pairs, all skipped: $line"

# Iterative, judged by the reward model: 2 rounds of 2 steps, each round's pairs written.
"$rlaif" online-dpo "${common[@]}" --reward-model "$tmp/rm" --rounds 2 --steps 4 \
  --out "$tmp/rounds" > /dev/null 2> "$tmp/rounds.err" || { cat "$tmp/rounds.err"; fail "rounds"; }
for r in 1 2; do
  [[ -s "$tmp/rounds/rounds/round_000$r.jsonl" ]] || fail "round $r wrote no pairs"
done
grep -q '"objective/scores":' "$tmp/rounds/metrics.jsonl" || fail "a scoring judge logs objective/scores"
same "$(field round "$(tail -1 "$tmp/rounds/metrics.jsonl")")" 2 || fail "the last step is not round 2"

# Judged by rule rewards (as `ppo --reward` takes them): the higher rule score wins.
"$rlaif" online-dpo "${common[@]}" --reward 'regex:^\s*[a-h]' --reward length:4@0.5 --steps 2 \
  --out "$tmp/rules" > /dev/null 2> "$tmp/rules.err" || { cat "$tmp/rules.err"; fail "rule rewards"; }
grep -q '"objective/scores_margin":' "$tmp/rules/metrics.jsonl" || fail "the rule judge logs no scores"

# Usage errors exit with 2 and name the flag.
expect_usage() {  # message, then flags
  local want="$1"; shift
  set +e
  msg="$("$rlaif" online-dpo "$@" --out "$tmp/bad" 2>&1)"; code=$?
  set -e
  [[ $code -eq 2 ]] || fail "online-dpo $*: exit $code, want 2: $msg"
  grep -q -- "$want" <<<"$msg" || fail "online-dpo $*: '$want' not in: $msg"
}
expect_usage "exactly one judge" "${common[@]}"
expect_usage "exactly one judge" "${common[@]}" "${critic[@]}" --reward-model "$tmp/rm"
expect_usage "--critic-both-orders needs --critic-api" "${common[@]}" --reward-model "$tmp/rm" --critic-both-orders
expect_usage "--rounds 5 exceeds --steps 4" "${common[@]}" --reward-model "$tmp/rm" --rounds 5 --steps 4
expect_usage "at most one of --reward-model and --reward-url" "${common[@]}" --reward-model "$tmp/rm" --reward-url http://127.0.0.1:9/score
expect_usage "exactly one judge" "${common[@]}" "${critic[@]}" --reward json
expect_usage "--reward-url-batch needs --reward-url" "${common[@]}" --reward json --reward-url-batch 4
expect_usage "--critic-api needs --critic-model" "${common[@]}" --critic-api "http://127.0.0.1:$port/v1"
expect_usage "--loss" "${common[@]}" --reward-model "$tmp/rm" --loss nope
echo "online-dpo: critic in one and both orders, resume without a new request, rounds, rules, usage errors: ok"
