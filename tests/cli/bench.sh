#!/usr/bin/env bash
# `rlaif bench` on CPU: train, dpo, kernels, attention and generate run at small sizes, print their tables and
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

# The memory split is in the JSON of every run: weights, gradients and AdamW's two moments of
# every f32 parameter (no master copies in f32), and the activations the forward pass keeps.
f="$tmp/train_llama.json"
for key in weights_bytes grad_bytes optimizer_bytes trainable_params; do positive "$f" "$key"; done
params="$(values "$f" params)"
[[ "$(values "$f" trainable_params)" == "$params" ]] || flunk "full run: trainable_params != params"
[[ "$(values "$f" weights_bytes)" == "$((4 * params))" ]] || flunk "full run: weights != 4 B/param"
[[ "$(values "$f" grad_bytes)" == "$((4 * params))" ]] || flunk "full run: gradients != 4 B/param"
[[ "$(values "$f" optimizer_bytes)" == "$((8 * params))" ]] || flunk "full run: optimizer != 8 B/param"
positive "$f" activation_bytes

# --lora-r: the full fine-tune, then LoRA on all-linear, in one table and in the JSON (the LoRA
# run in a "lora" object). The adapters' element count comes from the preset's shape as --help
# prints it: r·(in + out) for each of q, k, v, o, gate, up and down in every layer.
run "bench train --lora-r" "$rlaif" bench train --preset tiny --lora-r 4 --steps 2 --warmup 1 \
  --batch 4 --seq 64 --device cpu --json "$tmp/lora.json"
grep -q "^metric .*full .*LoRA r=4 .*LoRA/full" "$tmp/out.txt" || flunk "--lora-r: no comparison table"
for row in "trainable parameters" weights gradients "optimizer state" activations \
           "peak tensor memory" "ms/step (median)" tokens/s "final loss"; do
  grep -q "^$row " "$tmp/out.txt" || flunk "--lora-r table lacks '$row'"
done
lora_json="$(grep -o '"lora": {[^}]*}' "$tmp/lora.json")"
echo "$lora_json" > "$tmp/lora_run.json"
sed 's/, "lora": {[^}]*}//' "$tmp/lora.json" > "$tmp/full_run.json"
[[ -n "$lora_json" ]] || flunk "--lora-r: no \"lora\" object in the JSON"
shape="$("$rlaif" bench train --help | grep "llama tiny:")"
read -r L D H KV F < <(sed -E 's/.*: ([0-9]+) layers, d ([0-9]+), ([0-9]+) heads \(([0-9]+) kv\), ffn ([0-9]+).*/\1 \2 \3 \4 \5/' <<<"$shape")
kvd=$((KV * D / H))
want=$((L * 4 * ((D + D) + 2 * (D + kvd) + (D + D) + 2 * (D + F) + (F + D))))
[[ "$(values "$tmp/lora_run.json" trainable_params)" == "$want" ]] ||
  flunk "LoRA trainable_params $(values "$tmp/lora_run.json" trainable_params), want $want ($shape)"
[[ "$(values "$tmp/lora_run.json" lora_r)" == 4 && "$(values "$tmp/lora_run.json" lora_alpha)" == 4 ]] ||
  flunk "LoRA JSON: r and alpha are not 4 and 4: $lora_json"
grep -q '"lora_targets": "all-linear"' "$tmp/lora_run.json" || flunk "LoRA JSON: targets not all-linear"
for key in trainable_params weights_bytes grad_bytes optimizer_bytes activation_bytes tokens_per_s \
           ms_per_step peak_memory_bytes loss; do
  positive "$tmp/full_run.json" "$key"; positive "$tmp/lora_run.json" "$key"
done
full() { values "$tmp/full_run.json" "$1"; }
lora() { values "$tmp/lora_run.json" "$1"; }
(( $(lora optimizer_bytes) * 10 < $(full optimizer_bytes) )) ||
  flunk "LoRA optimizer state $(lora optimizer_bytes) not under 10% of $(full optimizer_bytes)"
(( $(lora grad_bytes) * 10 < $(full grad_bytes) )) ||
  flunk "LoRA gradients $(lora grad_bytes) not under 10% of $(full grad_bytes)"
(( $(lora weights_bytes) == $(full weights_bytes) + 4 * want )) ||
  flunk "LoRA weights $(lora weights_bytes) != full $(full weights_bytes) + the adapters' f32 bytes"
# An adapted layer keeps only its rank-r intermediate beyond a plain layer's activations (one
# autograd node per adapted projection): at r = 4 on a d = 128 model, well under 25% more.
(( $(lora activation_bytes) * 4 < $(full activation_bytes) * 5 )) ||
  flunk "LoRA keeps $(lora activation_bytes) bytes of activations, the full run $(full activation_bytes)"
(( $(lora trainable_params) * 20 < $(full trainable_params) )) ||
  flunk "LoRA trains $(lora trainable_params) parameters, not under 5% of $(full trainable_params)"
expect_usage "lora flag without r" "--lora-alpha needs --lora-r" "$rlaif" bench train --lora-alpha 8
expect_usage "unknown lora target" "--lora-targets" "$rlaif" bench train --lora-r 4 --lora-targets c_fc

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

# bench attention: 2 head dims x 2 lengths x (full, grouped-query) heads, forward and both.
run "bench attention" "$rlaif" bench attention --device cpu --head-dim 32,64 --seq 32,64 --tokens 128 \
  --width 192 --reps 1 --warmup 0 --json "$tmp/attention.json"
[[ $(values "$tmp/attention.json" tflops | wc -l) -eq 16 ]] || flunk "bench attention: not 16 rows"
for key in ms tflops; do positive "$tmp/attention.json" "$key"; done
[[ "$(values "$tmp/attention.json" Hkv | sort -nu | tr '\n' ' ')" == "1 2 3 6 " ]] ||
  flunk "bench attention: kv heads $(values "$tmp/attention.json" Hkv | sort -nu | tr '\n' ' ')"
expect_usage "attention width" "--head-dim" "$rlaif" bench attention --head-dim 100
expect_usage "attention tokens" "--seq" "$rlaif" bench attention --seq 1000

# bench dpo: both configurations on one run. Policy and reference start equal, so the first
# step's loss is log 2 in both; the precomputed run holds no reference model, so its peak is lower.
run "bench dpo" "$rlaif" bench dpo --preset tiny --device cpu --pairs 2 --seq 32 --steps 2 \
  --warmup 1 --json "$tmp/dpo.json"
grep -q "precomputed/live" "$tmp/out.txt" || flunk "bench dpo printed no ratio"
for key in ms_per_step steps_per_s tokens_per_s peak_memory_bytes achieved_tflops precompute_s; do
  positive "$tmp/dpo.json" "$key"
done
[[ "$(values "$tmp/dpo.json" mode | tr -d '"' | tr '\n' ' ')" == "live precomputed " ]] ||
  flunk "bench dpo: modes $(values "$tmp/dpo.json" mode)"
values "$tmp/dpo.json" first_loss | awk '{ d = $1 - log(2); if (d < 0) d = -d; if (d > 1e-5) bad = 1 }
  END { exit bad || NR != 2 }' || flunk "bench dpo: first losses $(values "$tmp/dpo.json" first_loss), want log 2"
peaks=($(values "$tmp/dpo.json" peak_memory_bytes))
((${#peaks[@]} == 2 && peaks[1] < peaks[0])) || flunk "bench dpo: precomputed peak ${peaks[1]:-} not below live ${peaks[0]:-}"
expect_usage "dpo prompt past seq" "--prompt" "$rlaif" bench dpo --seq 32 --prompt 32
expect_usage "dpo bad mode" "--mode" "$rlaif" bench dpo --mode cached

# bench serve: both configurations at two concurrencies, then a small soak (the full one is
# 10,000 requests: README's figures); every figure positive, no errors, memory bounded.
model="${2:-.}/data/models/stories260K"
run "bench serve" "$rlaif" bench serve --model "$model" --requests 16 --concurrency 1,8 \
  --max-tokens 8 --json "$tmp/serve.json"
grep -q "^config .*req/s .*tok/s .*p50 ms .*p99 ms .*errors" "$tmp/out.txt" || flunk "bench serve: no table"
grep -q "batched/unbatched" "$tmp/out.txt" || flunk "bench serve: no batched/unbatched ratio"
[[ $(values "$tmp/serve.json" tokens_per_s | wc -l) -eq 4 ]] || flunk "serve: not 4 results"
for key in requests_per_s tokens_per_s p50_ms p99_ms batched_over_unbatched; do
  positive "$tmp/serve.json" "$key"
done
[[ "$(values "$tmp/serve.json" errors | sort -u)" == 0 ]] || flunk "bench serve: errors"
# Mixed lengths, streamed: request i asks for 1 + (7919 i mod 8) tokens, 4.5 on average over 16
# requests (fewer where an answer ends at EOS; the JSON rounds the rates to 6 digits), against 8
# each above. Request 0's one token decodes to no text: a stream without text is no error.
run "bench serve --mixed-lengths" "$rlaif" bench serve --model "$model" --requests 16 \
  --concurrency 4 --max-tokens 8 --mixed-lengths --stream --json "$tmp/mixed.json"
grep -q "max_tokens 1 to 8" "$tmp/out.txt" || flunk "bench serve --mixed-lengths: not in the title"
paste <(values "$tmp/mixed.json" tokens_per_s) <(values "$tmp/mixed.json" requests_per_s) |
  awk '{ r = $1 / $2; if (r < 3 || r > 4.5 * 1.001) bad = 1 } END { exit bad || NR != 2 }' ||
  flunk "bench serve --mixed-lengths: not 1 to 8 tokens a request: $(cat "$tmp/mixed.json")"
[[ "$(values "$tmp/mixed.json" errors | sort -u)" == 0 ]] || flunk "bench serve --mixed-lengths: errors"
# Streamed: each request's first text comes no later than its end, so the quantiles of the time
# to first text are at most those of the latency.
run "bench serve --stream" "$rlaif" bench serve --model "$model" --requests 8 --concurrency 1,4 \
  --max-tokens 8 --stream --json "$tmp/stream.json"
grep -q "first text p50 ms" "$tmp/out.txt" || flunk "bench serve --stream: no first-text column"
for key in first_text_p50_ms first_text_p99_ms p50_ms; do positive "$tmp/stream.json" "$key"; done
paste <(values "$tmp/stream.json" first_text_p50_ms) <(values "$tmp/stream.json" p50_ms) |
  awk '{ if ($1 > $2) bad = 1 } END { exit bad || NR != 4 }' ||
  flunk "bench serve --stream: first text after the whole answer: $(cat "$tmp/stream.json")"
[[ "$(values "$tmp/stream.json" errors | sort -u)" == 0 ]] || flunk "bench serve --stream: errors"
run "bench serve --soak" "$rlaif" bench serve --model "$model" --soak 1000 --soak-concurrency 8 \
  --max-tokens 8 --json "$tmp/soak.json"
[[ $(values "$tmp/soak.json" rss_bytes | wc -l) -ge 11 ]] || flunk "soak: fewer than 11 RSS samples"
positive "$tmp/soak.json" rss_bytes
[[ "$(values "$tmp/soak.json" errors)" == 0 ]] || flunk "soak: unexpected answers"
# The 600 chat completions are answered; of the 200 streams closed before their answer or after
# its first bytes (mid-stream: a stream's first event comes before its text is generated), those
# the server noticed in time are not, and none is counted both ways.
answered="$(values "$tmp/soak.json" answered)"; abandoned="$(values "$tmp/soak.json" abandoned)"
((answered >= 600 && answered + abandoned <= 800)) ||
  flunk "soak: $answered answered 200 and $abandoned abandoned, want 600 to 800 and at most 800 in all"
expect_usage "bad concurrency list" "--concurrency" "$rlaif" bench serve --concurrency 0,8

for sub in train dpo kernels attention generate; do
  out="$("$rlaif" bench "$sub" --help)" || flunk "bench $sub --help failed"
  grep -q -- "--device" <<<"$out" || flunk "bench $sub --help lacks --device"
done
out="$("$rlaif" bench serve --help)" || flunk "bench serve --help failed"
grep -q -- "--soak" <<<"$out" || flunk "bench serve --help lacks --soak"
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
