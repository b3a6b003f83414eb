#!/usr/bin/env bash
# `rlaif experiment`'s results from finished stages, on hand-made files whose numbers are known:
# the teachers' and the critic's agreement with the checker (the train prompts carry their right
# answers), the judge's agreement on wrong answers, and the costs summed over the stages (per arm,
# and for the whole experiment with shared stages counted once).
set -euo pipefail
rlaif="$1"; root="$2"
mini="$root/data/miniature"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
out="$tmp/out"
mkdir -p "$out/stages" "$out/data" "$out/eval"

cat > "$tmp/prompts.jsonl" <<'EOF'
{"prompt":"Sort the letters b a.","answer":"a b"}
{"prompt":"Sort the letters d c.","answer":"c d"}
{"prompt":"What is 2 + 3?","answer":"5"}
{"prompt":"What is 4 + 4?","answer":"8"}
{"prompt":"Reverse the letters x y.","answer":"y x"}
EOF
head -2 "$tmp/prompts.jsonl" | sed 's/"answer"/"completion"/' > "$tmp/eval.jsonl"
cat > "$tmp/exp.json" <<JSON
{
  "base_model": "$mini/base",
  "train_prompts": "prompts.jsonl",
  "eval_prompts": "eval.jsonl",
  "exact_match": true,
  "strong_teacher": {"model_dir": "$mini/teacher_strong"},
  "weak_teacher": {"model_dir": "$mini/teacher_weak"},
  "critic": {"model_dir": "$mini/teacher_strong"}
}
JSON
# The strong teacher is right on 3 of its 4 kept answers (one prompt dropped), the weak on 1 of 5.
cat > "$out/data/sft_strong.jsonl" <<'EOF'
{"prompt":"Sort the letters b a.","completion":"a b"}
{"prompt":"Sort the letters d c.","completion":" c d "}
{"prompt":"What is 2 + 3?","completion":"6"}
{"prompt":"What is 4 + 4?","completion":"8"}
EOF
cat > "$out/data/sft_weak.jsonl" <<'EOF'
{"prompt":"Sort the letters b a.","completion":"b a"}
{"prompt":"Sort the letters d c.","completion":"c d"}
{"prompt":"What is 2 + 3?","completion":"6"}
{"prompt":"What is 4 + 4?","completion":"9"}
{"prompt":"Reverse the letters x y.","completion":"x y"}
EOF
# Decisive pairs (exactly one right sample): two kept pairs, one right and one wrong, and one
# tie. The pair of two wrong samples and the pair of two right ones are not decisive.
cat > "$out/data/sft_weak_dpo_prefs.jsonl" <<'EOF'
{"prompt":"Sort the letters b a.","chosen":"a b","rejected":"b a"}
{"prompt":"Sort the letters d c.","chosen":"d c","rejected":"c d"}
{"prompt":"What is 2 + 3?","chosen":"6","rejected":"7"}
EOF
cat > "$out/data/sft_weak_dpo_prefs.excluded.jsonl" <<'EOF'
{"prompt":"What is 4 + 4?","completions":["8","9"],"outcome":"tie"}
{"prompt":"Reverse the letters x y.","completions":["y x","y x"],"outcome":"tie"}
EOF
# Held-out answers: of the weak arm's three wrong answers judged, the judge preferred the
# reference in both orders for two (losses).
cat > "$out/eval/sft_weak.jsonl" <<'EOF'
{"prompt":"p1","output":"a","reference":"b","outcome":"loss","score":0,"exact_match":false}
{"prompt":"p2","output":"a","reference":"b","outcome":"tie","score":0.5,"exact_match":false}
{"prompt":"p3","output":"a","reference":"b","outcome":"loss","score":0,"exact_match":false}
{"prompt":"p4","output":"b","reference":"b","outcome":"tie","score":0.5,"exact_match":true}
{"prompt":"p5","output":"a","reference":"b","outcome":"unparsed","exact_match":false}
EOF
stage() { printf '%s\n' "$2" > "$out/stages/$1.json"; }
# Each summary names the files its stage wrote, as the commands' own summaries do.
stage distill_strong "{\"written\":4,\"requests_sent\":3,\"cached\":2,\"prompt_tokens\":100,\"completion_tokens\":10,\"out\":\"$out/data/sft_strong.jsonl\"}"
stage distill_weak "{\"written\":5,\"requests_sent\":5,\"cached\":0,\"prompt_tokens\":100,\"completion_tokens\":20,\"out\":\"$out/data/sft_weak.jsonl\"}"
stage sft_strong '{"steps":1}'
stage sft_weak '{"steps":1}'
stage sample_sft_weak_dpo '{"written":5}'
stage label_sft_weak_dpo "{\"written\":3,\"requests_sent\":10,\"cached\":0,\"prompt_tokens\":1000,\"completion_tokens\":50,\"out\":\"$out/data/sft_weak_dpo_prefs.jsonl\",\"excluded\":\"$out/data/sft_weak_dpo_prefs.excluded.jsonl\"}"
stage sft_weak_dpo '{"steps":1}'
for arm in sft_strong sft_weak sft_weak_dpo; do
  stage "eval_$arm" '{"win_rate":0.25,"stderr":0.05,"judged":4,"accuracy":0.5,"accuracy_stderr":0.1,"requests_sent":4,"cached":0,"prompt_tokens":40,"completion_tokens":4}'
done

"$rlaif" experiment --config "$tmp/exp.json" --out "$out" > "$tmp/stdout" 2> "$tmp/stderr" ||
  { echo "experiment failed:"; cat "$tmp/stderr"; exit 1; }
grep -q "serving" "$tmp/stderr" && { echo "finished stages started a server"; exit 1; }
arm_json() { grep -o "{\"arm\":\"$1\"[^}]*}" "$out/results.json"; }
want() {  # want ARM FIELD VALUE
  arm_json "$1" | grep -q "\"$2\":$3[,}]" ||
    { echo "$1: want $2 = $3 in: $(arm_json "$1")"; exit 1; }
}
want sft_strong teacher_accuracy 0.75
want sft_strong teacher_checked 4
want sft_weak teacher_accuracy 0.2
want sft_weak teacher_checked 5
want sft_weak critic_accuracy null
want sft_weak_dpo critic_accuracy 0.3333333333333333
want sft_weak_dpo critic_decisive 3
want sft_weak_dpo preference_pairs 3
want sft_weak judge_agreement 0.6666666666666666
want sft_weak wrong_judged 3
want sft_strong requests 9      # distill 3 sent + 2 cached, eval 4
want sft_weak_dpo requests 19   # distill 5, label 10, eval 4
want sft_weak_dpo tokens 1214
# The whole experiment's cost counts the shared distill_weak once: 5 + 5 + 10 + 3 x 4 requests,
# 110 + 120 + 1050 + 3 x 44 tokens (the arms' own figures add up to 37 and 1546).
grep -q '"requests":32,"tokens":1412}$' "$out/results.json" ||
  { echo "results.json total: want 32 requests, 1412 tokens: $(tail -c 80 "$out/results.json")"; exit 1; }
grep -q '^API cost of the whole experiment .*: 32 requests, 1412 tokens.$' "$out/results.md" ||
  { echo "results.md lacks the total cost"; cat "$out/results.md"; exit 1; }
grep -q '| sft_weak_dpo | local: .* | 20.0 of 5 | local: .* | 33.3 of 3 | 5 | 3 |' "$out/results.md" ||
  { echo "results.md row:"; cat "$out/results.md"; exit 1; }
grep -q '33.3 of 3 right' "$out/report.html" || { echo "report.html lacks the critic's agreement"; exit 1; }
echo "experiment results: ok"
