// PPO's data parallelism of algorithms/ppo_data_parallel.h, in one process: how ranks share each
// micro-batch, the rollout bytes that gather_rollout moves (packed and unpacked exactly), the
// advantages and statistics of a gathered rollout, and the micro-batch weights of each rank's
// share. The collectives themselves run over real ranks in tests/mpi/alignment_mpi_test.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "algorithms/ppo_data_parallel.h"
#include "runtime/rng.h"
#include "tests/error_of.h"

namespace rlaif {
namespace {

using test::error_of;

TEST(PpoDataParallel, RanksMustShareEveryMicroBatchEvenly) {
  PpoOptions o;
  o.batch_prompts = 6;
  o.samples_per_prompt = 2;
  o.mini_batches = 2;
  check_ppo_ranks(o, 3, 2);  // 12 / (2 × 3) = 2 sequences per micro-batch
  EXPECT_EQ(error_of([&] { check_ppo_ranks(o, 3, 4); }),
            "ppo: --batch 6 × 2 samples per prompt / (2 mini-batches × --grad-accum 3) = 2 "
            "sequences per micro-batch, which is not divisible by the 4 data-parallel ranks: each "
            "rank trains on an equal share of every micro-batch, so use a --batch that makes it a "
            "multiple of 4");
  EXPECT_EQ(rank_sequences(12, 0, 3).first, 0);
  EXPECT_EQ(rank_sequences(12, 2, 3).first, 8);
  EXPECT_EQ(rank_sequences(12, 2, 3).count, 4);
  EXPECT_NE(error_of([] { rank_sequences(12, 0, 5); }).find("do not split evenly over 5"),
            std::string::npos);
}

// Sample i of a synthetic rollout: lengths 1..5, every field distinct.
Sample synthetic_sample(int64_t i, bool values) {
  Generator gen(17, static_cast<uint64_t>(i) << 20);
  Sample s;
  s.prompt_index = i / 2;
  s.tokens.prompt = {1, static_cast<int32_t>(10 + i)};
  const auto L = static_cast<size_t>(1 + i % 5);
  for (size_t t = 0; t < L; ++t) {
    s.tokens.completion.push_back(static_cast<int32_t>(gen.below(500)));
    s.logprobs.push_back(-static_cast<float>(gen.uniform()) * 3);
    s.ref_logprobs.push_back(-static_cast<float>(gen.uniform()) * 3);
    if (values) s.values.push_back(static_cast<float>(gen.uniform()) - 0.5f);
  }
  s.eos = i % 3 == 0;
  s.score = gen.uniform() * 4 - 1 + 1e-13 * static_cast<double>(i);  // needs every bit of a double
  s.entropy = gen.uniform() * 10;
  return s;
}

TEST(PpoDataParallel, PackedSamplesUnpackExactly) {
  for (bool values : {false, true}) {
    std::vector<Sample> all;
    for (int64_t i = 0; i < 6; ++i) all.push_back(synthetic_sample(i, values));
    // As gather_rollout receives them: each rank's range packed alone, unpacked into a rollout
    // that holds only prompts.
    std::vector<Sample> received(all.size());
    for (size_t i = 0; i < all.size(); ++i) {
      received[i].prompt_index = all[i].prompt_index;
      received[i].tokens.prompt = all[i].tokens.prompt;
    }
    for (int r = 0; r < 3; ++r) {
      const SequenceRange range = rank_sequences(6, r, 3);
      const std::vector<uint8_t> bytes = pack_samples(all, range);
      EXPECT_EQ(unpack_samples(bytes.data(), bytes.size(), received, range, nullptr), bytes.size());
      // Cut short, the bytes are refused rather than read past.
      EXPECT_NE(error_of([&] {
                  unpack_samples(bytes.data(), bytes.size() - 1, received, range, nullptr);
                }).find("mid-sample"),
                std::string::npos);
    }
    for (size_t i = 0; i < all.size(); ++i) {
      EXPECT_EQ(received[i].tokens.completion, all[i].tokens.completion) << i;
      EXPECT_EQ(received[i].logprobs, all[i].logprobs) << i;
      EXPECT_EQ(received[i].ref_logprobs, all[i].ref_logprobs) << i;
      EXPECT_EQ(received[i].values, all[i].values) << i;
      EXPECT_EQ(received[i].eos, all[i].eos) << i;
      EXPECT_EQ(received[i].score, all[i].score) << i;  // bit for bit
      EXPECT_EQ(received[i].entropy, all[i].entropy) << i;
    }
    // Bytes of another range do not pass for this one.
    const std::vector<uint8_t> two = pack_samples(all, {0, 2});
    EXPECT_NE(error_of([&] { unpack_samples(two.data(), 10, received, {0, 2}, nullptr); }), "");
  }
}

// The whole rollout's advantages and statistics come out the same from the gathered rollout as
// from the rollout one rank made: nothing else is needed for the global whitening.
TEST(PpoDataParallel, GatheredRolloutGivesTheOneRankAdvantagesAndStatistics) {
  PpoOptions o;
  o.advantage = AdvantageKind::gae;
  o.whiten_rewards = true;
  Rollout one;
  for (int64_t i = 0; i < 6; ++i) one.samples.push_back(synthetic_sample(i, true));
  Rollout gathered;
  gathered.samples.resize(6);
  for (int r = 0; r < 2; ++r) {
    const SequenceRange range = rank_sequences(6, r, 2);
    const std::vector<uint8_t> bytes = pack_samples(one.samples, range);
    unpack_samples(bytes.data(), bytes.size(), gathered.samples, range, nullptr);
  }
  assign_advantages(one, o, 0.1);
  assign_advantages(gathered, o, 0.1);
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(gathered.samples[i].advantages, one.samples[i].advantages) << i;
    EXPECT_EQ(gathered.samples[i].returns, one.samples[i].returns) << i;
  }
  const auto a = rollout_metrics(one, o, 0.1), b = rollout_metrics(gathered, o, 0.1);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i], b[i]);
  // Whitened over the whole batch: mean 0 and spread 1 over every token, not per shard.
  double sum = 0, n = 0;
  for (const Sample& s : gathered.samples) {
    for (float v : s.advantages) sum += v, n += 1;
  }
  EXPECT_NEAR(sum / n, 0.0, 1e-6);
}

// The mean over ranks of w_r · (the share's token mean) is the micro-batch's token mean, for
// shares holding different numbers of tokens.
TEST(PpoDataParallel, WeightedShareMeansAverageToTheMicroBatchTokenMean) {
  std::vector<Sample> samples;
  for (int64_t i = 0; i < 12; ++i) samples.push_back(synthetic_sample(i, false));
  const std::vector<int64_t> micro = {11, 3, 7, 0, 5, 8};  // lengths 2, 4, 3, 1, 1, 4
  auto token_mean = [&](const std::vector<int64_t>& ids) {
    double sum = 0, n = 0;
    for (int64_t i : ids) {
      for (float v : samples[static_cast<size_t>(i)].logprobs) sum += v, n += 1;
    }
    return sum / n;
  };
  const double whole = token_mean(micro);
  MicroBatchShare alone = micro_batch_share(micro, samples, 0, 1);
  EXPECT_EQ(alone.samples, micro);
  EXPECT_EQ(alone.weight, 1.0);
  for (int ranks : {2, 3, 6}) {
    double mean = 0;
    std::vector<int64_t> seen;
    for (int r = 0; r < ranks; ++r) {
      MicroBatchShare share = micro_batch_share(micro, samples, r, ranks);
      EXPECT_EQ(share.samples.size(), micro.size() / static_cast<size_t>(ranks));
      seen.insert(seen.end(), share.samples.begin(), share.samples.end());
      mean += share.weight * token_mean(share.samples) / ranks;
    }
    EXPECT_EQ(seen, micro) << ranks;  // the shares partition the micro-batch, in order
    EXPECT_NEAR(mean, whole, 1e-12) << ranks;
  }
  // Rank 0 of 2 holds 9 of the 15 tokens: w = 2·9/15.
  EXPECT_DOUBLE_EQ(micro_batch_share(micro, samples, 0, 2).weight, 2.0 * 9 / 15);
  EXPECT_NE(error_of([&] { micro_batch_share(micro, samples, 0, 4); }).find("4 ranks"),
            std::string::npos);
}

}  // namespace
}  // namespace rlaif
