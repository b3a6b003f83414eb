#!/usr/bin/env bash
# A run directory is never written over by accident: a second `pretrain` (or `init`) into a
# directory that holds a run or a model exits with 2, naming the directory and both ways out
# (--resume, --overwrite), and changes nothing; --overwrite removes the old run's files first, so
# no checkpoint of the first run is left beside the second's, and keeps the caches and the
# user's own files; --overwrite with --resume is a usage error.
set -euo pipefail
rlaif="$1"; root="$2"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
head -c 40000 "$root/data/text/tinyshakespeare.txt" > "$tmp/text.txt"
tok="$root/data/models/stories260K/tokenizer.model"
"$rlaif" init --arch llama --layers 1 --d-model 16 --heads 2 --seq 16 --tokenizer "$tok" --seed 1 \
  --out "$tmp/init" >/dev/null
run=(--model "$tmp/init" --data "$tmp/text.txt" --batch 2 --seq 16 --lr 1e-3 --eval-every 0
     --save-every 2 --keep 0 --out "$tmp/run")

"$rlaif" pretrain "${run[@]}" --steps 4 >/dev/null 2>&1 || fail "the first run"
echo '{"note": "mine"}' > "$tmp/run/notes.json"
echo '{"cached": true}' > "$tmp/run/requests.jsonl"
cp "$tmp/run/metrics.jsonl" "$tmp/first_metrics.jsonl"

expect_usage() {  # what the message must say, then the command
  local want="$1"; shift
  set +e; msg="$("$rlaif" "$@" 2>&1)"; code=$?; set -e
  [[ $code -eq 2 ]] || fail "$*: exit $code, want 2: $msg"
  grep -qF -- "$want" <<<"$msg" || fail "$*: '$want' not in: $msg"
}
# Without a flag: refused, naming the directory, what it holds and both flags; nothing changed.
expect_usage "$tmp/run already holds a run or a model" pretrain "${run[@]}" --steps 2
grep -q -- "--resume $tmp/run" <<<"$msg" && grep -q -- "--overwrite" <<<"$msg" &&
  grep -q "checkpoints/" <<<"$msg" || fail "the refusal names neither flag or the contents: $msg"
cmp -s "$tmp/first_metrics.jsonl" "$tmp/run/metrics.jsonl" || fail "a refused run changed metrics.jsonl"
[[ -d "$tmp/run/checkpoints/step_00000004" ]] || fail "a refused run removed a checkpoint"
expect_usage "--overwrite and --resume contradict" pretrain "${run[@]}" --steps 4 --overwrite --resume "$tmp/run"

# --overwrite: the first run's files are gone before the second writes; caches and notes stay.
"$rlaif" pretrain "${run[@]}" --steps 2 --overwrite >/dev/null 2>&1 || fail "--overwrite"
[[ $(grep -c '"kind":"train"' "$tmp/run/metrics.jsonl") -eq 2 ]] && ! grep -q '"step":[34],' "$tmp/run/metrics.jsonl" ||
  fail "metrics.jsonl mixes runs: $(cat "$tmp/run/metrics.jsonl")"
[[ -d "$tmp/run/checkpoints/step_00000002" && ! -e "$tmp/run/checkpoints/step_00000004" ]] ||
  fail "checkpoints mix runs: $(ls "$tmp/run/checkpoints")"
[[ -f "$tmp/run/notes.json" && -f "$tmp/run/requests.jsonl" ]] || fail "--overwrite removed files rlaif does not own"
# --resume continues into the same directory as before.
"$rlaif" pretrain "${run[@]}" --steps 4 --resume "$tmp/run" >/dev/null 2>&1 || fail "--resume"
[[ $(grep -c '"kind":"train"' "$tmp/run/metrics.jsonl") -eq 4 ]] ||
  fail "the resumed run logged: $(cat "$tmp/run/metrics.jsonl")"

# init: a model directory is not replaced without --overwrite.
expect_usage "--overwrite" init --arch gpt2 --layers 1 --d-model 16 --heads 2 --seq 16 \
  --tokenizer "$tok" --out "$tmp/init"
"$rlaif" init --arch gpt2 --layers 1 --d-model 16 --heads 2 --seq 16 --tokenizer "$tok" \
  --out "$tmp/init" --overwrite >/dev/null || fail "init --overwrite"
grep -q '"model_type": *"gpt2"' "$tmp/init/config.json" || fail "init --overwrite kept the old model"
echo "run directories: refused, overwritten cleanly, resumed: ok"
