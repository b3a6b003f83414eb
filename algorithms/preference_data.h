// Preference pairs as reward modelling and DPO consume them: tokenised once, visited in a
// shuffled order that is a pure function of (seed, micro-batch), and laid out as one batch whose
// first n rows are the chosen answers and last n rows the rejected ones (one forward pass scores
// both sides, and row i pairs with row n+i).
//
// Data order (as SFT's, algorithms/sft.h): micro-batch k takes positions [k·B, (k+1)·B) of an
// endless stream of epochs; position p is pair perm_e[p mod N], e = ⌊p / N⌋, perm_e a Fisher-Yates
// shuffle drawn from Philox(seed, offset (e+1)·2^40). A resumed run thus sees exactly the
// uninterrupted run's batches, and every epoch visits every pair once.
//
// Data parallelism over R ranks (rank r): every rank draws the same micro-batch of B pairs and
// trains on its positions [r·B/R, (r+1)·B/R) (rank_shard), B divisible by R. A loss averaged over
// the shard's pairs then has the micro-batch's mean as its mean over ranks (shards are equal).
#pragma once

#include <cstdint>
#include <vector>

#include "algorithms/sequences.h"
#include "io/chat_template.h"
#include "io/datasets.h"
#include "io/tokenizer.h"

namespace rlaif {

struct TokenizedPair {
  TokenizedExample chosen;    // prompt + chosen answer (+ EOS)
  TokenizedExample rejected;  // the same prompt + rejected answer (+ EOS)
  double margin = 0.0;        // PreferencePair::margin
};

// Tokenises every pair (tokenize_example for each side, EOS appended, truncated alike).
std::vector<TokenizedPair> tokenize_pairs(const Tokenizer& tokenizer, const ChatTemplate& chat,
                                          const std::vector<PreferencePair>& pairs,
                                          const TruncationOptions& truncation);

// Checks that every sequence of `pairs` fits a context of `context` tokens and that every token
// id is in [0, vocab); Error naming the first pair that does not (`what` names the caller, e.g.
// "rm"). The id check matters for the last token of each sequence: it is only ever a target, so
// no embedding lookup would catch it, and a padded vocabulary's loss kernels accept ids up to the
// padded width (they would give a loss of ~1e30, not an error).
void check_pairs_fit(const std::vector<TokenizedPair>& pairs, int64_t context, int64_t vocab,
                     const char* what);

// The shuffled visiting order described above.
class PairOrder {
 public:
  PairOrder(int64_t pairs, uint64_t seed);
  // Pair indices of micro-batch k, `batch` of them.
  std::vector<int64_t> batch(int64_t k, int64_t batch) const;

 private:
  const std::vector<int64_t>& permutation(int64_t epoch) const;

  int64_t n_;
  uint64_t seed_;
  mutable int64_t cached_epoch_ = -1;  // the last epoch's permutation, recomputed on demand
  mutable std::vector<int64_t> cached_perm_;
};

// Error unless 0 ≤ rank < ranks and `batch` (the --batch of command `what`) is divisible by the
// rank count, naming both: every rank must train on an equal share of each micro-batch.
void check_rank_shard(int64_t batch, int rank, int ranks, const char* what);
// Rank `rank`'s share of a micro-batch's pair indices: positions [r·B/R, (r+1)·B/R). Error when
// B = indices.size() is not divisible by `ranks`.
std::vector<int64_t> rank_shard(const std::vector<int64_t>& indices, int rank, int ranks);

// Rows 0..n-1: the chosen sequences of pairs[indices[i]]; rows n..2n-1: the rejected ones.
SequenceBatch make_pair_batch(const std::vector<TokenizedPair>& pairs,
                              const std::vector<int64_t>& indices, Device device);

// indices [begin, end) as a vector (for walking a held-out set in chunks).
std::vector<int64_t> index_range(int64_t begin, int64_t end);

}  // namespace rlaif
