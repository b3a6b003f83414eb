#!/usr/bin/env bash
# Checkpoints and resumption on CPU: a run killed with SIGKILL (or stopped with SIGINT) and resumed
# from its last checkpoint logs exactly the losses of an uninterrupted run; damaged or mismatched
# checkpoints are refused with a message saying what is wrong.
set -euo pipefail
rlaif="$1"; root="$2"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
head -c 120000 "$root/data/text/tinyshakespeare.txt" > "$tmp/text.txt"
"$rlaif" init --arch llama --layers 2 --d-model 32 --heads 4 --kv-heads 2 --seq 32 \
  --tokenizer "$root/data/models/stories260K/tokenizer.model" --seed 1 --out "$tmp/init" >/dev/null
common=(--model "$tmp/init" --data "$tmp/text.txt" --batch 4 --seq 32 --steps 40 --lr 3e-3
        --warmup 4 --eval-every 10 --eval-batches 2 --save-every 5 --keep 3 --grad-accum 2)
source "$root/tests/cli/lib/losses.sh"  # losses METRICS: "step loss" per train line

"$rlaif" pretrain "${common[@]}" --out "$tmp/full" >/dev/null 2>&1
losses "$tmp/full/metrics.jsonl" > "$tmp/full.txt"
[[ $(wc -l < "$tmp/full.txt") -eq 40 ]] || { echo "uninterrupted run logged $(wc -l < "$tmp/full.txt") steps"; exit 1; }

# SIGKILL after a checkpoint exists, at two different moments.
for wait_for in 00000010 00000025; do
  out="$tmp/killed_$wait_for"
  "$rlaif" pretrain "${common[@]}" --out "$out" --tensorboard "$out.tb" >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 600); do [[ -d "$out/checkpoints/step_$wait_for" ]] && break; sleep 0.05; done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  [[ -d "$out/checkpoints/step_$wait_for" ]] || { echo "no checkpoint step_$wait_for appeared"; exit 1; }
  "$rlaif" pretrain "${common[@]}" --out "$out" --resume "$out" --tensorboard "$out.tb" >/dev/null 2>&1
  losses "$out/metrics.jsonl" > "$out.txt"
  if ! diff -q "$tmp/full.txt" "$out.txt" >/dev/null; then
    echo "losses after SIGKILL near step $wait_for and resume differ from the uninterrupted run:"
    diff "$tmp/full.txt" "$out.txt" | head -10
    exit 1
  fi
  # --tensorboard: the killed run's event file and the resumed run's, both with train/loss.
  files=("$out.tb"/events.out.tfevents.*)
  [[ ${#files[@]} -eq 2 ]] || { echo "want 2 TensorBoard event files, got: ${files[*]}"; exit 1; }
  for f in "${files[@]}"; do
    grep -aq "train/loss" "$f" || { echo "$f holds no train/loss scalar"; exit 1; }
  done
done

# SIGINT: saves a checkpoint and exits with 128+2; resuming finishes the same run.
out="$tmp/interrupted"
"$rlaif" pretrain "${common[@]}" --out "$out" --save-every 0 >/dev/null 2>"$tmp/int.err" &
pid=$!
for _ in $(seq 600); do grep -q '"step":7,' "$out/metrics.jsonl" 2>/dev/null && break; sleep 0.05; done
kill -INT "$pid"
set +e; wait "$pid"; code=$?; set -e
[[ $code -eq 130 ]] || { echo "SIGINT exit code $code, want 130"; cat "$tmp/int.err"; exit 1; }
grep -q "continue with --resume" "$tmp/int.err" || { echo "no resume hint after SIGINT"; exit 1; }
"$rlaif" pretrain "${common[@]}" --out "$out" --save-every 0 --resume "$out" >/dev/null 2>&1
losses "$out/metrics.jsonl" > "$out.txt"
diff -q "$tmp/full.txt" "$out.txt" >/dev/null || { echo "losses after SIGINT + resume differ"; exit 1; }

# Refusals: other settings, a truncated optimizer state, a missing state file.
set +e
msg="$("$rlaif" pretrain "${common[@]}" --lr 1e-3 --out "$tmp/x" --resume "$tmp/full" 2>&1)"
set -e
grep -q -- "--lr: checkpoint has '3e-3', this run has '1e-3'" <<<"$msg" || { echo "mismatch not named: $msg"; exit 1; }
ckpt="$(ls -d "$tmp/full/checkpoints/"step_* | tail -1)"
truncate -s 100 "$ckpt/trainer_state/state.safetensors"
set +e
msg="$("$rlaif" pretrain "${common[@]}" --out "$tmp/y" --resume "$ckpt" 2>&1)"; code=$?
set -e
[[ $code -eq 1 ]] && grep -q "state.safetensors" <<<"$msg" || { echo "truncated state not refused clearly ($code): $msg"; exit 1; }
rm "$ckpt/trainer_state/state.json"
set +e
msg="$("$rlaif" pretrain "${common[@]}" --out "$tmp/z" --resume "$ckpt" 2>&1)"
set -e
grep -q "incomplete" <<<"$msg" || { echo "missing state.json not refused clearly: $msg"; exit 1; }
echo "resume after SIGKILL/SIGINT is bit-exact; bad checkpoints are refused"
