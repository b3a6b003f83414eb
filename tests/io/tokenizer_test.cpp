// Tokenizer: the shipped stories260K SentencePiece model against Debian's spm_encode, exact round
// trips, errors; training a small tokenizer with io/tokenizer_train.h.
#include "io/tokenizer.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "io/tokenizer_train.h"
#include "tests/io/io_test_util.h"

namespace rlaif {
namespace {

namespace fs = std::filesystem;
using test::error_of;
using test::TempDir;

std::string stories_model() {
  return test::data_path("models/stories260K/tokenizer.model");
}

std::vector<std::string> shakespeare_lines(size_t n) {
  std::ifstream in(test::data_path("text/tinyshakespeare.txt"));
  std::vector<std::string> lines;
  std::string line;
  while (lines.size() < n && std::getline(in, line)) lines.push_back(line);
  return lines;
}

// Text that exercises whitespace runs, digits, bytes outside any small vocabulary, newlines.
const std::vector<std::string> kOddTexts = {
    "",
    " leading space",
    "trailing space ",
    "  two  spaces\tand a tab",
    "digits 2024 and 3.14159",
    "accents: é ü ñ, CJK: 日本語, emoji: 🙂",
    "line one\nline two\n\nline four",
};

TEST(Tokenizer, StoriesModelSpecialIds) {
  Tokenizer tok = Tokenizer::load(stories_model());
  EXPECT_EQ(tok.vocab_size(), 512);
  EXPECT_EQ(tok.unk_id(), 0);
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.eos_id(), 2);
  EXPECT_EQ(tok.pad_id(), -1);
  EXPECT_EQ(tok.piece(0), "<unk>");
  EXPECT_EQ(tok.piece(1), "<s>");
  EXPECT_EQ(tok.piece(2), "</s>");
  EXPECT_EQ(tok.piece_to_id("</s>"), 2);
  EXPECT_EQ(tok.piece_to_id("no such piece"), 0);
  EXPECT_EQ(tok.decode({1, 2}), "");  // control ids decode to nothing
  EXPECT_TRUE(tok.encode("").empty());
}

TEST(Tokenizer, MatchesSpmEncodeOnShakespeare) {
  if (std::system("command -v spm_encode >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "spm_encode not found (Debian package 'sentencepiece'): cannot compare";
  }
  TempDir dir;
  std::vector<std::string> lines = shakespeare_lines(200);
  ASSERT_EQ(lines.size(), 200u);
  std::string input = dir.file("lines.txt");
  {
    std::ofstream out(input);
    for (const std::string& line : lines) out << line << '\n';
  }
  std::string command = "spm_encode --model='" + stories_model() + "' --output_format=id < '" +
                        input + "' 2>/dev/null";
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buffer[4096];
  while (size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, n);
  ASSERT_EQ(pclose(pipe), 0) << command;

  Tokenizer tok = Tokenizer::load(stories_model());
  std::istringstream expected(output);
  std::string expected_line;
  size_t checked = 0;
  for (const std::string& line : lines) {
    ASSERT_TRUE(std::getline(expected, expected_line)) << "spm_encode gave fewer lines";
    std::vector<int32_t> want;
    std::istringstream ids(expected_line);
    for (int32_t id; ids >> id;) want.push_back(id);
    std::vector<int32_t> got = tok.encode(line);
    EXPECT_EQ(got, want) << "line: " << line;
    EXPECT_EQ(tok.decode(got), line);
    ++checked;
  }
  EXPECT_EQ(checked, 200u);
}

TEST(Tokenizer, StoriesModelRoundTripsOddText) {
  Tokenizer tok = Tokenizer::load(stories_model());
  // Bytes outside its 512 pieces go through byte fallback and come back exactly.
  for (std::string text : {"digits 2024 and 3.14159", "accents: é ü ñ, CJK: 日本語, 🙂",
                           "line one\nline two\n\nline four"}) {
    EXPECT_EQ(tok.decode(tok.encode(text)), text) << text;
  }
  // This model was trained with SentencePiece's default normaliser, which trims and collapses
  // runs of spaces: that is the model's behaviour, which encode() must reproduce, not a loss.
  EXPECT_EQ(tok.decode(tok.encode("  two  spaces ")), "two spaces");
}

TEST(Tokenizer, Errors) {
  std::string missing = "/nonexistent/dir/tokenizer.model";
  std::string message = error_of([&] { Tokenizer::load(missing); });
  EXPECT_NE(message.find(missing), std::string::npos) << message;
  EXPECT_NE(message.find("no such file"), std::string::npos) << message;

  std::string not_a_model = test::data_path("models/stories260K/config.json");
  message = error_of([&] { Tokenizer::load(not_a_model); });
  EXPECT_NE(message.find(not_a_model), std::string::npos) << message;
  EXPECT_NE(message.find("not a loadable SentencePiece model"), std::string::npos) << message;

  Tokenizer tok = Tokenizer::load(stories_model());
  EXPECT_NE(error_of([&] {
              tok.decode({5, 512});
            }).find("id 512 at position 1"),
            std::string::npos);
  EXPECT_NE(error_of([&] { tok.decode({-1}); }).find("outside the vocabulary"), std::string::npos);
  EXPECT_NE(error_of([&] { tok.piece(9999); }).find("id 9999"), std::string::npos);
}

// The first ~100 KB of tinyshakespeare, cut at a line end.
std::string write_training_text(const TempDir& dir) {
  std::ifstream in(test::data_path("text/tinyshakespeare.txt"), std::ios::binary);
  std::string text(100'000, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(text.rfind('\n') + 1);
  std::string path = dir.file("train.txt");
  test::write_bytes(path, text);
  return path;
}

void expect_trained_model_works(const std::string& path, int vocab) {
  Tokenizer tok = Tokenizer::load(path);
  EXPECT_EQ(tok.vocab_size(), vocab);
  EXPECT_EQ(tok.unk_id(), 0);
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.eos_id(), 2);
  EXPECT_EQ(tok.pad_id(), -1);
  EXPECT_EQ(tok.piece(1), "<s>");
  for (const std::string& line : shakespeare_lines(300)) {
    std::vector<int32_t> ids = tok.encode(line);
    for (int32_t id : ids) EXPECT_NE(id, tok.unk_id()) << line;
    EXPECT_EQ(tok.decode(ids), line);
  }
  for (const std::string& text : kOddTexts) {
    std::vector<int32_t> ids = tok.encode(text);
    for (int32_t id : ids) EXPECT_NE(id, tok.unk_id()) << text;  // byte fallback, never <unk>
    EXPECT_EQ(tok.decode(ids), text);
  }
  // Characters never seen in training become UTF-8 byte pieces.
  std::vector<int32_t> ids = tok.encode("日");
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(tok.piece(ids.back()), "<0xA5>");
  // Digits are split: no piece holds two of them.
  for (int id = 0; id < tok.vocab_size(); ++id) {
    std::string p = tok.piece(id);
    if (p.rfind("<0x", 0) == 0) continue;  // byte pieces like <0x30>
    int digits = 0;
    for (char c : p) digits += (c >= '0' && c <= '9');
    EXPECT_LE(digits, 1) << p;
  }
}

TEST(TokenizerTrain, BpeOnShakespeare) {
  TempDir dir;
  std::string input = write_training_text(dir);
  std::string out = dir.file("tok.model");
  TokenizerTrainSummary s = train_tokenizer(input, 400, out);
  EXPECT_EQ(s.vocab_size, 400);
  EXPECT_GT(s.lines, 3000);
  EXPECT_GE(s.seconds, 0.0);
  expect_trained_model_works(out, 400);
  // Only the model is written: no .vocab, no temporary files.
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir.str())) files.push_back(e.path().filename());
  std::sort(files.begin(), files.end());
  EXPECT_EQ(files, (std::vector<std::string>{"tok.model", "train.txt"}));
}

TEST(TokenizerTrain, UnigramOnShakespeare) {
  TempDir dir;
  std::string out = dir.file("uni.model");
  TokenizerTrainOptions options;
  options.model_type = "unigram";
  options.max_sentences = 2000;
  EXPECT_EQ(train_tokenizer(write_training_text(dir), 400, out, options).vocab_size, 400);
  expect_trained_model_works(out, 400);
}

TEST(TokenizerTrain, Errors) {
  TempDir dir;
  std::string input = write_training_text(dir);
  std::string out = dir.file("t.model");
  std::string message = error_of([&] { train_tokenizer(input, 100, out); });
  EXPECT_NE(message.find("Vocabulary size is smaller than required_chars"), std::string::npos)
      << message;
  EXPECT_FALSE(fs::exists(out));

  std::string missing = dir.file("missing.txt");
  EXPECT_NE(error_of([&] { train_tokenizer(missing, 400, out); }).find(missing), std::string::npos);
  test::write_bytes(dir.file("empty.txt"), "");
  EXPECT_NE(error_of([&] { train_tokenizer(dir.file("empty.txt"), 400, out); }).find("is empty"),
            std::string::npos);
  TokenizerTrainOptions word;
  word.model_type = "word";
  EXPECT_NE(error_of([&] { train_tokenizer(input, 400, out, word); }).find("not bpe or unigram"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              train_tokenizer(input, 400, dir.file("no/dir/t.model"));
            }).find("does not exist"),
            std::string::npos);
  EXPECT_FALSE(fs::exists(out));
}

}  // namespace
}  // namespace rlaif
