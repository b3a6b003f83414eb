#!/usr/bin/env bash
# `rlaif serve`: with --port 0 it binds a free port and prints "listening on http://HOST:PORT";
# it answers /v1/models and a greedy chat completion equal to `rlaif generate --chat`'s output
# (over real HTTP, with curl); a second server on the same port is refused; SIGINT stops it
# cleanly (exit 0).
set -euo pipefail
rlaif="$1"; root="$2"
command -v curl > /dev/null || { echo "curl is not installed"; exit 77; }
model="$root/data/models/stories260K"
tmp="$(mktemp -d)"
pid=""
cleanup() {
  if [[ -n "$pid" ]] && kill -0 "$pid" 2> /dev/null; then kill -9 "$pid" 2> /dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; echo "--- stdout"; cat "$tmp/out"; echo "--- stderr"; cat "$tmp/err"; exit 1; }

"$rlaif" serve --model "$model" --port 0 > "$tmp/out" 2> "$tmp/err" &
pid=$!
for _ in $(seq 300); do
  grep -q "listening on" "$tmp/out" && break
  kill -0 "$pid" 2> /dev/null || fail "serve exited before listening"
  sleep 0.1
done
url="$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$tmp/out" | head -n 1 || true)"
[[ -n "$url" ]] || fail "no 'listening on http://127.0.0.1:PORT' line within 30 s"
port="${url##*:}"

models="$(curl -sS --max-time 10 "$url/v1/models")"
[[ "$models" == *'"id":"stories260K"'* ]] || fail "/v1/models: $models"

prompt="Tell me a story about a cat."
body='{"model":"stories260K","messages":[{"role":"user","content":"'"$prompt"'"}],"temperature":0,"max_tokens":30}'
chat="$(curl -sS --max-time 30 -H 'Content-Type: application/json' -d "$body" \
          "$url/v1/chat/completions")"
want="$("$rlaif" generate --model "$model" --chat --prompt "$prompt" --temperature 0 \
          --max-new-tokens 30 2> /dev/null)"
# The JSON string the server must have written for `want` (RapidJSON escapes \, " and controls).
esc="${want//\\/\\\\}"
esc="${esc//\"/\\\"}"
esc="${esc//$'\n'/\\n}"
[[ -n "$want" ]] || fail "rlaif generate printed nothing"
[[ "$chat" == *"\"content\":\"$esc\""* ]] || fail "chat completion differs from rlaif generate --chat:
  server:   $chat
  generate: $want"
[[ "$chat" == *'"object":"chat.completion"'* && "$chat" == *'"usage":{"prompt_tokens":'* ]] ||
  fail "not an OpenAI chat.completion: $chat"

bad="$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -d '{"messages":"x"}' \
         "$url/v1/chat/completions")"
[[ "$bad" == 400 ]] || fail "malformed request answered $bad, not 400"

# The port is taken: a second server must say so, not share it.
if "$rlaif" serve --model "$model" --port "$port" > /dev/null 2> "$tmp/err2"; then
  fail "a second server started on the taken port $port"
fi
grep -q -- "--port" "$tmp/err2" || fail "second server's error does not name --port: $(cat "$tmp/err2")"

kill -INT "$pid"
for _ in $(seq 100); do
  kill -0 "$pid" 2> /dev/null || break
  sleep 0.1
done
kill -0 "$pid" 2> /dev/null && fail "still running 10 s after SIGINT"
rc=0
wait "$pid" || rc=$?
pid=""
[[ "$rc" == 0 ]] || fail "exit status $rc after SIGINT"
grep -q "stopped after 1 requests" "$tmp/err" || fail "no clean-stop message"
echo "serve: /v1/models, chat completion = rlaif generate --chat, port clash refused, SIGINT exit 0"
