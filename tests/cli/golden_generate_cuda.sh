#!/usr/bin/env bash
# The stories260K golden generation (see golden_generate.sh) reproduced on the GPU: greedy
# decoding from BOS for 200 tokens with --device cuda must print exactly llama2.c's text.
# Exits 77 (CTest: skipped) where this binary has no CUDA backend or the machine no device.
set -uo pipefail
rlaif="$1"; root="$2"
err="$(mktemp)"; trap 'rm -f "$err"' EXIT
got="$("$rlaif" generate --model "$root/data/models/stories260K" --prompt "" --temperature 0 \
        --max-new-tokens 200 --device cuda 2>"$err")"
status=$?
if [[ $status -ne 0 ]]; then
  if grep -qE "without the CUDA backend|no CUDA backend|no usable CUDA device|does not exist" "$err"; then
    echo "skipped: $(head -c 300 "$err")"
    exit 77
  fi
  cat "$err"; exit 1
fi
want="$(cat "$root/tests/data/stories260K_expected_greedy_200.txt")"
if [[ "$got" != "$want" ]]; then
  echo "golden generation on cuda differs from llama2.c's output:"
  diff <(printf '%s\n' "$want") <(printf '%s\n' "$got") || true
  exit 1
fi
echo "golden generation on cuda matches llama2.c (200 tokens)"
