// Argument checks shared by the CPU kernels: each throws rlaif::Error naming the primitive,
// the argument and the tensor at fault.
#pragma once

#include <omp.h>
#include <cstdint>

#include "kernels/shape_checks.h"
#include "runtime/tensor.h"

namespace rlaif::cpu {

// t is defined, on the CPU, and of dtype `dtype`.
void expect(const char* op, const char* arg, const Tensor& t, DType dtype);
// expect(..., f32) and the exact shape.
void expect(const char* op, const char* arg, const Tensor& t, DType dtype, const Shape& shape);
// The shape checks of every backend (kernels/shape_checks.h).
using rlaif::expect_same_shape;
using rlaif::last_dim;
using rlaif::rows;

// Below this much work (n · cost_per_item, in simple operations) a loop stays on the calling
// thread. rlaif runs with OMP_WAIT_POLICY=passive, where waking the other threads and joining them
// took about 50 us on a 2-core VM: as long as 2^17 simple operations take on one core.
constexpr int64_t kParallelWork = int64_t{1} << 17;

// Runs body(i) for i in [0, n), split statically over the OpenMP threads when n·cost_per_item is
// large enough to pay for the fork. Each i must touch its own outputs only.
template <typename Body>
void parallel_for(int64_t n, int64_t cost_per_item, Body body) {
  if (n * cost_per_item < kParallelWork) {
    for (int64_t i = 0; i < n; ++i) body(i);
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) body(i);
}

}  // namespace rlaif::cpu
