#!/usr/bin/env bash
# KTO, ORPO, CPO and SimPO from the command line with a small model: `rlaif kto` on the shipped
# preference pairs (unpaired) and on a file of labelled completions, starting at loss ½ with TRL's
# metric names, --precompute-ref matching a live reference; `rlaif orpo` and `rlaif cpo` (and
# SimPO as cpo --loss simpo --cpo-alpha 0) logging TRL's metrics; data and usage errors.
set -euo pipefail
rlaif="$1"; root="$2"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
prefs="$root/data/preferences/dpo_en_demo.json"
fail() { echo "FAIL: $*"; exit 1; }
source "$root/tests/cli/lib/losses.sh"  # losses METRICS: "step loss" per train line

"$rlaif" init --arch llama --layers 2 --d-model 32 --heads 4 --kv-heads 2 --seq 64 \
  --tokenizer "$root/data/models/stories260K/tokenizer.model" --seed 1 --out "$tmp/init" >/dev/null
short=(--model "$tmp/init" --max-length 64 --max-prompt-length 40 --batch 4 --lr 1e-3
       --eval-every 0 --save-every 0)
# has_metrics RUN NAME...: every train line of RUN/metrics.jsonl has each NAME, the eval line val_NAME.
has_metrics() {
  local run="$1"; shift
  for key in "$@"; do
    grep '"kind":"train"' "$run/metrics.jsonl" | grep -q "\"$key\":" || fail "$run: train metrics lack $key"
    grep '"kind":"eval"' "$run/metrics.jsonl" | grep -q "\"val_$key\":" || fail "$run: eval metrics lack val_$key"
  done
}
# usage_error WHAT FLAG-IN-MESSAGE ARGS...: exit 2 with a message naming the flag.
usage_error() {
  local what="$1" flag="$2"; shift 2
  set +e; msg="$("$rlaif" "$@" --out "$tmp/bad" 2>&1)"; code=$?; set -e
  [[ $code -eq 2 ]] && grep -q -- "$flag" <<<"$msg" || fail "$what: ($code) $msg"
}

# ---- kto on preference pairs (each split into a desirable and an undesirable example) ---------
"$rlaif" kto "${short[@]}" --data "$prefs" --steps 2 --out "$tmp/kto" >/dev/null 2>"$tmp/kto.err" ||
  { cat "$tmp/kto.err"; fail "kto exited non-zero"; }
grep -q "570 training examples (285 desirable, 285 undesirable), 30 held out" "$tmp/kto.err" ||
  fail "kto split: $(cat "$tmp/kto.err")"
# At the start the policy is the reference: every loss is 1 − σ(0) = ½ exactly.
first="$(losses "$tmp/kto/metrics.jsonl" | head -1)"
[[ "$first" == "1 0.5" ]] || fail "kto step 1 loss: '$first', want exactly 0.5"
has_metrics "$tmp/kto" rewards/chosen rewards/rejected rewards/margins logps/chosen logps/rejected kl
[[ -f "$tmp/kto/model.safetensors" ]] || fail "kto wrote no model"
"$rlaif" kto "${short[@]}" --data "$prefs" --steps 2 --out "$tmp/kto_pre" --precompute-ref \
  >/dev/null 2>"$tmp/pre.err" || { cat "$tmp/pre.err"; fail "kto --precompute-ref exited non-zero"; }
grep -q "kto: reference log-probs written to" "$tmp/pre.err" || fail "no cache: $(cat "$tmp/pre.err")"
paste <(losses "$tmp/kto/metrics.jsonl") <(losses "$tmp/kto_pre/metrics.jsonl") |
  awk '{ d = $2 - $4; if (d < 0) d = -d; if (d > 1e-5) { print "step " $1 ": live " $2 ", precomputed " $4; bad = 1 } }
       END { exit bad }' || fail "kto: precomputed reference losses differ from the live reference's"

# ---- kto on labelled completions, the weights scaling each kind's ½ -------------------------
for i in 1 2 3 4 5 6; do
  printf '{"prompt": "sort: c a b %s", "completion": "a b c", "label": true}\n' "$i"
  printf '{"prompt": [{"role": "user", "content": "sort: b a %s"}], "completion": [{"role": "assistant", "content": "b a"}], "label": false}\n' "$i"
done > "$tmp/unpaired.jsonl"
"$rlaif" kto "${short[@]}" --batch 12 --data "$tmp/unpaired.jsonl" --val-fraction 0 --steps 1 \
  --desirable-weight 3 --out "$tmp/kto_unpaired" >/dev/null 2>"$tmp/unpaired.err" ||
  { cat "$tmp/unpaired.err"; fail "kto on unpaired data exited non-zero"; }
grep -q "12 training examples (6 desirable, 6 undesirable), 0 held out" "$tmp/unpaired.err" ||
  fail "kto unpaired: $(cat "$tmp/unpaired.err")"
# One batch of all 12: (6 · 3·½ + 6 · 1·½) / 12 = 1 exactly.
first="$(losses "$tmp/kto_unpaired/metrics.jsonl" | head -1)"
[[ "$first" == "1 1.0" ]] || fail "weighted kto step 1 loss: '$first', want exactly 1"

printf '{"prompt": "p", "completion": "c", "label": true}\n{"prompt": "p", "completion": "d", "label": "no"}\n' > "$tmp/bad_label.jsonl"
set +e; msg="$("$rlaif" kto "${short[@]}" --data "$tmp/bad_label.jsonl" --out "$tmp/bad" 2>&1)"; code=$?; set -e
[[ $code -eq 1 ]] && grep -q "bad_label.jsonl:2: \"label\" must be true or false" <<<"$msg" ||
  fail "a bad label: ($code) $msg"
usage_error "kto --beta 0" "--beta" kto "${short[@]}" --data "$prefs" --beta 0
usage_error "kto --desirable-weight -1" "--desirable-weight" kto "${short[@]}" --data "$prefs" --desirable-weight -1

# ---- orpo and cpo: no reference -------------------------------------------------------------
"$rlaif" orpo "${short[@]}" --data "$prefs" --steps 2 --out "$tmp/orpo" >/dev/null 2>"$tmp/orpo.err" ||
  { cat "$tmp/orpo.err"; fail "orpo exited non-zero"; }
has_metrics "$tmp/orpo" rewards/chosen rewards/rejected rewards/accuracies rewards/margins \
  logps/chosen logps/rejected nll_loss log_odds_ratio log_odds_chosen
# ORPO's loss is nll_loss − λ·log_odds_ratio (λ = 0.1).
grep '"kind":"train"' "$tmp/orpo/metrics.jsonl" | head -1 |
  sed -E 's/.*"loss":([^,]+).*"nll_loss":([^,]+),"log_odds_ratio":([^,]+).*/\1 \2 \3/' |
  awk '{ d = $1 - ($2 - 0.1 * $3); if (d < 0) d = -d; exit !(d < 1e-4) }' ||
  fail "orpo loss is not nll_loss - 0.1 log_odds_ratio: $(head -1 "$tmp/orpo/metrics.jsonl")"
for loss in sigmoid ipo; do
  "$rlaif" cpo "${short[@]}" --data "$prefs" --steps 1 --loss "$loss" --out "$tmp/cpo_$loss" \
    >/dev/null 2>"$tmp/cpo.err" || { cat "$tmp/cpo.err"; fail "cpo --loss $loss exited non-zero"; }
done
has_metrics "$tmp/cpo_sigmoid" rewards/chosen rewards/accuracies rewards/margins logps/chosen nll_loss
"$rlaif" cpo "${short[@]}" --data "$prefs" --steps 2 --loss simpo --cpo-alpha 0 --beta 2 \
  --simpo-gamma 1 --out "$tmp/simpo" >/dev/null 2>"$tmp/simpo.err" ||
  { cat "$tmp/simpo.err"; fail "simpo exited non-zero"; }
has_metrics "$tmp/simpo" rewards/chosen rewards/margins logps/chosen nll_loss
usage_error "orpo --beta -1" "--beta" orpo "${short[@]}" --data "$prefs" --beta -1
usage_error "cpo --loss orpo" "--loss" cpo "${short[@]}" --data "$prefs" --loss orpo
usage_error "cpo --simpo-gamma without simpo" "--simpo-gamma" cpo "${short[@]}" --data "$prefs" --simpo-gamma 1
usage_error "cpo --label-smoothing with hinge" "--label-smoothing" cpo "${short[@]}" --data "$prefs" \
  --loss hinge --label-smoothing 0.1
usage_error "cpo --cpo-alpha -1" "--cpo-alpha" cpo "${short[@]}" --data "$prefs" --cpo-alpha -1
usage_error "cpo --ref" "--ref" cpo "${short[@]}" --data "$prefs" --ref "$tmp/init"
echo "kto, orpo and cpo: OK"
