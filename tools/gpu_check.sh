#!/usr/bin/env bash
# The GPU check: builds rlaif with the CUDA backend, runs every GPU test and the benchmarks, and
# prints a short table last. Made for a bare GPU machine (CUDA toolkit, CMake and ninja, but none
# of Debian's -dev packages and no network):
#
#   on a machine with network, once:   tools/gpu_check.sh --fetch-deps   (apt-get download into
#                                       .gpu-deps/, ignored by git)
#   on the GPU machine, with .gpu-deps/ copied into the checkout:   tools/gpu_check.sh
#
# Faster (no build on the GPU machine: saves about 2 minutes there): build elsewhere with
#   cmake -S . -B build-gpu -G Ninja -DRLAIF_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
#         -DCMAKE_DISABLE_FIND_PACKAGE_MPI=ON && ninja -C build-gpu kernels_tests model_tests rlaif
# copy .gpu-deps/ and build-gpu/tests/kernels_tests, build-gpu/tests/model_tests and
# build-gpu/tools/rlaif into the GPU machine's checkout, and run "tools/gpu_check.sh --skip-build"
# (kernels/cuda/NOTES.md has the latest figures).
#
# The .deb files are unpacked with dpkg -x under /tmp/rlaif-deps (never over /), and CMake finds
# them through CMAKE_PREFIX_PATH. Full logs go to $OUT (or /tmp/gpu_check) as build.log,
# tests.log and bench.log; the table is also written to summary.txt. Finishes in about 5 minutes
# on an H100 (most of it the build). Options: --skip-build (reuse build-gpu/), --quick (no
# training benchmark).
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
deps_dir="$root/.gpu-deps"
packages=(libopenblas-openmp-dev libopenblas0-openmp libgfortran5 libgtest-dev libsentencepiece-dev
          libsentencepiece0 libprotobuf-lite32 rapidjson-dev libcpp-httplib-dev libcpp-httplib0.11 libcurl4-openssl-dev)
# libcurl itself and what it needs, unpacked only where the machine has no libcurl.so.4.
curl_runtime=(libcurl4 libldap-2.5-0 librtmp1 libssh2-1 libpsl5 libnghttp2-14 libbrotli1)

if [[ "${1:-}" == "--fetch-deps" ]]; then
  mkdir -p "$deps_dir/curl" && cd "$deps_dir" && apt-get download "${packages[@]}" &&
    (cd curl && apt-get download "${curl_runtime[@]}")
  ls -l "$deps_dir"
  exit $?
fi
skip_build=0; quick=0
for arg in "$@"; do
  case "$arg" in
    --skip-build) skip_build=1 ;;
    --quick) quick=1 ;;
    *) echo "gpu_check.sh: unknown option $arg (see the comment at the top)"; exit 2 ;;
  esac
done

out="${OUT:-/tmp/gpu_check}"
mkdir -p "$out"
summary="$out/summary.txt"
: > "$summary"
row() { printf '%-44s %s\n' "$1" "$2" | tee -a "$summary"; }
start=$(date +%s)

echo "== machine"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader || true
grep PRETTY_NAME /etc/os-release || true
echo "cores: $(nproc); $(cmake --version | head -1); $(g++ --version | head -1); $(nvcc --version | tail -1)"

# ---- Dependencies: the system's where present, else the carried Debian packages ----------------
prefix=/tmp/rlaif-deps
if ls "$deps_dir"/*.deb > /dev/null 2>&1; then
  mkdir -p "$prefix"
  for f in "$deps_dir"/*.deb; do dpkg -x "$f" "$prefix"; done
  if ! ldconfig -p | grep -q 'libcurl.so.4 '; then
    for f in "$deps_dir"/curl/*.deb; do dpkg -x "$f" "$prefix"; done
  fi
  export LD_LIBRARY_PATH="$prefix/usr/lib/x86_64-linux-gnu:$prefix/usr/lib/x86_64-linux-gnu/openblas-openmp${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  cmake_prefix="-DCMAKE_PREFIX_PATH=$prefix/usr"
  # cpp-httplib is found through pkg-config: its .pc files say /usr, which the sysroot rebases.
  export PKG_CONFIG_PATH="$prefix/usr/lib/x86_64-linux-gnu/pkgconfig:$prefix/usr/share/pkgconfig"
  export PKG_CONFIG_SYSROOT_DIR="$prefix"
  echo "unpacked $(ls "$deps_dir"/*.deb | wc -l) carried packages under $prefix"
else
  cmake_prefix=""
  echo "no .gpu-deps/*.deb carried: using the system's packages"
fi

# Binaries built on another machine find cuBLASLt and NCCL in the toolkit, else in PyTorch's wheels.
for d in /usr/local/cuda/lib /usr/local/cuda/lib64 /opt/torch/.venv/lib/python3*/site-packages/nvidia/*/lib; do
  [[ -d "$d" ]] && export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$d"
done

# ---- Build ----------------------------------------------------------------------------------------
build="$root/build-gpu"
if [[ $skip_build -eq 0 ]]; then
  echo "== build (log: $out/build.log)"
  arch="${RLAIF_GPU_ARCH:-$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d . )}"
  [[ -n "$arch" ]] || arch=90
  if ! { cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DRLAIF_CUDA=ON \
           -DCMAKE_CUDA_ARCHITECTURES="$arch" $cmake_prefix &&
         ninja -C "$build" -j "$(nproc)"; } > "$out/build.log" 2>&1; then
    tail -40 "$out/build.log"
    row "build" "FAILED (see build.log)"
    exit 1
  fi
  row "build (sm_$arch)" "ok in $(( $(date +%s) - start )) s"
fi
rlaif="$build/tools/rlaif"
"$rlaif" version || true

# ---- GPU tests ------------------------------------------------------------------------------------
# The test binaries run directly (not through ctest), so binaries built elsewhere and carried
# (--skip-build with build-gpu/tests/* and build-gpu/tools/rlaif in the device tool's carry) work
# the same: conformance on cuda and cuda_bf16, the CUDA self-check, the end-to-end training-step
# parity, the golden generation on the GPU and a prompt joining a running generation batch.
echo "== GPU tests (log: $out/tests.log)"
export RLAIF_SOURCE_DIR="$root"
: > "$out/tests.log"
run_gtest() {  # binary, filter
  echo "--- $1 --gtest_filter=$2" >> "$out/tests.log"
  timeout 300 "$build/tests/$1" --gtest_filter="$2" --gtest_color=no >> "$out/tests.log" 2>&1 ||
    echo "(exit $?)" >> "$out/tests.log"
}
run_gtest kernels_tests \
  '*/cuda:*/cuda_bf16:CudaSelfcheck.*:ConformanceBackends.*:NcclCommunicator.*:ProfilingBackend.*'
run_gtest model_tests 'GpuParity.*:Recompute.GpuStepsAreIdentical:DecodingBatch.OnTheGpu*'
passed=$(grep -cE '^\[       OK \]' "$out/tests.log")
failed=$(grep -cE '^\[  FAILED  \] .*\([0-9]+ ms\)' "$out/tests.log")
skipped=$(grep -cE '^\[  SKIPPED \] .*\([0-9]+ ms\)' "$out/tests.log")
# gtest exits 1 when a test fails; any other status is a crash (signal, abort, timeout = 124).
crashed=$(grep -E '^\(exit [0-9]+\)' "$out/tests.log" | grep -vc '^(exit 1)')
# Exit 77 is a script's skip (no usable GPU, or no NCCL): counted apart, not as a failure.
for script in golden_generate_cuda nccl_one_rank_cuda commands_cuda; do
  echo "--- cli.$script" >> "$out/tests.log"
  bash "$root/tests/cli/$script.sh" "$rlaif" "$root" >> "$out/tests.log" 2>&1
  case $? in
    0) passed=$((passed + 1)) ;;
    77) skipped=$((skipped + 1)); echo "SKIPPED cli.$script" >> "$out/tests.log" ;;
    *) failed=$((failed + 1)); echo "FAILED cli.$script" >> "$out/tests.log" ;;
  esac
done
# Failures with their first lines, so the reply's tail holds them.
grep -E '^\[  FAILED  \] .*\([0-9]+ ms\)|FAILED cli|SKIPPED cli|^\(exit|^FAIL: ' "$out/tests.log" | head -40
grep -B2 -A6 -E 'Failure$' "$out/tests.log" | grep -vE '^\[ RUN|^--$' | head -80

# ---- Benchmarks -----------------------------------------------------------------------------------
echo "== benchmarks (log: $out/bench.log)"
bench() {  # name, args...
  local name="$1"; shift
  echo "--- $name: rlaif bench $*" >> "$out/bench.log"
  timeout "${RLAIF_BENCH_TIMEOUT:-240}" "$rlaif" bench "$@" >> "$out/bench.log" 2>&1 || echo "(exit $?)" >> "$out/bench.log"
}
bench kernels kernels --device cuda --json "$out/bench_kernels.json"
if [[ $quick -eq 0 ]]; then
  bench train_gpt2_124M train --arch gpt2 --preset 124M --batch 8 --seq 1024 --steps 10 --warmup 3 \
    --device cuda --dtype bf16 --json "$out/bench_train_gpt2.json"
  # The LM head (vocabulary 50257: rows not 16-byte aligned in bf16): padded in the model (the
  # default, model/transformer.h), padded by copies in cuda_matmul.cu, and not at all.
  RLAIF_PAD_VOCAB=0 bench train_gpt2_124M_copy_padded train --arch gpt2 --preset 124M --batch 8 \
    --seq 1024 --steps 5 --warmup 2 --device cuda --dtype bf16 --json "$out/bench_train_gpt2_copy_padded.json"
  RLAIF_PAD_VOCAB=0 RLAIF_MATMUL_PAD=0 bench train_gpt2_124M_unpadded train --arch gpt2 --preset 124M \
    --batch 8 --seq 1024 --steps 5 --warmup 2 --device cuda --dtype bf16 \
    --json "$out/bench_train_gpt2_unpadded.json"
  # The same with GPT-2's fc_in + GELU composed instead of fused in cuBLASLt's epilogue.
  RLAIF_GELU_EPILOGUE=0 bench train_gpt2_124M_unfused_gelu train --arch gpt2 --preset 124M \
    --batch 8 --seq 1024 --steps 5 --warmup 2 --device cuda --dtype bf16 \
    --json "$out/bench_train_gpt2_unfused_gelu.json"
  # The MFU target (llm.c's ~50%) fixes T = 1024 but not the batch: llm.c uses larger batches.
  bench train_gpt2_124M_b32 train --arch gpt2 --preset 124M --batch 32 --seq 1024 --steps 5 \
    --warmup 2 --device cuda --dtype bf16 --json "$out/bench_train_gpt2_b32.json"
  bench train_gpt2_124M_profile train --arch gpt2 --preset 124M --batch 8 --seq 1024 --steps 3 \
    --warmup 2 --device cuda --dtype bf16 --profile --profile-top 25
  bench train_llama_124M train --arch llama --preset 124M --batch 8 --seq 1024 --steps 10 \
    --warmup 3 --device cuda --dtype bf16 --json "$out/bench_train_llama.json"
  bench generate generate --arch llama --preset 124M --device cuda --batch 1,16 --new-tokens 128 \
    --json "$out/bench_generate.json"
fi
cat "$out/bench.log" | tail -80

# ---- Table ----------------------------------------------------------------------------------------
echo
echo "== gpu_check summary ($(nvidia-smi --query-gpu=name --format=csv,noheader | head -1))"
row "GPU tests passed" "$passed"
row "GPU tests failed" "$failed"
row "GPU tests skipped" "$skipped"
row "GPU test binaries that crashed" "$crashed"
for j in "$out"/bench_*.json; do
  [[ -f "$j" ]] || continue
  python3 - "$j" <<'PY' | tee -a "$summary"
import json, sys
d = json.load(open(sys.argv[1]))
def show(prefix, obj):
    if isinstance(obj, dict):
        for k, v in obj.items():
            show(f"{prefix}.{k}" if prefix else k, v)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            name = v.get("name", str(i)) if isinstance(v, dict) else str(i)
            show(f"{prefix}.{name}", v)
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        print(f"{prefix:<44} {obj:.4g}")
    elif isinstance(obj, str) and len(obj) < 40:
        print(f"{prefix:<44} {obj}")
show(sys.argv[1].rsplit('/', 1)[-1][6:-5], d)
PY
done
row "wall time" "$(( $(date +%s) - start )) s"
[[ $failed -eq 0 && $crashed -eq 0 && $passed -gt 0 ]]
