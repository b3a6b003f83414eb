#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/*.cpp) with clang under ASan + UBSan, and runs them.
#   tools/fuzz.sh                    # every target, 60 s each, one after another
#   tools/fuzz.sh TARGET [SECONDS]   # one target (e.g. safetensors_fuzz), 60 s by default
#   tools/fuzz.sh --smoke            # every target ~20 s over its corpus, two at a time (CI)
#   tools/fuzz.sh --build            # only build
# Seeds come from tests/fuzz/corpus/TARGET (never written to); inputs the fuzzer finds go to
# build-fuzz/runs/TARGET/corpus, and an input that crashes, leaks, hangs or runs out of memory
# is kept in build-fuzz/runs/TARGET/findings, which the failure message names. Exits 1 on any
# finding. FUZZ_JOBS sets how many targets the smoke runs at once (default 2). The smoke
# mutates from seed 1, so its verdict is reproducible; other runs draw a seed (FUZZ_SEED=N fixes it).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

usage() {
  echo "usage: tools/fuzz.sh [--smoke | --build | TARGET [SECONDS]]" >&2
  exit 2
}
mode=run
target=""
seconds=60
case "${1:-}" in
  -h | --help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  --smoke) mode=smoke; seconds=20; (($# == 1)) || usage ;;
  --build) mode=build; (($# == 1)) || usage ;;
  "") ;;
  -*) usage ;;
  *)
    target="$1"
    if (($# > 1)); then
      [[ "$2" =~ ^[0-9]+$ ]] || usage
      seconds="$2"
    fi
    (($# <= 2)) || usage
    ;;
esac

build=build-fuzz
mapfile -t targets < <(ls tests/fuzz/*.cpp | xargs -n1 basename | sed 's/\.cpp$//')
if [[ -n "$target" ]] && ! printf '%s\n' "${targets[@]}" | grep -qx "$target"; then
  echo "tools/fuzz.sh: no target '$target'; targets: ${targets[*]}" >&2
  exit 2
fi

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
# -O1 with line tables: libFuzzer's usual trade between speed and readable stack traces. Asserts
# stay on, so RapidJSON's checks of its own use (a GetInt on a string) are findings too.
CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DRLAIF_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1" "${launcher[@]}" >/dev/null
cmake --build "$build" -j "$(nproc)" --target ${target:-${targets[@]}}
[[ "$mode" == build ]] && exit 0

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"
export OMP_WAIT_POLICY=passive

# Runs one target for `seconds`; its log is build-fuzz/runs/TARGET/log.
fuzz_one() {
  local name="$1" seconds="$2"
  local runs="$build/runs/$name"
  # Findings of an earlier run are moved aside, so that this run's stand alone.
  if [[ -n "$(ls -A "$runs/findings" 2>/dev/null)" ]]; then
    mkdir -p "$runs/old-findings" && mv "$runs/findings/"* "$runs/old-findings/"
  fi
  mkdir -p "$runs/corpus" "$runs/findings"
  local args=(-max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1
              -artifact_prefix="$runs/findings/")
  # The smoke mutates from a fixed seed, so that CI's verdict depends on the code alone; the
  # longer runs draw theirs (FUZZ_SEED=N replays one).
  if [[ -n "${FUZZ_SEED:-}" ]]; then
    args+=(-seed="$FUZZ_SEED")
  elif [[ "$mode" == smoke ]]; then
    args+=(-seed=1)
  fi
  # A JSON target's dictionary is JSON's tokens plus its own keys (tests/fuzz/dict).
  if [[ -f "tests/fuzz/dict/$name.dict" ]]; then
    cat tests/fuzz/dict/json.dict "tests/fuzz/dict/$name.dict" >"$runs/dict"
    args+=(-dict="$runs/dict")
  fi
  # The first directory receives new inputs; the seeds are only read.
  if "$build/tests/fuzz/$name" "${args[@]}" "$runs/corpus" "tests/fuzz/corpus/$name" \
      >"$runs/log" 2>&1; then
    echo "$name: $(grep -o 'stat::number_of_executed_units: [0-9]*' "$runs/log" | awk '{print $2}') runs," \
      "$(grep -Eo 'cov: [0-9]+ ft: [0-9]+' "$runs/log" | tail -1), corpus $(ls "$runs/corpus" | wc -l) new inputs"
  elif [[ -z "$(ls -A "$runs/findings")" ]]; then
    echo "$name: the fuzzer failed without a finding; log in $runs/log" >&2
    tail -3 "$runs/log" >&2
    return 1
  else
    echo "$name: FINDING: input kept in $runs/findings/, log in $runs/log" >&2
    grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error)' "$runs/log" | head -5 >&2 || true
    return 1
  fi
}

if [[ "$mode" == smoke ]]; then
  export build mode
  export -f fuzz_one
  if ! printf '%s\n' "${targets[@]}" |
      xargs -P "${FUZZ_JOBS:-2}" -I{} bash -c 'fuzz_one "$1" "$2"' _ {} "$seconds"; then
    echo "tools/fuzz.sh --smoke: findings (see above)" >&2
    exit 1
  fi
  echo "tools/fuzz.sh --smoke: ${#targets[@]} targets, no finding"
  exit 0
fi

status=0
for name in ${target:-${targets[@]}}; do
  fuzz_one "$name" "$seconds" || status=1
done
exit "$status"
