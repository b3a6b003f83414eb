// Conformance of sample_tokens (greedy, temperature, top-k, top-p sampling of one token per row).
//
// The expected tokens come from a plain host implementation written here (sort every candidate,
// sum in double in that order), independent of the CPU backend's code, so the "cpu" run checks
// the reference too. Backends may sum probabilities in another order (the CUDA kernel selects
// without sorting), so a token may legitimately differ where the draw u·total, or the top-p
// target top_p·total, lies within rounding of a cumulative sum: the comparison skips rows within
// kNear (relative to the total) of such a boundary, counts them, and requires almost every row to
// be checked. Ties, -inf logits, top_k = 1, the sampled distribution and the errors are tested
// separately with exact expectations.
#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <numeric>
#include <string>
#include <vector>

#include "runtime/half.h"
#include "runtime/philox.h"
#include "tests/kernels/conformance.h"

namespace rlaif::testing {
namespace {

constexpr double kNear = 1e-5;

// Candidate ids of a row in sampling order: descending logit, ascending id on ties.
std::vector<int32_t> candidate_order(const float* x, int64_t vocab) {
  std::vector<int32_t> order(static_cast<size_t>(vocab));
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](int32_t a, int32_t b) { return x[a] > x[b] || (x[a] == x[b] && a < b); });
  return order;
}

// The kept candidates of a row (temperature > 0) in order, their cumulative unnormalised
// probabilities, and whether top_p·total came within kNear of a cumulative sum.
struct Kept {
  std::vector<int32_t> ids;
  std::vector<double> cumulative;
  bool top_p_near = false;
  double total() const { return cumulative.back(); }
};

Kept kept_candidates(const float* x, int64_t vocab, float temperature, int64_t top_k, float top_p) {
  std::vector<int32_t> order = candidate_order(x, vocab);
  size_t keep = order.size();
  if (top_k > 0) keep = std::min(keep, static_cast<size_t>(top_k));
  Kept k;
  const double top = x[order[0]];
  double sum = 0.0;
  for (size_t i = 0; i < keep; ++i) {
    sum += std::exp((static_cast<double>(x[order[i]]) - top) / static_cast<double>(temperature));
    k.ids.push_back(order[i]);
    k.cumulative.push_back(sum);
  }
  if (top_p < 1.0f) {
    const double need = static_cast<double>(top_p) * sum;
    size_t cut = keep;
    for (size_t i = 0; i < keep; ++i) {
      k.top_p_near = k.top_p_near || std::fabs(k.cumulative[i] - need) <= kNear * sum;
      if (cut == keep && k.cumulative[i] >= need) cut = i + 1;
    }
    k.ids.resize(cut);
    k.cumulative.resize(cut);
  }
  return k;
}

struct Pick {
  int32_t token;
  bool near_boundary;  // u·total or top_p·total within kNear·total of a cumulative sum
};

Pick reference_pick(const float* x, int64_t vocab, float temperature, int64_t top_k, float top_p,
                    float u) {
  if (temperature <= 0.0f) {
    return {static_cast<int32_t>(std::max_element(x, x + vocab) - x), false};
  }
  const Kept k = kept_candidates(x, vocab, temperature, top_k, top_p);
  const double target = static_cast<double>(u) * k.total();
  Pick pick{-1, k.top_p_near};
  for (size_t i = 0; i < k.ids.size(); ++i) {
    pick.near_boundary =
        pick.near_boundary || std::fabs(k.cumulative[i] - target) <= kNear * k.total();
    if (pick.token < 0 && k.cumulative[i] > target) pick.token = k.ids[i];
  }
  return pick;
}

// n uniform draws in [0, 1) (f32 whatever the backend's float dtype).
Tensor uniforms_for(int64_t n, uint64_t seed) {
  Tensor u = Tensor::empty({n}, DType::f32);
  for (int64_t i = 0; i < n; ++i)
    u.data<float>()[i] = philox_uniform(seed, static_cast<uint64_t>(i));
  return u;
}

Tensor host_floats(const std::vector<float>& values, const Shape& shape) {
  return Tensor::from_vector(values, shape);
}

// Runs `call`, which must throw rlaif::Error with every one of `parts` in its message.
template <typename Call>
void expect_error(Call&& call, std::initializer_list<const char*> parts, const std::string& what) {
  try {
    call();
  } catch (const Error& e) {
    const std::string message = e.what();
    for (const char* part : parts) {
      EXPECT_NE(message.find(part), std::string::npos) << what << ": \"" << message << "\"";
    }
    return;
  }
  ADD_FAILURE() << what << ": no Error thrown";
}

}  // namespace

class SamplingConformance : public Conformance {
 protected:
  // Samples host logits [N, V] (already in the backend's float dtype's values) with host uniforms
  // on the backend under test; the ids come back to the host.
  std::vector<int32_t> sample(const Tensor& logits, const Tensor& uniforms, float temperature,
                              int64_t top_k, float top_p) {
    Tensor out = empty_on_backend({logits.size(0)}, DType::i32);
    backend().sample_tokens(on_backend(logits), on_backend(uniforms, DType::f32), temperature,
                            top_k, top_p, out);
    return out.to(Device::cpu()).to_vector<int32_t>();
  }

  // Logits shaped like a language model's: a long flat tail below a few high ones
  // (x = -8 + 16·r^6 for r uniform in [0, 1)), in the values of the backend's float dtype. With
  // flat rows of 50257 logits every candidate would hold ~1e-4 of the mass and a cumulative sum
  // would lie within 1e-5 of the draw for a large share of the rows.
  Tensor peaked_logits(const Shape& shape, uint64_t seed) {
    Tensor x = Tensor::empty(shape, DType::f32);
    float* p = x.data<float>();
    for (int64_t i = 0; i < x.numel(); ++i) {
      const float r = philox_uniform(seed, static_cast<uint64_t>(i));
      p[i] = -8.0f + 16.0f * std::pow(r, 6.0f);
      if (float_dtype() == DType::bf16) p[i] = bf16_to_float(float_to_bf16(p[i]));
    }
    return x;
  }
};

TEST_P(SamplingConformance, MatchesReference) {
  struct Setting {
    float temperature;
    int64_t top_k;
    float top_p;
  };
  std::vector<Setting> settings = {{0.0f, 0, 1.0f}};
  for (float t : {0.7f, 1.3f}) {
    for (int64_t k : {0, 1, 40}) {
      for (float p : {1.0f, 0.9f, 0.3f}) settings.push_back({t, k, p});
    }
  }
  int64_t rows = 0, skipped = 0;
  uint64_t seed = 100;
  for (const Shape& shape : {Shape{1, 7}, Shape{7, 333}, Shape{1, 50257}, Shape{7, 50257}}) {
    const int64_t n = shape[0], vocab = shape[1];
    for (const Setting& s : settings) {
      ++seed;
      Tensor logits = peaked_logits(shape, seed);
      Tensor u = uniforms_for(n, seed + 1000);
      const std::vector<int32_t> got = sample(logits, u, s.temperature, s.top_k, s.top_p);
      for (int64_t r = 0; r < n; ++r) {
        const Pick want = reference_pick(logits.data<float>() + r * vocab, vocab, s.temperature,
                                         s.top_k, s.top_p, u.data<float>()[r]);
        ++rows;
        if (want.near_boundary) {
          ++skipped;
          continue;
        }
        EXPECT_EQ(got[static_cast<size_t>(r)], want.token)
            << GetParam() << ": logits " << shape_str(shape) << " row " << r << ", temperature "
            << s.temperature << ", top_k " << s.top_k << ", top_p " << s.top_p << ", u "
            << u.data<float>()[r];
      }
    }
  }
  // The skips are decided on the host, so they are the same on every backend with one float
  // dtype: 3 of 304 rows in f32, 5 in bf16 (ties). Nearly every row must have been compared.
  EXPECT_LE(skipped, rows / 20) << skipped << " of " << rows << " rows were near a boundary";
}

TEST_P(SamplingConformance, TiesGoToTheLowestIdFirst) {
  // All-equal logits: every kept candidate has the same probability and the order is by id, so
  // the draw (j + 0.5)/kept picks id j exactly (sums of 1.0 are exact in any order).
  const int64_t vocab = 5000;
  Tensor flat = host_floats(std::vector<float>(static_cast<size_t>(vocab), 0.5f), {1, vocab});
  const std::vector<int64_t> js = {0, 1, 999, 2400, 2500, 4999};
  struct Case {
    int64_t top_k;
    float top_p;
    int64_t kept;  // candidates kept: top-k, then the shortest prefix reaching top_p
  };
  for (const Case& c : {Case{0, 1.0f, 5000}, Case{1000, 1.0f, 1000}, Case{0, 0.5001f, 2501},
                        Case{3000, 0.9f, 2700}}) {
    for (int64_t j : js) {
      if (j >= c.kept) continue;
      Tensor u = host_floats(
          {static_cast<float>((static_cast<double>(j) + 0.5) / static_cast<double>(c.kept))}, {1});
      EXPECT_EQ(sample(flat, u, 1.0f, c.top_k, c.top_p)[0], j)
          << GetParam() << ": top_k " << c.top_k << ", top_p " << c.top_p;
    }
  }
  // top_p is reached, not exceeded: of four equal candidates, two hold exactly 0.5 (exact sums).
  Tensor four = host_floats({2.0f, 2.0f, 2.0f, 2.0f}, {1, 4});
  EXPECT_EQ(sample(four, host_floats({0.99f}, {1}), 1.0f, 0, 0.5f)[0], 1) << GetParam();
  EXPECT_EQ(sample(four, host_floats({0.99f}, {1}), 1.0f, 0, 0.75f)[0], 2) << GetParam();
  // Greedy takes the first maximum.
  Tensor u0 = host_floats({0.5f}, {1});
  EXPECT_EQ(sample(flat, u0, 0.0f, 0, 1.0f)[0], 0) << GetParam();
  Tensor some = host_floats({1.0f, 3.0f, -2.0f, 3.0f, 3.0f}, {1, 5});
  EXPECT_EQ(sample(some, u0, 0.0f, 0, 1.0f)[0], 1) << GetParam();
  // Top-2 of {1, 3, -2, 3, 3} is ids 1 and 3 (equally likely); id 4 ties but comes later.
  for (float u : {0.0f, 0.25f, 0.49f}) {
    EXPECT_EQ(sample(some, host_floats({u}, {1}), 1.0f, 2, 1.0f)[0], 1) << GetParam() << " " << u;
  }
  for (float u : {0.51f, 0.75f, 0.9999f}) {
    EXPECT_EQ(sample(some, host_floats({u}, {1}), 1.0f, 2, 1.0f)[0], 3) << GetParam() << " " << u;
  }
  // -0 and +0 tie (they compare equal), so the lower id comes first whatever the sign.
  Tensor zeros = host_floats({-1.0f, 0.0f, -0.0f}, {1, 3});
  EXPECT_EQ(sample(zeros, u0, 0.0f, 0, 1.0f)[0], 1) << GetParam();
  EXPECT_EQ(sample(zeros, host_floats({0.3f}, {1}), 1.0f, 2, 1.0f)[0], 1) << GetParam();
  EXPECT_EQ(sample(zeros, host_floats({0.7f}, {1}), 1.0f, 2, 1.0f)[0], 2) << GetParam();
}

TEST_P(SamplingConformance, NegativeInfinityIsNeverSampled) {
  // Half of every row is -inf; draws close to 1 would land on the last kept candidates, which
  // are the -inf ones when top_k exceeds the finite count.
  const int64_t n = 64, vocab = 1001;
  Tensor logits = random_tensor({n, vocab}, 7, -3.0f, 3.0f);
  float* x = logits.data<float>();
  for (int64_t i = 0; i < n * vocab; ++i) {
    if ((i % vocab) % 2 == 1) x[i] = -INFINITY;
  }
  x[5 * vocab + 0] = -INFINITY;  // row 5: a single finite logit (id 2) beside -inf and ...
  for (int64_t v = 3; v < vocab; ++v) x[5 * vocab + v] = -INFINITY;
  Tensor u = uniforms_for(n, 8);
  for (int64_t i = 0; i < n; i += 4) u.data<float>()[i] = 0.99999994f;  // the largest f32 below 1
  for (int64_t top_k : {0, 700, 1001}) {
    for (float top_p : {1.0f, 0.95f}) {
      const std::vector<int32_t> got = sample(logits, u, 1.3f, top_k, top_p);
      for (int64_t r = 0; r < n; ++r) {
        const int32_t id = got[static_cast<size_t>(r)];
        ASSERT_TRUE(id >= 0 && id < vocab) << GetParam() << ": row " << r << " got " << id;
        EXPECT_NE(x[r * vocab + id], -INFINITY) << GetParam() << ": row " << r << ", top_k "
                                                << top_k << ", top_p " << top_p << " got " << id;
        const Pick want =
            reference_pick(x + r * vocab, vocab, 1.3f, top_k, top_p, u.data<float>()[r]);
        if (!want.near_boundary) {
          EXPECT_EQ(id, want.token) << GetParam() << ": row " << r;
        }
      }
      EXPECT_EQ(got[5], 2) << GetParam();
    }
  }
}

TEST_P(SamplingConformance, TopKOneIsArgmax) {
  // Narrow range: in bf16 many logits tie, the largest included.
  const int64_t n = 9, vocab = 50257;
  Tensor logits = random_tensor({n, vocab}, 9, -1.0f, 1.0f);
  Tensor u = uniforms_for(n, 10);
  for (float temperature : {0.5f, 2.0f}) {
    const std::vector<int32_t> got = sample(logits, u, temperature, 1, 0.7f);
    for (int64_t r = 0; r < n; ++r) {
      const float* row = logits.data<float>() + r * vocab;
      EXPECT_EQ(got[static_cast<size_t>(r)], std::max_element(row, row + vocab) - row)
          << GetParam() << ": row " << r;
    }
  }
}

TEST_P(SamplingConformance, FrequenciesFollowTheProbabilities) {
  // N copies of one row with stratified draws u_i = (i + 0.5)/N: the count of each token is N·p
  // within one draw per boundary, so frequencies must match p to 2/N.
  const int64_t n = 20000, vocab = 50;
  Tensor row = random_tensor({1, vocab}, 11, -3.0f, 3.0f);
  std::vector<float> rows(static_cast<size_t>(n * vocab)), draws(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    std::copy(row.data<float>(), row.data<float>() + vocab, rows.begin() + i * vocab);
    draws[static_cast<size_t>(i)] =
        static_cast<float>((static_cast<double>(i) + 0.5) / static_cast<double>(n));
  }
  Tensor logits = host_floats(rows, {n, vocab}), u = host_floats(draws, {n});
  struct Setting {
    float temperature;
    int64_t top_k;
    float top_p;
  };
  for (const Setting& s : {Setting{0.7f, 0, 1.0f}, Setting{1.3f, 10, 1.0f}, Setting{1.0f, 0, 0.8f},
                           Setting{1.0f, 20, 0.5f}}) {
    const std::vector<int32_t> got = sample(logits, u, s.temperature, s.top_k, s.top_p);
    std::vector<double> freq(static_cast<size_t>(vocab), 0.0), want(freq.size(), 0.0);
    for (int32_t id : got) {
      ASSERT_TRUE(id >= 0 && id < vocab) << GetParam() << ": got id " << id;
      freq[static_cast<size_t>(id)] += 1.0 / static_cast<double>(n);
    }
    const Kept k = kept_candidates(row.data<float>(), vocab, s.temperature, s.top_k, s.top_p);
    ASSERT_FALSE(k.top_p_near) << GetParam() << ": top_p lands on a boundary; change the seed";
    double previous = 0.0;
    for (size_t i = 0; i < k.ids.size(); ++i) {
      want[static_cast<size_t>(k.ids[i])] = (k.cumulative[i] - previous) / k.total();
      previous = k.cumulative[i];
    }
    for (int64_t v = 0; v < vocab; ++v) {
      EXPECT_NEAR(freq[static_cast<size_t>(v)], want[static_cast<size_t>(v)], 2.0 / n)
          << GetParam() << ": token " << v << ", temperature " << s.temperature << ", top_k "
          << s.top_k << ", top_p " << s.top_p;
    }
  }
}

TEST_P(SamplingConformance, RejectsBadArguments) {
  Tensor logits = random_tensor({4, 9}, 12);
  Tensor u = uniforms_for(4, 13);
  Tensor lg = on_backend(logits), ub = on_backend(u, DType::f32);
  Tensor out = empty_on_backend({4}, DType::i32);
  Backend& b = backend();
  expect_error([&] { b.sample_tokens(on_backend(logits, DType::i32), ub, 1.0f, 0, 1.0f, out); },
               {"sample_tokens", "logits"}, GetParam() + " i32 logits");
  expect_error([&] { b.sample_tokens(lg, on_backend(u, DType::i32), 1.0f, 0, 1.0f, out); },
               {"sample_tokens", "uniforms"}, GetParam() + " i32 uniforms");
  expect_error([&] { b.sample_tokens(lg, ub, 1.0f, 0, 1.0f, empty_on_backend({4}, DType::f32)); },
               {"sample_tokens", "out"}, GetParam() + " f32 out");
  expect_error(
      [&] { b.sample_tokens(lg, on_backend(uniforms_for(5, 13), DType::f32), 1.0f, 0, 1.0f, out); },
      {"sample_tokens", "uniforms"}, GetParam() + " 5 uniforms for 4 rows");
  expect_error([&] { b.sample_tokens(lg, ub, 1.0f, 0, 0.0f, out); }, {"sample_tokens", "top_p"},
               GetParam() + " top_p 0");
  expect_error([&] { b.sample_tokens(lg, ub, 1.0f, 0, 1.5f, out); }, {"sample_tokens", "top_p"},
               GetParam() + " top_p 1.5");
  expect_error([&] { b.sample_tokens(lg, ub, 1.0f, -1, 1.0f, out); }, {"sample_tokens", "top_k"},
               GetParam() + " top_k -1");
  expect_error([&] { b.sample_tokens(lg, ub, NAN, 0, 1.0f, out); },
               {"sample_tokens", "temperature"}, GetParam() + " NaN temperature");
  // Greedy decoding neither reads nor checks the sampling parameters.
  b.sample_tokens(lg, ub, 0.0f, -1, 0.0f, out);
  EXPECT_EQ(out.to(Device::cpu()).to_vector<int32_t>()[0],
            std::max_element(logits.data<float>(), logits.data<float>() + 9) - logits.data<float>())
      << GetParam();
}

TEST_P(SamplingConformance, RejectsBadValuesNamingThem) {
  Tensor u = uniforms_for(4, 14);
  for (float bad : {NAN, INFINITY}) {
    Tensor logits = random_tensor({4, 300}, 15);
    logits.data<float>()[2 * 300 + 257] = bad;
    logits.data<float>()[3 * 300 + 5] = bad;  // a later row: the first bad one is named
    for (float temperature : {0.0f, 1.0f}) {
      Tensor out = empty_on_backend({4}, DType::i32);
      expect_error(
          [&] {
            backend().sample_tokens(on_backend(logits), on_backend(u, DType::f32), temperature, 0,
                                    1.0f, out);
          },
          {"sample_tokens", "logits[2, 257]", std::isnan(bad) ? "nan" : "inf"},
          GetParam() + " bad logit");
    }
  }
  // A row of -inf only: nothing to sample (greedy still takes id 0).
  Tensor logits = random_tensor({4, 300}, 16);
  for (int64_t v = 0; v < 300; ++v) logits.data<float>()[300 + v] = -INFINITY;
  Tensor out = empty_on_backend({4}, DType::i32);
  expect_error(
      [&] {
        backend().sample_tokens(on_backend(logits), on_backend(u, DType::f32), 1.0f, 0, 1.0f, out);
      },
      {"sample_tokens", "row 1", "-inf"}, GetParam() + " all -inf row");
  backend().sample_tokens(on_backend(logits), on_backend(u, DType::f32), 0.0f, 0, 1.0f, out);
  EXPECT_EQ(out.to(Device::cpu()).to_vector<int32_t>()[1], 0) << GetParam();
  // A draw outside [0, 1).
  Tensor fine = random_tensor({4, 300}, 17);
  for (float bad_u : {1.0f, -0.25f, NAN}) {
    Tensor v = uniforms_for(4, 18);
    v.data<float>()[3] = bad_u;
    expect_error(
        [&] {
          backend().sample_tokens(on_backend(fine), on_backend(v, DType::f32), 1.0f, 0, 1.0f, out);
        },
        {"sample_tokens", "uniforms[3]"}, GetParam() + " bad uniform");
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, SamplingConformance, ::testing::ValuesIn(conformance_backends()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace rlaif::testing
