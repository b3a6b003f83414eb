// ProfilingBackend on the CPU: it forwards every call unchanged (bitwise-identical results), it
// aggregates calls under the right labels, counts and FLOPs, and enable_profiling /
// disable_profiling switch what backend_for returns.
#include "kernels/profiling_backend.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <sstream>
#include <vector>

#include "runtime/error.h"
#include "tests/kernels/conformance.h"

namespace rlaif {
namespace {

using testing::random_ids;
using testing::random_tensor;

Backend& plain() {
  return backend_for(Device::cpu());
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

const ProfileEntry* find(const std::vector<ProfileEntry>& entries, const std::string& name) {
  for (const ProfileEntry& e : entries) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

// Switches CPU profiling off at the end of a test, even a failing one: the other kernel tests
// share this process and must see the plain backend.
struct ProfilingOff {
  ~ProfilingOff() { disable_profiling(Device::cpu()); }
};

TEST(ProfilingBackend, ResultsAreBitwiseIdenticalToThePlainBackend) {
  ProfilingBackend prof(plain());
  prof.enable();
  Backend& wrapped = prof;

  const Tensor a = random_tensor({2, 16, 24}, 1), w = random_tensor({32, 24}, 2);
  const Tensor bias = random_tensor({32}, 3);
  Tensor want = Tensor::empty({2, 16, 32}, DType::f32), got = want.clone();
  plain().matmul(a, w, want, false, true, bias);
  wrapped.matmul(a, w, got, false, true, bias);
  EXPECT_TRUE(same_bits(got, want)) << "matmul";

  const Tensor gamma = random_tensor({24}, 4), beta = random_tensor({24}, 5);
  Tensor y0 = Tensor::empty({2, 16, 24}, DType::f32), y1 = y0.clone();
  Tensor m0 = Tensor::empty({32}, DType::f32), m1 = m0.clone();
  Tensor r0 = m0.clone(), r1 = m0.clone();
  plain().layernorm(a, gamma, beta, 1e-5f, y0, m0, r0);
  wrapped.layernorm(a, gamma, beta, 1e-5f, y1, m1, r1);
  EXPECT_TRUE(same_bits(y0, y1) && same_bits(m0, m1) && same_bits(r0, r1)) << "layernorm";

  const Tensor q = random_tensor({2, 8, 4, 16}, 6), k = random_tensor({2, 8, 2, 16}, 7);
  const Tensor v = random_tensor({2, 8, 2, 16}, 8), dout = random_tensor({2, 8, 4, 16}, 9);
  Tensor o0 = Tensor::empty({2, 8, 4, 16}, DType::f32), o1 = o0.clone();
  Tensor l0 = Tensor::empty({2, 4, 8}, DType::f32), l1 = l0.clone();
  plain().attention(q, k, v, Tensor(), -1, 0, 0.25f, o0, l0);
  wrapped.attention(q, k, v, Tensor(), -1, 0, 0.25f, o1, l1);
  EXPECT_TRUE(same_bits(o0, o1) && same_bits(l0, l1)) << "attention";
  Tensor dq0 = q.clone(), dq1 = q.clone(), dk0 = k.clone(), dk1 = k.clone();
  Tensor dv0 = v.clone(), dv1 = v.clone();
  plain().attention_backward(q, k, v, Tensor(), -1, 0, 0.25f, o0, l0, dout, dq0, dk0, dv0);
  wrapped.attention_backward(q, k, v, Tensor(), -1, 0, 0.25f, o1, l1, dout, dq1, dk1, dv1);
  EXPECT_TRUE(same_bits(dq0, dq1) && same_bits(dk0, dk1) && same_bits(dv0, dv1))
      << "attention_backward";

  const Tensor logits = random_tensor({12, 50}, 10, -4.0f, 4.0f);
  const Tensor targets = random_ids({12}, 11, 50);
  Tensor ce0 = Tensor::empty({12}, DType::f32), ce1 = ce0.clone();
  Tensor lse0 = ce0.clone(), lse1 = ce0.clone();
  plain().cross_entropy(logits, targets, -100, ce0, lse0);
  wrapped.cross_entropy(logits, targets, -100, ce1, lse1);
  EXPECT_TRUE(same_bits(ce0, ce1) && same_bits(lse0, lse1)) << "cross_entropy";

  // AdamW updates in place: run it on two identical copies of the state.
  const Tensor grad = random_tensor({40}, 12);
  Tensor p0 = random_tensor({40}, 13), mom0 = random_tensor({40}, 14, 0.0f, 0.1f);
  Tensor var0 = random_tensor({40}, 15, 0.0f, 0.1f);
  Tensor p1 = p0.clone(), mom1 = mom0.clone(), var1 = var0.clone();
  const AdamWHyper h{1e-3, 0.9, 0.95, 1e-8, 0.1, 3};
  plain().adamw_step(p0, grad, mom0, var0, Tensor(), h);
  wrapped.adamw_step(p1, grad, mom1, var1, Tensor(), h);
  EXPECT_TRUE(same_bits(p0, p1) && same_bits(mom0, mom1) && same_bits(var0, var1)) << "adamw";

  Tensor u0 = Tensor::empty({300}, DType::f32), u1 = u0.clone();
  plain().random_normal(u0, 7, 100, 0.0f, 0.02f);
  wrapped.random_normal(u1, 7, 100, 0.0f, 0.02f);
  EXPECT_TRUE(same_bits(u0, u1)) << "random_normal";

  EXPECT_EQ(prof.entries().size(), 7u);
  EXPECT_EQ(prof.device(), Device::cpu());
  EXPECT_EQ(prof.name(), plain().name());
}

TEST(ProfilingBackend, AggregatesCallsUnderShapeLabels) {
  ProfilingBackend prof(plain());
  prof.enable();
  const Tensor a = random_tensor({64, 32}, 1), w = random_tensor({48, 32}, 2);
  Tensor out = Tensor::empty({64, 48}, DType::f32);
  for (int i = 0; i < 3; ++i) prof.matmul(a, w, out, false, true, Tensor(), 1.0f, 0.0f);
  prof.matmul(a, w, out, false, true, Tensor(), 1.0f, 1.0f);  // accumulating: its own label
  const Tensor ab = random_tensor({4, 8, 16}, 3), bb = random_tensor({4, 8, 16}, 4);
  Tensor ob = Tensor::empty({4, 16, 16}, DType::f32);
  prof.matmul(ab, bb, ob, true, false, Tensor(), 1.0f, 0.0f);
  const Tensor x = random_tensor({8, 1024, 4}, 5);
  const Tensor q = random_tensor({2, 16, 3, 8}, 6);
  Tensor o = Tensor::empty({2, 16, 3, 8}, DType::f32), lse = Tensor::empty({2, 3, 16}, DType::f32);
  prof.attention(q, q, q, Tensor(), -1, 0, 0.3f, o, lse);
  Tensor gx = x.clone();
  prof.unary(UnaryOp::gelu_tanh, x, gx);
  prof.unary(UnaryOp::gelu_tanh, x, gx);
  prof.binary(BinaryOp::add, x, random_tensor({4}, 7), gx);

  const std::vector<ProfileEntry> entries = prof.entries();
  ASSERT_EQ(entries.size(), 6u);
  for (size_t i = 1; i < entries.size(); ++i) {
    EXPECT_GE(entries[i - 1].seconds, entries[i].seconds) << "not sorted by time";
  }
  double sum = 0.0;
  for (const ProfileEntry& e : entries) {
    EXPECT_GT(e.seconds, 0.0) << e.name;
    sum += e.seconds;
  }
  EXPECT_DOUBLE_EQ(prof.total_seconds(), sum);

  const ProfileEntry* mm = find(entries, "matmul 64x48x32 f32 nt");
  ASSERT_NE(mm, nullptr);
  EXPECT_EQ(mm->calls, 3);
  EXPECT_DOUBLE_EQ(mm->flops, 3 * 2.0 * 64 * 48 * 32);
  EXPECT_DOUBLE_EQ(mm->bytes, 3 * 4.0 * (64 * 32 + 48 * 32 + 64 * 48));
  const ProfileEntry* acc = find(entries, "matmul 64x48x32 f32 nt acc");
  ASSERT_NE(acc, nullptr);
  EXPECT_EQ(acc->calls, 1);
  // Batched, a transposed: M = 16, N = 16, K = 8, batch 4.
  const ProfileEntry* bmm = find(entries, "matmul B4 16x16x8 f32 tn");
  ASSERT_NE(bmm, nullptr);
  EXPECT_DOUBLE_EQ(bmm->flops, 2.0 * 16 * 16 * 8 * 4);
  // Causal: 16·17/2 = 136 query/key pairs per (batch, head), 4·Dh FLOPs each.
  const ProfileEntry* att = find(entries, "attention B2 T16 H3 Dh8 f32");
  ASSERT_NE(att, nullptr);
  EXPECT_DOUBLE_EQ(att->flops, 4.0 * 8 * 2 * 3 * 136);
  const ProfileEntry* gelu = find(entries, "unary gelu_tanh 8x1024x4 f32");
  ASSERT_NE(gelu, nullptr);
  EXPECT_EQ(gelu->calls, 2);
  EXPECT_EQ(gelu->flops, 0.0);
  EXPECT_NE(find(entries, "binary add 8x1024x4 by 4 f32"), nullptr);

  std::ostringstream table;
  prof.report(table, 2, 2.0 * sum);
  const std::string text = table.str();
  EXPECT_NE(text.find("primitive"), std::string::npos) << text;
  EXPECT_NE(text.find(entries[0].name), std::string::npos) << text;
  EXPECT_EQ(text.find(entries[5].name), std::string::npos) << "top 2 printed the 6th:\n" << text;
  EXPECT_NE(text.find("(4 more labels)"), std::string::npos) << text;
  EXPECT_NE(text.find("(outside primitives)"), std::string::npos) << text;
  EXPECT_NE(text.find("50.0"), std::string::npos) << "half the wall is in primitives:\n" << text;

  prof.reset();
  EXPECT_TRUE(prof.entries().empty());
  EXPECT_EQ(prof.total_seconds(), 0.0);
}

TEST(ProfilingBackend, DisabledOrFailedCallsAreNotRecorded) {
  ProfilingBackend prof(plain());
  Tensor t = Tensor::empty({5}, DType::f32);
  prof.fill(t, 2.0);  // a new wrapper starts disabled: it forwards only
  for (float v : t.to_vector<float>()) EXPECT_EQ(v, 2.0f);
  EXPECT_TRUE(prof.entries().empty());

  prof.enable();
  prof.fill(t, 3.0);
  prof.disable();
  prof.fill(t, 4.0);
  for (float v : t.to_vector<float>()) EXPECT_EQ(v, 4.0f);
  ASSERT_EQ(prof.entries().size(), 1u);
  EXPECT_EQ(prof.entries()[0].name, "fill 5 f32");
  EXPECT_EQ(prof.entries()[0].calls, 1);

  // A call the inner backend rejects throws through the wrapper and leaves no entry.
  prof.enable();
  Tensor bad = Tensor::empty({3, 3}, DType::f32);
  EXPECT_THROW(prof.matmul(t, t, bad, false, false, Tensor(), 1.0f, 0.0f), Error);
  EXPECT_EQ(prof.entries().size(), 1u);
}

TEST(ProfilingBackend, EnableProfilingSwitchesBackendFor) {
  ProfilingOff off;
  Backend* real = &backend_for(Device::cpu());
  ProfilingBackend* prof = enable_profiling(Device::cpu());
  ASSERT_NE(prof, nullptr);
  EXPECT_EQ(&prof->inner(), real);
  EXPECT_TRUE(prof->enabled());
  EXPECT_EQ(&backend_for(Device::cpu()), prof);
  prof->reset();

  Tensor t = Tensor::empty({2, 3}, DType::f32);
  backend_for(Device::cpu()).fill(t, 1.0);
  backend_for(Device::cpu()).affine(t, 2.0f, 1.0f, t);
  for (float v : t.to_vector<float>()) EXPECT_EQ(v, 3.0f);
  const auto entries = prof->entries();
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_NE(find(entries, "fill 2x3 f32"), nullptr);
  EXPECT_NE(find(entries, "affine 2x3 f32"), nullptr);

  // Enabling again keeps the one wrapper and its figures.
  EXPECT_EQ(enable_profiling(Device::cpu()), prof);
  EXPECT_EQ(prof->entries().size(), 2u);

  disable_profiling(Device::cpu());
  EXPECT_EQ(&backend_for(Device::cpu()), real);
  EXPECT_FALSE(prof->enabled());
  // A reference taken while profiling was on still works, and records nothing now.
  static_cast<Backend*>(prof)->fill(t, 5.0);
  for (float v : t.to_vector<float>()) EXPECT_EQ(v, 5.0f);
  EXPECT_EQ(prof->entries().size(), 2u);
  disable_profiling(Device::cpu());  // a second disable is a no-op
  EXPECT_EQ(&backend_for(Device::cpu()), real);
}

TEST(ProfilingBackend, ProfilingAnAbsentBackendThrows) {
  if (backend_available(DeviceType::cuda)) GTEST_SKIP() << "the CUDA backend is compiled in";
  EXPECT_THROW(enable_profiling(Device::cuda(0)), Error);
  disable_profiling(Device::cuda(0));  // nothing to switch off: a no-op
}

}  // namespace
}  // namespace rlaif
