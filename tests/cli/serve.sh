#!/usr/bin/env bash
# `rlaif serve`: with --port 0 it binds a free port and prints "listening on http://HOST:PORT";
# it answers /v1/models and a greedy chat completion equal to `rlaif generate --chat`'s output
# (over real HTTP, with curl); with an API key (RLAIF_API_KEY) requests without it get 401; a
# non-loopback --host without a key is refused (exit 2); a second server on the same port is
# refused; SIGTERM drains and stops it cleanly (exit 0).
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

key="sk-cli-$RANDOM$RANDOM"
auth=(-H "Authorization: Bearer $key")
RLAIF_API_KEY="$key" "$rlaif" serve --model "$model" --port 0 > "$tmp/out" 2> "$tmp/err" &
pid=$!
for _ in $(seq 300); do
  grep -q "listening on" "$tmp/out" && break
  kill -0 "$pid" 2> /dev/null || fail "serve exited before listening"
  sleep 0.1
done
url="$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$tmp/out" | head -n 1 || true)"
[[ -n "$url" ]] || fail "no 'listening on http://127.0.0.1:PORT' line within 30 s"
port="${url##*:}"

models="$(curl -sS --max-time 10 "${auth[@]}" "$url/v1/models")"
[[ "$models" == *'"id":"stories260K"'* ]] || fail "/v1/models: $models"
for header in "" "Authorization: Bearer wrong-key"; do
  code="$(curl -sS --max-time 10 -o "$tmp/401" -w '%{http_code}' ${header:+-H "$header"} \
            "$url/v1/models")"
  [[ "$code" == 401 ]] || fail "/v1/models with '${header}' answered $code, not 401"
  grep -q '"code":"invalid_api_key"' "$tmp/401" || fail "401 body: $(cat "$tmp/401")"
done

prompt="Tell me a story about a cat."
body='{"model":"stories260K","messages":[{"role":"user","content":"'"$prompt"'"}],"temperature":0,"max_tokens":30}'
chat="$(curl -sS --max-time 30 "${auth[@]}" -H 'Content-Type: application/json' -d "$body" \
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

bad="$(curl -sS --max-time 10 "${auth[@]}" -o /dev/null -w '%{http_code}' -d '{"messages":"x"}' \
         "$url/v1/chat/completions")"
[[ "$bad" == 400 ]] || fail "malformed request answered $bad, not 400"

# The port is taken: a second server must say so, not share it.
if "$rlaif" serve --model "$model" --port "$port" > /dev/null 2> "$tmp/err2"; then
  fail "a second server started on the taken port $port"
fi
grep -q -- "--port" "$tmp/err2" || fail "second server's error does not name --port: $(cat "$tmp/err2")"

# Without a key, only loopback: any other --host is refused before the model loads.
code=0
env -u RLAIF_API_KEY "$rlaif" serve --model "$model" --host 0.0.0.0 --port 0 > /dev/null \
  2> "$tmp/err3" || code=$?
[[ "$code" == 2 ]] || fail "serve --host 0.0.0.0 without a key exited $code, not 2"
grep -q -- "--host" "$tmp/err3" && grep -q -- "--api-key" "$tmp/err3" ||
  fail "the refusal does not name --host and --api-key: $(cat "$tmp/err3")"

kill -TERM "$pid"
for _ in $(seq 100); do
  kill -0 "$pid" 2> /dev/null || break
  sleep 0.1
done
kill -0 "$pid" 2> /dev/null && fail "still running 10 s after SIGTERM"
rc=0
wait "$pid" || rc=$?
pid=""
[[ "$rc" == 0 ]] || fail "exit status $rc after SIGTERM"
grep -q "draining" "$tmp/err" || fail "no drain message after SIGTERM"
grep -q "stopped after 1 requests" "$tmp/err" || fail "no clean-stop message"
echo "serve: /v1/models, chat completion = rlaif generate --chat, API key required, port clash" \
  "and keyless non-loopback refused, SIGTERM drains and exits 0"
