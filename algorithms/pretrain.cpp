#include "algorithms/pretrain.h"

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "runtime/philox.h"

namespace rlaif {

PretrainTask::PretrainTask(const Transformer& model, std::vector<int32_t> train,
                           std::vector<int32_t> val, PretrainDataOptions options)
    : model_(model), train_(std::move(train)), val_(std::move(val)), options_(options) {
  const int64_t B = options_.batch, T = options_.seq;
  RLAIF_CHECK(B > 0 && T > 0, "pretrain: --batch and --seq must be positive");
  RLAIF_CHECK(options_.ranks > 0 && options_.rank >= 0 && options_.rank < options_.ranks,
              "pretrain: rank ", options_.rank, " of ", options_.ranks);
  RLAIF_CHECK(B % options_.ranks == 0, "pretrain: --batch ", B, " is not divisible by the ",
              options_.ranks,
              " data-parallel ranks: each rank trains on an equal share of "
              "every batch, so use a --batch that is a multiple of ",
              options_.ranks);
  shard_rows_ = B / options_.ranks;
  RLAIF_CHECK(T <= model.config().max_position_embeddings, "pretrain: --seq ", T,
              " exceeds the model's context of ", model.config().max_position_embeddings);
  RLAIF_CHECK(options_.order == "sequential" || options_.order == "shuffled",
              "pretrain: --data-order must be sequential or shuffled, got '", options_.order, "'");
  RLAIF_CHECK(static_cast<int64_t>(train_.size()) > B * T, "pretrain: the training data has ",
              train_.size(), " tokens, not enough for one batch of ", B, "x", T,
              "+1: lower --batch or --seq");
  for (size_t i = 0; i < train_.size(); ++i) {
    RLAIF_CHECK(train_[i] >= 0 && train_[i] < model.config().vocab_size, "pretrain: token ",
                train_[i], " at position ", i, " is outside the model's vocabulary of ",
                model.config().vocab_size);
  }
  std::vector<int32_t> pos(static_cast<size_t>(B * T));
  for (int64_t i = 0; i < B * T; ++i) pos[static_cast<size_t>(i)] = static_cast<int32_t>(i % T);
  positions_ = Tensor::from_vector(pos, {B, T}).to(model.device());
  pos.resize(static_cast<size_t>(shard_rows_ * T));
  shard_positions_ = Tensor::from_vector(pos, {shard_rows_, T}).to(model.device());
}

void PretrainTask::batch_tokens(int64_t k, std::vector<int32_t>& inputs,
                                std::vector<int32_t>& targets) const {
  rows(k, 0, options_.batch, inputs, targets);
}

void PretrainTask::rows(int64_t k, int64_t first, int64_t count, std::vector<int32_t>& inputs,
                        std::vector<int32_t>& targets) const {
  const int64_t B = options_.batch, T = options_.seq, N = static_cast<int64_t>(train_.size());
  inputs.resize(static_cast<size_t>(count * T));
  targets.resize(static_cast<size_t>(count * T));
  for (int64_t b = first; b < first + count; ++b) {
    int64_t begin;
    if (options_.order == "sequential") {
      const int64_t chunks = (N - 1) / (B * T);
      begin = (k % chunks) * B * T + b * T;
    } else {
      uint64_t stream =
          static_cast<uint64_t>(k) * static_cast<uint64_t>(B) + static_cast<uint64_t>(b);
      PhiloxWords w = philox_block(options_.seed, stream);
      uint64_t draw = (static_cast<uint64_t>(w.w[0]) << 32) | w.w[1];
      begin = static_cast<int64_t>(draw % static_cast<uint64_t>(N - T));
    }
    const int64_t row = b - first;
    for (int64_t t = 0; t < T; ++t) {
      inputs[static_cast<size_t>(row * T + t)] = train_[static_cast<size_t>(begin + t)];
      targets[static_cast<size_t>(row * T + t)] = train_[static_cast<size_t>(begin + t + 1)];
    }
  }
}

double PretrainTask::batch_loss(const std::vector<int32_t>& inputs,
                                const std::vector<int32_t>& targets, const Tensor& positions,
                                double scale, bool backward) const {
  const Shape& shape = positions.shape();
  TransformerInput input{Tensor::from_vector(inputs, shape).to(model_.device()), positions,
                         Tensor()};
  Tensor y = Tensor::from_vector(targets, shape).to(model_.device());
  Variable loss = mean_all(model_.token_losses(input, y));
  double value = loss.data().item();
  if (backward) rlaif::scale(loss, static_cast<float>(scale)).backward();
  return value;
}

MicroBatchResult PretrainTask::micro_batch(int64_t step, int64_t micro, double scale) {
  std::vector<int32_t> inputs, targets;
  rows(step * options_.grad_accum + micro, options_.rank * shard_rows_, shard_rows_, inputs,
       targets);
  MicroBatchResult r;
  r.loss = batch_loss(inputs, targets, shard_positions_, scale, /*backward=*/true);
  r.tokens = shard_rows_ * options_.seq;
  return r;
}

std::vector<std::pair<std::string, double>> PretrainTask::evaluate() {
  const int64_t B = options_.batch, T = options_.seq, N = static_cast<int64_t>(val_.size());
  const int64_t available = N > 0 ? (N - 1) / (B * T) : 0;
  const int64_t batches = std::min(available, options_.eval_batches);
  if (batches <= 0) return {};
  NoGradGuard no_grad;
  double total = 0.0;
  std::vector<int32_t> inputs(static_cast<size_t>(B * T)), targets(inputs.size());
  for (int64_t k = 0; k < batches; ++k) {
    auto begin = val_.begin() + k * B * T;
    std::copy(begin, begin + B * T, inputs.begin());
    std::copy(begin + 1, begin + B * T + 1, targets.begin());
    total += batch_loss(inputs, targets, positions_, 1.0, /*backward=*/false);
  }
  return {{"val_loss", total / static_cast<double>(batches)}};
}

}  // namespace rlaif
