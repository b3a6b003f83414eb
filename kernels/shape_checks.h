// Shape checks every backend makes the same way, with the same messages: each throws
// rlaif::Error naming the primitive, the argument and the tensor at fault. Device and dtype
// checks are each backend's own (kernels/cpu/cpu_checks.h, kernels/cuda/cuda_common.cuh).
#pragma once

#include <cstdint>

#include "runtime/error.h"
#include "runtime/tensor.h"

namespace rlaif {

// t has exactly `shape`.
inline void expect_shape(const char* op, const char* arg, const Tensor& t, const Shape& shape) {
  RLAIF_CHECK(t.shape() == shape, op, ": ", arg, " is ", t, " but must have shape ",
              shape_str(shape));
}

// Two tensors of one shape.
inline void expect_same_shape(const char* op, const char* arg_a, const Tensor& a, const char* arg_b,
                              const Tensor& b) {
  RLAIF_CHECK(a.shape() == b.shape(), op, ": ", arg_a, " ", a, " and ", arg_b, " ", b,
              " must have the same shape");
}

// The size of t's last dimension (an error for a 0-d tensor).
inline int64_t last_dim(const char* op, const char* arg, const Tensor& t) {
  RLAIF_CHECK(t.dim() >= 1, op, ": ", arg, " ", t, " needs at least one dimension");
  return t.size(-1);
}

// The product of all dimensions but the last (the rows of a [N, D] view); 0 when D is 0.
inline int64_t rows(const Tensor& t) {
  const int64_t d = t.dim() >= 1 ? t.size(-1) : 1;
  return d == 0 ? 0 : t.numel() / d;
}

}  // namespace rlaif
