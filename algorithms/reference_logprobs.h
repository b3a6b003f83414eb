// The reference log-probs of the DPO family (DPO, KTO, ...): every pair's completion
// log-probabilities under the frozen reference π_ref, computed once before training instead of
// running the reference on every batch, and cached on disk so that the reference model need not
// stay in memory and a rerun on the same data skips the work.
//
// For pair i with prompt x_i and answers c_i (chosen) and r_i (rejected), each of T tokens:
//   sum(c_i) = Σ_{t<T} log π_ref(c_{i,t} | x_i, c_{i,<t})      (the answer's trained tokens)
//   avg(c_i) = sum(c_i) / T                                     (0 for an answer with no token)
// and likewise for r_i: four columns indexed by pair, chosen_sum, rejected_sum, chosen_avg and
// rejected_avg. Known value: an answer of 3 tokens with log-probs −1, −2 and −3 has sum −6 and
// average −2.
//
// The cache is a safetensors file of those columns ("train." and "val." prefixes) whose metadata
// keys it: the file format ("rlaif-ref-logprobs-2"), and 64-bit FNV-1a content hashes
// (runtime/fnv1a.h) of the reference model and of each pair list. A file whose key differs is
// recomputed and rewritten; one of another format says so on stderr first.
//
// Data parallelism over R ranks: every rank needs the whole tables (any pair can fall in any
// rank's share), so rank r computes the r-th of R slices of whole `batch`-pair chunks (the
// forward passes one rank alone would make, hence the same values), the slices are gathered in
// order, and rank 0 alone reads and writes the cache file.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "algorithms/preference_data.h"
#include "model/transformer.h"

namespace rlaif {

class Communicator;  // runtime/communicator.h

// Reference log-probs of a list of pairs, by pair index.
struct RefLogprobs {
  std::vector<float> chosen_sum, rejected_sum;  // Σ_t log π_ref over each answer's tokens
  std::vector<float> chosen_avg, rejected_avg;  // the same divided by the answer's token count
  size_t size() const { return chosen_sum.size(); }
};

// Log-probs of every pair under `model` (no gradients), `batch` pairs per forward pass.
RefLogprobs compute_ref_logprobs(const Transformer& model, const std::vector<TokenizedPair>& pairs,
                                 int64_t batch);
// The same for pairs [begin, end) only (entry i of the result is pair begin + i), `batch` pairs
// per forward pass from `begin`.
RefLogprobs compute_ref_logprobs(const Transformer& model, const std::vector<TokenizedPair>& pairs,
                                 int64_t begin, int64_t end, int64_t batch);

// A content hash of a model (config, every weight, and the adapters where the handle applies them)
// and of tokenised pairs (their token ids):
// together they key the reference log-prob cache.
uint64_t model_hash(const Transformer& model);
uint64_t pairs_hash(const std::vector<TokenizedPair>& pairs);

// The reference log-probs of `train` and `val` under `reference`, read from `cache_path` when it
// holds them for this reference and these pairs (same format and hashes), otherwise computed and
// written there (atomically). `reused` (optional) says which happened.
//
// Collective when `comm` is given (every rank calls it with the same pairs and an identical
// reference): rank 0 alone reads or writes `cache_path`; the tables are computed in slices of
// whole `batch`-pair chunks, rank r the r-th slice (so each value comes from the forward pass one
// rank would make), gathered, and every rank returns the whole tables.
std::pair<RefLogprobs, RefLogprobs> cached_ref_logprobs(const std::string& cache_path,
                                                        const Transformer& reference,
                                                        const std::vector<TokenizedPair>& train,
                                                        const std::vector<TokenizedPair>& val,
                                                        int64_t batch, bool* reused = nullptr,
                                                        Communicator* comm = nullptr);

// Where the reference log-probs come from: a live model (non-null `model`, which must outlive
// the task) or tables precomputed for the train and val pairs.
struct DpoReference {
  const Transformer* model = nullptr;
  RefLogprobs train, val;
};

// Error unless `reference` suits `policy` and the data: a live model must share the policy's
// vocabulary and have at least its context; precomputed tables must cover `train` + `val`
// examples. `what` names the command ("dpo"), `items` what it trains on ("pairs").
void check_reference(const DpoReference& reference, const Transformer& policy, size_t train,
                     size_t val, const char* what, const char* items);

}  // namespace rlaif
