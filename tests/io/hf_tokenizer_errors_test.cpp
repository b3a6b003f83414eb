// Hugging Face tokenizer files rlaif cannot follow exactly: every unsupported component or option
// is an Error naming the file and the component, never a silent fallback; plus the errors of
// loading and decoding.
#include "io/hf_tokenizer.h"
#include "tests/io/hf_tokenizer_test_util.h"

namespace rlaif {
namespace {

using test::error_of;
using test::load_parts;
using test::TempDir;
using test::TokenizerParts;

TokenizerParts minimal() {
  TokenizerParts p;
  p.vocab = {"a", "b"};
  return p;
}

// The message of loading `p`; the test fails if loading succeeds.
std::string load_error(const TokenizerParts& p) {
  TempDir dir;
  return error_of([&] { load_parts(dir, p); });
}

TEST(HfTokenizerErrors, UnknownComponentsAreNamed) {
  TokenizerParts p = minimal();
  p.normalizer = R"({"type": "BertNormalizer"})";
  std::string e = load_error(p);
  EXPECT_NE(e.find("tokenizer.json: normalizer BertNormalizer"), std::string::npos) << e;
  EXPECT_NE(e.find("unsupported normalizer type"), std::string::npos) << e;

  p = minimal();
  p.pre_tokenizer = R"({"type": "Sequence", "pretokenizers": [{"type": "Punctuation"}]})";
  e = load_error(p);
  EXPECT_NE(e.find("pre_tokenizer Punctuation"), std::string::npos) << e;

  p = minimal();
  p.decoder = R"({"type": "WordPiece", "prefix": "##"})";
  e = load_error(p);
  EXPECT_NE(e.find("decoder WordPiece"), std::string::npos) << e;

  p = minimal();
  p.post_processor = R"({"type": "Weird"})";
  e = load_error(p);
  EXPECT_NE(e.find("post_processor Weird"), std::string::npos) << e;
}

TEST(HfTokenizerErrors, UnsupportedOptionsAreNamed) {
  TokenizerParts p = minimal();
  p.pre_tokenizer = R"({"type": "Split", "pattern": {"String": " "}, "behavior": "Sideways"})";
  std::string e = load_error(p);
  EXPECT_NE(e.find("pre_tokenizer Split: unsupported split behavior \"Sideways\""),
            std::string::npos)
      << e;

  p = minimal();
  p.pre_tokenizer = R"({"type": "Metaspace", "replacement": "▁", "prepend_scheme": "sometimes"})";
  e = load_error(p);
  EXPECT_NE(e.find("prepend_scheme \"sometimes\""), std::string::npos) << e;

  p = minimal();
  p.pre_tokenizer =
      R"({"type": "Split", "pattern": {"Regex": "(unclosed"}, "behavior": "Isolated"})";
  e = load_error(p);
  EXPECT_NE(e.find("does not compile"), std::string::npos) << e;

  TempDir dir;
  test::write_bytes(
      dir.file("tokenizer.json"),
      R"({"model": {"type": "BPE", "dropout": 0.1, "vocab": {"a": 0}, "merges": []}})");
  e = error_of([&] { Tokenizer::load_dir(dir.str()); });
  EXPECT_NE(e.find("model BPE: dropout 0.1 is not supported"), std::string::npos) << e;

  test::write_bytes(dir.file("tokenizer.json"),
                    R"({"model": {"type": "WordPiece", "vocab": {"a": 0}}})");
  e = error_of([&] { Tokenizer::load_dir(dir.str()); });
  EXPECT_NE(e.find("unsupported model type \"WordPiece\""), std::string::npos) << e;

  p = minimal();
  p.merges = R"(["a c"])";
  e = load_error(p);
  EXPECT_NE(e.find("merge 0 ('a' 'c') uses a token missing from the vocabulary"), std::string::npos)
      << e;
}

TEST(HfTokenizerErrors, LoadingAndDecoding) {
  TempDir empty;
  std::string e = error_of([&] { Tokenizer::load_dir(empty.str()); });
  EXPECT_NE(e.find("no tokenizer (looked for tokenizer.json"), std::string::npos) << e;

  TempDir dir;
  test::write_bytes(dir.file("tokenizer.json"), "{not json");
  e = error_of([&] { Tokenizer::load_dir(dir.str()); });
  EXPECT_NE(e.find("tokenizer.json: not valid JSON"), std::string::npos) << e;

  test::write_bytes(dir.file("tokenizer.json.xz"), "not xz");
  std::filesystem::remove(dir.file("tokenizer.json"));
  e = error_of([&] { Tokenizer::load_dir(dir.str()); });
  EXPECT_NE(e.find("corrupt xz data"), std::string::npos) << e;
}

TEST(HfTokenizerErrors, ConfigTokenMissingAndBadIds) {
  TempDir dir;
  std::string e = error_of([&] { load_parts(dir, minimal(), R"({"eos_token": "<nope>"})"); });
  EXPECT_NE(e.find("tokenizer_config.json: eos_token '<nope>' is not in the vocabulary"),
            std::string::npos)
      << e;

  TempDir split;
  e = error_of([&] { load_parts(split, minimal(), R"({"split_special_tokens": true})"); });
  EXPECT_NE(e.find("tokenizer_config.json: split_special_tokens true is not supported"),
            std::string::npos)
      << e;

  TempDir ok;
  const Tokenizer tok = load_parts(ok, minimal());
  e = error_of([&] { tok.decode({0, 7}); });
  EXPECT_NE(e.find("decode: id 7 at position 1 is outside the vocabulary"), std::string::npos) << e;
  e = error_of([&] { tok.encode("a\xC3"); });
  EXPECT_NE(e.find("not valid UTF-8"), std::string::npos) << e;
  e = error_of([&] { tok.piece(5); });
  EXPECT_NE(e.find("id 5 is outside the vocabulary"), std::string::npos) << e;
}

// Ids index tables: a small file declaring a huge id is refused, not allocated for.
TEST(HfTokenizerErrors, IdsFarPastTheVocabularyAreRefused) {
  TempDir dir;
  test::write_bytes(
      dir.file("tokenizer.json"),
      R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 2147483647}, "merges": []}})");
  std::string e = error_of([&] { Tokenizer::load_dir(dir.str()); });
  EXPECT_NE(e.find("the largest token id is 2147483647 but the vocabulary holds 2 tokens"),
            std::string::npos)
      << e;

  TokenizerParts p = minimal();
  p.added_tokens = R"([{"id": 2147483647, "content": "<big>", "special": true}])";
  e = load_error(p);
  EXPECT_NE(e.find("added token '<big>' has id 2147483647"), std::string::npos) << e;

  p = minimal();
  p.post_processor = R"({"type": "BertProcessing", "cls": ["a", 0], "sep": ["b", 99]})";
  e = load_error(p);
  EXPECT_NE(e.find("the post_processor adds id 99, outside the vocabulary of 2 ids"),
            std::string::npos)
      << e;
}

}  // namespace
}  // namespace rlaif
