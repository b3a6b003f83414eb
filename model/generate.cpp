#include "model/generate.h"

#include <algorithm>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "kernels/backend.h"

namespace rlaif {
namespace {

constexpr int32_t kPaddingSegment = -1;

// Logits [B, V] of the last position of every row of hidden [B, T, D], on the model's device
// (sampled there: only the B chosen ids come back to the host). The rows are picked with an
// embedding lookup (a row gather) so the vocabulary projection runs on B rows only.
Tensor last_position_logits(const Transformer& model, const Variable& hidden) {
  const int64_t B = hidden.size(0), T = hidden.size(1), D = hidden.size(2);
  std::vector<int32_t> rows(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b)
    rows[static_cast<size_t>(b)] = static_cast<int32_t>(b * T + T - 1);
  Tensor ids = Tensor::from_vector(rows, {B}).to(model.device());
  Variable last = embedding(reshape(hidden, {B * T, D}), ids);
  Tensor logits = model.logits(last).data();
  if (logits.device().is_cpu() && logits.dtype() != DType::f32) {  // the CPU samples f32 only
    Tensor wide = Tensor::empty(logits.shape(), DType::f32, logits.device());
    backend_for(logits.device()).cast(logits, wide);
    logits = wide;
  }
  return logits;
}

}  // namespace

std::vector<Generation> generate(const Transformer& model,
                                 const std::vector<std::vector<int32_t>>& prompts,
                                 const GenerationOptions& options,
                                 const std::vector<uint64_t>& stream_ids,
                                 const std::function<void(int64_t)>& on_step,
                                 const KeepRow& keep_row) {
  NoGradGuard no_grad;
  const ModelConfig& c = model.config();
  const int64_t B = static_cast<int64_t>(prompts.size());
  std::vector<Generation> results(prompts.size());
  if (B == 0 || options.max_new_tokens <= 0) return results;
  RLAIF_CHECK(stream_ids.empty() || stream_ids.size() == prompts.size(),
              "generate: ", stream_ids.size(), " stream ids for ", prompts.size(), " prompts");
  int64_t longest = 0;
  for (size_t b = 0; b < prompts.size(); ++b) {
    RLAIF_CHECK(!prompts[b].empty(), "generate: prompt ", b, " is empty (start it with BOS)");
    longest = std::max<int64_t>(longest, static_cast<int64_t>(prompts[b].size()));
  }
  const int64_t capacity = std::min(longest + options.max_new_tokens, c.max_position_embeddings);
  RLAIF_CHECK(longest < capacity, "generate: a prompt of ", longest,
              " tokens leaves no room in the model's context of ", c.max_position_embeddings);
  const int64_t steps = capacity - longest;  // new tokens, clipped to the context

  // Prefill: left-pad to the longest prompt.
  std::vector<int32_t> ids(static_cast<size_t>(B * longest), 0), pos(ids.size(), 0),
      seg(ids.size(), kPaddingSegment);
  for (int64_t b = 0; b < B; ++b) {
    const auto& p = prompts[static_cast<size_t>(b)];
    int64_t pad = longest - static_cast<int64_t>(p.size());
    for (size_t i = 0; i < p.size(); ++i) {
      size_t at = static_cast<size_t>(b * longest + pad) + i;
      ids[at] = p[i];
      pos[at] = static_cast<int32_t>(i);
      seg[at] = 0;
    }
  }
  KVCache cache(c, B, capacity, model.device(), model.dtype());
  TransformerInput input{Tensor::from_vector(ids, {B, longest}).to(model.device()),
                         Tensor::from_vector(pos, {B, longest}).to(model.device()),
                         Tensor::from_vector(seg, {B, longest}).to(model.device())};
  Tensor logits = last_position_logits(model, model.hidden_states(input, &cache));

  std::vector<bool> done(static_cast<size_t>(B), false);
  std::vector<int32_t> next(static_cast<size_t>(B)), next_pos(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b)
    next_pos[static_cast<size_t>(b)] = static_cast<int32_t>(prompts[static_cast<size_t>(b)].size());
  Backend& backend = backend_for(model.device());
  const SamplingOptions& sampling = options.sampling;
  Tensor uniforms_host = Tensor::empty({B}, DType::f32);
  Tensor tokens = Tensor::empty({B}, DType::i32, model.device());
  for (int64_t step = 0; step < steps; ++step) {
    // One draw per row from its own stream, made on the host (as the CPU would), then every row
    // sampled on the device; finished rows too (their tokens are ignored), which keeps the call
    // one rectangular batch.
    float* u = uniforms_host.data<float>();
    for (int64_t b = 0; b < B; ++b) {
      uint64_t stream =
          stream_ids.empty() ? static_cast<uint64_t>(b) : stream_ids[static_cast<size_t>(b)];
      u[b] = sampling_uniform(sampling.seed, stream, static_cast<uint64_t>(step));
    }
    backend.sample_tokens(logits, uniforms_host.to(model.device()), sampling.temperature,
                          sampling.top_k, sampling.top_p, tokens);
    const std::vector<int32_t> picked = tokens.to(Device::cpu()).to_vector<int32_t>();
    bool all_done = true;
    for (int64_t b = 0; b < B; ++b) {
      size_t i = static_cast<size_t>(b);
      if (done[i]) continue;
      int32_t token = picked[i];
      results[i].tokens.push_back(token);
      next[i] = token;
      if (std::find(options.eos_ids.begin(), options.eos_ids.end(), token) !=
          options.eos_ids.end()) {
        results[i].stopped_at_eos = true;
        done[i] = true;
        if (keep_row) keep_row(b, results[i]);  // told of its last token; it ends regardless
      } else if (keep_row && !keep_row(b, results[i])) {
        done[i] = true;
      }
      all_done = all_done && done[i];
    }
    if (on_step) on_step(step + 1);
    if (all_done || step + 1 == steps) break;
    // Decode one token for every row (finished rows too: their outputs are ignored, and
    // keeping the batch rectangular is cheaper than re-packing it).
    TransformerInput step_input{Tensor::from_vector(next, {B, 1}).to(model.device()),
                                Tensor::from_vector(next_pos, {B, 1}).to(model.device()), Tensor()};
    for (auto& p : next_pos) ++p;
    logits = last_position_logits(model, model.hidden_states(step_input, &cache));
  }
  return results;
}

}  // namespace rlaif
