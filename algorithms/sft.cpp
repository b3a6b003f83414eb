#include "algorithms/sft.h"

#include <cmath>
#include <numeric>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "runtime/rng.h"

namespace rlaif {

std::vector<TokenizedExample> tokenize_sft_examples(
    const Tokenizer& tokenizer, const ChatTemplate& chat, const std::vector<SftExample>& examples,
    const TruncationOptions& truncation, bool last_reply_only, int64_t* split_conversations) {
  std::vector<TokenizedExample> out;
  out.reserve(examples.size());
  if (split_conversations) *split_conversations = 0;
  for (const SftExample& e : examples) {
    bool split = false;
    // Examples built in code may hold only the texts: the prompt is then the user's one turn.
    const Conversation conversation =
        e.messages.empty() ? Conversation{{"user", e.prompt}, {"assistant", e.completion}}
                           : e.messages;
    for (TokenizedExample& t : tokenize_conversation(tokenizer, chat, conversation, truncation,
                                                     last_reply_only, /*add_eos=*/true, &split)) {
      out.push_back(std::move(t));
    }
    if (split && split_conversations) ++*split_conversations;
  }
  return out;
}

int64_t sft_steps_for_epochs(double epochs, int64_t n, int64_t batch, int64_t grad_accum) {
  RLAIF_CHECK(epochs > 0 && std::isfinite(epochs), "sft: --epochs must be positive, got ", epochs);
  RLAIF_CHECK(n > 0 && batch > 0 && grad_accum > 0,
              "sft: examples, --batch and --grad-accum must be positive");
  const double per_step = static_cast<double>(batch * grad_accum);
  return std::max<int64_t>(
      1, static_cast<int64_t>(std::ceil(epochs * static_cast<double>(n) / per_step - 1e-9)));
}

namespace {

void check_examples(const std::vector<TokenizedExample>& examples, const char* which,
                    int64_t context) {
  for (size_t i = 0; i < examples.size(); ++i) {
    const auto& e = examples[i];
    const int64_t length = static_cast<int64_t>(e.prompt.size() + e.completion.size());
    RLAIF_CHECK(!e.prompt.empty() && !e.completion.empty(), "sft: ", which, " example ", i,
                " has an empty prompt or completion after tokenisation");
    RLAIF_CHECK(length <= context, "sft: ", which, " example ", i, " is ", length,
                " tokens long, past the model's context of ", context, ": lower --max-length");
  }
}

}  // namespace

SftTask::SftTask(const Transformer& model, std::vector<TokenizedExample> train,
                 std::vector<TokenizedExample> val, SftOptions options)
    : model_(model), train_(std::move(train)), val_(std::move(val)), options_(options) {
  RLAIF_CHECK(options_.batch > 0, "sft: --batch must be positive");
  RLAIF_CHECK(options_.grad_accum > 0, "sft: --grad-accum must be positive");
  RLAIF_CHECK(options_.ranks > 0 && options_.rank >= 0 && options_.rank < options_.ranks,
              "sft: rank ", options_.rank, " of ", options_.ranks);
  RLAIF_CHECK(options_.batch % options_.ranks == 0, "sft: --batch ", options_.batch,
              " is not divisible by the ", options_.ranks,
              " data-parallel ranks: each rank trains on an equal share of every batch, so use "
              "a --batch that is a multiple of ",
              options_.ranks);
  RLAIF_CHECK(!train_.empty(), "sft: no training examples");
  const int64_t context = model.config().max_position_embeddings;
  RLAIF_CHECK(!options_.packing || (options_.row_length > 1 && options_.row_length <= context),
              "sft: the packed row length ", options_.row_length,
              " must be in [2, the model's context of ", context, "]");
  check_examples(train_, "training", context);
  check_examples(val_, "held-out", context);
  const int64_t vocab = model.config().vocab_size;
  for (const auto* set : {&train_, &val_}) {
    for (const auto& e : *set) {
      for (const auto* part : {&e.prompt, &e.completion}) {
        for (int32_t id : *part) {
          RLAIF_CHECK(id >= 0 && id < vocab, "sft: token ", id,
                      " is outside the model's vocabulary of ", vocab,
                      ": the tokenizer does not match the model");
        }
      }
    }
  }
}

const std::vector<int64_t>& SftTask::permutation(int64_t epoch) const {
  if (epoch != cached_epoch_) {
    const int64_t n = train_size();
    cached_perm_.resize(static_cast<size_t>(n));
    std::iota(cached_perm_.begin(), cached_perm_.end(), int64_t{0});
    // Fisher-Yates with epoch e's own Philox range (offset (e+1)·2^40, away from the range
    // initialisation draws from), so any epoch's order is computed without the ones before it.
    Generator gen(options_.seed, (static_cast<uint64_t>(epoch) + 1) << 40);
    for (int64_t i = n - 1; i > 0; --i) {
      const auto j = static_cast<int64_t>(gen.below(static_cast<uint64_t>(i + 1)));
      std::swap(cached_perm_[static_cast<size_t>(i)], cached_perm_[static_cast<size_t>(j)]);
    }
    cached_epoch_ = epoch;
  }
  return cached_perm_;
}

std::vector<int64_t> SftTask::batch_indices(int64_t k) const {
  const int64_t n = train_size(), B = options_.batch;
  std::vector<int64_t> out;
  out.reserve(static_cast<size_t>(B));
  for (int64_t p = k * B; p < (k + 1) * B; ++p) {
    out.push_back(permutation(p / n)[static_cast<size_t>(p % n)]);
  }
  return out;
}

SequenceBatch SftTask::make_sequences(const std::vector<TokenizedExample>& examples) const {
  return options_.packing ? make_packed_batch(examples, options_.row_length, model_.device())
                          : make_batch(examples, model_.device());
}

double SftTask::completion_nll(const SequenceBatch& batch, double normaliser, double scale,
                               bool backward) const {
  // token_losses gives −log π(target) per position and 0 where the target is kIgnoreIndex (every
  // prompt token and the padding), so its sum is Σ_i Σ_t −log π(y_{i,t} | x_i, y_{i,<t}).
  Variable nll_sum = sum_all(model_.token_losses(batch.input, batch.targets, kIgnoreIndex));
  const double value = nll_sum.data().to(Device::cpu()).item();
  if (backward) {
    rlaif::scale(nll_sum, static_cast<float>(scale / normaliser)).backward();
  }
  return value;
}

MicroBatchResult SftTask::micro_batch(int64_t step, int64_t micro, double scale) {
  const std::vector<int64_t> indices = batch_indices(step * options_.grad_accum + micro);
  const int64_t shard = options_.batch / options_.ranks, first = options_.rank * shard;
  std::vector<TokenizedExample> examples;
  double all_completion_tokens = 0.0;  // C, over the whole micro-batch (every rank's shard)
  for (int64_t j = 0; j < options_.batch; ++j) {
    const TokenizedExample& e = train_[static_cast<size_t>(indices[static_cast<size_t>(j)])];
    all_completion_tokens += static_cast<double>(e.trained_tokens());
    if (j >= first && j < first + shard) examples.push_back(e);
  }
  SequenceBatch batch = make_sequences(examples);
  if (options_.ranks > 1) {  // C is counted from lengths: they must be what the batch trains
    int64_t mine = 0;
    for (const TokenizedExample& e : examples) mine += e.trained_tokens();
    RLAIF_CHECK(mine == batch.trained_tokens, "sft: rank ", options_.rank, " counts ", mine,
                " completion tokens but its batch trains ", batch.trained_tokens);
  }
  // L = (1/Σ|y_i|)·Σ −log π: the mean over this micro-batch's completion tokens. On R ranks, the
  // shard's sum over C/R, whose mean over ranks is that same token mean (see sft.h).
  const double count = options_.ranks == 1
                           ? static_cast<double>(batch.trained_tokens)
                           : all_completion_tokens / static_cast<double>(options_.ranks);
  MicroBatchResult r;
  r.loss = completion_nll(batch, count, scale, /*backward=*/true) / count;
  for (int64_t length : batch.lengths) r.tokens += length;  // real tokens, padding excluded
  r.metrics.emplace_back("completion_tokens", options_.ranks == 1 ? count : all_completion_tokens);
  return r;
}

std::vector<std::pair<std::string, double>> SftTask::evaluate() {
  if (val_.empty()) return {};
  NoGradGuard no_grad;
  double total = 0.0;
  int64_t count = 0;
  for (size_t begin = 0; begin < val_.size(); begin += static_cast<size_t>(options_.batch)) {
    size_t end = std::min(val_.size(), begin + static_cast<size_t>(options_.batch));
    std::vector<TokenizedExample> examples(val_.begin() + static_cast<long>(begin),
                                           val_.begin() + static_cast<long>(end));
    SequenceBatch batch = make_sequences(examples);
    total += completion_nll(batch, 1.0, 1.0, /*backward=*/false);
    count += batch.trained_tokens;
  }
  return {{"val_loss", total / static_cast<double>(count)}};
}

}  // namespace rlaif
