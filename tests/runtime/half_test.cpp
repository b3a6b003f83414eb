// bf16 and f16 conversions: round to nearest even, against known bit patterns, and exhaustive
// round trips over every 16-bit pattern.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "runtime/half.h"

namespace rlaif {
namespace {

uint16_t bf16_bits(uint32_t f32_bits) {
  return float_to_bf16(bits_float(f32_bits)).bits;
}
uint16_t f16_bits(float f) {
  return float_to_f16(f).bits;
}

TEST(Bf16, RoundsToNearestEven) {
  EXPECT_EQ(bf16_bits(0x3f800000), 0x3f80);  // 1.0 exact
  EXPECT_EQ(bf16_bits(0x3f808000), 0x3f80);  // halfway, lower is even: down
  EXPECT_EQ(bf16_bits(0x3f818000), 0x3f82);  // halfway, upper is even: up
  EXPECT_EQ(bf16_bits(0x3f808001), 0x3f81);  // above halfway: up
  EXPECT_EQ(bf16_bits(0x3f807fff), 0x3f80);  // below halfway: down
  EXPECT_EQ(bf16_bits(0xbf818000), 0xbf82);  // the sign does not change the rule
  EXPECT_EQ(bf16_bits(0x7f7fffff), 0x7f80);  // FLT_MAX rounds to inf
  EXPECT_EQ(bf16_bits(0x7f800000), 0x7f80);  // inf stays inf
  EXPECT_EQ(bf16_bits(0x00000001), 0x0000);  // smallest subnormal rounds to zero
  uint16_t nan = bf16_bits(0x7fc00001);
  EXPECT_TRUE(std::isnan(bf16_to_float(bf16_t{nan})));
  uint16_t nan_low = bf16_bits(0x7f800001);  // a NaN whose payload sits in the dropped bits
  EXPECT_TRUE(std::isnan(bf16_to_float(bf16_t{nan_low})));
}

TEST(Bf16, EveryPatternRoundTrips) {
  for (uint32_t b = 0; b < 65536; ++b) {
    float f = bf16_to_float(bf16_t{static_cast<uint16_t>(b)});
    uint16_t back = float_to_bf16(f).bits;
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(bf16_to_float(bf16_t{back})));
    } else {
      ASSERT_EQ(back, b) << "pattern " << b;
    }
  }
}

TEST(F16, KnownValues) {
  EXPECT_EQ(f16_bits(1.0f), 0x3c00);
  EXPECT_EQ(f16_bits(-2.0f), 0xc000);
  EXPECT_EQ(f16_bits(0.1f), 0x2e66);
  EXPECT_EQ(f16_bits(65504.0f), 0x7bff);  // largest finite
  EXPECT_EQ(f16_bits(65519.0f), 0x7bff);  // below the halfway point
  EXPECT_EQ(f16_bits(65520.0f), 0x7c00);  // halfway to 2^16: even is inf
  EXPECT_EQ(f16_bits(1e9f), 0x7c00);
  EXPECT_EQ(f16_bits(-INFINITY), 0xfc00);
  EXPECT_EQ(f16_bits(std::ldexp(1.0f, -14)), 0x0400);         // smallest normal
  EXPECT_EQ(f16_bits(std::ldexp(1.0f, -24)), 0x0001);         // smallest subnormal
  EXPECT_EQ(f16_bits(std::ldexp(1.0f, -25)), 0x0000);         // halfway to it: even is zero
  EXPECT_EQ(f16_bits(std::ldexp(3.0f, -26)), 0x0001);         // 0.75 of it: up
  EXPECT_EQ(f16_bits(std::ldexp(3.0f, -25)), 0x0002);         // 1.5 of it: halfway, even is 2
  EXPECT_EQ(f16_bits(std::ldexp(5.0f, -25)), 0x0002);         // 2.5 of it: halfway, even is 2
  EXPECT_EQ(f16_bits(1.0f + std::ldexp(1.0f, -11)), 0x3c00);  // halfway above 1: even is 1
  EXPECT_EQ(f16_bits(1.0f + std::ldexp(3.0f, -11)), 0x3c02);  // halfway: even is up
  EXPECT_EQ(f16_bits(std::ldexp(2047.0f, -25)), 0x0400);  // subnormal rounding carries to normal
  EXPECT_TRUE(std::isnan(f16_to_float(float_to_f16(NAN))));
}

TEST(F16, EveryPatternRoundTrips) {
  for (uint32_t b = 0; b < 65536; ++b) {
    float f = f16_to_float(f16_t{static_cast<uint16_t>(b)});
    uint16_t back = float_to_f16(f).bits;
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(f16_to_float(f16_t{back})));
    } else {
      ASSERT_EQ(back, b) << "pattern " << b;
    }
  }
}

TEST(F16, MatchesNearestRepresentableForRandomFloats) {
  // Brute force: the result must be the closest f16 (ties to even) among its neighbours.
  uint32_t state = 12345;
  for (int i = 0; i < 20000; ++i) {
    state = state * 1664525u + 1013904223u;
    float f =
        bits_float((state & 0x807fffffu) | ((100u + (state >> 24) % 43u) << 23));  // 2^-27 .. 2^15
    uint16_t h = float_to_f16(f).bits;
    double got = f16_to_float(f16_t{h});
    if (std::isinf(got)) continue;  // [65520, 65536) rounds to inf: covered by KnownValues
    double err = std::fabs(got - f);
    for (int delta : {-1, 1}) {
      uint16_t n = static_cast<uint16_t>(h + delta);
      double other = f16_to_float(f16_t{n});
      if (std::isinf(other) || std::isnan(other)) continue;
      if ((n & 0x7fff) == 0x7fff || ((h & 0x7fff) == 0 && delta < 0)) continue;
      double other_err = std::fabs(other - f);
      ASSERT_TRUE(err < other_err || (err == other_err && (h & 1) == 0))
          << "f=" << f << " got " << got << " neighbour " << other;
    }
  }
}

}  // namespace
}  // namespace rlaif
