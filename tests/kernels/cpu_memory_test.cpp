// CPU memory primitives (fill, copy, cast, random fills, concat), checked against the
// conversions of runtime/half.h, the Philox streams of runtime/philox.h and plain loops.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernels/backend.h"
#include "runtime/half.h"
#include "runtime/philox.h"
#include "tests/kernels/conformance.h"
#include "tests/support/backends.h"

namespace rlaif {
namespace {

using testing::random_tensor;

using test::cpu;

const DType kAllDtypes[] = {DType::f32, DType::bf16, DType::f16, DType::i32, DType::i64, DType::u8};

TEST(CpuMemory, FillWritesEveryDtype) {
  Tensor f = Tensor::empty({7, 13}, DType::f32);
  cpu().fill(f, 0.1);
  for (float v : f.to_vector<float>()) ASSERT_EQ(v, 0.1f);

  Tensor b = Tensor::empty({5}, DType::bf16);
  cpu().fill(b, 0.1);
  for (bf16_t v : b.to_vector<bf16_t>()) ASSERT_EQ(v.bits, float_to_bf16(0.1f).bits);

  Tensor h = Tensor::empty({3}, DType::f16);
  cpu().fill(h, -2.5);
  for (f16_t v : h.to_vector<f16_t>()) ASSERT_EQ(f16_to_float(v), -2.5f);

  Tensor i = Tensor::empty({4}, DType::i32);
  cpu().fill(i, 42);
  for (int32_t v : i.to_vector<int32_t>()) ASSERT_EQ(v, 42);

  // i64 is filled from the double itself, not through f32: 2^40 + 1 stays exact.
  Tensor l = Tensor::empty({2}, DType::i64);
  cpu().fill(l, 1099511627777.0);
  for (int64_t v : l.to_vector<int64_t>()) ASSERT_EQ(v, 1099511627777LL);

  Tensor u = Tensor::empty({1}, DType::u8);
  cpu().fill(u, 200);
  EXPECT_EQ(u.to_vector<uint8_t>()[0], 200);

  Tensor empty = Tensor::empty({0, 3}, DType::f32);
  EXPECT_NO_THROW(cpu().fill(empty, 1.0));
}

TEST(CpuMemory, FillToIntegersTruncatesTowardZeroAndSaturates) {
  Tensor i = Tensor::empty({1}, DType::i32);
  cpu().fill(i, -2.7);
  EXPECT_EQ(i.to_vector<int32_t>()[0], -2);
  cpu().fill(i, 2.7);
  EXPECT_EQ(i.to_vector<int32_t>()[0], 2);
  cpu().fill(i, 1e12);
  EXPECT_EQ(i.to_vector<int32_t>()[0], std::numeric_limits<int32_t>::max());
  cpu().fill(i, std::nan(""));
  EXPECT_EQ(i.to_vector<int32_t>()[0], 0);

  Tensor u = Tensor::empty({1}, DType::u8);
  cpu().fill(u, -3.0);
  EXPECT_EQ(u.to_vector<uint8_t>()[0], 0);
  cpu().fill(u, 300.0);
  EXPECT_EQ(u.to_vector<uint8_t>()[0], 255);
}

TEST(CpuMemory, CopyMovesBytesBetweenShapesOfOneNumel) {
  for (DType dtype : kAllDtypes) {
    Tensor src = Tensor::empty({7, 13}, dtype);
    // Distinct bytes, so any misplaced element shows.
    auto* s = static_cast<uint8_t*>(src.raw_data());
    for (size_t k = 0; k < src.nbytes(); ++k) s[k] = static_cast<uint8_t>(k * 7 + 1);
    Tensor dst = Tensor::zeros({91}, dtype);
    cpu().copy(src, dst);
    auto* d = static_cast<uint8_t*>(dst.raw_data());
    for (size_t k = 0; k < src.nbytes(); ++k) ASSERT_EQ(d[k], s[k]) << dtype_name(dtype);
  }
  Tensor a = Tensor::empty({0}, DType::f32), b = Tensor::empty({0, 4}, DType::f32);
  EXPECT_NO_THROW(cpu().copy(a, b));
}

TEST(CpuMemory, CopyRejectsMismatchedDtypeOrNumel) {
  Tensor src = random_tensor({7, 13}, 1);
  EXPECT_THROW(cpu().copy(src, Tensor::empty({7, 13}, DType::bf16)), Error);
  EXPECT_THROW(cpu().copy(src, Tensor::empty({7, 12}, DType::f32)), Error);
  EXPECT_THROW(cpu().copy(src, Tensor()), Error);
}

TEST(CpuMemory, CastFloatToHalfRoundsToNearestEven) {
  // Random values plus ties, subnormals, overflow, infinities and NaN.
  std::vector<float> values = random_tensor({7, 13}, 2, -100.0f, 100.0f).to_vector<float>();
  const float inf = std::numeric_limits<float>::infinity();
  for (float v : {1.0f + 1.0f / 256.0f, 1.0f + 3.0f / 256.0f, 1.0f + 1.0f / 2048.0f, 1e-6f, 1e-8f,
                  70000.0f, 65519.0f, inf, -inf, std::nanf(""), 0.0f, -0.0f}) {
    values.push_back(v);
  }
  const int64_t n = static_cast<int64_t>(values.size());
  Tensor src = Tensor::from_vector(values, {n});
  Tensor b = Tensor::empty({n}, DType::bf16), h = Tensor::empty({n}, DType::f16);
  cpu().cast(src, b);
  cpu().cast(src, h);
  std::vector<bf16_t> bv = b.to_vector<bf16_t>();
  std::vector<f16_t> hv = h.to_vector<f16_t>();
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_EQ(bv[i].bits, float_to_bf16(values[i]).bits) << values[i];
    ASSERT_EQ(hv[i].bits, float_to_f16(values[i]).bits) << values[i];
  }
  // And back: bf16 and f16 values are exact in f32.
  Tensor back = Tensor::empty({n}, DType::f32);
  cpu().cast(h, back);
  std::vector<float> bk = back.to_vector<float>();
  for (int64_t i = 0; i < n; ++i) {
    float want = f16_to_float(hv[i]);
    ASSERT_TRUE(bk[i] == want || (std::isnan(bk[i]) && std::isnan(want))) << values[i];
  }
}

TEST(CpuMemory, CastFloatToIntTruncatesTowardZero) {
  Tensor src =
      Tensor::from_vector<float>({-2.7f, -0.5f, 0.0f, 0.9f, 2.7f, 1e10f, -1e10f, 255.9f}, {8});
  Tensor i32 = Tensor::empty({8}, DType::i32), i64 = Tensor::empty({8}, DType::i64);
  cpu().cast(src, i32);
  cpu().cast(src, i64);
  const int32_t big = std::numeric_limits<int32_t>::max();
  const int32_t small = std::numeric_limits<int32_t>::min();
  EXPECT_EQ(i32.to_vector<int32_t>(), (std::vector<int32_t>{-2, 0, 0, 0, 2, big, small, 255}));
  EXPECT_EQ(i64.to_vector<int64_t>(),
            (std::vector<int64_t>{-2, 0, 0, 0, 2, 10000000000LL, -10000000000LL, 255}));
  // bf16 → u8 goes through the same truncation (and saturates below 0).
  Tensor b = Tensor::empty({8}, DType::bf16);
  cpu().cast(src, b);
  Tensor u = Tensor::empty({8}, DType::u8);
  cpu().cast(b, u);
  EXPECT_EQ(u.to_vector<uint8_t>(), (std::vector<uint8_t>{0, 0, 0, 0, 2, 255, 0, 255}));
}

TEST(CpuMemory, CastIntToFloatRoundsToNearest) {
  // 2^24 + 1 is not representable in f32: nearest even gives 2^24; 2^24 + 3 gives 2^24 + 4.
  Tensor src = Tensor::from_vector<int32_t>({16777217, 16777219, -7, 0}, {4});
  Tensor f = Tensor::empty({4}, DType::f32);
  cpu().cast(src, f);
  EXPECT_EQ(f.to_vector<float>(), (std::vector<float>{16777216.0f, 16777220.0f, -7.0f, 0.0f}));
  Tensor big = Tensor::from_vector<int64_t>({(1LL << 40) + 1}, {1});
  Tensor fb = Tensor::empty({1}, DType::f32);
  cpu().cast(big, fb);
  EXPECT_EQ(fb.to_vector<float>()[0], static_cast<float>(1LL << 40));
}

TEST(CpuMemory, CastBetweenEveryPairKeepsSmallIntegers) {
  // 0..100 are exact in every dtype, so every conversion must preserve them.
  std::vector<float> values(101);
  for (int k = 0; k <= 100; ++k) values[k] = static_cast<float>(k);
  Tensor base = Tensor::from_vector(values, {101});
  for (DType from : kAllDtypes) {
    for (DType to : kAllDtypes) {
      Tensor a = Tensor::empty({101}, from), b = Tensor::empty({101}, to);
      Tensor back = Tensor::empty({101}, DType::f32);
      cpu().cast(base, a);
      cpu().cast(a, b);
      cpu().cast(b, back);
      EXPECT_EQ(back.to_vector<float>(), values) << dtype_name(from) << " -> " << dtype_name(to);
    }
  }
}

TEST(CpuMemory, CastBetweenIntegersWrapsAsCpp) {
  Tensor src = Tensor::from_vector<int64_t>({(1LL << 32) + 5, -1, 300}, {3});
  Tensor i32 = Tensor::empty({3}, DType::i32), u8 = Tensor::empty({3}, DType::u8);
  cpu().cast(src, i32);
  cpu().cast(src, u8);
  EXPECT_EQ(i32.to_vector<int32_t>(), (std::vector<int32_t>{5, -1, 300}));
  EXPECT_EQ(u8.to_vector<uint8_t>(), (std::vector<uint8_t>{5, 255, 44}));
}

TEST(CpuMemory, CastRejectsNumelMismatch) {
  EXPECT_THROW(cpu().cast(random_tensor({7}, 1), Tensor::empty({8}, DType::bf16)), Error);
}

TEST(CpuMemory, RandomUniformFollowsThePhiloxStream) {
  const uint64_t seed = 0x123456789abcdefULL, offset = 5;
  Tensor out = Tensor::empty({7, 13}, DType::f32);
  cpu().random_uniform(out, seed, offset, -2.0f, 3.0f);
  std::vector<float> got = out.to_vector<float>();
  for (size_t i = 0; i < got.size(); ++i) {
    float want = -2.0f + 5.0f * philox_uniform(seed, offset + i);
    ASSERT_EQ(got[i], want) << i;
    ASSERT_GE(got[i], -2.0f);
    ASSERT_LT(got[i], 3.0f);
  }
}

TEST(CpuMemory, RandomNormalFollowsThePhiloxStreamAndItsMoments) {
  const uint64_t seed = 7;
  const int64_t n = 1 << 16;
  Tensor out = Tensor::empty({n}, DType::f32);
  cpu().random_normal(out, seed, 3, 1.5f, 2.0f);
  std::vector<float> got = out.to_vector<float>();
  double sum = 0.0, sq = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_EQ(got[i], 1.5f + 2.0f * philox_normal(seed, 3 + static_cast<uint64_t>(i))) << i;
    sum += got[i];
    sq += (got[i] - 1.5) * (got[i] - 1.5);
  }
  EXPECT_NEAR(sum / n, 1.5, 0.05);
  EXPECT_NEAR(std::sqrt(sq / n), 2.0, 0.05);
}

TEST(CpuMemory, RandomFillsSplitByOffset) {
  // Filling 10 numbers at once equals filling 3 then 7 with the offset moved on: the property
  // that lets a resumed run continue a stream.
  Tensor whole = Tensor::empty({10}, DType::f32);
  Tensor head = Tensor::empty({3}, DType::f32), tail = Tensor::empty({7}, DType::f32);
  cpu().random_normal(whole, 99, 0, 0.0f, 1.0f);
  cpu().random_normal(head, 99, 0, 0.0f, 1.0f);
  cpu().random_normal(tail, 99, 3, 0.0f, 1.0f);
  std::vector<float> w = whole.to_vector<float>(), h = head.to_vector<float>(),
                     t = tail.to_vector<float>();
  h.insert(h.end(), t.begin(), t.end());
  EXPECT_EQ(w, h);
}

TEST(CpuMemory, RandomFillsRejectNonF32) {
  EXPECT_THROW(cpu().random_uniform(Tensor::empty({4}, DType::bf16), 1, 0, 0.0f, 1.0f), Error);
  EXPECT_THROW(cpu().random_normal(Tensor::empty({4}, DType::i32), 1, 0, 0.0f, 1.0f), Error);
}

TEST(CpuMemory, ConcatStacksAlongTheLeadingDimension) {
  Tensor a = random_tensor({2, 3, 5}, 1), b = random_tensor({0, 3, 5}, 2),
         c = random_tensor({7, 3, 5}, 3);
  Tensor out = Tensor::empty({9, 3, 5}, DType::f32);
  cpu().concat({a, b, c}, out);
  std::vector<float> want = a.to_vector<float>(), cv = c.to_vector<float>();
  want.insert(want.end(), cv.begin(), cv.end());
  EXPECT_EQ(out.to_vector<float>(), want);

  // Any dtype: i32 ids.
  Tensor x = Tensor::from_vector<int32_t>({1, 2}, {2}), y = Tensor::from_vector<int32_t>({3}, {1});
  Tensor ids = Tensor::empty({3}, DType::i32);
  cpu().concat({x, y}, ids);
  EXPECT_EQ(ids.to_vector<int32_t>(), (std::vector<int32_t>{1, 2, 3}));

  Tensor none = Tensor::empty({0, 4}, DType::f32);
  EXPECT_NO_THROW(cpu().concat({}, none));
}

TEST(CpuMemory, ConcatRejectsMismatchedInputs) {
  Tensor a = random_tensor({2, 3}, 1), b = random_tensor({1, 3}, 2);
  EXPECT_THROW(cpu().concat({a, b}, Tensor::empty({4, 3}, DType::f32)), Error);  // rows
  EXPECT_THROW(cpu().concat({a, random_tensor({1, 4}, 3)}, Tensor::empty({3, 3}, DType::f32)),
               Error);                                                            // row shape
  EXPECT_THROW(cpu().concat({a, b}, Tensor::empty({3, 3}, DType::bf16)), Error);  // dtype
  EXPECT_THROW(cpu().concat({a, random_tensor({3}, 4)}, Tensor::empty({5, 3}, DType::f32)),
               Error);                                                   // rank
  EXPECT_THROW(cpu().concat({}, Tensor::empty({}, DType::f32)), Error);  // 0-d out
}

}  // namespace
}  // namespace rlaif
