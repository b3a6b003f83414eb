#include "tests/kernels/conformance.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "kernels/device_registry.h"
#include "runtime/half.h"
#include "runtime/philox.h"

namespace rlaif::testing {

std::vector<ConformanceTarget> conformance_targets() {
  std::vector<ConformanceTarget> targets;
  for (const DeviceTypeRegistration& type : registered_device_types()) {
    const Device device{type.type, 0};
    try {
      backend_for(device);
    } catch (const Error&) {
      continue;  // Reported once by ConformanceBackends.EveryRegisteredBackendIsTested below.
    }
    for (DType dtype : type.float_dtypes) {
      std::string name = device_type_name(type.type);
      if (dtype != DType::f32) name += std::string("_") + dtype_name(dtype);
      targets.push_back({name, device, dtype});
    }
  }
  return targets;
}

std::vector<std::string> conformance_backends() {
  std::vector<std::string> names;
  for (const ConformanceTarget& t : conformance_targets()) names.push_back(t.name);
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

namespace {
// The target of parameter `name` (one of conformance_backends()).
const ConformanceTarget& target_named(const std::string& name) {
  static const std::vector<ConformanceTarget> targets = conformance_targets();
  for (const ConformanceTarget& t : targets) {
    if (t.name == name) return t;
  }
  throw Error("conformance: no backend target named ", name);
}
}  // namespace

DType Conformance::float_dtype() const {
  return target_named(GetParam()).float_dtype;
}

bool Conformance::backend_accepts(DType dtype) const {
  const std::vector<DType> dtypes =
      device_type_registration(target_named(GetParam()).device.type).float_dtypes;
  return std::find(dtypes.begin(), dtypes.end(), dtype) != dtypes.end();
}

Backend& Conformance::backend() {
  return backend_for(target_named(GetParam()).device);
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

// Every registered device type's f32 target is among the suite's parameters, unless its device 0
// is unusable here: that (a GPU backend compiled in on a machine without a GPU), like a binary
// with no backend but the cpu reference, shows as a skipped test with its reason.
TEST(ConformanceBackends, EveryRegisteredBackendIsTested) {
  const std::vector<std::string> names = conformance_backends();
  ASSERT_FALSE(names.empty());
  EXPECT_EQ(names[0], "cpu");
  const std::vector<DeviceTypeRegistration> types = registered_device_types();
  if (types.size() == 1) {
    GTEST_SKIP() << "no backend but the cpu reference in this binary: the suite checks it only";
  }
  std::string unusable;
  for (const DeviceTypeRegistration& type : types) {
    const std::string name = device_type_name(type.type);
    if (std::find(names.begin(), names.end(), name) != names.end()) continue;
    try {
      backend_for(Device{type.type, 0});
      ADD_FAILURE() << name << ":0 is usable but not tested";
    } catch (const Error& e) {
      unusable += name + " (" + e.what() + ") ";
    }
  }
  if (!unusable.empty()) GTEST_SKIP() << "registered but not usable here: " << unusable;
}

INSTANTIATE_TEST_SUITE_P(Backends, Conformance, ::testing::ValuesIn(conformance_backends()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace rlaif::testing
