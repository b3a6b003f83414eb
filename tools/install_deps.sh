#!/usr/bin/env bash
# Installs the Debian 12 packages rlaif builds with (skipped when all are present already).
# The CUDA Toolkit is not a Debian package: when /usr/local/cuda exists the CUDA backend is built.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libopenblas-openmp-dev   # CPU GEMM (cblas_sgemm), sharing the OpenMP thread pool
  libgtest-dev             # tests
  libxml2-dev              # tests: parsing the SVG charts of reports
  libpng-dev chromium      # tests: rendering a report in a real browser and reading its screenshot
  libsentencepiece-dev sentencepiece  # tokenizer library, and spm_encode for tests
  rapidjson-dev            # JSON (configs, datasets, the API client)
  libcurl4-openssl-dev     # HTTP client for teachers and critics
  libcpp-httplib-dev       # HTTP server for `rlaif serve`
  libpcre2-dev libicu-dev liblzma-dev  # Hugging Face tokenizers: split regexes, Unicode normalization, .xz files
  libopenmpi-dev openmpi-bin  # MPI: `mpirun -np N` launches ranks; CPU collectives, NCCL bootstrap
  clang libclang-rt-14-dev libomp-dev  # fuzz targets: libFuzzer, ASan/UBSan runtimes, clang's OpenMP
  python3                  # tools/peers/compare.py: the benchmark comparisons' tables (standard library only)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "rlaif: installing ${missing[*]}" >&2
  sudo_cmd=()
  [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
