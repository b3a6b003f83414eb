#!/usr/bin/env bash
# `rlaif sft` on the shipped Alpaca demo (999 examples) from a small `rlaif init` model with the
# stories260K tokenizer: a few steps write a model directory that `rlaif generate` loads; the
# metrics hold loss, tokens/s and the held-out loss; --packing gives the same losses; --epochs
# sets the step count; a resumed run repeats the uninterrupted run's losses; bad flags exit 2.
set -euo pipefail
rlaif="$1"; root="$2"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
data="$root/data/instructions/alpaca_en_demo.json"
"$rlaif" init --arch llama --layers 2 --d-model 32 --heads 4 --kv-heads 2 --seq 256 \
  --tokenizer "$root/data/models/stories260K/tokenizer.model" --seed 1 --out "$tmp/init" >/dev/null
common=(--model "$tmp/init" --data "$data" --batch 4 --max-length 256 --max-prompt-length 96
        --lr 1e-3 --eval-every 2 --eval-examples 16 --save-every 2 --keep 0)
source "$root/tests/cli/lib/losses.sh"  # losses METRICS: "step loss" per train line

# A few steps; the result is a model directory that generate loads.
"$rlaif" sft "${common[@]}" --steps 4 --out "$tmp/sft" >"$tmp/out.json" 2>"$tmp/err.txt" \
  || { cat "$tmp/err.txt"; exit 1; }
grep -q '"steps": 4, "loss": ' "$tmp/out.json" || { echo "bad result line: $(cat "$tmp/out.json")"; exit 1; }
grep -q '"val_loss": ' "$tmp/out.json" || { echo "no held-out loss: $(cat "$tmp/out.json")"; exit 1; }
grep -q "950 training examples, 16 held out" "$tmp/err.txt" || { echo "split not reported:"; cat "$tmp/err.txt"; exit 1; }
for f in config.json model.safetensors tokenizer.model metrics.jsonl; do
  [[ -f "$tmp/sft/$f" ]] || { echo "missing $f in the output"; exit 1; }
done
[[ $(losses "$tmp/sft/metrics.jsonl" | wc -l) -eq 4 ]] || { echo "expected 4 train lines"; exit 1; }
grep '"kind":"train"' "$tmp/sft/metrics.jsonl" | grep -q '"tokens_per_s"' || { echo "no tokens/s"; exit 1; }
[[ $(grep -c '"kind":"eval".*"val_loss"' "$tmp/sft/metrics.jsonl") -eq 2 ]] || { echo "expected 2 evaluations"; exit 1; }
"$rlaif" generate --model "$tmp/sft" --prompt "Give three tips for staying healthy." --chat \
  --max-new-tokens 8 --temperature 0 >/dev/null || { echo "generate cannot use the SFT model"; exit 1; }

# Packing: the same examples packed into rows of --max-length give the same losses.
"$rlaif" sft "${common[@]}" --steps 4 --packing --out "$tmp/packed" >/dev/null 2>&1
paste <(losses "$tmp/sft/metrics.jsonl") <(losses "$tmp/packed/metrics.jsonl") |
  awk '{ d = $2 - $4; if (d < 0) d = -d; if ($1 != $3 || d > 1e-4) { print "packed loss differs at step " $1 ": " $2 " vs " $4; bad = 1 } }
       END { exit bad }'

# --epochs without --steps: ceil(0.02 · 950 / 4) = 5 steps.
"$rlaif" sft "${common[@]}" --epochs 0.02 --out "$tmp/epochs" >/dev/null 2>&1
[[ $(losses "$tmp/epochs/metrics.jsonl" | wc -l) -eq 5 ]] || { echo "--epochs 0.02 did not run 5 steps"; exit 1; }

# Resuming from the step-2 checkpoint repeats steps 3 and 4 exactly.
"$rlaif" sft "${common[@]}" --steps 4 --out "$tmp/resumed" --resume "$tmp/sft/checkpoints/step_00000002" >/dev/null 2>&1
diff <(losses "$tmp/sft/metrics.jsonl" | tail -2) <(losses "$tmp/resumed/metrics.jsonl" | tail -2) \
  || { echo "resumed losses differ"; exit 1; }

# Usage errors exit 2.
set +e
"$rlaif" sft "${common[@]}" --max-length 300 --out "$tmp/x" >/dev/null 2>"$tmp/usage.txt"; code=$?
set -e
[[ $code -eq 2 ]] && grep -q "max-length" "$tmp/usage.txt" || { echo "--max-length past the context: exit $code"; cat "$tmp/usage.txt"; exit 1; }
echo "sft on the shipped Alpaca demo: model written and loadable; packing, epochs, resume ok"
