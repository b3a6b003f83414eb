// The dimensions of Backend::matmul's product, read from its arguments and checked against
// kernels/backend.h's contract, with the error messages every backend gives. Dtypes and the bias
// are each backend's own business (the CPU takes f32 only, CUDA f32 or bf16).
#pragma once

#include <cstdint>

#include "runtime/error.h"
#include "runtime/tensor.h"

namespace rlaif {

struct MatmulDims {
  int64_t M, K, N;  // op(a) is [M, K], op(b) is [K, N]
  int64_t batch;    // the product of a's leading dimensions (1 for 2-D operands)
  bool shared_b;    // b is 2-D: every batch entry multiplies the same matrix
};

// Throws rlaif::Error naming `op` and the tensors when a or b has fewer than two dimensions,
// their inner dimensions differ, b's batch dimensions are not a's, or out's shape is not
// [..., M, N].
inline MatmulDims matmul_dims(const char* op, const Tensor& a, const Tensor& b, const Tensor& out,
                              bool trans_a, bool trans_b) {
  RLAIF_CHECK(a.dim() >= 2, op, ": a ", a, " needs at least two dimensions");
  RLAIF_CHECK(b.dim() >= 2, op, ": b ", b, " needs at least two dimensions");
  // a holds op(a) = [M, K] as [M, K], or as [K, M] when trans_a; likewise b.
  MatmulDims d;
  d.M = trans_a ? a.size(-1) : a.size(-2);
  d.K = trans_a ? a.size(-2) : a.size(-1);
  const int64_t Kb = trans_b ? b.size(-1) : b.size(-2);
  d.N = trans_b ? b.size(-2) : b.size(-1);
  RLAIF_CHECK(d.K == Kb, op, ": inner dimensions differ: a ", a, (trans_a ? " transposed" : ""),
              " has K = ", d.K, " but b ", b, (trans_b ? " transposed" : ""), " has K = ", Kb);
  const Shape batch_shape(a.shape().begin(), a.shape().end() - 2);
  d.shared_b = b.dim() == 2;
  if (!d.shared_b) {
    RLAIF_CHECK(Shape(b.shape().begin(), b.shape().end() - 2) == batch_shape, op, ": b ", b,
                " must be 2-D or have the batch dimensions of a ", a);
  }
  Shape out_shape = batch_shape;
  out_shape.push_back(d.M);
  out_shape.push_back(d.N);
  RLAIF_CHECK(out.shape() == out_shape, op, ": out is ", out, " but must have shape ",
              shape_str(out_shape), " for a ", a, (trans_a ? " transposed" : ""), " and b ", b,
              (trans_b ? " transposed" : ""));
  d.batch = shape_numel(batch_shape);
  return d;
}

}  // namespace rlaif
