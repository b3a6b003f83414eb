#!/usr/bin/env bash
# Installs what rlaif needs, builds it (Release, CUDA backend when the toolkit is present), and
# runs the main job on the shipped data.
#   tools/setup.sh            # build into build/ and run the main job
# Environment: BUILD_DIR (default build), RLAIF_CUDA (AUTO|ON|OFF, default AUTO).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
build="${BUILD_DIR:-build}"

tools/install_deps.sh
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DRLAIF_CUDA="${RLAIF_CUDA:-AUTO}" >/dev/null
cmake --build "$build" --target rlaif

# The main job. Until the training issues land it reports what was built.
"$build"/tools/rlaif version
