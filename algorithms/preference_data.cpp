#include "algorithms/preference_data.h"

#include <algorithm>
#include <numeric>

#include "runtime/error.h"
#include "runtime/rng.h"

namespace rlaif {

std::vector<TokenizedPair> tokenize_pairs(const Tokenizer& tokenizer, const ChatTemplate& chat,
                                          const std::vector<PreferencePair>& pairs,
                                          const TruncationOptions& truncation) {
  std::vector<TokenizedPair> out;
  out.reserve(pairs.size());
  for (const PreferencePair& p : pairs) {
    // Pairs built in code may hold only the prompt's text: it is then the user's one turn.
    const Conversation prompt =
        p.prompt_messages.empty() ? Conversation{{"user", p.prompt}} : p.prompt_messages;
    TokenizedPair t;
    t.chosen = tokenize_reply(tokenizer, chat, prompt, p.chosen, truncation);
    t.rejected = tokenize_reply(tokenizer, chat, prompt, p.rejected, truncation);
    t.margin = p.margin;
    out.push_back(std::move(t));
  }
  return out;
}

void check_pairs_fit(const std::vector<TokenizedPair>& pairs, int64_t context, int64_t vocab,
                     const char* what) {
  for (size_t i = 0; i < pairs.size(); ++i) {
    for (const TokenizedExample* ex : {&pairs[i].chosen, &pairs[i].rejected}) {
      const auto length = static_cast<int64_t>(ex->prompt.size() + ex->completion.size());
      RLAIF_CHECK(length <= context, what, ": pair ", i, " has a sequence of ", length,
                  " tokens, more than the model's context of ", context,
                  ": lower --max-length to at most ", context);
      RLAIF_CHECK(!ex->completion.empty(), what, ": pair ", i,
                  " has an answer with no tokens left after truncation");
      for (const std::vector<int32_t>* part : {&ex->prompt, &ex->completion}) {
        for (int32_t id : *part) {
          RLAIF_CHECK(id >= 0 && id < vocab, what, ": pair ", i, " has token ", id,
                      ", outside the model's vocabulary of ", vocab,
                      ": the tokenizer does not match the model");
        }
      }
    }
  }
}

PairOrder::PairOrder(int64_t pairs, uint64_t seed) : n_(pairs), seed_(seed) {
  RLAIF_CHECK(n_ > 0, "PairOrder: no pairs to train on");
}

const std::vector<int64_t>& PairOrder::permutation(int64_t epoch) const {
  if (epoch != cached_epoch_) {
    cached_perm_.resize(static_cast<size_t>(n_));
    std::iota(cached_perm_.begin(), cached_perm_.end(), int64_t{0});
    // Epoch e draws from its own Philox range, (e+1)·2^40 on (initialisation uses others), so any
    // epoch's order is computed without the ones before it.
    Generator gen(seed_, (static_cast<uint64_t>(epoch) + 1) << 40);
    for (int64_t i = n_ - 1; i > 0; --i) {
      const auto j = static_cast<int64_t>(gen.below(static_cast<uint64_t>(i + 1)));
      std::swap(cached_perm_[static_cast<size_t>(i)], cached_perm_[static_cast<size_t>(j)]);
    }
    cached_epoch_ = epoch;
  }
  return cached_perm_;
}

std::vector<int64_t> PairOrder::batch(int64_t k, int64_t batch) const {
  std::vector<int64_t> out;
  out.reserve(static_cast<size_t>(batch));
  for (int64_t p = k * batch; p < (k + 1) * batch; ++p) {
    out.push_back(permutation(p / n_)[static_cast<size_t>(p % n_)]);
  }
  return out;
}

void check_rank_shard(int64_t batch, int rank, int ranks, const char* what) {
  RLAIF_CHECK(ranks > 0 && rank >= 0 && rank < ranks, what, ": rank ", rank, " of ", ranks);
  RLAIF_CHECK(batch % ranks == 0, what, ": --batch ", batch, " is not divisible by the ", ranks,
              " data-parallel ranks: each rank trains on an equal share of every batch, so use a "
              "--batch that is a multiple of ",
              ranks);
}

std::vector<int64_t> rank_shard(const std::vector<int64_t>& indices, int rank, int ranks) {
  const auto batch = static_cast<int64_t>(indices.size());
  check_rank_shard(batch, rank, ranks, "rank_shard");
  const int64_t share = batch / ranks;
  return {indices.begin() + rank * share, indices.begin() + (rank + 1) * share};
}

SequenceBatch make_pair_batch(const std::vector<TokenizedPair>& pairs,
                              const std::vector<int64_t>& indices, Device device) {
  std::vector<TokenizedExample> rows;
  rows.reserve(2 * indices.size());
  for (int64_t i : indices) rows.push_back(pairs[static_cast<size_t>(i)].chosen);
  for (int64_t i : indices) rows.push_back(pairs[static_cast<size_t>(i)].rejected);
  return make_batch(rows, device);
}

std::vector<int64_t> index_range(int64_t begin, int64_t end) {
  std::vector<int64_t> out(static_cast<size_t>(std::max<int64_t>(end - begin, 0)));
  std::iota(out.begin(), out.end(), begin);
  return out;
}

}  // namespace rlaif
