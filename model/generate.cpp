#include "model/generate.h"

#include <algorithm>

#include "model/decoding_batch.h"

namespace rlaif {

std::vector<Generation> generate(const Transformer& model,
                                 const std::vector<std::vector<int32_t>>& prompts,
                                 const GenerationOptions& options,
                                 const std::vector<uint64_t>& stream_ids,
                                 const std::function<void(int64_t)>& on_step) {
  std::vector<Generation> results(prompts.size());
  if (prompts.empty() || options.max_new_tokens <= 0) return results;
  int64_t longest = 0;
  for (size_t b = 0; b < prompts.size(); ++b) {
    RLAIF_CHECK(!prompts[b].empty(), "generate: prompt ", b, " is empty (start it with BOS)");
    longest = std::max<int64_t>(longest, static_cast<int64_t>(prompts[b].size()));
  }
  const int64_t context = model.config().max_position_embeddings;
  RLAIF_CHECK(longest < context, "generate: a prompt of ", longest,
              " tokens leaves no room in the model's context of ", context);
  // New tokens are clipped to the context.
  DecodingBatch batch(model, options.sampling, options.eos_ids,
                      std::min(longest + options.max_new_tokens, context));
  batch.start(prompts, stream_ids);
  for (int64_t step = 1;; ++step) {
    batch.sample();
    if (on_step) on_step(step);
    if (!batch.any_live() || batch.room() <= 1) break;
    batch.decode();
  }
  for (size_t b = 0; b < prompts.size(); ++b)
    results[b] = batch.generation(static_cast<int64_t>(b));
  return results;
}

}  // namespace rlaif
