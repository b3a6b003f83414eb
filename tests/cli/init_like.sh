#!/usr/bin/env bash
# `rlaif init --like CONFIG.json` and `rlaif bench train --like CONFIG.json`: a random-weight
# model of exactly a config's shape (here the Llama-3-scaled golden model's: head_dim 12 with
# hidden 40 and 4 heads, grouped-query attention, tied head, rope_scaling), which bench times;
# shape flags beside --like, and a tokenizer larger than its vocabulary, are usage errors.
set -euo pipefail
rlaif="$1"; root="$2"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
like="$root/tests/data/model_goldens/llama3/config.json"

"$rlaif" init --like "$like" --seed 3 --out "$tmp/m" > "$tmp/init.out" || fail "init --like failed"
grep -q "llama like $like" "$tmp/init.out" || fail "init output: $(cat "$tmp/init.out")"
for key in '"head_dim": 12' '"hidden_size": 40' '"num_key_value_heads": 2' '"vocab_size": 97' \
           '"rope_type": "llama3"' '"original_max_position_embeddings": 8192' \
           '"tie_word_embeddings": true' '"max_position_embeddings": 4096'; do
  grep -qF "$key" "$tmp/m/config.json" || fail "config.json lacks $key: $(cat "$tmp/m/config.json")"
done

# Shape flags beside --like are refused (exit 2, naming the flag).
set +e
"$rlaif" init --like "$like" --layers 3 --out "$tmp/x" 2> "$tmp/err"; rc=$?
set -e
[[ $rc -eq 2 ]] && grep -q -- "--layers" "$tmp/err" || fail "--like with --layers: rc $rc, $(cat "$tmp/err")"
set +e
"$rlaif" init --like "$like" --tokenizer "$root/data/tokenizers/qwen3" --out "$tmp/x" 2> "$tmp/err"; rc=$?
set -e
[[ $rc -eq 2 ]] && grep -q "vocabulary of 97" "$tmp/err" || fail "tokenizer larger than the vocabulary: rc $rc, $(cat "$tmp/err")"
[[ ! -e "$tmp/x" ]] || fail "a refused init wrote $tmp/x"

# bench train times the config's model.
"$rlaif" bench train --like "$like" --batch 1 --seq 16 --steps 1 --warmup 0 --json "$tmp/b.json" \
  > "$tmp/bench.out" 2> "$tmp/bench.err" || { cat "$tmp/bench.err"; fail "bench train --like failed"; }
grep -q "bench train: $like (llama)" "$tmp/bench.err" || fail "bench names: $(cat "$tmp/bench.err")"
grep -q '"tokens_per_s"' "$tmp/b.json" && grep -qF "\"like\": \"$like\"" "$tmp/b.json" ||
  fail "bench json: $(cat "$tmp/b.json")"
grep -q "^bench train: $like (llama) (0.0" "$tmp/bench.out" || fail "bench table: $(cat "$tmp/bench.out")"
set +e
"$rlaif" bench train --like "$like" --preset 124M 2> "$tmp/err"; rc=$?
set -e
[[ $rc -eq 2 ]] || fail "--like with --preset: rc $rc"
echo "init --like and bench train --like build and time the config's model"
