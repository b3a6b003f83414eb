// Hugging Face tokenizer components, one at a time, on small tokenizer.json files whose expected
// pieces follow from the Rust `tokenizers` crate's documented semantics: split behaviors,
// normalizers, Metaspace's prepend schemes, Digits, added-token options, byte fallback, unk
// fusing, ignore_merges, decoders and post-processors.
#include <vector>

#include "io/hf_pre_tokenizer.h"
#include "io/hf_text.h"
#include "tests/io/hf_tokenizer_test_util.h"

namespace rlaif {
namespace {

using Strings = std::vector<std::string>;
using test::load_parts;
using test::pieces;
using test::TempDir;
using test::TokenizerParts;

// The pieces of "a-b--c" cut at each "-" with `behavior`.
Strings split_dashes(hf::SplitBehavior behavior, bool invert) {
  const std::string text = "a-b--c";
  const std::vector<std::pair<size_t, size_t>> dashes = {{1, 2}, {3, 4}, {4, 5}};
  Strings out;
  for (auto [b, e] : hf::split_pieces(text.size(), dashes, behavior, invert)) {
    out.push_back(text.substr(b, e - b));
  }
  return out;
}

TEST(HfTokenizerSplit, EveryBehavior) {
  using B = hf::SplitBehavior;
  EXPECT_EQ(split_dashes(B::removed, false), (Strings{"a", "b", "c"}));
  EXPECT_EQ(split_dashes(B::isolated, false), (Strings{"a", "-", "b", "-", "-", "c"}));
  // A match joins the piece before it unless that piece was a match itself.
  EXPECT_EQ(split_dashes(B::merged_with_previous, false), (Strings{"a-", "b-", "-", "c"}));
  EXPECT_EQ(split_dashes(B::merged_with_next, false), (Strings{"a", "-b", "-", "-c"}));
  EXPECT_EQ(split_dashes(B::contiguous, false), (Strings{"a", "-", "b", "--", "c"}));
  // Inverted, the letters are the matches: Removed keeps the dashes, each run on its own.
  EXPECT_EQ(split_dashes(B::removed, true), (Strings{"-", "-", "-"}));
  EXPECT_EQ(split_dashes(B::merged_with_previous, true), (Strings{"a", "-b", "-", "-c"}));
}

TEST(HfTokenizerSplit, MergedWithPreviousAndNextInAPipeline) {
  // Gemma 3's pre-tokenizer is Split(" ", MergedWithPrevious): a space ends the word before it.
  TokenizerParts p;
  p.vocab = {"h", "i", " ", "hi", "hi "};
  p.merges = R"([["h", "i"], ["hi", " "]])";
  for (const char* behavior : {"MergedWithPrevious", "MergedWithNext"}) {
    TempDir dir;
    p.pre_tokenizer =
        std::string(R"({"type": "Split", "pattern": {"String": " "}, "behavior": ")") + behavior +
        R"(", "invert": false})";
    const Tokenizer tok = load_parts(dir, p);
    EXPECT_EQ(pieces(tok, "hi hi"), std::string(behavior) == "MergedWithPrevious"
                                        ? (Strings{"hi ", "hi"})
                                        : (Strings{"hi", " ", "hi"}));
  }
}

TEST(HfTokenizerText, NormalFormsAndLowercase) {
  EXPECT_EQ(hf::unicode_normalize("e\xCC\x81", hf::NormalForm::nfc), "\xC3\xA9");
  EXPECT_EQ(hf::unicode_normalize("\xC3\xA9", hf::NormalForm::nfd), "e\xCC\x81");
  EXPECT_EQ(hf::unicode_normalize("\xEF\xAC\x81", hf::NormalForm::nfkc), "fi");  // ﬁ
  EXPECT_EQ(hf::unicode_normalize("\xC2\xBD", hf::NormalForm::nfkd),
            "1\xE2\x81\x84"
            "2");
  // Per-character full mapping: İ -> i + combining dot; Σ -> σ even at the end of a word.
  EXPECT_EQ(hf::unicode_lowercase("AB\xC4\xB0\xCE\xA3"), "abi\xCC\x87\xCF\x83");
}

TEST(HfTokenizerText, RegexFollowsUnicodeProperties) {
  hf::Regex letters(R"(\p{L}+|\p{N}|\s+(?!\S)|(?i:'s))", "test");
  const std::string text = "Ωmega 42  x'S";
  Strings found;
  for (auto [b, e] : letters.find_all(text)) found.push_back(text.substr(b, e - b));
  EXPECT_EQ(found, (Strings{"Ωmega", "4", "2", " ", "x", "'S"}));
}

TEST(HfTokenizerText, OnigurumaShorthandsTranslated) {
  EXPECT_EQ(hf::oniguruma_to_pcre2(R"(\s+(?!\S)|[^\s\p{L}])", "t"),
            R"(\p{White_Space}+(?!\P{White_Space})|[^\p{White_Space}\p{L}])");
  EXPECT_EQ(hf::oniguruma_to_pcre2(R"(\w+|[\w-]|\W)", "t"),
            R"([\p{Alphabetic}\p{M}\p{Nd}\p{Pc}]+|[\p{Alphabetic}\p{M}\p{Nd}\p{Pc}-]|)"
            R"([^\p{Alphabetic}\p{M}\p{Nd}\p{Pc}])");
  // Escaped backslashes, quoted text and POSIX classes pass through.
  EXPECT_EQ(hf::oniguruma_to_pcre2(R"(\\s\Q\s\E[[:space:]\]s])", "t"),
            R"(\\s\Q\s\E[[:space:]\]s])");
  const std::string e = test::error_of([] { hf::oniguruma_to_pcre2(R"([^\W])", "f: component"); });
  EXPECT_NE(e.find("f: component: regular expression '[^\\W]': \\W inside a character class"),
            std::string::npos)
      << e;
  // U+180E is not White_Space (Unicode 6.3 on); U+0085 is.
  hf::Regex space(R"(\s)", "t");
  EXPECT_TRUE(space.find_all("\xE1\xA0\x8E").empty());
  EXPECT_EQ(space.find_all("\xC2\x85").size(), 1u);
}

// Characters as tokens, with merges that show where word boundaries fall.
TokenizerParts metaspace_parts(const std::string& scheme, bool split) {
  TokenizerParts p;
  p.vocab = {"▁", "h", "i", "i▁", "▁h", "▁hi", "<s>"};
  p.merges = R"([["i", "▁"], ["▁", "h"], ["▁h", "i"]])";
  p.pre_tokenizer = R"({"type": "Metaspace", "replacement": "▁", "prepend_scheme": ")" + scheme +
                    R"(", "split": )" + (split ? "true" : "false") + "}";
  p.decoder = R"({"type": "Metaspace", "replacement": "▁", "prepend_scheme": ")" + scheme + "\"}";
  p.added_tokens =
      R"([{"id": 6, "content": "<s>", "special": true, "normalized": false, "lstrip": false, "rstrip": false, "single_word": false}])";
  return p;
}

TEST(HfTokenizerMetaspace, PrependSchemesAndSplit) {
  {
    TempDir dir;
    const Tokenizer tok = load_parts(dir, metaspace_parts("first", true));
    EXPECT_EQ(pieces(tok, "hi hi"), (Strings{"▁hi", "▁hi"}));
    // Only the text at the very start gets "▁": after an added token it does not.
    EXPECT_EQ(pieces(tok, "<s>hi"), (Strings{"<s>", "h", "i"}));
    EXPECT_EQ(tok.decode(tok.encode("hi hi")), "hi hi");
  }
  {
    TempDir dir;
    const Tokenizer tok = load_parts(dir, metaspace_parts("always", true));
    EXPECT_EQ(pieces(tok, "<s>hi"), (Strings{"<s>", "▁hi"}));
  }
  {
    TempDir dir;
    const Tokenizer tok = load_parts(dir, metaspace_parts("never", true));
    EXPECT_EQ(pieces(tok, "hi hi"), (Strings{"h", "i", "▁hi"}));
    EXPECT_EQ(tok.decode(tok.encode("hi hi")), "hi hi");
  }
  {
    TempDir dir;  // without split, merges cross the "▁": "i▁" (rank 0) wins
    const Tokenizer tok = load_parts(dir, metaspace_parts("first", false));
    EXPECT_EQ(pieces(tok, "hi hi"), (Strings{"▁h", "i▁", "h", "i"}));
  }
}

TEST(HfTokenizerDigits, IndividualOrContiguous) {
  TokenizerParts p;
  p.vocab = {"a", "1", "2", "3", "12", "a1"};
  p.merges = R"(["1 2", "a 1"])";
  for (bool individual : {true, false}) {
    TempDir dir;
    p.pre_tokenizer = std::string(R"({"type": "Digits", "individual_digits": )") +
                      (individual ? "true" : "false") + "}";
    const Tokenizer tok = load_parts(dir, p);
    EXPECT_EQ(pieces(tok, "a123"),
              individual ? (Strings{"a", "1", "2", "3"}) : (Strings{"a", "12", "3"}));
  }
}

TEST(HfTokenizerNormalizer, SequenceOfReplacePrependLowercaseNfkc) {
  TempDir dir;
  TokenizerParts p;
  p.vocab = {"▁", "a", "b", "f", "i"};
  p.normalizer = R"({"type": "Sequence", "normalizers": [
      {"type": "NFKC"}, {"type": "Lowercase"}, {"type": "Prepend", "prepend": "▁"},
      {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]})";
  const Tokenizer tok = load_parts(dir, p);
  EXPECT_EQ(pieces(tok, "A \xEF\xAC\x81"), (Strings{"▁", "a", "▁", "f", "i"}));
  EXPECT_TRUE(pieces(tok, "").empty());  // Prepend leaves empty text empty
}

TEST(HfTokenizerNormalizer, ReplaceWithRegexAndStrip) {
  TempDir dir;
  TokenizerParts p;
  p.vocab = {"a", "-"};
  p.normalizer = R"({"type": "Sequence", "normalizers": [
      {"type": "Strip", "strip_left": true, "strip_right": true},
      {"type": "Replace", "pattern": {"Regex": "\\s+"}, "content": "-"}]})";
  const Tokenizer tok = load_parts(dir, p);
  EXPECT_EQ(pieces(tok, "  a \t a\n"), (Strings{"a", "-", "a"}));
}

// Characters a, b, x, space and "!" as tokens, plus added tokens from `added`.
TokenizerParts added_parts(const std::string& added) {
  TokenizerParts p;
  p.vocab = {"a", "b", "x", " ", "!", "h", "e", "l", "o"};
  p.added_tokens = added;
  return p;
}

std::string added(int id, const std::string& content, const std::string& options) {
  return R"({"id": )" + std::to_string(id) + R"(, "content": ")" + content +
         R"(", "special": false, )" + options + "}";
}

TEST(HfTokenizerAddedTokens, LstripRstripSingleWord) {
  const std::string no = R"("normalized": false, )";
  TempDir dir;
  const Tokenizer tok = load_parts(
      dir,
      added_parts(
          "[" + added(9, "<l>", no + R"("lstrip": true, "rstrip": false, "single_word": false)") +
          ", " + added(10, "<r>", no + R"("lstrip": false, "rstrip": true, "single_word": false)") +
          ", " + added(11, "ab", no + R"("lstrip": false, "rstrip": false, "single_word": true)") +
          ", " +
          added(12, "<p>", no + R"("lstrip": false, "rstrip": false, "single_word": false)") +
          "]"));
  EXPECT_EQ(pieces(tok, "a  <l>b"), (Strings{"a", "<l>", "b"}));
  EXPECT_EQ(pieces(tok, "a<r>  b"), (Strings{"a", "<r>", "b"}));
  EXPECT_EQ(pieces(tok, "a <p> b"), (Strings{"a", " ", "<p>", " ", "b"}));
  EXPECT_EQ(pieces(tok, "ab ab!"), (Strings{"ab", " ", "ab", "!"}));
  EXPECT_EQ(pieces(tok, "xab abx"), (Strings{"x", "a", "b", " ", "a", "b", "x"}));
}

TEST(HfTokenizerAddedTokens, NormalizedTokensMatchNormalizedText) {
  TempDir dir;
  TokenizerParts p = added_parts(
      "[" +
      added(9, "HELLO",
            R"("normalized": true, "lstrip": false, "rstrip": false, "single_word": false)") +
      ", " +
      added(10, "<X>",
            R"("normalized": false, "lstrip": false, "rstrip": false, "single_word": false)") +
      "]");
  p.normalizer = R"({"type": "Lowercase"})";
  const Tokenizer tok = load_parts(dir, p);
  EXPECT_EQ(pieces(tok, "Hello!"), (Strings{"HELLO", "!"}));
  EXPECT_EQ(pieces(tok, "a<X>b"), (Strings{"a", "<X>", "b"}));
  // Non-normalized tokens match the raw text only; "<" and ">" are not in the vocabulary and, with
  // no unk_token, are dropped.
  EXPECT_EQ(pieces(tok, "a<x>b"), (Strings{"a", "x", "b"}));
}

TEST(HfTokenizerModel, ByteFallbackAndDecoding) {
  TempDir dir;
  TokenizerParts p;
  p.vocab = {"a", "<0xC3>", "<0xA9>", "<0x41>"};
  p.model_options = R"("byte_fallback": true, "unk_token": null,)";
  p.decoder = R"({"type": "Sequence", "decoders": [{"type": "ByteFallback"}, {"type": "Fuse"}]})";
  const Tokenizer tok = load_parts(dir, p);
  EXPECT_EQ(pieces(tok, "a\xC3\xA9"), (Strings{"a", "<0xC3>", "<0xA9>"}));
  EXPECT_EQ(tok.decode(tok.encode("a\xC3\xA9")), "a\xC3\xA9");
  // A lone lead byte is invalid UTF-8: one U+FFFD per byte of the run of byte pieces.
  EXPECT_EQ(tok.decode({0, 1, 0}),
            "a\xEF\xBF\xBD"
            "a");
  EXPECT_EQ(tok.decode({1, 3}), "\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(HfTokenizerModel, UnknownCharactersFuseIntoOneUnk) {
  for (bool fuse : {true, false}) {
    TempDir dir;
    TokenizerParts p;
    p.vocab = {"<unk>", "a", "b"};
    p.model_options =
        std::string(R"("unk_token": "<unk>", "fuse_unk": )") + (fuse ? "true" : "false") + ",";
    const Tokenizer tok = load_parts(dir, p);
    EXPECT_EQ(pieces(tok,
                     "a\xC3\xA9\xC3\xBC"
                     "b"),
              fuse ? (Strings{"a", "<unk>", "b"}) : (Strings{"a", "<unk>", "<unk>", "b"}));
  }
}

TEST(HfTokenizerModel, IgnoreMergesTakesWholeWords) {
  for (bool ignore : {true, false}) {
    TempDir dir;
    TokenizerParts p;
    p.vocab = {"a", "b", "c", "ab", "abc"};
    p.merges = R"(["a b"])";  // no merge reaches "abc"
    p.model_options = std::string(R"("ignore_merges": )") + (ignore ? "true" : "false") + ",";
    const Tokenizer tok = load_parts(dir, p);
    EXPECT_EQ(pieces(tok, "abc"), ignore ? (Strings{"abc"}) : (Strings{"ab", "c"}));
  }
}

TEST(HfTokenizerModel, ContinuingSubwordPrefixAndSuffix) {
  TempDir dir;
  TokenizerParts p;
  p.vocab = {"a", "##b", "##c</w>", "ab", "abc</w>"};
  p.merges = R"(["a ##b", "ab ##c</w>"])";
  p.model_options = R"("continuing_subword_prefix": "##", "end_of_word_suffix": "</w>",)";
  const Tokenizer tok = load_parts(dir, p);
  EXPECT_EQ(pieces(tok, "abc"), (Strings{"abc</w>"}));
}

TEST(HfTokenizerDecoder, StripReplaceByteLevel) {
  TempDir dir;
  TokenizerParts p;
  p.vocab = {"Ġhi", "__x", "Ċ"};
  p.decoder = R"({"type": "Sequence", "decoders": [
      {"type": "ByteLevel"}, {"type": "Replace", "pattern": {"String": "_"}, "content": "-"},
      {"type": "Strip", "content": " ", "start": 1, "stop": 0}]})";
  const Tokenizer tok = load_parts(dir, p);
  EXPECT_EQ(tok.decode({0, 1, 2}), "hi--x\n");  // "Ġhi__xĊ" -> " hi__x\n" -> " hi--x\n" -> strip
}

TEST(HfTokenizerPostProcessor, TemplateAndConfigOverride) {
  TokenizerParts p;
  p.vocab = {"<s>", "</s>", "a"};
  p.decoder = R"({"type": "Fuse"})";
  p.added_tokens = R"([{"id": 0, "content": "<s>", "special": true, "normalized": false},
                       {"id": 1, "content": "</s>", "special": true, "normalized": false}])";
  p.post_processor = R"({"type": "TemplateProcessing",
      "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
      "pair": [], "special_tokens": {"<s>": {"id": "<s>", "ids": [0], "tokens": ["<s>"]}}})";
  {
    TempDir dir;
    const Tokenizer tok =
        load_parts(dir, p, R"({"bos_token": "<s>", "eos_token": {"content": "</s>"}})");
    EXPECT_EQ(tok.encode("a", true), (std::vector<int32_t>{0, 2}));
    EXPECT_EQ(tok.encode("a"), (std::vector<int32_t>{2}));
    EXPECT_EQ(tok.decode({0, 2, 1}, false), "<s>a</s>");
    EXPECT_EQ(tok.decode({0, 2, 1}), "a");
    EXPECT_EQ(tok.bos_id(), 0);
    EXPECT_EQ(tok.eos_id(), 1);
  }
  {
    TempDir dir;  // transformers' Llama classes rebuild the template from add_bos/add_eos_token
    const Tokenizer tok = load_parts(dir, p, R"({"tokenizer_class": "LlamaTokenizerFast",
        "bos_token": "<s>", "eos_token": "</s>", "add_bos_token": false, "add_eos_token": true})");
    EXPECT_EQ(tok.encode("a", true), (std::vector<int32_t>{2, 1}));
    EXPECT_FALSE(tok.adds_bos());
    EXPECT_TRUE(tok.adds_eos());
  }
  {
    TempDir dir;  // generation_config.json's eos list
    test::write_bytes(dir.file("generation_config.json"), R"({"eos_token_id": [1, 0]})");
    const Tokenizer tok = load_parts(dir, p, R"({"eos_token": "</s>"})");
    EXPECT_EQ(tok.eos_ids(), (std::vector<int32_t>{1, 0}));
  }
}

}  // namespace
}  // namespace rlaif
