#!/usr/bin/env bash
# The command-line contract of docs/DESIGN.md (Command line): --help everywhere (exit 0), usage
# errors exit 2 with a hint, runtime failures exit 1 with one clear message.
set -uo pipefail
rlaif="$1"; root="$2"
fail=0
expect() {  # expected-exit-code, description, command...
  local want="$1" what="$2"
  shift 2
  local out
  out="$("$@" 2>&1)"
  local got=$?
  if [[ $got -ne $want ]]; then
    echo "FAIL: $what: exit $got, want $want; output:"; echo "$out"; fail=1
  fi
  LAST_OUTPUT="$out"
}
expect 0 "rlaif --help" "$rlaif" --help
expect 2 "no command" "$rlaif"
expect 2 "unknown command" "$rlaif" frobnicate
for cmd in version init generate eval-loss "tokenizer train" tokenize; do
  # shellcheck disable=SC2086
  expect 0 "$cmd --help" "$rlaif" $cmd --help
  grep -q -- "--config" <<<"$LAST_OUTPUT" || { echo "FAIL: $cmd --help lacks --config"; fail=1; }
done
expect 0 "version" "$rlaif" version
grep -q "^backends: cpu (f32)" <<<"$LAST_OUTPUT" || { echo "FAIL: version lacks the backends"; fail=1; }
# The porter's checklist: as many primitives as kernels/backend.h's list has entries, counted right.
expect 0 "version --primitives" "$rlaif" version --primitives
required_in_source="$(grep -c '^  REQUIRED(' "$root/kernels/backend.h")"
optional_in_source="$(grep -c '^  OPTIONAL(' "$root/kernels/backend.h")"
listed="$(grep -c '^  [a-z_0-9]*$' <<<"$LAST_OUTPUT")"
grep -q "^$required_in_source required primitives" <<<"$LAST_OUTPUT" &&
  grep -q "^$optional_in_source optional primitives" <<<"$LAST_OUTPUT" &&
  [[ "$listed" -eq $((required_in_source + optional_in_source)) ]] ||
  { echo "FAIL: version --primitives does not list backend.h's $required_in_source + $optional_in_source primitives:"; echo "$LAST_OUTPUT"; fail=1; }
expect 2 "unknown flag" "$rlaif" generate --model x --bogus 1
grep -q "unknown flag --bogus" <<<"$LAST_OUTPUT" || { echo "FAIL: unknown flag not named"; fail=1; }
expect 2 "missing required flag" "$rlaif" init --layers 2
grep -q "missing required flag" <<<"$LAST_OUTPUT" || { echo "FAIL: missing flag not named"; fail=1; }
expect 2 "bad integer" "$rlaif" init --layers two --d-model 8 --heads 2 --seq 8 --vocab 10 --out /tmp/x
grep -q "must be an integer" <<<"$LAST_OUTPUT" || { echo "FAIL: bad integer not explained"; fail=1; }
expect 1 "missing model dir" "$rlaif" generate --model /nonexistent --prompt hi
grep -q "/nonexistent" <<<"$LAST_OUTPUT" || { echo "FAIL: missing dir not named"; fail=1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo '{"max-new-tokens": 3, "temperature": 0}' > "$tmp/config.json"
expect 0 "--config supplies flags" "$rlaif" generate --model "$root/data/models/stories260K" \
  --prompt "Once" --config "$tmp/config.json"
echo '{"max-new-tokens": 3,' > "$tmp/bad.json"
expect 2 "--config with bad JSON" "$rlaif" generate --model "$root/data/models/stories260K" \
  --prompt "Once" --config "$tmp/bad.json"
grep -q "bad.json:[0-9]" <<<"$LAST_OUTPUT" || { echo "FAIL: bad config line not named: $LAST_OUTPUT"; fail=1; }
# A NUL byte would end the parser's text early (silently dropping what follows): refused, by line.
printf '{"max-new-tokens": 3}\n\0{"temperature": 9}' > "$tmp/nul.json"
expect 2 "--config with a NUL byte" "$rlaif" generate --model "$root/data/models/stories260K" \
  --prompt "Once" --config "$tmp/nul.json"
grep -q "nul.json:2: a NUL byte" <<<"$LAST_OUTPUT" || { echo "FAIL: NUL byte not named: $LAST_OUTPUT"; fail=1; }
((fail)) && exit 1
echo "cli contract holds"
