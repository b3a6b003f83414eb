// Sampling rules against exact distributions.
#include <gtest/gtest.h>

#include <cmath>

#include "model/sampling.h"
#include "runtime/error.h"

namespace rlaif {
namespace {

// Frequencies of each token over n draws from the sampling streams.
std::vector<double> frequencies(const std::vector<float>& logits, SamplingOptions opts, int n) {
  std::vector<double> f(logits.size(), 0.0);
  for (int i = 0; i < n; ++i) {
    float u = sampling_uniform(opts.seed, 0, static_cast<uint64_t>(i));
    f[static_cast<size_t>(
        sample_token(logits.data(), static_cast<int64_t>(logits.size()), opts, u))] += 1.0 / n;
  }
  return f;
}

const std::vector<float> kLogits = {0.0f, std::log(2.0f), std::log(3.0f)};  // p = 1/6, 2/6, 3/6

TEST(Sampling, GreedyTakesTheFirstMaximum) {
  SamplingOptions greedy;
  greedy.temperature = 0;
  std::vector<float> tie = {1.0f, 3.0f, 3.0f, -2.0f};
  EXPECT_EQ(sample_token(tie.data(), 4, greedy, 0.99f), 1);
}

TEST(Sampling, TemperatureOneFollowsTheSoftmax) {
  SamplingOptions opts;
  std::vector<double> f = frequencies(kLogits, opts, 30000);
  EXPECT_NEAR(f[0], 1.0 / 6, 0.01);
  EXPECT_NEAR(f[1], 2.0 / 6, 0.01);
  EXPECT_NEAR(f[2], 3.0 / 6, 0.01);
  opts.temperature = 0.5f;  // p ∝ (1, 4, 9)
  f = frequencies(kLogits, opts, 30000);
  EXPECT_NEAR(f[2], 9.0 / 14, 0.01);
}

TEST(Sampling, TopKAndTopPRenormalise) {
  SamplingOptions opts;
  opts.top_k = 2;  // tokens 2 and 1: p = 3/5, 2/5
  std::vector<double> f = frequencies(kLogits, opts, 30000);
  EXPECT_EQ(f[0], 0.0);
  EXPECT_NEAR(f[1], 0.4, 0.01);
  opts.top_k = 0;
  opts.top_p = 0.5f;  // the most likely token alone reaches 0.5
  f = frequencies(kLogits, opts, 2000);
  EXPECT_NEAR(f[2], 1.0, 1e-9);
  opts.top_p = 0.6f;  // needs the top two
  f = frequencies(kLogits, opts, 30000);
  EXPECT_EQ(f[0], 0.0);
  EXPECT_NEAR(f[2], 0.6, 0.01);
}

TEST(Sampling, RejectsBadInput) {
  SamplingOptions opts;
  std::vector<float> bad = {0.0f, NAN};
  EXPECT_THROW(sample_token(bad.data(), 2, opts, 0.5f), Error);
  opts.top_p = 0.0f;
  EXPECT_THROW(sample_token(kLogits.data(), 3, opts, 0.5f), Error);
}

TEST(Sampling, StreamsAreIndependentOfEachOther) {
  EXPECT_NE(sampling_uniform(1, 0, 5), sampling_uniform(1, 1, 5));
  EXPECT_EQ(sampling_uniform(1, 3, 5), sampling_uniform(1, 3, 5));
}

}  // namespace
}  // namespace rlaif
