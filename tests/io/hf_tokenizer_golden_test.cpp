// Hugging Face tokenizers against goldens: the shipped GPT-2, Qwen3, Llama 3.1 and Gemma 3
// tokenizers must give, for every text of tests/data/tokenizers/<name>_goldens.json, the ids (with
// and without special tokens) and decoded texts (with and without skip_special_tokens) that
// Hugging Face's own implementation gave (tools/golden/make_tokenizer_goldens.mjs wrote them).
#include <rapidjson/document.h>

#include <filesystem>
#include <thread>

#include "io/tokenizer.h"
#include "tests/io/io_test_util.h"

namespace rlaif {
namespace {

namespace fs = std::filesystem;

struct Golden {
  std::string text;
  std::vector<int32_t> ids, ids_with_special_tokens;
  std::string decoded, decoded_skip_special_tokens;
  std::vector<std::string> decoded_each_id;  // empty where the goldens do not list them
};

std::vector<Golden> read_goldens(const std::string& name) {
  const std::string path =
      (fs::path(test::source_dir()) / "tests/data/tokenizers" / (name + "_goldens.json")).string();
  const std::string text = test::read_bytes(path);
  rapidjson::Document doc;
  doc.Parse(text.data(), text.size());
  EXPECT_FALSE(doc.HasParseError()) << path;
  std::vector<Golden> goldens;
  auto ids_of = [](const rapidjson::Value& list) {
    std::vector<int32_t> ids;
    for (const auto& v : list.GetArray()) ids.push_back(v.GetInt());
    return ids;
  };
  for (const auto& e : doc["entries"].GetArray()) {
    Golden g;
    g.text.assign(e["text"].GetString(), e["text"].GetStringLength());
    g.ids = ids_of(e["ids"]);
    g.ids_with_special_tokens = ids_of(e["ids_with_special_tokens"]);
    g.decoded.assign(e["decoded"].GetString(), e["decoded"].GetStringLength());
    g.decoded_skip_special_tokens.assign(e["decoded_skip_special_tokens"].GetString(),
                                         e["decoded_skip_special_tokens"].GetStringLength());
    if (e.HasMember("decoded_each_id")) {
      for (const auto& v : e["decoded_each_id"].GetArray()) {
        g.decoded_each_id.emplace_back(v.GetString(), v.GetStringLength());
      }
    }
    goldens.push_back(std::move(g));
  }
  return goldens;
}

void expect_goldens(const Tokenizer& tok, const std::string& name) {
  const std::vector<Golden> goldens = read_goldens(name);
  ASSERT_GE(goldens.size(), 30u) << name;
  for (const Golden& g : goldens) {
    SCOPED_TRACE(name + ": text \"" + g.text + "\"");
    EXPECT_EQ(tok.encode(g.text), g.ids);
    EXPECT_EQ(tok.encode(g.text, true), g.ids_with_special_tokens);
    EXPECT_EQ(tok.decode(g.ids_with_special_tokens, false), g.decoded);
    EXPECT_EQ(tok.decode(g.ids_with_special_tokens, true), g.decoded_skip_special_tokens);
    for (size_t i = 0; i < g.decoded_each_id.size(); ++i) {
      EXPECT_EQ(tok.decode({g.ids_with_special_tokens[i]}, false), g.decoded_each_id[i])
          << "id " << g.ids_with_special_tokens[i] << " at position " << i;
    }
  }
}

std::string tokenizer_dir(const std::string& name) {
  return test::data_path("tokenizers/" + name);
}

TEST(HfTokenizerGolden, Gpt2TokenizerJson) {
  const Tokenizer tok = Tokenizer::load_dir(tokenizer_dir("gpt2"));
  EXPECT_STREQ(tok.format(), "tokenizer.json");
  EXPECT_EQ(tok.vocab_size(), 50257);
  expect_goldens(tok, "gpt2");
}

TEST(HfTokenizerGolden, Gpt2VocabAndMerges) {
  // The same tokenizer from vocab.json + merges.txt alone.
  test::TempDir dir;
  for (const char* f : {"vocab.json.xz", "merges.txt.xz"}) {
    fs::copy_file(fs::path(tokenizer_dir("gpt2")) / f, fs::path(dir.str()) / f);
  }
  const Tokenizer tok = Tokenizer::load_dir(dir.str());
  EXPECT_STREQ(tok.format(), "vocab.json+merges.txt");
  EXPECT_EQ(tok.eos_id(), 50256);
  EXPECT_EQ(tok.bos_id(), 50256);
  expect_goldens(tok, "gpt2");
}

TEST(HfTokenizerGolden, OnigurumaWhitespaceWhereTokenizersJsDiffers) {
  // Expected ids written by reasoning from the Rust crate, whose regexes run on Oniguruma: there
  // \s is Unicode White_Space, which holds U+0085 (NEL) and not U+180E or U+FEFF.
  // @huggingface/tokenizers agrees on U+180E in Split patterns (it translates \s to
  // \p{White_Space}) but its ByteLevel pre-tokenizer runs GPT-2's pattern as a JavaScript regex,
  // whose \s lacks U+0085: for "\n\n\x85E" it gives "\n" "\n" "\x85" "E" = 198 198 126 227 36.
  // Oniguruma: \s+(?!\S) takes "\n\n" (the longest run not followed by a non-space), then
  // \s+ takes "\x85", then "E".
  const Tokenizer gpt2 = Tokenizer::load_dir(tokenizer_dir("gpt2"));
  EXPECT_EQ(gpt2.encode("\n\n\xC2\x85"
                        "E"),
            (std::vector<int32_t>{628, 126, 227, 36}));
  // U+FEFF is not space: " ?[^\s\p{L}\p{N}]+" takes it alone, then " y".
  EXPECT_EQ(gpt2.encode("x\xEF\xBB\xBF y"), (std::vector<int32_t>{87, 171, 119, 123, 331}));
  // U+180E (a format character, not White_Space, but PCRE2's own \s takes it): it joins the "'"
  // after it as punctuation, so "'s" is not a contraction; equal to @huggingface/tokenizers.
  const Tokenizer qwen = Tokenizer::load_dir(tokenizer_dir("qwen3"));
  EXPECT_EQ(qwen.encode("a\xE1\xA0\x8E's"), (std::vector<int32_t>{64, 123970, 236, 6, 82}));
}

TEST(HfTokenizerGolden, ByteFallbackInvalidRunsWhereTokenizersJsDiffers) {
  // Written by reasoning from the Rust crate's ByteFallback decoder: a run of "<0xAB>" pieces
  // that is not valid UTF-8 as a whole becomes one U+FFFD per piece, valid bytes included.
  // @huggingface/tokenizers decodes the run leniently instead ("\x16\xEF\xBF\xBD" here).
  const Tokenizer gemma = Tokenizer::load_dir(tokenizer_dir("gemma3"));
  ASSERT_EQ(gemma.piece(260), "<0x16>");
  ASSERT_EQ(gemma.piece(437), "<0xC7>");
  EXPECT_EQ(gemma.decode({276, 147980, 260, 437}), "&startTimestamp\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(HfTokenizerGolden, ConcurrentEncodingMatchesSequential) {
  // Threads share the tokenizer and its word cache.
  const Tokenizer tok = Tokenizer::load_dir(tokenizer_dir("gpt2"));
  const std::vector<Golden> goldens = read_goldens("gpt2");
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 20; ++rep) {
        for (size_t i = static_cast<size_t>(t); i < goldens.size(); i += 2) {
          if (tok.encode(goldens[i].text) != goldens[i].ids) ++mismatches[static_cast<size_t>(t)];
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches, std::vector<int>(4, 0));
}

TEST(HfTokenizerGolden, Qwen3) {
  const Tokenizer tok = Tokenizer::load_dir(tokenizer_dir("qwen3"));
  EXPECT_EQ(tok.eos_id(), 151645);  // <|im_end|>
  EXPECT_EQ(tok.pad_id(), 151643);  // <|endoftext|>
  EXPECT_EQ(tok.bos_id(), -1);
  EXPECT_FALSE(tok.adds_bos());
  EXPECT_EQ(tok.token_id("<|im_start|>"), 151644);
  EXPECT_EQ(tok.model_max_length(), 131072);
  expect_goldens(tok, "qwen3");
}

TEST(HfTokenizerGolden, Llama31) {
  const Tokenizer tok = Tokenizer::load_dir(tokenizer_dir("llama3_1"));
  EXPECT_EQ(tok.bos_id(), 128000);
  EXPECT_EQ(tok.eos_id(), 128009);  // <|eot_id|>
  EXPECT_TRUE(tok.adds_bos());
  EXPECT_EQ(tok.vocab_size(), 128256);
  expect_goldens(tok, "llama3_1");
}

TEST(HfTokenizerGolden, Gemma3) {
  const Tokenizer tok = Tokenizer::load_dir(tokenizer_dir("gemma3"));
  EXPECT_EQ(tok.bos_id(), 2);
  EXPECT_EQ(tok.eos_id(), 106);  // <end_of_turn>
  EXPECT_EQ(tok.pad_id(), 0);
  EXPECT_EQ(tok.unk_id(), 3);
  EXPECT_TRUE(tok.adds_bos());
  expect_goldens(tok, "gemma3");
}

}  // namespace
}  // namespace rlaif
