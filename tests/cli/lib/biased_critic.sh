# Sourced by the command-line tests that need an LLM critic over real HTTP, with $rlaif, $root,
# $tmp and fail() set and $server_pid killed by the caller's cleanup: `rlaif serve` on
# stories260K behind a raw chat template ("{prompt}"), on a free loopback port ($port).
# stories260K cannot follow a judge prompt, which the tests turn to account: the judge template
# $tmp/biased.txt ends in "One day, Lily saw", which makes it answer "a" (with one token) to every
# question: a perfectly position-biased critic. The server logs one line per request to
# $tmp/serve.err; served() counts them.
"$rlaif" serve --model "$root/data/models/stories260K" --port 0 --chat-template '{prompt}' \
  > "$tmp/serve.out" 2> "$tmp/serve.err" &
server_pid=$!
port=""
for _ in $(seq 200); do
  # The background job may not have opened its output yet: no file is no port, not an error.
  port="$(sed -nE 's|^listening on http://127\.0\.0\.1:([0-9]+)$|\1|p' "$tmp/serve.out" 2>/dev/null || true)"
  [[ -n "$port" ]] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$tmp/serve.err"; fail "the server exited"; }
  sleep 0.05
done
[[ -n "$port" ]] || fail "the server never said where it listens"
served() { grep -c 'POST /v1/chat/completions' "$tmp/serve.err" || true; }
printf '{instruction}\n(a) {output_1}\n(b) {output_2}\nOne day, Lily saw' > "$tmp/biased.txt"
