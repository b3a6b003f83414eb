// Generation from a local model for the commands that sample answers in bulk (`sample`, `eval`):
// the model, tokenizer and chat template loaded once from the flags, prompts rendered with the
// template and generated with continuous batching, each sequence on its own sampling stream so
// that batching never changes what is sampled (model/continuous_generation.h).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "io/chat_template.h"
#include "io/tokenizer.h"
#include "model/generate.h"
#include "model/transformer.h"
#include "tools/cli_flags.h"

namespace rlaif::cli {

// Declares --model --max-new-tokens --temperature --top-k --top-p --seed --batch
// --max-prompt-length --chat-template --device --dtype.
void declare_generation_flags(Flags& flags, const std::string& default_temperature,
                              const std::string& default_max_new_tokens);

struct LocalCompletion {
  std::string text;      // decoded, without the EOS
  bool stopped = false;  // ended with EOS (finish_reason "stop"), not at the token limit
  int64_t tokens = 0;    // generated tokens
};

class LocalGenerator {
 public:
  // Loads --model on --device; UsageError for flag values out of range.
  explicit LocalGenerator(const Flags& flags);

  // One completion per prompt (a conversation ending with the user's turn, rendered with the
  // chat template), --batch sequences at a time with continuous batching
  // (model/continuous_generation.h): `done` is called once per prompt, with its index, as its
  // completion ends (not in the prompts' order). `streams` (one per prompt) pick the sampling
  // streams. Prompts longer than --max-prompt-length tokens are cut from the left (a leading
  // BOS kept), and counted in truncated(). `stop` (optional), asked after every decoding step,
  // ends the call early with the unfinished prompts unreported.
  void generate(const std::vector<Conversation>& prompts, const std::vector<uint64_t>& streams,
                const std::function<void(size_t index, LocalCompletion completion)>& done,
                const std::function<bool()>& stop = nullptr);

  int64_t batch() const { return batch_; }
  int64_t truncated() const { return truncated_; }

 private:
  // In this order: the flags are checked (options_) before the model loads.
  GenerationOptions options_;
  ChatTemplate chat_;
  Transformer model_;
  Tokenizer tokenizer_;
  int64_t batch_ = 8, max_prompt_tokens_ = 0, truncated_ = 0;
};

}  // namespace rlaif::cli
