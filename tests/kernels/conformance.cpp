#include "tests/kernels/conformance.h"

#include <cmath>
#include <cstdio>
#include <cstring>

#include "runtime/half.h"
#include "runtime/philox.h"

namespace rlaif::testing {

std::vector<std::string> conformance_backends() {
  std::vector<std::string> names = {"cpu"};
  if (backend_available(DeviceType::cuda)) {
    try {
      backend_for(Device::cuda(0));
      names.push_back("cuda");
      names.push_back("cuda_bf16");
    } catch (const Error&) {
      // Reported once by ConformanceBackends.GpuBackendIsTested below.
    }
  }
  return names;
}

Tolerance tolerance_for(DType dtype) {
  switch (dtype) {
    case DType::bf16:
      return {2e-2, 2e-2};
    case DType::f16:
      return {2e-3, 2e-3};
    default:
      return {1e-5, 1e-5};
  }
}

namespace {
// The dtype random inputs are rounded to while a test runs (f32: not rounded).
thread_local DType g_input_dtype = DType::f32;
}  // namespace

Tensor random_tensor(const Shape& shape, uint64_t seed, float lo, float hi) {
  Tensor t = Tensor::empty(shape, DType::f32);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    p[i] = lo + (hi - lo) * philox_uniform(seed, static_cast<uint64_t>(i));
    if (g_input_dtype == DType::bf16) p[i] = bf16_to_float(float_to_bf16(p[i]));
  }
  return t;
}

Tensor random_ids(const Shape& shape, uint64_t seed, int32_t n) {
  Tensor t = Tensor::empty(shape, DType::i32);
  int32_t* p = t.data<int32_t>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    p[i] = static_cast<int32_t>(philox_uniform(seed, static_cast<uint64_t>(i)) * n);
    if (p[i] >= n) p[i] = n - 1;
  }
  return t;
}

Tensor to_host_f32(const Tensor& t) {
  Tensor host = t.device().is_cpu() ? t : t.to(Device::cpu());
  if (host.dtype() == DType::f32) return host;
  Tensor out = Tensor::empty(host.shape(), DType::f32);
  backend_for(Device::cpu()).cast(host, out);
  return out;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  Tensor ha = a.to(Device::cpu()), hb = b.to(Device::cpu());
  return std::memcmp(ha.raw_data(), hb.raw_data(), ha.nbytes()) == 0;
}

void expect_close(const Tensor& got, const Tensor& want, Tolerance tol, const std::string& what) {
  ASSERT_EQ(got.shape(), want.shape()) << what << ": shape " << got << " vs " << want;
  Tensor g = to_host_f32(got), w = to_host_f32(want);
  const float* gp = g.data<float>();
  const float* wp = w.data<float>();
  int64_t bad = 0, first = -1;
  for (int64_t i = 0; i < g.numel(); ++i) {
    double a = gp[i], b = wp[i];
    bool ok = (std::isnan(a) && std::isnan(b)) || (std::isinf(a) && a == b) ||
              std::fabs(a - b) <= tol.atol + tol.rtol * std::fabs(b);
    if (!ok) {
      if (first < 0) first = i;
      ++bad;
    }
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << g.numel()
                    << " elements differ; first at flat index " << first << ": got "
                    << (first >= 0 ? gp[first] : 0.0f) << ", want "
                    << (first >= 0 ? wp[first] : 0.0f) << " (atol " << tol.atol << ", rtol "
                    << tol.rtol << ")";
}

void Conformance::SetUp() {
  g_input_dtype = float_dtype();
}

void Conformance::TearDown() {
  g_input_dtype = DType::f32;
}

DType Conformance::float_dtype() const {
  return GetParam() == "cuda_bf16" ? DType::bf16 : DType::f32;
}

Backend& Conformance::backend() {
  return GetParam() == "cpu" ? backend_for(Device::cpu()) : backend_for(Device::cuda(0));
}

Backend& Conformance::reference() {
  return backend_for(Device::cpu());
}

Tensor Conformance::on_backend(const Tensor& host) {
  return on_backend(host, is_floating(host.dtype()) ? float_dtype() : host.dtype());
}

Tensor Conformance::on_backend(const Tensor& host, DType dtype) {
  Tensor converted = host;
  if (dtype != host.dtype()) {
    converted = Tensor::empty(host.shape(), dtype);
    reference().cast(host, converted);
  }
  return converted.to(backend().device());
}

Tensor Conformance::empty_on_backend(const Shape& shape, DType dtype) {
  return Tensor::empty(shape, dtype, backend().device());
}

void Conformance::expect_matches(const Tensor& got, const Tensor& want, const std::string& what,
                                 double scale) {
  Tolerance tol = tolerance_for(got.dtype());
  expect_close(got, want, {tol.atol * scale, tol.rtol * scale}, GetParam() + ": " + what);
}

// Makes the absence of a GPU backend visible as a skipped test with its reason.
TEST(ConformanceBackends, GpuBackendIsTested) {
  std::vector<std::string> names = conformance_backends();
  if (names.size() > 1) return;
  if (!backend_available(DeviceType::cuda)) {
    GTEST_SKIP() << "no GPU backend in this binary: the suite checks the cpu reference only";
  }
  try {
    backend_for(Device::cuda(0));
  } catch (const Error& e) {
    GTEST_SKIP() << "CUDA backend compiled in but not usable here: " << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, Conformance, ::testing::ValuesIn(conformance_backends()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace rlaif::testing
