// The broadcasting rule of Backend::binary and binary_backward (kernels/backend.h), with the
// error message every backend gives: b has a's shape, a suffix of a's shape, or one element, and
// element i of a pairs with element i mod numel(b) of b.
#pragma once

#include <algorithm>

#include "runtime/error.h"
#include "runtime/tensor.h"

namespace rlaif {

// Throws rlaif::Error naming `op`, a and b when b cannot be broadcast against a.
inline void check_broadcast(const char* op, const Tensor& a, const Tensor& b) {
  const bool scalar = b.numel() == 1;
  const bool suffix = b.dim() <= a.dim() &&
                      std::equal(b.shape().begin(), b.shape().end(), a.shape().end() - b.dim());
  RLAIF_CHECK(scalar || suffix, op, ": b ", b, " must have a's shape ", a,
              ", a suffix of it, or one element");
}

}  // namespace rlaif
