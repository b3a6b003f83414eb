// Philox4x32-10 against the Random123 known-answer vectors, and the stream definitions of
// runtime/philox.h (which the CUDA backend must reproduce bit for bit).
#include <gtest/gtest.h>

#include <cmath>

#include "runtime/philox.h"
#include "runtime/rng.h"

namespace rlaif {
namespace {

struct KnownAnswer {
  PhiloxWords counter;
  uint32_t key0, key1;
  PhiloxWords expected;
};

// Random123's kat_vectors, the three "philox4x32 10" lines (counter, key, output).
TEST(Philox, Random123KnownAnswers) {
  const KnownAnswer cases[] = {
      {{{0, 0, 0, 0}}, 0, 0, {{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}}},
      {{{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}},
       0xffffffff,
       0xffffffff,
       {{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}}},
      {{{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}},
       0xa4093822,
       0x299f31d0,
       {{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}}},
  };
  for (const auto& c : cases) {
    PhiloxWords got = philox4x32_10(c.counter, c.key0, c.key1);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(got.w[i], c.expected.w[i]) << "word " << i;
  }
}

TEST(Philox, UniformStreamDefinition) {
  // Element g of seed 0 is lane g%4 of block g/4: the first four come from the all-zero vector.
  const uint32_t zero_block[4] = {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8};
  for (uint64_t g = 0; g < 4; ++g) {
    float want = static_cast<float>(zero_block[g] >> 8) / 16777216.0f;
    EXPECT_EQ(philox_uniform(0, g), want);
  }
  // The seed is the key: seed 2^32·b + a uses key (a, b).
  uint64_t seed = (uint64_t{0x299f31d0} << 32) | 0xa4093822u;
  PhiloxWords w = philox4x32_10({{5, 0, 0, 0}}, 0xa4093822u, 0x299f31d0u);
  EXPECT_EQ(philox_uniform(seed, 5 * 4 + 2), static_cast<float>(w.w[2] >> 8) / 16777216.0f);
  // Blocks above 2^32 use the counter's second word.
  uint64_t block = (uint64_t{3} << 32) | 7u;
  PhiloxWords high = philox4x32_10({{7, 3, 0, 0}}, 1, 0);
  EXPECT_EQ(philox_uniform(1, block * 4 + 1), static_cast<float>(high.w[1] >> 8) / 16777216.0f);
}

TEST(Philox, NormalStreamIsBoxMullerOnLanePairs) {
  PhiloxWords w = philox_block(42, 10);
  double u1 = ((w.w[2] >> 8) + 1.0) / 16777216.0;
  double u2 = (w.w[3] >> 8) / 16777216.0;
  double r = std::sqrt(-2.0 * std::log(u1));
  EXPECT_EQ(philox_normal(42, 40 + 2), static_cast<float>(r * std::cos(2 * M_PI * u2)));
  EXPECT_EQ(philox_normal(42, 40 + 3), static_cast<float>(r * std::sin(2 * M_PI * u2)));
}

TEST(Philox, MomentsOfUniformAndNormal) {
  const int n = 200000;
  double su = 0, su2 = 0, sn = 0, sn2 = 0, sn4 = 0;
  float umin = 1, umax = 0;
  for (int i = 0; i < n; ++i) {
    float u = philox_uniform(7, static_cast<uint64_t>(i));
    float z = philox_normal(7, static_cast<uint64_t>(i));
    su += u, su2 += u * u, sn += z, sn2 += z * z, sn4 += double(z) * z * z * z;
    umin = std::min(umin, u), umax = std::max(umax, u);
  }
  EXPECT_GE(umin, 0.0f);
  EXPECT_LT(umax, 1.0f);
  // Standard errors: mean 0.5 ± 0.00065, var 1/12; normal mean 0 ± 0.0022, var 1 ± 0.0032.
  EXPECT_NEAR(su / n, 0.5, 0.003);
  EXPECT_NEAR(su2 / n - (su / n) * (su / n), 1.0 / 12.0, 0.002);
  EXPECT_NEAR(sn / n, 0.0, 0.01);
  EXPECT_NEAR(sn2 / n, 1.0, 0.015);
  EXPECT_NEAR(sn4 / n, 3.0, 0.1);  // Gaussian kurtosis
}

TEST(Generator, TakeAdvancesInWholeBlocks) {
  Generator gen(9);
  EXPECT_EQ(gen.take(5), 0u);
  EXPECT_EQ(gen.take(1), 8u);
  EXPECT_EQ(gen.take(4), 12u);
  EXPECT_EQ(gen.offset(), 16u);
  Generator resumed(9, 12);
  Generator fresh(9);
  fresh.take(12);
  EXPECT_EQ(resumed.uniform(), fresh.uniform());
}

TEST(Generator, BelowCoversTheRangeUniformly) {
  Generator gen(3);
  int counts[6] = {};
  for (int i = 0; i < 60000; ++i) ++counts[gen.below(6)];
  for (int c : counts) EXPECT_NEAR(c, 10000, 400);
}

}  // namespace
}  // namespace rlaif
