#!/usr/bin/env bash
# The API pipeline end to end over real HTTP on loopback: `rlaif serve` on stories260K is the
# teacher and the critic of distill, sample, label, eval and ppo --critic-api.
#
# stories260K cannot follow a judge prompt, which the test turns to account: behind a raw chat
# template ("{prompt}") a judge template ending in "One day, Lily saw" makes it answer "a" (with
# one token) to every question, i.e. a perfectly position-biased critic. So single-order labels
# must choose whichever output was shown as (a), both-order labels must all be ties, and the win
# rate must be exactly 0.5; with a longer answer it rambles and every answer must be unparsed.
# The server logs one line per request, so the tests count what reached it: a re-run sends
# nothing, and a label run interrupted midway and re-run sends every request exactly once.
set -euo pipefail
rlaif="$1"; root="$2"
tmp="$(mktemp -d)"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
model="$root/data/models/stories260K"
fail() { echo "FAIL: $*"; exit 1; }
# The value of a top-level number or null field of a one-line JSON object.
field() { sed -nE "s/.*\"$1\": *(-?[0-9.]+|null).*/\1/p" <<<"$2"; }
lines() { if [[ -f "$1" ]]; then wc -l < "$1" | tr -d ' '; else echo 0; fi; }

source "$root/tests/cli/lib/biased_critic.sh"  # $port, served(), $tmp/biased.txt
api=(--api-base "http://127.0.0.1:$port/v1" --api-model stories260K)

printf 'Instruction: {instruction}\n(a) {output_1}\n(b) {output_2}\nThe better output is' > "$tmp/short.txt"
alpaca="$root/data/instructions/alpaca_en_demo.json"

# distill: 6 Alpaca prompts. stories260K never emits EOS, so every answer ends at --max-tokens
# ("length") and is dropped and counted; a re-run answers everything from the cache.
out="$("$rlaif" distill --prompts "$alpaca" --limit 6 "${api[@]}" --max-tokens 16 --out "$tmp/d/sft.jsonl" 2>"$tmp/err")" ||
  { cat "$tmp/err"; fail "distill"; }
[[ "$(field prompts "$out")" == 6 && "$(field written "$out")" == 0 && "$(field dropped "$out")" == 6 &&
   "$(field failed "$out")" == 0 && "$(field requests_sent "$out")" == 6 ]] || fail "distill counts: $out"
grep -q '"length": *6' <<<"$out" || fail "distill did not count the drops by reason: $out"
[[ -f "$tmp/d/sft.jsonl" && $(lines "$tmp/d/sft.jsonl") -eq 0 ]] || fail "distill output"
[[ $(lines "$tmp/d/requests.jsonl") -eq 6 ]] || fail "distill cache has $(lines "$tmp/d/requests.jsonl") entries"
before=$(served)
out="$("$rlaif" distill --prompts "$alpaca" --limit 6 "${api[@]}" --max-tokens 16 --out "$tmp/d/sft.jsonl" 2>/dev/null)"
[[ "$(field requests_sent "$out")" == 0 && "$(field cached "$out")" == 6 && $(served) -eq $before ]] ||
  fail "distill re-run sent requests: $out"

# sample: 2 completions for each of the 6 prompts; a run that died after 2 lines and a torn
# third continues to the same file, though its sequences share rows differently (continuous
# batching never changes a sequence's tokens).
sample=(--model "$model" --prompts "$alpaca" --limit 6 --n 2 --max-new-tokens 8 --seed 3 --batch 2)
"$rlaif" sample "${sample[@]}" --out "$tmp/samples.jsonl" >/dev/null 2>&1 || fail "sample"
[[ $(lines "$tmp/samples.jsonl") -eq 6 ]] || fail "sample wrote $(lines "$tmp/samples.jsonl") lines"
[[ $(grep -cE '^\{"prompt":".*","completions":\[".*",".*"\]\}$' "$tmp/samples.jsonl") -eq 6 ]] ||
  fail "sample lines are not {prompt, completions: [2]}: $(head -2 "$tmp/samples.jsonl")"
head -n 2 "$tmp/samples.jsonl" > "$tmp/resumed.jsonl"
printf '{"prompt": "Desc' >> "$tmp/resumed.jsonl"
"$rlaif" sample "${sample[@]}" --out "$tmp/resumed.jsonl" >/dev/null 2>"$tmp/err"
grep -q "2 prompts already done" "$tmp/err" || fail "sample did not continue: $(cat "$tmp/err")"
cmp -s "$tmp/samples.jsonl" "$tmp/resumed.jsonl" || fail "resumed samples differ"

# label with the default (AlpacaEval) template: its prompt exceeds stories260K's 512-token
# context, so the server refuses every request (400): exit 1, each pair "failed", named.
set +e
out="$("$rlaif" label --pairs "$tmp/samples.jsonl" "${api[@]}" --out "$tmp/l0/prefs.jsonl" 2>"$tmp/err")"; code=$?
set -e
[[ $code -eq 1 && "$(field failed "$out")" == 6 && "$(field written "$out")" == 0 ]] || fail "label with overlong prompts ($code): $out"
grep -q "samples.jsonl:1.*HTTP 400" "$tmp/err" || fail "the failed item is not named: $(cat "$tmp/err")"
[[ $(grep -c '"outcome":"failed"' "$tmp/l0/prefs.excluded.jsonl") -eq 6 ]] || fail "failed pairs not recorded"

# label, one order: the biased critic always answers "a", so every pair is kept and its chosen
# output is the one shown as (a), which the hash puts first for some pairs and second for others.
out="$("$rlaif" label --pairs "$tmp/samples.jsonl" "${api[@]}" --template "$tmp/biased.txt" --judge-max-tokens 1 \
  --out "$tmp/l1/prefs.jsonl" 2>/dev/null)" || fail "label (one order): $out"
first=$(field chosen_first "$out"); second=$(field chosen_second "$out")
[[ "$(field written "$out")" == 6 && $((first + second)) -eq 6 && $first -gt 0 && $second -gt 0 ]] ||
  fail "label (one order) counts: $out"
[[ $(lines "$tmp/l1/prefs.jsonl") -eq 6 && $(lines "$tmp/l1/prefs.excluded.jsonl") -eq 0 ]] || fail "label (one order) files"
[[ $(grep -cE '"chosen":.*"rejected":.*"judgments":\["a"\],"judgment_a":\["chosen"\]' "$tmp/l1/prefs.jsonl") -eq 6 ]] ||
  fail "chosen is not the output shown as (a): $(head -2 "$tmp/l1/prefs.jsonl")"

# label, both orders: the critic picks (a) both times, a disagreement about the outputs: all
# ties, none kept. The swapped-order questions are new requests; the others are cached.
out="$("$rlaif" label --pairs "$tmp/samples.jsonl" "${api[@]}" --template "$tmp/biased.txt" --judge-max-tokens 1 \
  --both-orders --out "$tmp/l1/both.jsonl" 2>/dev/null)" || fail "label (both orders): $out"
[[ "$(field ties "$out")" == 6 && "$(field written "$out")" == 0 && "$(field requests_sent "$out")" == 6 &&
   "$(field cached "$out")" == 6 ]] || fail "label (both orders) counts: $out"
[[ $(grep -c '"outcome":"tie","judgments":\["a","a"\]' "$tmp/l1/both.excluded.jsonl") -eq 6 ]] ||
  fail "ties not recorded: $(head -1 "$tmp/l1/both.excluded.jsonl")"

# label --against a reference file, both orders, with answers the parser rejects: every pair
# unparsed; the counts add up; a re-run sends no request and writes the same files.
sed -E 's/^\{"prompt":(.*),"completions":.*$/\1/' "$tmp/samples.jsonl" |
  awk '{printf "{\"prompt\":%s,\"completion\":\"Reference answer %d.\"}\n", $0, NR}' > "$tmp/refs.jsonl"
label=(--pairs "$tmp/samples.jsonl" --against "$tmp/refs.jsonl" "${api[@]}" --template "$tmp/short.txt" --both-orders
       --out "$tmp/l2/prefs.jsonl")
out="$("$rlaif" label "${label[@]}" 2>/dev/null)" || fail "label --against: $out"
sum=$(( $(field written "$out") + $(field ties "$out") + $(field unparsed "$out") + $(field failed "$out") ))
[[ $sum -eq 6 && "$(field unparsed "$out")" == 6 && "$(field requests_sent "$out")" == 12 ]] || fail "label --against counts: $out"
grep -q '"completions":\["[^"]*","Reference answer 1."\]' "$tmp/l2/prefs.excluded.jsonl" || fail "sample not paired with its reference"
cp "$tmp/l2/prefs.excluded.jsonl" "$tmp/first_run.jsonl"
before=$(served)
out="$("$rlaif" label "${label[@]}" 2>"$tmp/err")" || fail "label re-run"
[[ "$(field requests_sent "$out")" == 0 && "$(field cached "$out")" == 12 && $(served) -eq $before ]] ||
  fail "label re-run sent requests: $out"
grep -q "label: 0 requests" "$tmp/err" || fail "the usage summary does not say 0 requests: $(cat "$tmp/err")"
cmp -s "$tmp/first_run.jsonl" "$tmp/l2/prefs.excluded.jsonl" || fail "label re-run wrote other judgments"

# A label run interrupted midway, then re-run: every request reaches the server exactly once.
for i in $(seq 30); do printf '{"prompt": "Tell me about %d", "completions": ["Once %d", "Twice %d"]}\n' $i $i $i; done > "$tmp/many.jsonl"
many=(--pairs "$tmp/many.jsonl" "${api[@]}" --template "$tmp/short.txt" --judge-max-tokens 4 --concurrency 1
      --out "$tmp/l3/prefs.jsonl")
before=$(served)
"$rlaif" label "${many[@]}" > /dev/null 2>&1 &
label_pid=$!
for _ in $(seq 400); do [[ $(lines "$tmp/l3/requests.jsonl") -ge 5 ]] && break; sleep 0.01; done
kill -INT $label_pid 2>/dev/null || true
set +e; wait $label_pid; label_code=$?; set -e
# (130 when the signal came midway, as it should on any machine; 0 if the run won the race.)
[[ $label_code -eq 130 || $label_code -eq 0 ]] || fail "interrupted label exited $label_code"
cached_before=$(lines "$tmp/l3/requests.jsonl")
[[ $label_code -eq 0 || $cached_before -lt 30 ]] || fail "interrupted, yet every answer was in"
out="$("$rlaif" label "${many[@]}" 2>/dev/null)" || fail "label after the interruption"
[[ "$(field cached "$out")" == "$cached_before" ]] || fail "the re-run did not use the $cached_before cached answers: $out"
[[ $(( $(field requests_sent "$out") + $(field cached "$out") )) -eq 30 && "$(field unparsed "$out")" == 30 ]] ||
  fail "label after the interruption: $out"
[[ $(( $(served) - before )) -eq 30 && $(lines "$tmp/l3/requests.jsonl") -eq 30 ]] ||
  fail "$(( $(served) - before )) requests reached the server for 30 judgments (interrupted run exited $label_code)"

# eval: 3 AlpacaEval instructions against their reference outputs, both orders: all ties.
out="$("$rlaif" eval --model "$model" --prompts "$root/data/eval/alpaca_eval.json" --reference "$root/data/eval/alpaca_eval.json" \
  --limit 3 --max-new-tokens 8 "${api[@]}" --template "$tmp/biased.txt" --judge-max-tokens 1 --out "$tmp/e/judgments.jsonl" 2>/dev/null)" ||
  fail "eval: $out"
[[ "$(field items "$out")" == 3 && "$(field judged "$out")" == 3 && "$(field tie "$out")" == 3 && "$(field win_rate "$out")" == 0.5 &&
   "$(field stderr "$out")" == 0.0 && "$(field requests_sent "$out")" == 6 ]] || fail "eval summary: $out"
[[ $(lines "$tmp/e/judgments.jsonl") -eq 3 &&
   $(grep -cE '"output":.*"reference":.*"judgments":\["a","a"\],"outcome":"tie","score":0.5' "$tmp/e/judgments.jsonl") -eq 3 ]] ||
  fail "eval judgments: $(head -c 400 "$tmp/e/judgments.jsonl")"
out="$("$rlaif" eval --model "$model" --prompts "$root/data/eval/alpaca_eval.json" --reference "$root/data/eval/alpaca_eval.json" \
  --limit 3 --max-new-tokens 8 "${api[@]}" --template "$tmp/short.txt" --out "$tmp/e/rambling.jsonl" 2>/dev/null)" || fail "eval (rambling)"
[[ "$(field judged "$out")" == 0 && "$(field unparsed "$out")" == 3 && "$(field win_rate "$out")" == null ]] ||
  fail "eval with an unparsable critic: $out"

# ppo with the critic as reward: pairwise in both orders (all ties: reward 0.5 exactly), and
# rating with an unparsable critic (every answer gets --critic-unparsed-reward).
printf '%s\n' '{"prompt": "Tell a story about a cat.", "completion": "A cat sat."}' \
  '{"prompt": "Tell a story about a dog.", "completion": "A dog ran."}' > "$tmp/ppo_refs.jsonl"
ppo=(--model "$model" --prompts "$tmp/ppo_refs.jsonl" --batch 2 --steps 2 --max-new-tokens 4 --ppo-epochs 1
     --save-every 0 --critic-api "http://127.0.0.1:$port/v1" --critic-model stories260K)
out="$("$rlaif" ppo "${ppo[@]}" --critic-mode pairwise --critic-reference "$tmp/ppo_refs.jsonl" --critic-both-orders \
  --critic-template "$tmp/biased.txt" --critic-max-tokens 1 --out "$tmp/ppo1" 2>"$tmp/err")" || { cat "$tmp/err"; fail "ppo pairwise"; }
[[ "$(field score "$out")" == 0.500000 ]] || fail "ppo pairwise score: $out"
grep -q "critic: 4 answers, 0 unparsed; 8 requests" "$tmp/err" || fail "ppo pairwise critic summary: $(cat "$tmp/err")"
[[ $(lines "$tmp/ppo1/requests.jsonl") -eq 8 ]] || fail "ppo critic cache"
out="$("$rlaif" ppo "${ppo[@]}" --critic-mode rating --critic-unparsed-reward 2 --out "$tmp/ppo2" 2>"$tmp/err")" ||
  { cat "$tmp/err"; fail "ppo rating"; }
[[ "$(field score "$out")" == 2.000000 ]] || fail "ppo rating score: $out"
grep -q "critic: 4 answers, 4 unparsed" "$tmp/err" || fail "ppo rating critic summary: $(cat "$tmp/err")"

# Usage errors exit 2.
for cmd in distill sample label eval; do
  # The help is read whole before grep looks: `grep -q` in a pipe would stop reading at the first
  # match, and a long help would then die of SIGPIPE.
  help_text="$("$rlaif" $cmd --help)" || fail "$cmd --help exited $?"
  grep -q -- "--config" <<<"$help_text" || fail "$cmd --help lacks --config"
  set +e; "$rlaif" $cmd --bogus 1 >/dev/null 2>&1; code=$?; set -e
  [[ $code -eq 2 ]] || fail "$cmd --bogus exited $code"
done
set +e
"$rlaif" ppo --model "$model" --prompts "$tmp/ppo_refs.jsonl" --out "$tmp/x" >/dev/null 2>&1; c1=$?
"$rlaif" ppo "${ppo[@]}" --critic-mode pairwise --out "$tmp/x" >/dev/null 2>&1; c2=$?
"$rlaif" label --pairs "$tmp/samples.jsonl" "${api[@]}" --out "$tmp/x.jsonl" --concurrency 0 >/dev/null 2>&1; c3=$?
set -e
[[ $c1 -eq 2 && $c2 -eq 2 && $c3 -eq 2 ]] || fail "usage errors exited $c1 $c2 $c3"
echo "distill, sample, label, eval and ppo --critic-api work against rlaif serve (interrupted label exited $label_code after $cached_before answers)"
