#!/usr/bin/env bash
# The side-by-side comparison's plumbing (tools/gpu_peers.sh, tools/peers/compare.py) without a
# GPU or PyTorch:
# - compare.py turns a folder of known figures into the right ratios: rlaif's GPT-2 tokens/s over
#   llm.c's (from its median ms/step, its first 3 steps left out), attention TFLOP/s matched by
#   shape, DPO steps/s by reference mode, generation tokens/s by batch, device memory by program,
#   PPO's time split (medians after the first step); a figure with no peer is "n/a";
# - gpu_peers.sh --cpu runs rlaif's attention, dpo and ppo stages at tiny sizes, says that the
#   PyTorch peers were skipped, and prints their rows with rlaif's numbers and n/a for the peer.
set -uo pipefail
rlaif="$1"; root="$2"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
has() { grep -qE "$1" "$tmp/summary.txt" || { cat "$tmp/summary.txt"; fail "summary lacks /$1/"; }; }

f="$tmp/known"
mkdir -p "$f"
echo '{"bench": "train", "arch": "gpt2", "preset": "124M", "device_name": "Test GPU", "batch": 8, "seq": 1024, "tokens_per_s": 100000, "mfu": 0.25}' > "$f/rlaif_train_gpt2.json"
# llm.c's lines: steps 1-3 (slow, left out), then 80, 82 and 90 ms: median 82 ms, so
# 8192 / 0.082 = 99902 tokens/s and rlaif / llm.c = 1.00x.
{
  echo "--- llmc_gpt2: bash .anchors/llm.c/run_gpu.sh 8 1024 20"
  for ms in 900 300 200 80 82 90; do
    echo "step    1/20 | loss 11.0 (+nanz)| norm 1.0 (+nanz)| lr 6.00e-04 | $ms.00 ms | 40.0% bf16 MFU | 99000 tok/s"
  done
} > "$f/peers.log"
echo 2000 > "$f/rlaif_train_gpt2.mem"
echo 4000 > "$f/llmc_gpt2.mem"
echo '{"rows": [{"name": "attention fwd", "B": 8, "H": 12, "Hkv": 4, "T": 1024, "Dh": 64, "tflops": 150.0}, {"name": "attention fwd+bwd", "B": 8, "H": 12, "Hkv": 4, "T": 1024, "Dh": 64, "tflops": 90.0}]}' > "$f/rlaif_attention.json"
echo '{"rows": [{"name": "attention fwd", "B": 8, "H": 12, "Hkv": 4, "T": 1024, "Dh": 64, "tflops": 300.0, "backend": "flash+gqa"}]}' > "$f/peer_attention.json"
echo '{"rows": [{"mode": "live", "steps_per_s": 6.0}, {"mode": "precomputed", "steps_per_s": 9.0}]}' > "$f/rlaif_dpo_llama.json"
echo '{"rows": [{"mode": "live", "steps_per_s": 2.0}, {"mode": "precomputed", "steps_per_s": 4.0}]}' > "$f/peer_dpo_llama.json"
echo '{"results": [{"batch": 1, "tokens_per_s": 500}, {"batch": 16, "tokens_per_s": 6000}]}' > "$f/rlaif_generate_gpt2.json"
echo '{"rows": [{"batch": 1, "tokens_per_s": 200}]}' > "$f/peer_generate_gpt2.json"
# PPO's split: the first step is left out; the medians of steps 2-4 are 100, 20, 30 and 50 ms.
mkdir -p "$f/ppo/run"
for g in 900,0.9 0.1,0.1 0.12,0.1 0.09,0.1; do
  echo "{\"step\":1,\"kind\":\"train\",\"rollout_tokens_per_s\":1000,\"time/generate_s\":${g%,*},\"time/score_s\":0.02,\"time/evaluate_s\":0.03,\"time/update_s\":0.05}"
done > "$f/ppo/run/metrics.jsonl"
python3 "$root/tools/peers/compare.py" "$f" > "$tmp/summary.txt" || fail "compare.py exited $?"
has "^gpu_peers summary: Test GPU"
has "^gpt2 124M B8 T1024 +100000 +25.0 +99902 +1.00x +2000 +4000 +0.50x$"
has "^attention fwd +8x12/4x1024x64 +150.000 +300.000 +0.50x +flash\+gqa$"
has "^attention fwd\+bwd +8x12/4x1024x64 +90.000 +n/a +n/a"
has "^llama live +6.00 +2.00 +3.00x$"
has "^llama precomputed +9.00 +4.00 +2.25x$"
has "^gpt2 batch 1 +500 +200 +2.50x$"
has "^gpt2 batch 16 +6000 +n/a +n/a$"
has "^ppo step \(3 steps, medians; rollout tokens/s 1000\)"
has "^generate +100.0 +50.0%$"
has "^update +50.0 +25.0%$"
has "^step +200.0 +100%$"

# The CPU rehearsal, with no PyTorch (PYTHON names a program that cannot import it).
RLAIF="$rlaif" PYTHON=false OUT="$tmp/run" bash "$root/tools/gpu_peers.sh" --cpu attention dpo ppo \
  > "$tmp/out.txt" 2>&1 || { cat "$tmp/out.txt"; fail "gpu_peers.sh --cpu exited $?"; }
cp "$tmp/run/summary.txt" "$tmp/summary.txt"
grep -q "no torch in false: peer_attention skipped" "$tmp/out.txt" || fail "no skip notice: $(cat "$tmp/out.txt")"
[[ $(grep -cE "^attention fwd(\+bwd)? +[0-9x/]+ +[0-9.]+ +n/a +n/a" "$tmp/summary.txt") -eq 16 ]] ||
  { cat "$tmp/summary.txt"; fail "want 16 attention rows with rlaif's figures and no peer's"; }
has "^gpt2 live +[0-9.]+ +n/a +n/a$"
has "^llama precomputed +[0-9.]+ +n/a +n/a$"
for part in generate score evaluate update; do has "^$part +[0-9.]+ +[0-9.]+%$"; done
[[ ! -e "$tmp/run/rlaif_train_gpt2.json" ]] || fail "the train stage ran though not asked for"
echo "compare.py's ratios are right; gpu_peers.sh --cpu runs rlaif's stages without PyTorch"
