#!/usr/bin/env bash
# rlaif beside its best peers on one GPU, in one call, so that every figure is a ratio measured
# on the same machine at the same time:
#   train      `rlaif bench train` GPT-2 124M and the Llama 124M preset (B 8, T 1024, bf16) beside
#              llm.c's train_gpt2.cu on GPT-2 124M at the same B and T
#   attention  `rlaif bench attention` beside PyTorch's scaled_dot_product_attention (flash)
#   dpo        `rlaif bench dpo` beside a plain PyTorch DPO step (GPT-2 and Llama 124M, 8 pairs x
#              512 tokens, reference live and precomputed)
#   generate   `rlaif bench generate` beside PyTorch KV-cache generation (batch 1, 16, 64; prompt
#              128, 256 new tokens)
#   ppo        `rlaif ppo` alone (no peer): GPT-2 124M's shape with random weights, a reward model
#              from one `rlaif rm` step, 16 prompts a step, 256 new tokens; the step's split into
#              generation, scoring, evaluation (the no-grad passes) and update, from its metrics
# GPU memory is compared as the device's used memory (nvidia-smi, polled every 100 ms while each
# program runs alone), which counts both programs alike; rlaif's own tensor peak is in its JSON.
#
#   tools/gpu_peers.sh [STAGE...]     stages to run (default: all five), on cuda
#   tools/gpu_peers.sh --cpu [STAGE...]  a rehearsal of the plumbing on the CPU: tiny presets and
#                                     sizes, f32, no llm.c; minutes, not a measurement
#
# Needs: the rlaif binary ($RLAIF, else build-gpu/tools/rlaif, else build/tools/rlaif); for
# train, llm.c's anchor copied into the checkout's .anchors/llm.c (a folder git ignores; the
# anchor's README says how); for the PyTorch stages, a python with torch >= 2.0 ($PYTHON, else
# /opt/torch/.venv/bin/python3, else python3). A stage whose peer is missing runs rlaif alone and
# says so. Logs and JSON go to $OUT (or /tmp/gpu_peers): peers.log, rlaif_*.json, peer_*.json,
# summary.txt (the ratio table, printed last). Each program runs under a timeout
# ($PEERS_TIMEOUT seconds, default 240).
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

device=cuda
stages=()
for arg in "$@"; do
  case "$arg" in
    --cpu) device=cpu ;;
    train | attention | dpo | generate | ppo) stages+=("$arg") ;;
    -h | --help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu_peers.sh: unknown argument '$arg' (stages: train attention dpo generate ppo; --cpu)" >&2
       exit 2 ;;
  esac
done
((${#stages[@]})) || stages=(train attention dpo generate ppo)

rlaif="${RLAIF:-}"
for candidate in build-gpu/tools/rlaif build/tools/rlaif; do
  [[ -z "$rlaif" && -x "$candidate" ]] && rlaif="$root/$candidate"
done
[[ -x "$rlaif" ]] || { echo "gpu_peers.sh: no rlaif binary (set RLAIF or build build-gpu)" >&2; exit 2; }
python="${PYTHON:-}"
[[ -z "$python" && -x /opt/torch/.venv/bin/python3 ]] && python=/opt/torch/.venv/bin/python3
python="${python:-python3}"
have_torch=0
"$python" -c "import torch" 2>/dev/null && have_torch=1

out="${OUT:-/tmp/gpu_peers}"
mkdir -p "$out"
log="$out/peers.log"
: > "$log"
# A folder reused from an earlier run must not lend its figures to this one's table.
rm -rf "$out"/rlaif_*.json "$out"/peer_*.json "$out"/*.mem "$out"/*.smi "$out/ppo"
limit="${PEERS_TIMEOUT:-240}"
start=$(date +%s)
echo "gpu_peers: $device; rlaif $rlaif; python $python (torch: $([[ $have_torch == 1 ]] && "$python" -c 'import torch; print(torch.__version__)' || echo none))" | tee -a "$log"
[[ "$device" == cuda ]] && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$log"

# Runs a program under the timeout with its output in the log; on cuda, records the device's
# peak used memory while it ran (MiB) in $out/NAME.mem.
measure() {  # name, command...
  local name="$1"; shift
  echo "--- $name: $*" >> "$log"
  local poller=""
  if [[ "$device" == cuda ]]; then
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 > "$out/$name.smi" 2>/dev/null &
    poller=$!
  fi
  local t0
  t0=$(date +%s%N)
  timeout "$limit" "$@" >> "$log" 2>&1
  local code=$?
  [[ -n "$poller" ]] && { kill "$poller" 2>/dev/null; wait "$poller" 2>/dev/null; }
  [[ -f "$out/$name.smi" ]] && sort -n "$out/$name.smi" | tail -1 > "$out/$name.mem"
  echo "--- $name: exit $code, $((($(date +%s%N) - t0) / 1000000)) ms" >> "$log"
  ((code == 0)) || echo "gpu_peers: $name exited $code (log: $log)"
}
peer() {  # name, script, args...: a PyTorch peer, when torch is there
  local name="$1" script="$2"; shift 2
  if ((have_torch)); then
    measure "$name" "$python" "tools/peers/$script" "$@"
  else
    echo "gpu_peers: no torch in $python: $name skipped" | tee -a "$log"
  fi
}

if [[ "$device" == cuda ]]; then
  dtype=bf16; presets=(124M); B=8; T=1024; dims=64,128; seqs=1024,2048,4096; tokens=8192; width=768
  pairs=8; dpo_seq=512; batches=1,16,64; prompt=128; new=256
  ppo_shape=(--layers 12 --d-model 768 --heads 12 --seq 1024); ppo_batch=16; rm_len=512
else
  dtype=f32; presets=(tiny); B=2; T=64; dims=32,64; seqs=64,128; tokens=256; width=192
  pairs=2; dpo_seq=64; batches=1,2; prompt=16; new=8
  ppo_shape=(--layers 2 --d-model 64 --heads 2 --seq 256); ppo_batch=2; rm_len=128
fi

for stage in "${stages[@]}"; do
  echo "== $stage" | tee -a "$log"
  case "$stage" in
    train)
      if [[ "$device" == cuda && -x .anchors/llm.c/run_gpu.sh ]]; then
        # run_gpu.sh builds llm.c and writes its token shards; its per-step lines go to the log.
        measure llmc_gpt2 bash .anchors/llm.c/run_gpu.sh "$B" "$T" 20 "$out/llmc"
      elif [[ "$device" == cuda ]]; then
        echo "gpu_peers: no .anchors/llm.c: llm.c not run" | tee -a "$log"
      fi
      for arch in gpt2 llama; do
        measure "rlaif_train_$arch" "$rlaif" bench train --arch "$arch" --preset "${presets[0]}" \
          --batch "$B" --seq "$T" --steps 10 --warmup 3 --device "$device" --dtype "$dtype" \
          --json "$out/rlaif_train_$arch.json"
      done
      ;;
    attention)
      measure rlaif_attention "$rlaif" bench attention --device "$device" --dtype "$dtype" \
        --head-dim "$dims" --seq "$seqs" --tokens "$tokens" --width "$width" --json "$out/rlaif_attention.json"
      peer peer_attention torch_attention.py --device "$device" --dtype "$dtype" --head-dim "$dims" \
        --seq "$seqs" \
        --tokens "$tokens" --width "$width" --json "$out/peer_attention.json"
      ;;
    dpo)
      for arch in gpt2 llama; do
        measure "rlaif_dpo_$arch" "$rlaif" bench dpo --arch "$arch" --preset "${presets[0]}" \
          --pairs "$pairs" --seq "$dpo_seq" --device "$device" --dtype "$dtype" \
          --json "$out/rlaif_dpo_$arch.json"
        peer "peer_dpo_$arch" torch_dpo_step.py --arch "$arch" --preset "${presets[0]}" \
          --pairs "$pairs" --seq "$dpo_seq" --device "$device" --dtype "$dtype" \
          --json "$out/peer_dpo_$arch.json"
      done
      ;;
    generate)
      for arch in gpt2 llama; do
        measure "rlaif_generate_$arch" "$rlaif" bench generate --arch "$arch" \
          --preset "${presets[0]}" --batch "$batches" --prompt-len "$prompt" --new-tokens "$new" \
          --reps 3 --device "$device" --dtype "$dtype" --json "$out/rlaif_generate_$arch.json"
        peer "peer_generate_$arch" torch_generate.py --arch "$arch" --preset "${presets[0]}" \
          --batch "$batches" --prompt-len "$prompt" --new-tokens "$new" --reps 3 --device "$device" \
          --dtype "$dtype" --json "$out/peer_generate_$arch.json"
      done
      ;;
    ppo)
      dev=(--device "$device" --dtype "$dtype")
      measure ppo_init "$rlaif" init --arch gpt2 "${ppo_shape[@]}" --tokenizer data/tokenizers/gpt2 \
        --out "$out/ppo/policy"
      measure ppo_rm "$rlaif" rm --model "$out/ppo/policy" --data data/preferences/dpo_en_demo.json \
        --steps 1 --batch 8 --max-length "$rm_len" --save-every 0 "${dev[@]}" --out "$out/ppo/rm"
      measure rlaif_ppo "$rlaif" ppo --model "$out/ppo/policy" --reward-model "$out/ppo/rm" \
        --prompts data/instructions/alpaca_en_demo.json --batch "$ppo_batch" --max-new-tokens "$new" \
        --max-prompt-length "$prompt" --steps 3 --save-every 0 "${dev[@]}" --out "$out/ppo/run"
      ;;
  esac
done

echo
python3 tools/peers/compare.py "$out" | tee "$out/summary.txt"
echo "gpu_peers: $(( $(date +%s) - start )) s in all; logs in $out"
