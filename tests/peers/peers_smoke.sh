#!/usr/bin/env bash
# The PyTorch peer benchmarks (tools/peers/*.py) on CPU at tiny sizes: each runs, writes one line
# of JSON whose times are positive and finite, and computes what it claims to:
# - torch_attention.py: where torch has scaled_dot_product_attention, its output agrees with the
#   explicit softmax attention within 1e-5;
# - torch_dpo_step.py: the loss of step 0 is log 2 (policy == reference, so every margin is 0);
# - torch_generate.py: the first prompt's greedy tokens are the same at batch 1 and batch 2.
# Exits 77 (skipped) unless python3 (or $PYTHON) imports torch. The project does not install
# torch (tools/install_deps.sh leaves it out), so CI skips this test; it is for machines where
# PyTorch is present.
# Usage: peers_smoke.sh REPO_ROOT
set -uo pipefail
root="${1:?usage: peers_smoke.sh REPO_ROOT}"
py="${PYTHON:-python3}"
if ! "$py" -c "import torch" > /dev/null 2>&1; then
  echo "SKIP: $py cannot import torch"
  exit 77
fi
peers="$root/tools/peers"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
export OMP_NUM_THREADS=1 PYTHONDONTWRITEBYTECODE=1
fail=0
flunk() { echo "FAIL: $*"; fail=1; }
run() {  # name, script, arguments...: must exit 0; its output goes to $tmp/name.txt
  local name="$1" script="$2"; shift 2
  if ! "$py" "$peers/$script" --device cpu --threads 1 --reps 1 --warmup 0 \
      --json "$tmp/$name.json" "$@" > "$tmp/$name.txt" 2>&1; then
    flunk "$script $* exited non-zero"
    cat "$tmp/$name.txt"
  fi
}
check() {  # name, python code reading the JSON as `d`; it prints problems, one a line
  local out
  [[ -s "$tmp/$1.json" ]] || { flunk "$1: no JSON written"; return; }
  out="$("$py" -c "
import json, math, sys
d = json.loads(open(sys.argv[1]).read())
def positive(what, x):
    if not (isinstance(x, (int, float)) and math.isfinite(x) and x > 0):
        print(f'{what} is {x!r}, want a positive finite number')
assert d['torch_version'] and d['device_name'] == 'cpu'
$2" "$tmp/$1.json" 2>&1)" || flunk "$1: the check raised: $out"
  [[ -z "$out" ]] || flunk "$1: $out"
}

run attention torch_attention.py --small --check
check attention "
rows = d['rows']
if len(rows) != 16: print(f'{len(rows)} rows, want 16')
for r in rows:
    positive(r['name'] + ' ms', r['ms'])
    positive(r['name'] + ' tflops', r['tflops'])
    diff = r['max_abs_diff_vs_math']
    if d['attention'] == 'sdpa' and not (diff is not None and diff < 1e-5):
        print(f'{r[\"name\"]} T={r[\"T\"]} Hkv={r[\"Hkv\"]}: SDPA differs from the math path by {diff}')
"

for arch in gpt2 llama; do
  run "dpo_$arch" torch_dpo_step.py --arch "$arch" --preset tiny --seq 32 --prompt 16 --pairs 2
  check "dpo_$arch" "
if [r['mode'] for r in d['rows']] != ['live', 'precomputed']: print('modes', d['rows'])
for r in d['rows']:
    for key in ('ms_per_step', 'steps_per_s', 'pairs_per_s', 'tokens_per_s'):
        positive(r['mode'] + ' ' + key, r[key])
    if r['peak_bytes'] is not None: print('peak_bytes on cpu should be null')
positive('precompute_s', d['rows'][1]['precompute_s'])
if abs(d['step0_loss'] - math.log(2)) > 1e-4: print(f'step 0 loss {d[\"step0_loss\"]}, want log 2')
"

  run "generate_$arch" torch_generate.py --arch "$arch" --preset tiny --batch 1,2 --prompt-len 8 \
    --new-tokens 4
  check "generate_$arch" "
rows = d['rows']
if [r['batch'] for r in rows] != [1, 2]: print('batches', rows)
for r in rows:
    for key in ('prefill_ms', 'decode_ms_per_step', 'decode_tokens_per_s', 'tokens_per_s'):
        positive(f'batch {r[\"batch\"]} {key}', r[key])
if rows[0]['first_row_tokens'][:4] != rows[1]['first_row_tokens'][:4]:
    print('batch 1 and batch 2 disagree on the first prompt:', [r['first_row_tokens'] for r in rows])
"
done

if [[ $fail -eq 0 ]]; then echo "peers smoke: all checks passed"; fi
exit $fail
