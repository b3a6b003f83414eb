#!/usr/bin/env bash
# `rlaif tokenize` against the goldens of the Rust `tokenizers` library (tests/data/tokenizers/)
# for Qwen3 and GPT-2 (tokenizer.json, and GPT-2's vocab.json + merges.txt too): the ids of every
# golden text with and without special tokens, the text of decoding them, and one rendering of
# Qwen3's chat template checked against jinja2's (tests/data/chat_templates/goldens.json), whose
# ids must be the rendered text's ids. Errors name the input line and exit 1.
set -euo pipefail
rlaif="$1"; root="$2"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# One line per golden entry: text literal <TAB> ids <TAB> ids with special tokens <TAB> decoded
# literal (JSON string literals exactly as the golden file writes them, ids comma-separated).
golden_rows() {
  awk '
    function flush_ids() { if (key != "") { value[key] = ids; key = "" } }
    /^   "text": / { line = $0; sub(/^   "text": /, "", line); sub(/,$/, "", line); text = line }
    /^   "decoded": / { line = $0; sub(/^   "decoded": /, "", line); sub(/,$/, "", line); decoded = line }
    /^   "(ids|ids_with_special_tokens)": \[/ {
      key = $0; sub(/^   "/, "", key); sub(/".*/, "", key); ids = ""
      if ($0 ~ /\]/) flush_ids()
      next
    }
    key != "" && /^   \]/ { flush_ids(); next }
    key != "" { n = $0; gsub(/[ ,]/, "", n); ids = (ids == "" ? n : ids "," n) }
    /^  }/ { print text "\t" value["ids"] "\t" value["ids_with_special_tokens"] "\t" decoded }
  ' "$1"
}

check_tokenizer() {  # name, model directory, golden file
  local name="$1" dir="$2" golden="$3"
  golden_rows "$golden" > "$tmp/$name.rows"
  local count
  count="$(wc -l < "$tmp/$name.rows" | tr -d ' ')"
  ((count >= 100)) || fail "$name: only $count golden entries parsed from $golden"
  cut -f1 "$tmp/$name.rows" | sed 's/^/{"text": /; s/$/}/' > "$tmp/$name.texts"
  cut -f2 "$tmp/$name.rows" | sed 's/^/{"ids":[/; s/$/]}/' > "$tmp/$name.want_plain"
  cut -f3 "$tmp/$name.rows" | sed 's/^/{"ids":[/; s/$/]}/' > "$tmp/$name.want_special"
  "$rlaif" tokenize --model "$dir" < "$tmp/$name.texts" > "$tmp/$name.special"
  "$rlaif" tokenize --model "$dir" --no-special < "$tmp/$name.texts" > "$tmp/$name.plain"
  diff "$tmp/$name.want_special" "$tmp/$name.special" > /dev/null ||
    fail "$name: ids with special tokens differ from $golden: $(diff "$tmp/$name.want_special" "$tmp/$name.special" | head -5)"
  diff "$tmp/$name.want_plain" "$tmp/$name.plain" > /dev/null ||
    fail "$name: ids with --no-special differ from $golden: $(diff "$tmp/$name.want_plain" "$tmp/$name.plain" | head -5)"
  # Decoding: compared where the golden's literal is plain ASCII, which both writers spell alike
  # (Python escapes other characters as \uXXXX, rlaif writes them as UTF-8).
  "$rlaif" tokenize --model "$dir" --decode < "$tmp/$name.want_plain" > "$tmp/$name.decoded"
  cut -f4 "$tmp/$name.rows" | paste - "$tmp/$name.decoded" | grep -v '\\u' > "$tmp/$name.decode_pairs" || true
  local compared=0 want got
  while IFS=$'\t' read -r want got; do
    [[ "$got" == "{\"text\":$want}" ]] || fail "$name: decoded $got, golden $want"
    compared=$((compared + 1))
  done < "$tmp/$name.decode_pairs"
  ((compared >= 30)) || fail "$name: only $compared decodings compared"
  echo "$name: $count texts encoded as the goldens, $compared decodings equal"
}

check_tokenizer qwen3 "$root/data/tokenizers/qwen3" "$root/tests/data/tokenizers/qwen3_goldens.json"
check_tokenizer gpt2 "$root/data/tokenizers/gpt2" "$root/tests/data/tokenizers/gpt2_goldens.json"
mkdir "$tmp/gpt2_vocab_merges"
cp "$root/data/tokenizers/gpt2/vocab.json.xz" "$root/data/tokenizers/gpt2/merges.txt.xz" "$tmp/gpt2_vocab_merges/"
check_tokenizer gpt2_vocab_merges "$tmp/gpt2_vocab_merges" "$root/tests/data/tokenizers/gpt2_goldens.json"

# A special token written in the text is one id; decoding writes it out.
qwen="$root/data/tokenizers/qwen3"
out="$(echo '{"text": "<|im_start|>user"}' | "$rlaif" tokenize --model "$qwen")"
[[ "$out" == '{"ids":[151644,872]}' ]] || fail "special token in text: $out"
out="$(echo '{"ids": [151644, 872, 151645]}' | "$rlaif" tokenize --model "$qwen" --decode)"
[[ "$out" == '{"text":"<|im_start|>user<|im_end|>"}' ]] || fail "decoding special tokens: $out"

# Qwen3's chat template, as jinja2 renders it (system_user, add_generation_prompt true).
expected="$(awk '
  /"model": "qwen3"/ { model = 1; next }
  model && /"conversation": "system_user"/ { conv = 1; next }
  model && conv && /"add_generation_prompt": true/ { gen = 1; next }
  model && conv && gen && /"expected": / { sub(/^ *"expected": /, ""); print; exit }
  /^  }/ { model = conv = gen = 0 }
' "$root/tests/data/chat_templates/goldens.json")"
[[ "$expected" == '"<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"' ]] ||
  fail "the chat-template golden was not found: $expected"
messages='[{"role": "system", "content": "You are terse."}, {"role": "user", "content": "What is 2+2?"}]'
out="$(echo "{\"messages\": $messages, \"add_generation_prompt\": true}" | "$rlaif" tokenize --model "$qwen")"
rendered_ids="$(printf '{"text": %s}\n' "$expected" | "$rlaif" tokenize --model "$qwen" --no-special)"
[[ "$out" == "{\"text\":$expected,${rendered_ids#\{}" ]] || fail "chat template: $out, want text $expected and $rendered_ids"
[[ "$rendered_ids" == '{"ids":[151644,8948,198,2610,525,50537,13,151645,198,151644,872,198,3838,374,220,17,10,17,30,151645,198,151644,77091,198]}' ]] ||
  fail "rendered chat ids: $rendered_ids"
echo "qwen3 chat template: rendered and tokenized as transformers"

# Errors name the line and exit 1.
expect_error() {  # description, expected text in stderr, stdin, flags...
  local what="$1" want="$2" input="$3"
  shift 3
  local rc=0
  printf '%s' "$input" | "$rlaif" tokenize "$@" > "$tmp/err.out" 2> "$tmp/err.txt" || rc=$?
  ((rc == 1)) || fail "$what: exit $rc, want 1"
  grep -qF -- "$want" "$tmp/err.txt" || fail "$what: stderr lacks '$want': $(cat "$tmp/err.txt")"
}
expect_error "bad JSON" "stdin line 2" $'{"text": "a"}\n{"text": \n' --model "$qwen"
expect_error "blank line" "stdin line 2: blank line" $'{"text": "a"}\n\n{"text": "b"}\n' --model "$qwen"
expect_error "unknown key" "stdin line 1: unexpected key \"txt\"" $'{"txt": "a"}\n' --model "$qwen"
expect_error "id outside the vocabulary" "stdin line 1" $'{"ids": [999999]}\n' --model "$qwen" --decode
expect_error "no chat template" "$root/data/tokenizers/gpt2" \
  $'{"messages": [{"role": "user", "content": "hi"}]}\n' --model "$root/data/tokenizers/gpt2"
expect_error "no tokenizer" "looked for tokenizer.json" $'{"text": "a"}\n' --model "$tmp"
grep -qF "$tmp" "$tmp/err.txt" || fail "no tokenizer: the directory is not named"
echo "tokenize: errors name the line"
