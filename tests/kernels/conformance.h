// The backend conformance suite's harness.
//
// Every test written with TEST_P(Conformance, Name) runs once per registered backend
// (kernels/device_registry.h) whose device 0 is usable on this machine, and per float dtype it
// registers: "cpu" always (it then checks the reference against itself, which keeps the harness
// honest and runs in CI); "cuda" and "cuda_bf16" when the CUDA backend is compiled in and a
// device is present. A new backend joins by registering. Inputs are made on the host with a
// fixed Philox seed, copied to the backend under test, run there and on the CPU reference, and
// the results compared with per-dtype tolerances. A new backend that passes this suite
// implements kernels/backend.h correctly (docs/PORTING.md).
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kernels/backend.h"

namespace rlaif::testing {

// What one conformance parameter tests: a backend's device 0, in one float dtype.
struct ConformanceTarget {
  std::string name;  // "cpu", "cuda" (f32 tensors), "cuda_bf16" (bf16 tensors, f32 statistics)
  Device device;
  DType float_dtype;
};

// The targets to test here: for every registered device type whose device 0 is usable, one per
// float dtype it registers, named by the type ("cuda") for f32 and type_dtype ("cuda_bf16") for
// the others.
std::vector<ConformanceTarget> conformance_targets();
// Their names, the suite's parameters.
std::vector<std::string> conformance_backends();

// Per-dtype tolerances: |got - want| ≤ atol + rtol·|want|.
struct Tolerance {
  double atol;
  double rtol;
};
Tolerance tolerance_for(DType dtype);

// A host f32 tensor of uniform values in [lo, hi) from Philox stream `seed` (so every run and
// every backend sees the same inputs). While a bf16 test runs, the values are rounded to bf16, so
// the reference computes on exactly the inputs the backend under test receives and the
// comparison measures the backend's arithmetic, not the rounding of its inputs.
Tensor random_tensor(const Shape& shape, uint64_t seed, float lo = -1.0f, float hi = 1.0f);
// A host i32 tensor of uniform integers in [0, n).
Tensor random_ids(const Shape& shape, uint64_t seed, int32_t n);
// Host f32 copy of any tensor (any device, any float dtype).
Tensor to_host_f32(const Tensor& t);
// Whether two tensors (any device) have one shape and dtype and hold the same bytes.
bool same_bits(const Tensor& a, const Tensor& b);
// Asserts elementwise closeness; the message names `what`, the first bad index, both values.
void expect_close(const Tensor& got, const Tensor& want, Tolerance tol, const std::string& what);

class Conformance : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override;
  void TearDown() override;
  // The backend under test and the reference.
  Backend& backend();
  Backend& reference();
  // The float dtype the backend under test is checked in (f32 for cpu; bf16 where a backend
  // computes in bf16).
  DType float_dtype() const;
  // Whether the backend under test accepts float tensors of `dtype` (one it registers).
  bool backend_accepts(DType dtype) const;
  // A copy of host tensor `host` on the backend under test (floats cast to `dtype` when given).
  Tensor on_backend(const Tensor& host);
  Tensor on_backend(const Tensor& host, DType dtype);
  // Uninitialised tensor on the backend under test.
  Tensor empty_on_backend(const Shape& shape, DType dtype);
  // expect_close with the backend's tolerance for `dtype`, scaled by `scale` (for outputs whose
  // error grows with a reduction length).
  void expect_matches(const Tensor& got, const Tensor& want, const std::string& what,
                      double scale = 1.0);
};

}  // namespace rlaif::testing
