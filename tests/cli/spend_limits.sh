#!/usr/bin/env bash
# Spending limits and dry runs against the tests' fake OpenAI server (a process that logs every
# request body it receives, answering "Output (a)"; its usage counts bytes as tokens):
# --dry-run sends nothing; --max-requests stops distill, label and eval at exactly that many
# requests, with every answer paid for cached and the outputs holding whole lines; a re-run with a
# higher limit sends only the rest, none twice; --max-total-tokens stops once usage crosses it; ppo
# --critic-api (on 1 and 2 ranks) and online-dpo at their limits save a checkpoint, and resuming
# asks nothing twice; experiment shares its limit among its API stages.
set -uo pipefail
rlaif="$1"; root="$2"
source "$root/tests/cli/lib/test_server.sh"
require_test_server fake_openai_server
tmp="$(mktemp -d)"
pid=""
cleanup() { [[ -n "$pid" ]] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
lines() { if [[ -f "$1" ]]; then grep -c . "$1"; else echo 0; fi; }
# The value of a top-level number or boolean field of a one-line JSON object.
field() { sed -nE "s/.*\"$1\": *(-?[0-9.]+|true|false).*/\1/p" <<<"$2"; }

start_test_server --log "$tmp/received.log" --answer "Output (a)"
base="http://127.0.0.1:$port/v1"
api=(--api-base "$base" --api-model teacher)
sent() { lines "$tmp/received.log"; }

for i in 1 2 3 4 5 6; do printf '{"prompt": "prompt %d"}\n' "$i"; done > "$tmp/prompts.jsonl"
distill=("$rlaif" distill --prompts "$tmp/prompts.jsonl" "${api[@]}" --max-tokens 16 --out "$tmp/d/sft.jsonl")

# A dry run: the estimate, and not one request.
out="$("${distill[@]}" --dry-run 2>"$tmp/err")" || { cat "$tmp/err"; fail "distill --dry-run"; }
[[ "$(field requests "$out")" == 6 && "$(field max_completion_tokens "$out")" == 96 ]] ||
  fail "distill --dry-run: $out"
[[ "$(field prompt_tokens "$out")" == 12 ]] || fail "6 prompts of 8 bytes are 12 tokens: $out"
[[ $(sent) -eq 0 ]] || fail "the dry run sent $(sent) requests"
[[ ! -e "$tmp/d/requests.jsonl" ]] || fail "the dry run created the cache"

# At --max-requests 2 (3 in flight at once): exactly 2 sent, both cached and written, exit 3.
out="$("${distill[@]}" --max-requests 2 --concurrency 3 2>"$tmp/err")"; code=$?
[[ $code -eq 3 ]] || { cat "$tmp/err"; fail "distill at its limit exited $code, want 3"; }
[[ $(sent) -eq 2 ]] || fail "distill --max-requests 2 sent $(sent)"
[[ $(lines "$tmp/d/requests.jsonl") -eq 2 && $(lines "$tmp/d/sft.jsonl") -eq 2 ]] ||
  fail "want 2 cached answers and 2 demonstrations"
[[ "$(field not_sent "$out")" == 4 && "$(field stopped_by_spend_limit "$out")" == true ]] ||
  fail "distill summary: $out"
# Each reply reports the prompt's bytes (8) and the answer's (10) as tokens.
grep -q "distill: spent 2 requests, 16 prompt + 20 completion tokens (36 in all)" "$tmp/err" ||
  fail "no spend line: $(cat "$tmp/err")"
grep -q "stopped by the spending limit --max-requests 2 (2 sent)" "$tmp/err" ||
  fail "no limit message: $(cat "$tmp/err")"

# The dry run now counts only what the cache lacks; the re-run sends only that, none twice.
out="$("${distill[@]}" --dry-run 2>/dev/null)"
[[ "$(field requests "$out")" == 4 && "$(field cached "$out")" == 2 ]] || fail "dry run after: $out"
out="$("${distill[@]}" --max-requests 10 2>"$tmp/err")" || { cat "$tmp/err"; fail "distill re-run"; }
[[ $(sent) -eq 6 && $(lines "$tmp/d/sft.jsonl") -eq 6 ]] || fail "the re-run: $(sent) sent in all"
[[ $(sort "$tmp/received.log" | uniq -d | wc -l) -eq 0 ]] || fail "a request was sent twice"
grep -q "distill: spent 4 requests" "$tmp/err" || fail "re-run spend line: $(cat "$tmp/err")"

# --max-total-tokens 40, one at a time: 18 tokens an answer, so the third crosses it.
before=$(sent)
out="$("$rlaif" distill --prompts "$tmp/prompts.jsonl" "${api[@]}" --concurrency 1 --max-total-tokens 40 \
  --out "$tmp/t/sft.jsonl" 2>"$tmp/err")"; code=$?
[[ $code -eq 3 && $(($(sent) - before)) -eq 3 ]] ||
  fail "--max-total-tokens 40 exited $code after $(($(sent) - before)) requests, want 3 and 3"
grep -q "stopped by the spending limit --max-total-tokens 40 (54 counted)" "$tmp/err" ||
  fail "token limit message: $(cat "$tmp/err")"

# label in both orders: at --max-requests 3 one pair is whole, the rest in neither file.
for i in 1 2 3 4; do
  printf '{"prompt": "q%d", "completions": ["x%d", "y%d"]}\n' "$i" "$i" "$i"
done > "$tmp/pairs.jsonl"
label=("$rlaif" label --pairs "$tmp/pairs.jsonl" "${api[@]}" --both-orders --concurrency 1 --out "$tmp/l/prefs.jsonl")
before=$(sent)
out="$("${label[@]}" --dry-run 2>/dev/null)"
[[ "$(field requests "$out")" == 8 && $(sent) -eq $before ]] || fail "label --dry-run: $out"
out="$("${label[@]}" --max-requests 3 2>"$tmp/err")"; code=$?
[[ $code -eq 3 && $(($(sent) - before)) -eq 3 ]] || fail "label at its limit exited $code"
[[ $(($(lines "$tmp/l/prefs.jsonl") + $(lines "$tmp/l/prefs.excluded.jsonl"))) -eq 1 ]] ||
  fail "label wrote more than the one pair answered in both orders"
[[ "$(field not_sent "$out")" == 3 && $(lines "$tmp/l/requests.jsonl") -eq 3 ]] || fail "label: $out"
"${label[@]}" > /dev/null 2>&1 || fail "label re-run without a limit"
[[ $(($(sent) - before)) -eq 8 && $(lines "$tmp/l/prefs.excluded.jsonl") -eq 4 ]] ||
  fail "the label re-run: $(($(sent) - before)) sent, want 8 in all"

# ppo with the critic as reward (pairwise against references, 2 requests a step): at
# --max-requests 3 the second step cannot be scored, so the run saves step 1 and exits 3;
# resumed with a higher limit it asks only what it lacks.
model="$root/data/models/stories260K"
printf '%s\n' '{"prompt": "Tell a story about a cat.", "completion": "A cat sat."}' \
  '{"prompt": "Tell a story about a dog.", "completion": "A dog ran."}' > "$tmp/refs.jsonl"
ppo=("$rlaif" ppo --model "$model" --prompts "$tmp/refs.jsonl" --batch 2 --steps 3 --max-new-tokens 4
     --ppo-epochs 1 --save-every 0 --critic-api "$base" --critic-model critic --critic-mode pairwise
     --critic-reference "$tmp/refs.jsonl" --critic-concurrency 1 --out "$tmp/ppo")
before=$(sent)
out="$("${ppo[@]}" --dry-run 2>"$tmp/err")" || { cat "$tmp/err"; fail "ppo --dry-run"; }
[[ "$(field requests "$out")" == 6 && $(sent) -eq $before && ! -e "$tmp/ppo" ]] ||
  fail "ppo --dry-run: $out"
out="$("${ppo[@]}" --max-requests 3 2>"$tmp/err")"; code=$?
[[ $code -eq 3 ]] || { cat "$tmp/err"; fail "ppo at its limit exited $code, want 3"; }
[[ $(($(sent) - before)) -eq 3 && $(lines "$tmp/ppo/requests.jsonl") -eq 3 ]] ||
  fail "ppo --max-requests 3 sent $(($(sent) - before))"
[[ -d "$tmp/ppo/checkpoints/step_00000001" && "$(field steps "$out")" == 1 ]] ||
  fail "no checkpoint of step 1: $out"
grep -q "ppo: critic: spent 3 requests" "$tmp/err" || fail "ppo spend line: $(cat "$tmp/err")"
out="$("${ppo[@]}" --max-requests 10 --resume "$tmp/ppo/checkpoints/step_00000001" 2>"$tmp/err")" ||
  { cat "$tmp/err"; fail "ppo resumed"; }
[[ "$(field steps "$out")" == 3 && $(($(sent) - before)) -eq 6 ]] ||
  fail "the resumed ppo sent $(($(sent) - before)) in all, want 6: $out"
[[ $(sort "$tmp/received.log" | uniq -d | wc -l) -eq 0 ]] || fail "ppo sent a request twice"

# eval (2 items, 2 judgments each): the dry run generates and sends nothing; at --max-requests 3
# one item is judged and written, the other in no file; the re-run judges only the rest.
ev=("$rlaif" eval --model "$model" --prompts "$tmp/refs.jsonl" --reference "$tmp/refs.jsonl"
    --max-new-tokens 4 "${api[@]}" --concurrency 1 --out "$tmp/e/judgments.jsonl")
before=$(sent)
out="$("${ev[@]}" --dry-run 2>/dev/null)"
[[ "$(field requests "$out")" == 4 && "$(field max_completion_tokens "$out")" == 64 && $(sent) -eq $before ]] ||
  fail "eval --dry-run: $out"
out="$("${ev[@]}" --max-requests 3 2>"$tmp/err")"; code=$?
[[ $code -eq 3 && $(($(sent) - before)) -eq 3 && $(lines "$tmp/e/judgments.jsonl") -eq 1 ]] ||
  { cat "$tmp/err"; fail "eval at its limit exited $code after $(($(sent) - before)) requests"; }
[[ "$(field judged "$out")" == 1 && "$(field not_sent "$out")" == 1 ]] || fail "eval summary: $out"
"${ev[@]}" > /dev/null 2>&1 || fail "eval re-run"
[[ $(($(sent) - before)) -eq 4 && $(lines "$tmp/e/judgments.jsonl") -eq 2 ]] ||
  fail "the eval re-run: $(($(sent) - before)) sent in all, want 4"

# online-dpo judged by the critic (2 pairs a step) likewise: step 2 cannot be judged at
# --max-requests 3; the resumed run asks only what it lacks.
odpo=("$rlaif" online-dpo --model "$model" --prompts "$tmp/refs.jsonl" --batch 2 --steps 3
      --max-new-tokens 4 --save-every 0 --critic-api "$base" --critic-model critic
      --critic-concurrency 1 --out "$tmp/odpo")
before=$(sent)
out="$("${odpo[@]}" --max-requests 3 2>"$tmp/err")"; code=$?
[[ $code -eq 3 && $(($(sent) - before)) -eq 3 && -d "$tmp/odpo/checkpoints/step_00000001" ]] ||
  { cat "$tmp/err"; fail "online-dpo at its limit exited $code after $(($(sent) - before)) requests"; }
[[ "$(field stopped_by_spend_limit "$out")" == true ]] || fail "online-dpo summary: $out"
out="$("${odpo[@]}" --max-requests 10 --resume "$tmp/odpo/checkpoints/step_00000001" 2>"$tmp/err")" ||
  { cat "$tmp/err"; fail "online-dpo resumed"; }
[[ "$(field steps "$out")" == 3 && $(($(sent) - before)) -eq 6 ]] ||
  fail "the resumed online-dpo sent $(($(sent) - before)) in all, want 6: $out"
[[ $(sort "$tmp/received.log" | uniq -d | wc -l) -eq 0 ]] || fail "online-dpo sent a request twice"

# experiment: its API stages share the limit. At 2 requests the teacher's distill stops; with 4
# the distill finishes (4 more), SFT trains, and the judge's stage is refused before it starts.
cat > "$tmp/exp.json" <<JSON
{"base_model": "$model", "train_prompts": "$tmp/prompts.jsonl", "eval_prompts": "$tmp/refs.jsonl",
 "strong_teacher": {"api_base": "$base", "model": "strong"}, "critic": {"api_base": "$base", "model": "judge"},
 "arms": ["sft_strong"], "sft": {"steps": 1, "batch": 2, "max-length": 32, "save-every": 0}}
JSON
before=$(sent)
"$rlaif" experiment --config "$tmp/exp.json" --out "$tmp/exp" --max-requests 2 >/dev/null 2>"$tmp/err"; code=$?
[[ $code -eq 3 && $(($(sent) - before)) -eq 2 ]] ||
  { cat "$tmp/err"; fail "experiment at 2 requests exited $code after $(($(sent) - before))"; }
grep -q "experiment: spent 2 requests" "$tmp/err" || fail "experiment spend line: $(cat "$tmp/err")"
"$rlaif" experiment --config "$tmp/exp.json" --out "$tmp/exp" --max-requests 4 >/dev/null 2>"$tmp/err"; code=$?
[[ $code -eq 3 && $(($(sent) - before)) -eq 6 && -f "$tmp/exp/stages/sft_strong.json" ]] ||
  { cat "$tmp/err"; fail "experiment at 4 more requests exited $code after $(($(sent) - before)) in all"; }
grep -q "the spending limit is reached before eval_sft_strong" "$tmp/err" ||
  fail "experiment did not stop before the judge: $(cat "$tmp/err")"

# ppo's limit on 2 ranks (rank 0 asks the critic for both; last, as it repeats the 1-rank run's
# requests): every rank stops at step 2 together, step 1's checkpoint is written, and mpirun exits 3
# instead of hanging in the scores' broadcast.
(
  source "$root/tests/cli/lib/mpi_env.sh"  # exits 77 (this subshell only) without MPI
  before=$(sent)
  out="$(mpirun -np 2 "${ppo[@]:0:${#ppo[@]}-2}" --out "$tmp/ppo_mpi" --max-requests 3 2>"$tmp/err")"
  code=$?
  [[ $code -eq 3 ]] || { cat "$tmp/err"; fail "ppo on 2 ranks at its limit exited $code, want 3"; }
  [[ $(($(sent) - before)) -eq 3 && -d "$tmp/ppo_mpi/checkpoints/step_00000001" ]] ||
    fail "ppo on 2 ranks sent $(($(sent) - before)), want 3, and checkpoints: $(ls "$tmp/ppo_mpi/checkpoints")"
  [[ "$(field steps "$out")" == 1 && $(grep -c "stopped before step 2" "$tmp/err") -eq 1 ]] ||
    { cat "$tmp/err"; fail "ppo on 2 ranks: want one report of the stop: $out"; }
)
code=$?
[[ $code -eq 0 || $code -eq 77 ]] || exit "$code"

# Usage errors exit 2.
"${distill[@]}" --max-requests -1 >/dev/null 2>&1; code=$?
[[ $code -eq 2 ]] || fail "--max-requests -1 exited $code"
echo "limits held at 2, 3 and 3 requests and 40 tokens; re-runs sent only the rest; dry runs sent nothing"
