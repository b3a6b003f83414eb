// Data parallelism for PPO, RLOO and GRPO (algorithms/ppo.h) over R ranks, e.g. under
// `mpirun -np R rlaif ppo`. Every rank holds the whole policy, reference and value model; the goal
// is the update one rank would make from the whole rollout, with the work split R ways.
//
// A step on R ranks:
//   1. Rollout, sharded by sequence: of the S = --batch × K sequences of step s, rank r generates
//      [r·S/R, (r+1)·S/R) (rank_sequences), each from its own sampling stream s·S + i as on one
//      rank, and evaluates them without gradients (log π_old, entropy, log π_ref, values). A
//      reward model scores each rank's own sequences too.
//   2. gather_rollout: every rank receives every other rank's sequences and their numbers (a few
//      bytes per token), so every rank holds the whole rollout, as one rank would have made it.
//      An API critic is then asked by rank 0 alone, for every sequence, and its scores are
//      broadcast: one request cache, one --critic-max-rpm budget and one usage count for the run,
//      whatever R, and a resumed run re-asks nothing whatever its rank count. When rank 0's critic
//      stops at a spending limit, the broadcast carries that instead, and every rank stops at the
//      same step with the same checkpoint.
//   3. Advantages (GAE and its whitening, RLOO's leave-one-out, GRPO's group statistics), the KL
//      controller and the rollout metrics are computed by every rank over the whole rollout: the
//      same numbers on every rank, equal to one rank's, with no statistic to reduce.
//   4. Updates: the mini-batch shuffle is the one-rank shuffle of the whole rollout, and rank r
//      trains on positions [r·m/R, (r+1)·m/R) of each micro-batch of m sequences (m divisible by
//      R: check_ppo_ranks). PPO's losses are token means over the micro-batch, and the shares hold
//      different numbers of response tokens, so a rank scales its share's token mean by
//      w = R·n_r / N (n_r its tokens, N the micro-batch's; micro_batch_share): the mean over ranks
//      of w·(Σ_own / n_r) is Σ_all / N, the micro-batch's token mean, and so is the mean of the
//      gradients that DataParallelOptimizer averages. Diagnostics (clip fraction, approx KL, ...)
//      are weighted alike and averaged over ranks at the end of the update.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "algorithms/ppo_rollout.h"

namespace rlaif {

class Communicator;  // runtime/communicator.h

// Error naming --batch and the rank count unless the sequences of a step and of each micro-batch
// (S / (--mini-batches · --grad-accum)) split evenly over `ranks`.
void check_ppo_ranks(const PpoOptions& options, int64_t grad_accum, int ranks);

// A rank's sequences of a step: [first, first + count).
struct SequenceRange {
  int64_t first = 0;
  int64_t count = 0;
};
// Rank `rank`'s equal share of `sequences` (Error when they do not split evenly).
SequenceRange rank_sequences(int64_t sequences, int rank, int ranks);

// What gather_rollout moves, as bytes: for samples [range) the completion ids, EOS flag, score,
// entropy and per-token log π_old, log π_ref and values. unpack_samples fills the same fields of
// samples [range) from such bytes (the completion text decoded with `tokenizer` when given) and
// returns the bytes read; Error when they run out or do not describe `range.count` samples.
std::vector<uint8_t> pack_samples(const std::vector<Sample>& samples, const SequenceRange& range);
size_t unpack_samples(const uint8_t* data, size_t size, std::vector<Sample>& samples,
                      const SequenceRange& range, const Tokenizer* tokenizer);

// Collective. Each rank has filled the samples of rank_sequences(S, rank, R) of `rollout` (S its
// sample count); afterwards every rank's rollout holds every rank's samples.
void gather_rollout(Rollout& rollout, Communicator& comm, const Tokenizer& tokenizer);
// Collective. Every rank's sample scores become rank 0's, exactly (as bit patterns). When rank 0
// could not score (`lead_stop` says why, e.g. the critic's spending limit), every rank receives
// that message instead of scores. Returns the message: empty when the scores came.
std::string broadcast_scores(Rollout& rollout, Communicator& comm,
                             const std::string& lead_stop = {});

// A rank's share of one micro-batch (the rollout indices `micro`, in mini-batch order).
struct MicroBatchShare {
  std::vector<int64_t> samples;  // positions [r·m/R, (r+1)·m/R) of `micro`
  // R·n_r / N: multiplies the share's token-mean loss so that the mean over ranks is the
  // micro-batch's token mean (1 on one rank).
  double weight = 1.0;
};
MicroBatchShare micro_batch_share(const std::vector<int64_t>& micro,
                                  const std::vector<Sample>& samples, int rank, int ranks);

}  // namespace rlaif
