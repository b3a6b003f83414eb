#!/usr/bin/env bash
# A `label` run interrupted midway (SIGINT, as Ctrl-C) and run again finishes with every pair
# labelled exactly once, and the critic never receives the same request twice: answers are cached
# in OUT/requests.jsonl as they arrive. The critic is the tests' fake OpenAI server (a process
# that logs every request body it receives), answering "Output (a)" after 0.3 s.
set -uo pipefail
rlaif="$1"; root="$2"
source "$root/tests/cli/lib/test_server.sh"
require_test_server fake_openai_server
tmp="$(mktemp -d)"
pid=""
cleanup() { [[ -n "$pid" ]] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

start_test_server --log "$tmp/received.log" --answer "Output (a)" --delay 0.3
api=(--api-base "http://127.0.0.1:$port/v1" --api-model critic --concurrency 2)

n=16
for i in $(seq $n); do
  printf '{"prompt": "question %d", "completions": ["first answer %d", "second answer %d"]}\n' \
    "$i" "$i" "$i"
done > "$tmp/pairs.jsonl"

# First run: interrupted after about a quarter of the pairs.
"$rlaif" label --pairs "$tmp/pairs.jsonl" "${api[@]}" --out "$tmp/run/prefs.jsonl" \
  > "$tmp/first.out" 2> "$tmp/first.err" &
label=$!
# Interrupt once a few answers are in (polled, so a slow machine does not change the outcome).
for _ in $(seq 400); do
  [[ $(grep -c . "$tmp/run/requests.jsonl" 2>/dev/null || true) -ge 4 ]] && break
  sleep 0.025
done
kill -INT "$label"
wait "$label"; code=$?
[[ $code -ne 0 ]] || fail "the interrupted label run exited 0 (it finished before the signal?)"
cached=$(grep -c . "$tmp/run/requests.jsonl" 2>/dev/null || echo 0)
[[ $cached -gt 0 && $cached -lt $n ]] || fail "after the interrupt the cache holds $cached of $n answers"

# Second run: finishes the rest.
"$rlaif" label --pairs "$tmp/pairs.jsonl" "${api[@]}" --out "$tmp/run/prefs.jsonl" \
  > "$tmp/second.out" 2> "$tmp/second.err" || { cat "$tmp/second.err"; fail "the re-run failed"; }
[[ $(grep -c . "$tmp/run/prefs.jsonl") -eq $n ]] ||
  fail "prefs has $(grep -c . "$tmp/run/prefs.jsonl") pairs, want $n"
for i in $(seq $n); do
  [[ $(grep -c "\"question $i\"" "$tmp/run/prefs.jsonl") -eq 1 ]] || fail "pair $i is not labelled exactly once"
done
received=$(grep -c . "$tmp/received.log")
duplicates=$(sort "$tmp/received.log" | uniq -d | wc -l)
[[ $duplicates -eq 0 ]] || fail "$duplicates request bodies were sent twice"
[[ $received -eq $n ]] || fail "the critic received $received requests for $n pairs"
echo "interrupted after $cached of $n answers; the re-run sent the other $((n - cached)); none twice"
