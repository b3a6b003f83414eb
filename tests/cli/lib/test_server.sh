# Sourced by the command-line tests that talk to one of the tests' own servers (tests/fixtures:
# fake_openai_server, score_server), after `rlaif="$1"`:
#   require_test_server NAME   sets $server to the built NAME, or skips the test (exit 77) where
#                              the tests were not built
#   start_test_server ARGS...  starts $server on a free port with ARGS (needs $tmp and fail());
#                              sets $pid, for the caller's cleanup to kill, and $port
require_test_server() {
  server="$(dirname "$rlaif")/../tests/$1"
  [[ -x "$server" ]] || { echo "skipped: no $server (tests not built)"; exit 77; }
}
start_test_server() {
  rm -f "$tmp/port"
  "$server" --port-file "$tmp/port" "$@" &
  pid=$!
  for _ in $(seq 200); do [[ -s "$tmp/port" ]] && break; sleep 0.05; done
  [[ -s "$tmp/port" ]] || fail "$(basename "$server") did not start"
  port="$(cat "$tmp/port")"
}
