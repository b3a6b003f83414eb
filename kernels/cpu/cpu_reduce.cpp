// Reductions of the CPU reference: reduce over any dimension, argmax, and the masked row sums of
// the sequence losses, with their backward passes.
//
// Every output element is owned by one loop iteration, which walks its inputs sequentially in
// index order: results do not depend on the thread count. Sums accumulate in double, better than
// the f32-pairwise order the contract asks for, because this backend is the numerical reference.
#include <cmath>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/cpu_checks.h"

namespace rlaif {
namespace {

// x seen as [outer, n, inner] around the reduced dimension: element (o, k, i) sits at
// (o·n + k)·inner + i, so the n values of one output are `inner` apart.
struct ReduceView {
  int64_t outer = 1, n = 1, inner = 1;
  Shape out_shape;  // x's shape without the reduced dimension
};

ReduceView reduce_view(const char* op, const Tensor& x, int dim) {
  RLAIF_CHECK(x.dim() >= 1, op, ": x ", x, " needs at least one dimension");
  const int64_t d = dim < 0 ? dim + x.dim() : dim;
  RLAIF_CHECK(d >= 0 && d < x.dim(), op, ": dim ", dim, " is out of range for x ", x);
  ReduceView v;
  for (int64_t i = 0; i < x.dim(); ++i) {
    if (i < d) v.outer *= x.size(i);
    if (i > d) v.inner *= x.size(i);
    if (i != d) v.out_shape.push_back(x.size(i));
  }
  v.n = x.size(d);
  return v;
}

// Position k < n of the first largest of p[0], p[stride], ..., p[(n-1)·stride] (n ≥ 1). A NaN
// counts as larger than everything, so it propagates as in torch.max.
int64_t first_max(const float* p, int64_t n, int64_t stride) {
  int64_t best = 0;
  float best_value = p[0];
  for (int64_t k = 1; k < n && !std::isnan(best_value); ++k) {
    float v = p[k * stride];
    if (v > best_value || std::isnan(v)) {
      best = k;
      best_value = v;
    }
  }
  return best;
}

// x's shape without the last dimension: the shape of per-row results.
Shape row_shape(const char* op, const char* arg, const Tensor& x) {
  cpu::last_dim(op, arg, x);  // throws for 0-d tensors
  return Shape(x.shape().begin(), x.shape().end() - 1);
}

}  // namespace

void CpuBackend::reduce(ReduceOp op, const Tensor& x, int dim, const Tensor& out) {
  cpu::expect("reduce", "x", x, DType::f32);
  const ReduceView v = reduce_view("reduce", x, dim);
  cpu::expect("reduce", "out", out, DType::f32, v.out_shape);
  RLAIF_CHECK(op != ReduceOp::max || v.n > 0 || out.numel() == 0, "reduce: max over dimension ",
              dim, " of x ", x, ", which is empty");
  const float* xp = x.data<float>();
  float* outp = out.data<float>();
  cpu::parallel_for(v.outer * v.inner, v.n, [&](int64_t o) {
    const float* p = xp + (o / v.inner) * v.n * v.inner + o % v.inner;
    if (op == ReduceOp::max) {
      outp[o] = p[first_max(p, v.n, v.inner) * v.inner];
      return;
    }
    double sum = 0.0;
    for (int64_t k = 0; k < v.n; ++k) sum += p[k * v.inner];
    // The mean of an empty dimension is 0/0 = NaN, as in torch.
    outp[o] = static_cast<float>(op == ReduceOp::mean ? sum / static_cast<double>(v.n) : sum);
  });
}

void CpuBackend::reduce_backward(ReduceOp op, const Tensor& x, const Tensor& y, const Tensor& dy,
                                 int dim, const Tensor& dx) {
  const char* name = "reduce_backward";
  cpu::expect(name, "x", x, DType::f32);
  const ReduceView v = reduce_view(name, x, dim);
  // This backend finds the maximum's position from x; y is still required for max, as other
  // backends may read it, and checked wherever it is given.
  if (y.defined() || op == ReduceOp::max) cpu::expect(name, "y", y, DType::f32, v.out_shape);
  cpu::expect(name, "dy", dy, DType::f32, v.out_shape);
  cpu::expect(name, "dx", dx, DType::f32, x.shape());
  const float* xp = x.data<float>();
  const float* dyp = dy.data<float>();
  float* dxp = dx.data<float>();
  if (v.n == 0) return;  // dx is empty
  cpu::parallel_for(v.outer * v.inner, v.n, [&](int64_t o) {
    const int64_t base = (o / v.inner) * v.n * v.inner + o % v.inner;
    if (op == ReduceOp::max) {
      // Find the position before writing: dx may alias x.
      const int64_t at = first_max(xp + base, v.n, v.inner);
      for (int64_t k = 0; k < v.n; ++k) dxp[base + k * v.inner] = k == at ? dyp[o] : 0.0f;
      return;
    }
    const float g = op == ReduceOp::mean ? dyp[o] / static_cast<float>(v.n) : dyp[o];
    for (int64_t k = 0; k < v.n; ++k) dxp[base + k * v.inner] = g;
  });
}

void CpuBackend::argmax(const Tensor& x, const Tensor& out) {
  cpu::expect("argmax", "x", x, DType::f32);
  cpu::expect("argmax", "out", out, DType::i32, row_shape("argmax", "x", x));
  const int64_t D = x.size(-1);
  RLAIF_CHECK(D > 0 || out.numel() == 0, "argmax: x ", x, " has an empty last dimension");
  const float* xp = x.data<float>();
  int32_t* outp = out.data<int32_t>();
  cpu::parallel_for(out.numel(), D, [&](int64_t r) {
    outp[r] = static_cast<int32_t>(first_max(xp + r * D, D, 1));
  });
}

void CpuBackend::masked_reduce(const Tensor& x, const Tensor& mask, bool mean, const Tensor& out) {
  cpu::expect("masked_reduce", "x", x, DType::f32);
  cpu::expect("masked_reduce", "mask", mask, DType::f32, x.shape());
  cpu::expect("masked_reduce", "out", out, DType::f32, row_shape("masked_reduce", "x", x));
  const int64_t T = x.size(-1);
  const float* xp = x.data<float>();
  const float* mp = mask.data<float>();
  float* outp = out.data<float>();
  // Rows are counted from out, not x: a [N, 0] input still has N (zero) results.
  cpu::parallel_for(out.numel(), T, [&](int64_t r) {
    double sum = 0.0, weight = 0.0;
    for (int64_t t = r * T; t < (r + 1) * T; ++t) {
      sum += static_cast<double>(xp[t]) * mp[t];
      weight += mp[t];
    }
    if (mean) sum = weight != 0.0 ? sum / weight : 0.0;
    outp[r] = static_cast<float>(sum);
  });
}

void CpuBackend::masked_reduce_backward(const Tensor& mask, const Tensor& dy, bool mean,
                                        const Tensor& dx) {
  const char* name = "masked_reduce_backward";
  cpu::expect(name, "mask", mask, DType::f32);
  cpu::expect(name, "dy", dy, DType::f32, row_shape(name, "mask", mask));
  cpu::expect(name, "dx", dx, DType::f32, mask.shape());
  const int64_t T = mask.size(-1);
  const float* mp = mask.data<float>();
  const float* dyp = dy.data<float>();
  float* dxp = dx.data<float>();
  cpu::parallel_for(dy.numel(), T, [&](int64_t r) {
    double scale = dyp[r];
    if (mean) {
      double weight = 0.0;
      for (int64_t t = r * T; t < (r + 1) * T; ++t) weight += mp[t];
      scale = weight != 0.0 ? scale / weight : 0.0;
    }
    for (int64_t t = r * T; t < (r + 1) * T; ++t) dxp[t] = static_cast<float>(scale * mp[t]);
  });
}

}  // namespace rlaif
