#!/usr/bin/env bash
# Crash consistency: `pretrain` killed with SIGKILL at 50 moments spread over every durable write
# of a run (checkpoints above all; io/crash_point.h's RLAIF_CRASH_AT picks the moment) and then
# resumed ends with the uninterrupted run's losses bit for bit, and leaves no temporary file or
# directory behind. RLAIF_CRASH_SEED=N replays one choice of moments.
set -euo pipefail
rlaif="$1"; root="$2"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
head -c 20000 "$root/data/text/tinyshakespeare.txt" > "$tmp/text.txt"
"$rlaif" init --arch llama --layers 1 --d-model 16 --heads 2 --seq 16 \
  --tokenizer "$root/data/models/stories260K/tokenizer.model" --seed 3 --out "$tmp/init" >/dev/null
common=(--model "$tmp/init" --data "$tmp/text.txt" --batch 2 --seq 16 --steps 6 --lr 3e-3
        --warmup 2 --eval-every 3 --eval-batches 1 --save-every 1 --keep 2)
source "$root/tests/cli/lib/losses.sh"  # losses METRICS: "step loss" per train line

"$rlaif" pretrain "${common[@]}" --out "$tmp/full" >/dev/null 2>&1
losses "$tmp/full/metrics.jsonl" > "$tmp/full.txt"
# Counted on a second run: the first one also wrote the token cache beside the text, which every
# later run reads instead.
RLAIF_CRASH_COUNT=1 "$rlaif" pretrain "${common[@]}" --out "$tmp/count" >/dev/null 2>"$tmp/count.err"
points="$(sed -n 's/^rlaif: crash points: \([0-9]*\)$/\1/p' "$tmp/count.err")"
[[ "$points" =~ ^[0-9]+$ && "$points" -ge 100 ]] ||
  { echo "the uninterrupted run reported no crash-point count (or too few: '$points')"; cat "$tmp/count.err"; exit 1; }

# One moment in each of 50 equal slices of the run's crash points, at random within the slice.
seed="${RLAIF_CRASH_SEED:-$RANDOM}"
echo "$points crash points in the run; moments drawn with RLAIF_CRASH_SEED=$seed"
moments="$(awk -v n="$points" -v seed="$seed" 'BEGIN { srand(seed);
  for (i = 0; i < 50; i++) { lo = int(i * n / 50) + 1; hi = int((i + 1) * n / 50);
    print lo + int(rand() * (hi - lo + 1)) } }')"

resumed=0
for at in $moments; do
  out="$tmp/run"
  rm -rf "$out"
  set +e
  # In the background, so that the shell does not report each kill.
  RLAIF_CRASH_AT="$at" "$rlaif" pretrain "${common[@]}" --out "$out" >/dev/null 2>"$tmp/killed.err" &
  wait $! 2>/dev/null
  code=$?
  set -e
  [[ $code -eq 137 ]] || { echo "crash point $at: exit $code, want 137 (SIGKILL)"; cat "$tmp/killed.err"; exit 1; }
  # What a user does next: resume when a checkpoint survived, else start the run again.
  if compgen -G "$out/checkpoints/step_*" >/dev/null; then
    how=(--resume "$out"); resumed=$((resumed + 1))
  else
    how=(--overwrite)
  fi
  "$rlaif" pretrain "${common[@]}" --out "$out" "${how[@]}" >/dev/null 2>"$tmp/resume.err" ||
    { echo "crash point $at: ${how[*]} failed:"; cat "$tmp/resume.err"; exit 1; }
  if ! diff -q "$tmp/full.txt" <(losses "$out/metrics.jsonl") >/dev/null; then
    echo "crash point $at, then ${how[*]}: the losses differ from the uninterrupted run's:"
    diff "$tmp/full.txt" <(losses "$out/metrics.jsonl") | head -10
    exit 1
  fi
  cmp -s "$tmp/full/model.safetensors" "$out/model.safetensors" ||
    { echo "crash point $at: the final weights differ from the uninterrupted run's"; exit 1; }
  left="$(find "$out" "$tmp" -maxdepth 3 \( -name '*.tmp.*' -o -name '.tmp-step_*' \) | head -5)"
  [[ -z "$left" ]] || { echo "crash point $at: temporaries left behind:"; echo "$left"; exit 1; }
done
[[ $resumed -ge 40 ]] || { echo "only $resumed of 50 kills left a checkpoint to resume from"; exit 1; }
echo "50 kills across $points crash points ($resumed resumed from a checkpoint): every run ended bit-exact"
