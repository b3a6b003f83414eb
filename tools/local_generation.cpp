#include "tools/local_generation.h"

#include <algorithm>

#include "algorithms/sequences.h"
#include "io/model_dir.h"
#include "model/continuous_generation.h"
#include "runtime/error.h"
#include "tools/chat_flags.h"
#include "tools/lora_flags.h"
#include "tools/train_flags.h"

namespace rlaif::cli {

void declare_generation_flags(Flags& flags, const std::string& default_temperature,
                              const std::string& default_max_new_tokens) {
  flags.option("model", "", "model directory (config.json, weights, tokenizer)", true)
      .option("max-new-tokens", default_max_new_tokens, "tokens to generate at most")
      .option("temperature", default_temperature, "sampling temperature (0 = greedy)")
      .option("top-k", "0", "sample from the k most likely tokens (0 = all)")
      .option("top-p", "1.0", "nucleus sampling threshold")
      .option("seed", "0", "sampling seed")
      .option("batch", "8",
              "sequences generated together (continuously: a finished one's row takes the next "
              "prompt)")
      .option("max-prompt-length", "0",
              "prompt tokens at most, cut from the left (0 = the context minus --max-new-tokens)")
      .option("device", "cpu", "cpu or cuda[:N]")
      .option("dtype", "f32", "parameter dtype: f32, or bf16 (GPU only)");
  declare_chat_template_flag(flags);  // "{prompt}" for raw prompts
  declare_adapter_flag(flags);
}

namespace {

GenerationOptions generation_options(const Flags& flags) {
  GenerationOptions o;
  o.max_new_tokens = flags.integer("max-new-tokens");
  o.sampling.temperature = static_cast<float>(flags.number("temperature"));
  o.sampling.top_k = flags.integer("top-k");
  o.sampling.top_p = static_cast<float>(flags.number("top-p"));
  o.sampling.seed = static_cast<uint64_t>(flags.integer("seed"));
  if (o.max_new_tokens < 1) throw UsageError("--max-new-tokens must be at least 1");
  if (o.sampling.temperature < 0) throw UsageError("--temperature must not be negative");
  if (o.sampling.top_k < 0) throw UsageError("--top-k must not be negative");
  if (!(o.sampling.top_p > 0 && o.sampling.top_p <= 1))
    throw UsageError("--top-p must be in (0, 1]");
  if (flags.integer("batch") < 1) throw UsageError("--batch must be at least 1");
  if (flags.integer("max-prompt-length") < 0)
    throw UsageError("--max-prompt-length must not be negative");
  model_dtype(flags);  // UsageError for an unknown --dtype, before the model loads
  return o;
}

}  // namespace

LocalGenerator::LocalGenerator(const Flags& flags)
    : options_(generation_options(flags)),
      chat_(chat_template_from_flags(flags, flags.str("model"))),
      model_(load_model(flags.str("model"), parse_device(flags.str("device")), model_dtype(flags))),
      tokenizer_(Tokenizer::load_dir(flags.str("model"))),
      batch_(flags.integer("batch")),
      max_prompt_tokens_(flags.integer("max-prompt-length")) {
  apply_adapter_flag(model_, flags);
  options_.eos_ids = generation_stop_ids(model_.config(), tokenizer_);
  const int64_t context = model_.config().max_position_embeddings;
  if (max_prompt_tokens_ == 0) {
    max_prompt_tokens_ = std::max<int64_t>(1, context - options_.max_new_tokens);
  }
  // Generation needs room for at least one new token.
  max_prompt_tokens_ = std::min(max_prompt_tokens_, context - 1);
}

void LocalGenerator::generate(const std::vector<Conversation>& prompts,
                              const std::vector<uint64_t>& streams,
                              const std::function<void(size_t, LocalCompletion)>& done,
                              const std::function<bool()>& stop) {
  RLAIF_CHECK(prompts.size() == streams.size(), "generate: ", prompts.size(), " prompts but ",
              streams.size(), " streams");
  std::vector<std::vector<int32_t>> ids;
  for (const Conversation& p : prompts) {
    // Cut from the left, keeping the end (where the template puts the question to answer) and
    // a leading BOS.
    std::vector<int32_t> t = tokenize_prompt(tokenizer_, chat_, p, INT64_MAX);
    if (static_cast<int64_t>(t.size()) > max_prompt_tokens_) {
      t = tokenize_prompt(tokenizer_, chat_, p, max_prompt_tokens_);
      ++truncated_;
    }
    ids.push_back(std::move(t));
  }
  generate_continuously(
      model_, ids, options_, streams, batch_,
      [&](size_t i, Generation g) {
        const auto count = static_cast<int64_t>(g.tokens.size());
        if (g.stopped_at_eos && !g.tokens.empty()) g.tokens.pop_back();
        done(i, {tokenizer_.decode(g.tokens), g.stopped_at_eos, count});
      },
      stop);
}

}  // namespace rlaif::cli
