#!/usr/bin/env bash
# `rlaif report` over real runs: one standalone HTML file with a chart per logged metric and the
# runs overlaid; rewriting its own report is fine, another file is refused and left alone; a run
# whose log ends in a torn line (still running, or killed mid-write) still reports.
set -euo pipefail
rlaif="$1"; root="$2"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
head -c 60000 "$root/data/text/tinyshakespeare.txt" > "$tmp/text.txt"
"$rlaif" init --arch llama --layers 1 --d-model 32 --heads 2 --seq 32 \
  --tokenizer "$root/data/models/stories260K/tokenizer.model" --seed 1 --out "$tmp/init" >/dev/null
for lr in 1e-3 3e-3; do
  "$rlaif" pretrain --model "$tmp/init" --data "$tmp/text.txt" --batch 2 --seq 32 --steps 12 \
    --lr $lr --eval-every 6 --eval-batches 1 --save-every 0 --out "$tmp/runs/lr$lr" >/dev/null 2>&1
done

out="$("$rlaif" report "$tmp/runs/lr1e-3" "$tmp/runs/lr3e-3" --out "$tmp/report.html")"
grep -q '"runs": 2' <<<"$out" || { echo "unexpected summary: $out"; exit 1; }
charts=$(sed -E 's/.*"charts": ([0-9]+).*/\1/' <<<"$out")
# One chart per metric name of each kind in the logs (minus elapsed_s, the time axis).
want=$(cat "$tmp"/runs/*/metrics.jsonl | grep -o '"[a-z_/]*":' | sort -u |
       grep -v -e '"step":' -e '"kind":' -e '"elapsed_s":' | wc -l)
evals=$(cat "$tmp"/runs/*/metrics.jsonl | grep '"kind":"eval"' | grep -o '"[a-z_/]*":' | sort -u |
        grep -v -e '"step":' -e '"kind":' -e '"elapsed_s":' | wc -l)
trains=$(cat "$tmp"/runs/*/metrics.jsonl | grep '"kind":"train"' | grep -o '"[a-z_/]*":' | sort -u |
         grep -v -e '"step":' -e '"kind":' -e '"elapsed_s":' | wc -l)
[[ $charts -eq $((evals + trains)) && $charts -ge 5 ]] ||
  { echo "report drew $charts charts, want $evals eval + $trains train metrics ($want names)"; exit 1; }
[[ $(grep -c '<svg' "$tmp/report.html") -eq $charts ]] || { echo "svg count differs from $charts"; exit 1; }
grep -q 'data-label="lr1e-3"' "$tmp/report.html" && grep -q 'data-label="lr3e-3"' "$tmp/report.html" ||
  { echo "runs are not labelled by their directory names"; exit 1; }
if grep -Eq '<script|https?://[^"]*\.(js|css)|@import|url\(' "$tmp/report.html"; then
  echo "the report must not load anything"; exit 1
fi

# Its own report is rewritten; any other file is refused and kept.
"$rlaif" report "$tmp/runs/lr1e-3" --out "$tmp/report.html" >/dev/null
echo "my notes" > "$tmp/notes.html"
set +e; "$rlaif" report "$tmp/runs/lr1e-3" --out "$tmp/notes.html" 2>"$tmp/err"; code=$?; set -e
[[ $code -eq 2 ]] || { echo "overwriting a foreign file: exit $code, want 2"; exit 1; }
grep -q "not a report rlaif wrote" "$tmp/err" || { cat "$tmp/err"; exit 1; }
[[ "$(cat "$tmp/notes.html")" == "my notes" ]] || { echo "the user's file was changed"; exit 1; }

# A torn last line is skipped; a directory without metrics is named in the error.
printf '{"step":13,"kind":"train","lo' >> "$tmp/runs/lr1e-3/metrics.jsonl"
"$rlaif" report "$tmp/runs/lr1e-3" --out "$tmp/torn.html" >/dev/null
mkdir -p "$tmp/empty"
set +e; "$rlaif" report "$tmp/empty" --out "$tmp/x.html" 2>"$tmp/err"; code=$?; set -e
[[ $code -ne 0 ]] && grep -q "$tmp/empty" "$tmp/err" || { echo "missing metrics: exit $code"; cat "$tmp/err"; exit 1; }
echo "report: $charts charts"
