#!/usr/bin/env bash
# Installs what rlaif needs, builds it (Release) and runs the main job on the shipped data: the
# offline miniature of "A Critical Evaluation of AI Feedback for Aligning LLMs" (Sharma et al.,
# 2024) with small real models (data/miniature): SFT on a strong teacher's answers, SFT on a weak
# teacher's answers, and the latter followed by DPO on a critic's labels, each scored on
# held-out prompts. It prints the results table and the path of the HTML report. Re-running
# continues an interrupted run where it stopped.
#   tools/setup.sh
# Environment: BUILD_DIR (default build), RUN_DIR (default runs/miniature),
#              RLAIF_CUDA (AUTO|ON|OFF; default: ON with the GPUs present, OFF without one).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
build="${BUILD_DIR:-build}"
run="${RUN_DIR:-runs/miniature}"
start=$(date +%s)

tools/install_deps.sh
# CUDA only for the GPUs this machine has: without one, compiling kernels nobody can run would
# only cost time (CI compiles them for sm_90 so that they keep building).
cuda=(-DRLAIF_CUDA=OFF)
if [[ -n "${RLAIF_CUDA:-}" ]]; then
  cuda=(-DRLAIF_CUDA="$RLAIF_CUDA")
elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q GPU; then
  cuda=(-DRLAIF_CUDA=AUTO -DCMAKE_CUDA_ARCHITECTURES=native)
fi
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "${cuda[@]}" >/dev/null
cmake --build "$build" --target rlaif
rlaif="$build/tools/rlaif"
"$rlaif" version
built=$(date +%s)

"$rlaif" experiment --config data/miniature/experiment.json --out "$run"
echo "setup: build $((built - start)) s, experiment $(($(date +%s) - built)) s"
