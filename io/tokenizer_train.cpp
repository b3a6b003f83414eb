#include "io/tokenizer_train.h"

#include <sentencepiece_trainer.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <unordered_map>

#include "io/atomic_file.h"
#include "io/tokenizer.h"
#include "runtime/error.h"

namespace rlaif {

namespace {

// Feeds the file to SentencePiece line by line: unlike its `input` flag this takes any path
// (its flag parser splits on commas) and lets us count what was read.
class LineIterator : public sentencepiece::SentenceIterator {
 public:
  explicit LineIterator(const std::string& path) : in_(path, std::ios::binary) { Next(); }
  bool done() const override { return done_; }
  void Next() override {
    done_ = !std::getline(in_, line_);
    if (!done_) ++lines_;
  }
  const std::string& value() const override { return line_; }
  sentencepiece::util::Status status() const override {
    if (in_.bad()) return {sentencepiece::util::StatusCode::kInternal, "read error"};
    return {};
  }
  int64_t lines() const { return lines_; }

 private:
  std::ifstream in_;
  std::string line_;
  bool done_ = false;
  int64_t lines_ = 0;
};

const char* flag(bool on) {
  return on ? "true" : "false";
}

}  // namespace

TokenizerTrainSummary train_tokenizer(const std::string& input_path, int vocab_size,
                                      const std::string& out_model_path,
                                      const TokenizerTrainOptions& options) {
  namespace fs = std::filesystem;
  const std::string where = "train_tokenizer: ";
  std::error_code ec;
  RLAIF_CHECK(fs::is_regular_file(input_path, ec), where, "input '", input_path,
              "' is not a readable file");
  RLAIF_CHECK(fs::file_size(input_path, ec) > 0, where, "input '", input_path, "' is empty");
  fs::path out_dir = fs::path(out_model_path).parent_path();
  RLAIF_CHECK(out_dir.empty() || fs::is_directory(out_dir, ec), where, "output directory '",
              out_dir.string(), "' does not exist");
  RLAIF_CHECK(options.model_type == "bpe" || options.model_type == "unigram", where, "model type '",
              options.model_type, "' is not bpe or unigram");
  RLAIF_CHECK(vocab_size > 3, where, "vocab size ", vocab_size, " is too small");

  const int threads = options.num_threads;
  RLAIF_CHECK(threads > 0, where, "num_threads must be positive (got ", threads, ")");
  std::unordered_map<std::string, std::string> args = {
      {"model_type", options.model_type},
      {"vocab_size", std::to_string(vocab_size)},
      {"character_coverage", std::to_string(options.character_coverage)},
      {"byte_fallback", flag(options.byte_fallback)},
      {"split_digits", flag(options.split_digits)},
      {"unk_id", "0"},
      {"bos_id", "1"},
      {"eos_id", "2"},
      {"pad_id", "-1"},
      {"normalization_rule_name", "identity"},
      {"remove_extra_whitespaces", "false"},
      {"add_dummy_prefix", "true"},
      {"allow_whitespace_only_pieces", "true"},
      {"max_sentence_length", std::to_string(options.max_sentence_bytes)},
      {"num_threads", std::to_string(threads)},
      // SentencePiece's log level is a process-wide setting: 0 shows its progress, 2 errors only.
      {"minloglevel", options.verbose ? "0" : "2"},
  };
  if (options.max_sentences > 0) {
    args["input_sentence_size"] = std::to_string(options.max_sentences);
    args["shuffle_input_sentence"] = "true";
  }

  LineIterator lines(input_path);
  std::string model;
  auto start = std::chrono::steady_clock::now();
  sentencepiece::util::Status status =
      sentencepiece::SentencePieceTrainer::Train(args, &lines, &model);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  RLAIF_CHECK(status.ok(), where, "SentencePiece failed on '", input_path, "': ", status.ToString(),
              status.ToString().find("required_chars") == std::string::npos
                  ? ""
                  : " (vocab_size must cover the 3 special ids, the 256 byte-fallback pieces and "
                    "every distinct character of the input)");
  RLAIF_CHECK(!model.empty(), where, "SentencePiece produced no model for '", input_path, "'");

  write_file_atomically(out_model_path, model);
  Tokenizer tokenizer = Tokenizer::load(out_model_path);  // proves the file loads
  return TokenizerTrainSummary{tokenizer.vocab_size(), lines.lines(), seconds};
}

}  // namespace rlaif
