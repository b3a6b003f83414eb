#!/usr/bin/env bash
# The README's offline recipe, run exactly as written there (only the port is made free): every
# command in it must produce non-empty output with the shipped data.
set -euo pipefail
rlaif="$(realpath "$1")"; root="$(realpath "$2")"
tmp="$(mktemp -d)"
trap 'kill %1 2>/dev/null || true; rm -rf "$tmp"' EXIT
marker='<!-- tests/cli/readme_recipe.sh runs the next block as it is written -->'
block="$(awk -v m="$marker" '$0 == m {found=1; next} found && /^```sh/ {inside=1; next}
                             inside && /^```/ {exit} inside {print}' "$root/README.md")"
[[ -n "$block" ]] || { echo "README.md has no block after the marker"; exit 1; }
port=$(( 20000 + RANDOM % 20000 ))
cd "$tmp"
ln -s "$root/data" data
mkdir -p build/tools && ln -s "$rlaif" build/tools/rlaif
set +e
bash -e -c "${block//8080/$port}" > recipe.out 2> recipe.err
code=$?
set -e
[[ $code -eq 0 ]] || { echo "the README recipe failed (exit $code):"; tail -20 recipe.err; exit 1; }
for f in run/sft.jsonl run/sft/model.safetensors run/samples.jsonl run/prefs.jsonl \
         run/dpo/model.safetensors run/eval.jsonl; do
  [[ -s "$f" ]] || { echo "the README recipe left $f empty or missing"; tail -20 recipe.err; exit 1; }
done
grep -q '"accuracy":' recipe.out || { echo "eval printed no accuracy"; cat recipe.out; exit 1; }
echo "README recipe: ok"
