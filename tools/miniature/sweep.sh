#!/usr/bin/env bash
# The miniature's sweep: when does RLAIF help? Runs `rlaif experiment` for each weak teacher and
# critic of graded strength (checkpoints left by tools/miniature/make_models.sh) and prints one
# table: the teacher's and the critic's measured agreement with the checker, each arm's
# exact-match accuracy, and the gap between SFT on the strong teacher and the weak teacher's SFT
# followed by DPO on the critic's labels. The judge stays the shipped strong teacher throughout.
#   tools/miniature/sweep.sh [BUILD_DIR] [MODELS_DIR] [OUT_DIR]
# Environment: WEAK_STEPS (teacher checkpoints, default "500 1500"), CRITIC_STEPS (critic
# checkpoints, "final" for the finished critic; default "500 final").
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
rlaif="$(realpath "${1:-$root/build}")/tools/rlaif"
models="$(realpath "${2:-$root/runs/miniature-models}")"
out="$(realpath -m "${3:-$root/runs/miniature-sweep}")"
mini="$root/data/miniature"
mkdir -p "$out"

checkpoint() {  # checkpoint RUN STEP
  if [[ "$2" == final ]]; then echo "$models/$1"; else printf '%s/%s/checkpoints/step_%08d' "$models" "$1" "$2"; fi
}
# The shipped experiment with another weak teacher and critic, the judge fixed, and the shipped
# files named by absolute paths (a config's relative paths are relative to its own folder).
config() {  # config WEAK_DIR CRITIC_DIR ARMS_JSON > file
  sed -E -e "s|\"weak_teacher\": \{[^}]*\}|\"weak_teacher\": {\"model_dir\": \"$1\"}|" \
      -e "s|\"critic\": \{[^}]*\}|\"critic\": {\"model_dir\": \"$2\"}, \"judge\": {\"model_dir\": \"teacher_strong\"}|" \
      -e "s|\"arms\": \[[^]]*\]|\"arms\": $3|" \
      -e "s#\"(base_model|train_prompts|eval_prompts|critic_template|model_dir)\": \"([^/\"][^\"]*)\"#\"\\1\": \"$mini/\\2\"#g" \
      "$mini/experiment.json"
}
field() {  # field RESULTS_JSON ARM KEY
  grep -o "{\"arm\":\"$2\"[^}]*}" "$1" | grep -o "\"$3\":[^,}]*" | cut -d: -f2
}
pct() { [[ "$1" == null || -z "$1" ]] && echo "–" || awk -v v="$1" 'BEGIN { printf "%.1f", 100 * v }'; }

# Arm 1 does not depend on the weak teacher or the critic: one run serves every row.
config "$(checkpoint teacher 500)" "$(checkpoint critic final)" '["sft_strong"]' > "$out/strong.json"
"$rlaif" experiment --config "$out/strong.json" --out "$out/strong" >/dev/null
strong=$(field "$out/strong/results.json" sft_strong accuracy)

table="| weak teacher | teacher right (%) | critic | critic right (%) | SFT weak (%) | SFT weak + DPO (%) | SFT strong (%) | strong − (weak + DPO) (points) |
|---|---:|---|---:|---:|---:|---:|---:|"
for w in ${WEAK_STEPS:-500 1500}; do
  for c in ${CRITIC_STEPS:-500 final}; do
    run="$out/weak_${w}_critic_${c}"
    config "$(checkpoint teacher "$w")" "$(checkpoint critic "$c")" '["sft_weak", "sft_weak_dpo"]' \
      > "$run.json"
    echo "sweep: weak teacher step $w, critic $c -> $run" >&2
    "$rlaif" experiment --config "$run.json" --out "$run" >/dev/null
    r="$run/results.json"
    weak=$(field "$r" sft_weak accuracy) dpo=$(field "$r" sft_weak_dpo accuracy)
    gap=$(awk -v s="$strong" -v d="$dpo" 'BEGIN { printf "%+.1f", 100 * (s - d) }')
    table+=$'\n'"| teacher step $w | $(pct "$(field "$r" sft_weak teacher_accuracy)") | critic $c | $(pct "$(field "$r" sft_weak_dpo critic_accuracy)") | $(pct "$weak") | $(pct "$dpo") | $(pct "$strong") | $gap |"
  done
done
printf '%s\n' "$table" | tee "$out/sweep.md"
