// Reductions (sum, mean, max over a dimension or everything; masked row sums) and the softmaxes,
// which reduce over the last dimension too.
#include <utility>

#include "autograd/ops.h"
#include "autograd/ops_util.h"

namespace rlaif {

using namespace ops_detail;

namespace {

Variable reduce_op(ReduceOp op, const Variable& x, int dim) {
  const char* name = reduce_op_name(op);
  require(name, "x", x);
  int64_t rank = x.dim();
  int64_t d = dim < 0 ? dim + rank : dim;
  RLAIF_CHECK(d >= 0 && d < rank, name, ": dimension ", dim, " out of range for ", x.str());
  Tensor in = x.data();
  Tensor out = empty_as(drop_dim(in.shape(), static_cast<size_t>(d)), in);
  backend_of(in).reduce(op, in, static_cast<int>(d), out);
  // sum and mean only need x's shape, but reduce_backward takes x itself; the handle costs
  // nothing extra while x is alive anyway (it is an input of this op).
  return record_op(name, out, {x}, [op, in, out, d](const Tensor& g) -> std::vector<Tensor> {
    Tensor dx = empty_like(in);
    backend_of(g).reduce_backward(op, in, out, g, static_cast<int>(d), dx);
    return {dx};
  });
}

Variable masked_reduce(const char* name, const Variable& x, const Tensor& mask, bool mean) {
  require(name, "x", x);
  RLAIF_CHECK(mask.defined(), name, ": mask is undefined");
  RLAIF_CHECK(x.dim() == 2 && mask.shape() == x.shape(), name, ": x ", x.str(), " and mask ", mask,
              " must both be [N, T]");
  Tensor out = empty_as({x.size(0)}, x.data());
  backend_of(x).masked_reduce(x.data(), mask, mean, out);
  Shape x_shape = x.shape();
  return record_op(name, out, {x}, [mask, mean, x_shape](const Tensor& g) -> std::vector<Tensor> {
    Tensor dx = empty_as(x_shape, g);
    backend_of(g).masked_reduce_backward(mask, g, mean, dx);
    return {dx};
  });
}

// softmax / log_softmax over the last dimension; both backward rules need only the output.
Variable softmax_op(const char* name, const Variable& x, bool log) {
  require(name, "x", x);
  RLAIF_CHECK(x.dim() >= 1 && x.size(-1) > 0, name, ": needs a last dimension, got ", x.str());
  int64_t d = x.size(-1);
  Tensor in = x.data().reshape({-1, d});
  Tensor out = empty_like(in);
  Backend& backend = backend_of(in);
  if (log) {
    backend.log_softmax(in, out);
  } else {
    backend.softmax(in, out);
  }
  return record_op(name, out.reshape(x.shape()), {x},
                   [out, log, d](const Tensor& g) -> std::vector<Tensor> {
                     Tensor g2 = g.reshape({-1, d});
                     Tensor dx = empty_like(out);
                     if (log) {
                       backend_of(g).log_softmax_backward(out, g2, dx);
                     } else {
                       backend_of(g).softmax_backward(out, g2, dx);
                     }
                     return {dx.reshape(g.shape())};
                   });
}

}  // namespace

Variable sum(const Variable& x, int dim) {
  return reduce_op(ReduceOp::sum, x, dim);
}
Variable mean(const Variable& x, int dim) {
  return reduce_op(ReduceOp::mean, x, dim);
}
Variable max(const Variable& x, int dim) {
  return reduce_op(ReduceOp::max, x, dim);
}

// Flattening first turns "all elements" into one reduction the backend already has.
Variable sum_all(const Variable& x) {
  require("sum_all", "x", x);
  return sum(reshape(x, {x.numel()}), 0);
}
Variable mean_all(const Variable& x) {
  require("mean_all", "x", x);
  return mean(reshape(x, {x.numel()}), 0);
}

Variable masked_sum(const Variable& x, const Tensor& mask) {
  return masked_reduce("masked_sum", x, mask, false);
}
Variable masked_mean(const Variable& x, const Tensor& mask) {
  return masked_reduce("masked_mean", x, mask, true);
}

Variable softmax(const Variable& x) {
  return softmax_op("softmax", x, false);
}
Variable log_softmax(const Variable& x) {
  return softmax_op("log_softmax", x, true);
}

}  // namespace rlaif
