#include "tools/preference_flags.h"

#include <algorithm>
#include <cstdio>

#include "io/chat_template.h"
#include "io/datasets.h"
#include "tools/chat_flags.h"

namespace rlaif::cli {

void declare_preference_flags(Flags& flags) {
  flags
      .option("data", "",
              "preference pairs: JSONL or JSON ({prompt, chosen, rejected}, TRL "
              "conversational, or LLaMA-Factory's format)",
              true)
      .option("val-data", "", "held-out pairs (default: the last --val-fraction of --data)")
      .option("val-fraction", "0.05", "fraction of --data held out when --val-data is not given")
      .option("batch", "8", "pairs per micro-batch (each pair is two sequences)")
      .option("max-length", "512",
              "tokens per sequence at most (capped at the model's context "
              "when not given)")
      .option("max-prompt-length", "256", "prompt tokens at most (cut from the left)");
  declare_chat_template_flag(flags);
}

std::vector<std::string> preference_identity_flags() {
  return {"data",       "val-data",          "val-fraction", "batch",
          "max-length", "max-prompt-length", "chat-template"};
}

TruncationOptions truncation_from_flags(const Flags& flags, const ModelConfig& config) {
  TruncationOptions t;
  t.max_length = flags.integer("max-length");
  if (!flags.given("max-length"))
    t.max_length = std::min(t.max_length, config.max_position_embeddings);
  t.max_prompt_length = flags.integer("max-prompt-length");
  if (t.max_length < 2) throw UsageError("--max-length must be at least 2");
  if (t.max_prompt_length < 1) throw UsageError("--max-prompt-length must be at least 1");
  return t;
}

PreferenceSplits load_preference_splits(const Flags& flags, const std::string& model_dir,
                                        const Tokenizer& tokenizer, const ModelConfig& config,
                                        const std::string& margin_key, const char* command,
                                        bool report) {
  if (flags.integer("batch") <= 0) throw UsageError("--batch must be positive");
  std::vector<PreferencePair> train = load_preferences(flags.str("data"), margin_key), val;
  if (!flags.str("val-data").empty()) {
    val = load_preferences(flags.str("val-data"), margin_key);
  } else {
    const double fraction = flags.number("val-fraction");
    if (fraction < 0 || fraction >= 1) throw UsageError("--val-fraction must be in [0, 1)");
    const auto held = static_cast<size_t>(static_cast<double>(train.size()) * fraction);
    val.assign(train.end() - static_cast<long>(held), train.end());
    train.resize(train.size() - held);
  }
  RLAIF_CHECK(!train.empty(), flags.str("data"), ": no training pairs left after holding out ",
              val.size(), "; lower --val-fraction");
  const ChatTemplate chat = chat_template_from_flags(flags, model_dir, report ? command : nullptr);
  const TruncationOptions truncation = truncation_from_flags(flags, config);
  PreferenceSplits out{tokenize_pairs(tokenizer, chat, train, truncation),
                       tokenize_pairs(tokenizer, chat, val, truncation)};
  if (report) {
    std::fprintf(stderr, "%s: %zu training pairs, %zu held out, max length %lld\n", command,
                 out.train.size(), out.val.size(), static_cast<long long>(truncation.max_length));
    print_training_sequence(tokenizer, out.train.front().chosen, command);
  }
  return out;
}

}  // namespace rlaif::cli
