#!/usr/bin/env bash
# `rlaif bench` on CPU: train, kernels and generate run at small sizes, print their tables and
# write JSON whose figures are positive and finite (MFU is null on CPU); usage mistakes exit 2
# with a message naming the flag.
set -uo pipefail
rlaif="$1"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail=0
flunk() { echo "FAIL: $*"; fail=1; }

# The values of "key" in a one-line JSON file, one per line.
values() { grep -o "\"$2\": [^,}]*" "$1" | sed 's/^[^:]*: //'; }
# Checks that every value of "key" exists and is a positive finite number.
positive() {  # file key
  local vals v
  vals="$(values "$1" "$2")"
  [[ -n "$vals" ]] || { flunk "$(basename "$1"): no \"$2\""; return; }
  while read -r v; do
    awk -v x="$v" 'BEGIN { exit !(x ~ /^[0-9.eE+-]+$/ && x + 0 > 0 && x + 0 < 1e300) }' ||
      flunk "$(basename "$1"): \"$2\" is $v, want a positive finite number"
  done <<<"$vals"
}
run() {  # description, command...: must exit 0
  local what="$1"; shift
  if ! "$@" > "$tmp/out.txt" 2> "$tmp/err.txt"; then
    flunk "$what exited $?"; cat "$tmp/out.txt" "$tmp/err.txt"
  fi
}
expect_usage() {  # description, expected message, command...: must exit 2 naming the problem
  local what="$1" msg="$2"; shift 2
  local out code
  out="$("$@" 2>&1)"; code=$?
  [[ $code -eq 2 ]] || flunk "$what: exit $code, want 2: $out"
  grep -q -- "$msg" <<<"$out" || flunk "$what: message lacks '$msg': $out"
}

for arch in llama gpt2; do
  run "bench train $arch" "$rlaif" bench train --arch "$arch" --preset tiny --steps 3 --warmup 1 \
    --batch 2 --seq 32 --device cpu --json "$tmp/train_$arch.json"
  grep -q "tokens/s" "$tmp/out.txt" || flunk "bench train $arch printed no tokens/s"
  for key in tokens_per_s ms_per_step peak_memory_bytes flops_per_token achieved_tflops loss params; do
    positive "$tmp/train_$arch.json" "$key"
  done
  [[ "$(values "$tmp/train_$arch.json" mfu)" == "null" ]] || flunk "MFU on CPU is not null"
  grep -q "\"arch\": \"$arch\"" "$tmp/train_$arch.json" || flunk "train JSON lacks arch $arch"
done

# --profile: a table of primitives after the metrics, and a non-empty "profile" list in the JSON
# whose shares (with the time outside primitives) account for the profiled wall time.
run "bench train --profile" "$rlaif" bench train --arch gpt2 --preset tiny --steps 1 --warmup 0 \
  --batch 2 --seq 32 --device cpu --profile --profile-top 5 --json "$tmp/profile.json"
grep -q "tokens/s" "$tmp/out.txt" || flunk "bench train --profile printed no metrics"
grep -q "^primitive .*calls.*total ms" "$tmp/out.txt" || flunk "bench train --profile: no table"
# (Which rows make the printed top 5 depends on the machine's speeds; the JSON lists them all.)
grep -q '"name": "matmul ' "$tmp/profile.json" || flunk "bench train --profile: no matmul label"
grep -q "^(outside primitives)" "$tmp/out.txt" || flunk "bench train --profile: no outside row"
[[ $(grep -c '"calls": ' "$tmp/profile.json") -ge 1 ]] || flunk "profile JSON has no profile"
[[ $(grep -o '"name": "[^"]*"' "$tmp/profile.json" | wc -l) -gt 5 ]] ||
  flunk "profile JSON lists only the printed rows"
for key in calls total_ms pct profile_wall_ms; do positive "$tmp/profile.json" "$key"; done
grep -q '"name": "attention_backward B2 T32 ' "$tmp/profile.json" ||
  flunk "profile JSON lacks attention_backward"
values "$tmp/profile.json" pct | awk '{ s += $1 } END { exit !(s > 1 && s <= 100.01) }' ||
  flunk "profile pct do not sum to a share of the wall time"
expect_usage "negative profile-top" "--profile-top" "$rlaif" bench train --profile-top -1

run "bench kernels" "$rlaif" bench kernels --device cpu --reps 1 --json "$tmp/kernels.json"
for key in copy_gb_s gemm_tflops ms tflops gb_s of_ceiling; do positive "$tmp/kernels.json" "$key"; done
for name in matmul_fwd linear_gelu_fwd matmul_bwd_dw attention_fwd attention_fwd_bwd layernorm_fwd layernorm_bwd \
            rmsnorm_fwd cross_entropy_fwd_bwd adamw_step embedding_fwd softmax swiglu; do
  grep -q "\"name\": \"$name\"" "$tmp/kernels.json" || flunk "kernels JSON lacks $name"
done
grep -q "of ceiling" "$tmp/out.txt" || flunk "bench kernels printed no table"

run "bench generate" "$rlaif" bench generate --preset tiny --device cpu --batch 1,4 \
  --prompt-len 32 --new-tokens 16 --json "$tmp/generate.json"
[[ $(values "$tmp/generate.json" tokens_per_s | wc -l) -eq 2 ]] || flunk "generate: not 2 results"
for key in tokens_per_s decode_tokens_per_s prefill_ms; do positive "$tmp/generate.json" "$key"; done

for sub in train kernels generate; do
  out="$("$rlaif" bench "$sub" --help)" || flunk "bench $sub --help failed"
  grep -q -- "--device" <<<"$out" || flunk "bench $sub --help lacks --device"
done
expect_usage "unknown flag" "unknown flag --bogus" "$rlaif" bench train --bogus 1
expect_usage "unknown benchmark" "unknown benchmark 'frob'" "$rlaif" bench frob
expect_usage "bad preset" "--preset" "$rlaif" bench train --preset 7B
expect_usage "bad arch" "--arch" "$rlaif" bench generate --arch bert
expect_usage "bad size" "--size" "$rlaif" bench kernels --size huge
expect_usage "bf16 on cpu" "needs --device cuda" "$rlaif" bench train --dtype bf16 --device cpu
expect_usage "seq past context" "--seq" "$rlaif" bench train --seq 100000
expect_usage "bad batch list" "--batch" "$rlaif" bench generate --batch 1,x
if "$rlaif" version | grep -q "^CUDA: no"; then
  out="$("$rlaif" bench kernels --device cuda 2>&1)"; code=$?
  [[ $code -eq 1 ]] && grep -q "without the CUDA backend" <<<"$out" ||
    flunk "--device cuda in a CPU-only build: exit $code: $out"
fi

((fail)) && exit 1
echo "rlaif bench works on CPU"
