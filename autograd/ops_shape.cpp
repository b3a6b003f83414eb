// Shape ops: reshape, slice, padded_view and concat. Tensors are contiguous and row-major, so a
// reshape or a leading-dimension slice is a view (no copy); their backward passes are views or
// copies too.
#include <algorithm>
#include <utility>

#include "autograd/ops.h"
#include "autograd/ops_util.h"

namespace rlaif {

using namespace ops_detail;

Variable reshape(const Variable& x, const Shape& shape) {
  require("reshape", "x", x);
  Tensor out = x.data().reshape(shape);  // throws naming both shapes when numel differs
  Shape x_shape = x.shape();
  return record_op("reshape", out, {x}, [x_shape](const Tensor& g) -> std::vector<Tensor> {
    return {g.reshape(x_shape)};
  });
}

Variable slice(const Variable& x, int64_t begin, int64_t end) {
  require("slice", "x", x);
  RLAIF_CHECK(x.dim() >= 1 && 0 <= begin && begin <= end && end <= x.size(0), "slice: rows [",
              begin, ", ", end, ") out of range for ", x.str());
  Tensor out = x.data().slice(begin, end);
  Shape x_shape = x.shape();
  return record_op("slice", out, {x},
                   [x_shape, begin, end](const Tensor& g) -> std::vector<Tensor> {
                     // Rows outside the slice did not affect the output: their gradient is 0.
                     Tensor dx = Tensor::zeros(x_shape, g.dtype(), g.device());
                     backend_of(g).copy(g, dx.slice(begin, end));
                     return {dx};
                   });
}

Variable padded_view(const Variable& x, const Tensor& wider) {
  require("padded_view", "x", x);
  RLAIF_CHECK(
      wider.defined() && wider.dim() == x.dim() && wider.dim() >= 1 && wider.size(0) >= x.size(0) &&
          std::equal(wider.shape().begin() + 1, wider.shape().end(), x.shape().begin() + 1) &&
          wider.dtype() == x.dtype() && wider.device() == x.device() &&
          wider.raw_data() == x.data().raw_data(),
      "padded_view: x ", x.str(), " is not the first rows of ", wider.str());
  const int64_t rows = x.size(0);
  return record_op("padded_view", wider, {x},
                   [rows](const Tensor& g) -> std::vector<Tensor> { return {g.slice(0, rows)}; });
}

Variable concat(const std::vector<Variable>& xs) {
  RLAIF_CHECK(!xs.empty(), "concat: no inputs");
  std::vector<Tensor> parts;
  parts.reserve(xs.size());
  std::vector<int64_t> offsets{0};  // row offsets of each input in the result
  for (size_t i = 0; i < xs.size(); ++i) {
    RLAIF_CHECK(xs[i].defined(), "concat: input ", i, " is undefined");
    RLAIF_CHECK(xs[i].dim() >= 1, "concat: input ", i, " ", xs[i].str(),
                " needs a leading dimension");
    bool same_rest =
        xs[i].dim() == xs[0].dim() &&
        std::equal(xs[i].shape().begin() + 1, xs[i].shape().end(), xs[0].shape().begin() + 1);
    RLAIF_CHECK(same_rest, "concat: input ", i, " ", xs[i].str(), " and input 0 ", xs[0].str(),
                " differ beyond the leading dimension");
    parts.push_back(xs[i].data());
    offsets.push_back(offsets.back() + xs[i].size(0));
  }
  Shape out_shape = xs[0].shape();
  out_shape[0] = offsets.back();
  Tensor out = empty_as(out_shape, parts[0]);
  backend_of(out).concat(parts, out);
  return record_op("concat", out, xs, [offsets](const Tensor& g) -> std::vector<Tensor> {
    // Each input's gradient is its rows of dout: views, no copies.
    std::vector<Tensor> grads;
    grads.reserve(offsets.size() - 1);
    for (size_t i = 0; i + 1 < offsets.size(); ++i) {
      grads.push_back(g.slice(offsets[i], offsets[i + 1]));
    }
    return grads;
  });
}

}  // namespace rlaif
