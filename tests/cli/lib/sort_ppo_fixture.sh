# Sourced by the PPO command-line tests (ppo_cli.sh, ppo_mpi.sh), with $rlaif, $root and $tmp set:
# the sorting task's tiny policy ($tmp/policy, from `rlaif init`), its preference pairs and
# prompts ($tmp/pairs.jsonl, $tmp/prompts.jsonl: sorted letters beat any other order) and a
# reward model trained on them for 3 steps ($tmp/rm, with a score head).
tok="$root/data/models/stories260K/tokenizer.model"
"$rlaif" init --arch llama --layers 1 --d-model 32 --heads 2 --seq 48 --tokenizer "$tok" --seed 1 \
  --out "$tmp/policy" >/dev/null
: > "$tmp/pairs.jsonl"; : > "$tmp/prompts.jsonl"
for p in "d b c a" "h e f g" "c a b" "g f e" "b d a c" "e h g f" "a c b" "f d e"; do
  sorted="$(tr ' ' '\n' <<<"$p" | sort | tr '\n' ' ' | sed 's/ $//')"
  printf '{"prompt": "sort: %s", "chosen": "%s", "rejected": "%s"}\n' "$p" "$sorted" "$p" >> "$tmp/pairs.jsonl"
  printf '{"prompt": "sort: %s"}\n' "$p" >> "$tmp/prompts.jsonl"
done
"$rlaif" rm --model "$tmp/policy" --data "$tmp/pairs.jsonl" --val-fraction 0 --batch 4 --steps 3 \
  --lr 1e-3 --max-length 48 --save-every 0 --out "$tmp/rm" >/dev/null 2>&1 ||
  { echo "the fixture's reward model failed to train"; exit 1; }
grep -q '"num_labels": *1' "$tmp/rm/config.json" || { echo "the reward model has no score head"; exit 1; }
