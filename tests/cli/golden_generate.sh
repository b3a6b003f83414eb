#!/usr/bin/env bash
# The shipped stories260K model, greedy from BOS for 200 tokens, must print exactly what
# llama2.c's reference implementation prints (tests/data/stories260K_expected_greedy_200.txt).
set -euo pipefail
rlaif="$1"; root="$2"
got="$("$rlaif" generate --model "$root/data/models/stories260K" --prompt "" --temperature 0 \
        --max-new-tokens 200)"
want="$(cat "$root/tests/data/stories260K_expected_greedy_200.txt")"
if [[ "$got" != "$want" ]]; then
  echo "golden generation differs from llama2.c's output:"
  diff <(printf '%s\n' "$want") <(printf '%s\n' "$got") || true
  exit 1
fi
echo "golden generation matches llama2.c (200 tokens)"
