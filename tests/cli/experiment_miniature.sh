#!/usr/bin/env bash
# `rlaif experiment` on the shipped miniature (data/miniature), cut small: every stage runs, the
# local teachers and critic answer over the real API path, Ctrl-C in the middle of the critic's
# labelling stops cleanly, and the re-run finishes without sending any request twice; then the
# results table, results.json and report.html are written.
set -euo pipefail
rlaif="$1"; root="$2"
mini="$root/data/miniature"
tmp="$(mktemp -d)"
cleanup() { [[ -n "${pid:-}" ]] && kill -9 -- -"$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
head -48 "$mini/prompts.jsonl" > "$tmp/prompts.jsonl"
head -16 "$mini/eval.jsonl" > "$tmp/eval.jsonl"
cat > "$tmp/exp.json" <<JSON
{
  "base_model": "$mini/base",
  "train_prompts": "prompts.jsonl",
  "eval_prompts": "eval.jsonl",
  "exact_match": true,
  "strong_teacher": {"model_dir": "$mini/teacher_strong"},
  "weak_teacher": {"model_dir": "$mini/teacher_weak"},
  "critic": {"model_dir": "$mini/teacher_strong"},
  "critic_template": "$mini/critic_template.txt",
  "distill": {"max-tokens": 16},
  "sft": {"steps": 6, "batch": 8, "lr": 0.001, "max-length": 64, "eval-every": 3, "save-every": 3},
  "sample": {"n": 2, "max-new-tokens": 16, "batch": 16},
  "label": {"judge-max-tokens": 64, "concurrency": 1},
  "dpo": {"steps": 4, "batch": 4, "lr": 0.0001, "max-length": 64, "eval-every": 2, "save-every": 2},
  "eval": {"max-new-tokens": 16, "judge-max-tokens": 64, "batch": 16}
}
JSON

# --dry-run: every stage and what it would ask for, and nothing run.
"$rlaif" experiment --config "$tmp/exp.json" --out "$tmp/out" --dry-run > "$tmp/dry.txt"
[[ $(grep -c '^== ' "$tmp/dry.txt") -eq 10 ]] || { echo "dry run: want 10 stages"; cat "$tmp/dry.txt"; exit 1; }
grep -q "48 requests to the strong teacher" "$tmp/dry.txt" && grep -q "about 96 requests to the critic" "$tmp/dry.txt" &&
  grep -q "32 requests to the judge" "$tmp/dry.txt" || { echo "dry run: request counts"; cat "$tmp/dry.txt"; exit 1; }
[[ ! -e "$tmp/out" ]] || { echo "a dry run wrote files"; exit 1; }

# Ctrl-C while the critic labels (the whole process group, as a terminal sends it).
setsid "$rlaif" experiment --config "$tmp/exp.json" --out "$tmp/out" > "$tmp/first.out" 2> "$tmp/first.err" &
pid=$!
for _ in $(seq 1200); do
  [[ -f "$tmp/out/stages/sample_sft_weak_dpo.json" ]] &&
    (( $(grep -c . "$tmp/out/data/requests.jsonl" 2>/dev/null || echo 0) >= 48 + 48 + 10 )) && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.05
done
kill -INT -- -"$pid" 2>/dev/null || true
set +e; wait "$pid"; code=$?; set -e
pid=
[[ $code -eq 130 ]] || { echo "interrupted experiment: exit $code, want 130"; tail -5 "$tmp/first.err"; exit 1; }
[[ ! -f "$tmp/out/stages/label_sft_weak_dpo.json" ]] || { echo "the labelling finished before the interrupt"; exit 1; }
grep -q "re-run the same command to continue" "$tmp/first.err" || { tail -5 "$tmp/first.err"; exit 1; }
before=$(grep -c . "$tmp/out/data/requests.jsonl")

"$rlaif" experiment --config "$tmp/exp.json" --out "$tmp/out" > "$tmp/second.out" 2> "$tmp/second.err" ||
  { echo "the resumed experiment failed:"; tail -20 "$tmp/second.err"; exit 1; }
grep -q "distill_strong done earlier" "$tmp/second.err" || { echo "finished stages were run again"; exit 1; }
# No request was sent twice: every cached answer has its own key, and the labelling stage took
# the answers it had from the cache.
keys=$(sed -E 's/^\{"key":"([0-9a-f]+)".*/\1/' "$tmp/out/data/requests.jsonl")
[[ $(sort <<<"$keys" | uniq -d | wc -l) -eq 0 ]] || { echo "a request was sent twice"; exit 1; }
cached=$(sed -E 's/.*"cached":([0-9]+).*/\1/' "$tmp/out/stages/label_sft_weak_dpo.json")
(( cached > 0 && cached <= before )) || { echo "label stage cached $cached of $before"; exit 1; }

for arm in sft_strong sft_weak sft_weak_dpo; do
  grep -q "| $arm |" "$tmp/second.out" || { echo "results table lacks $arm"; cat "$tmp/second.out"; exit 1; }
  grep -q "\"arm\":\"$arm\"" "$tmp/out/results.json" || { echo "results.json lacks $arm"; exit 1; }
done
grep -q '"win_rate":[0-9]' "$tmp/out/results.json" && grep -q '"accuracy":[0-9]' "$tmp/out/results.json" ||
  { echo "results.json lacks scores"; cat "$tmp/out/results.json"; exit 1; }
[[ $(grep -c 'class="bar"' "$tmp/out/report.html") -eq 6 ]] || { echo "report: want 2 bar charts of 3 arms"; exit 1; }
grep -q 'data-label="sft_weak_dpo"' "$tmp/out/report.html" || { echo "report lacks the arms' curves"; exit 1; }
grep -q "Answers to held-out prompts" "$tmp/out/report.html" || { echo "report lacks the answers"; exit 1; }
echo "experiment: ok"
