// Matrix products: matmul with transpose flags (batched, or with a 2-D right operand shared by
// every batch entry) and Hugging Face's Linear.
//
// Backward, with op(X) = X or Xᵀ and C = op(A)·op(B):
//   d op(A) = dC·op(B)ᵀ,  d op(B) = op(A)ᵀ·dC,
// and the transpose flags of the backend's GEMM express every case without a transposed copy
// (the table in matmul_backward). A shared 2-D B collects its gradient from every batch entry.
#include <algorithm>
#include <utility>

#include "autograd/ops.h"
#include "autograd/ops_util.h"

namespace rlaif {

using namespace ops_detail;

namespace {

// A fresh out = op(a)·op(b) of shape `shape`.
Tensor gemm(const Tensor& a, const Tensor& b, bool ta, bool tb, const Shape& shape) {
  Tensor out = empty_as(shape, a);
  backend_of(a).matmul(a, b, out, ta, tb);
  return out;
}

// a viewed as [batch, rows, cols] (a has at least 2 dimensions).
Tensor as_3d(const Tensor& a) {
  return a.reshape({-1, a.size(-2), a.size(-1)});
}

struct MatmulShapes {
  int64_t m, k, n;
  bool b_shared;  // b is 2-D and a is batched
  Shape out;
};

MatmulShapes matmul_shapes(const Variable& a, const Variable& b, bool ta, bool tb) {
  RLAIF_CHECK(a.dim() >= 2 && b.dim() >= 2, "matmul: operands need at least 2 dimensions, got a ",
              a.str(), " and b ", b.str());
  MatmulShapes s;
  s.m = ta ? a.size(-1) : a.size(-2);
  s.k = ta ? a.size(-2) : a.size(-1);
  int64_t kb = tb ? b.size(-1) : b.size(-2);
  s.n = tb ? b.size(-2) : b.size(-1);
  RLAIF_CHECK(s.k == kb, "matmul: inner dimensions differ (", s.k, " vs ", kb, ") for a ", a.str(),
              ta ? " (transposed)" : "", " and b ", b.str(), tb ? " (transposed)" : "");
  s.b_shared = b.dim() == 2 && a.dim() > 2;
  if (!s.b_shared) {
    bool same_batch =
        a.dim() == b.dim() && std::equal(a.shape().begin(), a.shape().end() - 2, b.shape().begin());
    RLAIF_CHECK(same_batch, "matmul: batch dimensions of a ", a.str(), " and b ", b.str(),
                " differ (b must share a's batch dimensions or be 2-D)");
  }
  s.out = Shape(a.shape().begin(), a.shape().end() - 2);
  s.out.push_back(s.m);
  s.out.push_back(s.n);
  return s;
}

// dA for C = op(A)·op(B):   !ta: dA = dC·op(B)ᵀ            → gemm(dC, B, false, !tb)
//                            ta: dA = (dC·op(B)ᵀ)ᵀ = op(B)·dCᵀ → gemm(B, dC, tb, true)
// In the ta case B is the left operand; a shared 2-D B cannot be the left operand of one batched
// GEMM, so that (rare) case runs one GEMM per batch entry, writing into views of dA.
Tensor matmul_grad_a(const Tensor& A, const Tensor& B, const Tensor& dC, bool ta, bool tb,
                     bool b_shared) {
  if (!ta) return gemm(dC, B, false, !tb, A.shape());
  if (!b_shared) return gemm(B, dC, tb, true, A.shape());
  Tensor dA = empty_like(A);
  Tensor dA3 = as_3d(dA), dC3 = as_3d(dC);
  for (int64_t i = 0; i < dA3.size(0); ++i) {
    backend_of(dC).matmul(B, dC3.select(i), dA3.select(i), tb, true);
  }
  return dA;
}

// dB:  !tb: dB = op(A)ᵀ·dC       → gemm(A, dC, !ta, false)
//       tb: dB = (op(A)ᵀ·dC)ᵀ = dCᵀ·op(A) → gemm(dC, A, true, ta)
// A shared 2-D B sums over the batch. Without ta, A and dC fold their batch into rows
// ([batch·M, K] and [batch·M, N]) and one GEMM does the sum; with ta, A's rows are K, not M, so
// the batch entries are accumulated one GEMM at a time (beta = 1).
Tensor matmul_grad_b(const Tensor& A, const Tensor& B, const Tensor& dC, bool ta, bool tb,
                     bool b_shared) {
  if (!b_shared) return tb ? gemm(dC, A, true, ta, B.shape()) : gemm(A, dC, !ta, false, B.shape());
  if (!ta) {
    Tensor A2 = A.reshape({-1, A.size(-1)}), dC2 = dC.reshape({-1, dC.size(-1)});
    return tb ? gemm(dC2, A2, true, false, B.shape()) : gemm(A2, dC2, true, false, B.shape());
  }
  Tensor dB = empty_like(B);
  Tensor A3 = as_3d(A), dC3 = as_3d(dC);
  Backend& backend = backend_of(dC);
  for (int64_t i = 0; i < A3.size(0); ++i) {
    float beta = i == 0 ? 0.0f : 1.0f;
    if (tb) {
      backend.matmul(dC3.select(i), A3.select(i), dB, true, true, Tensor(), 1.0f, beta);
    } else {
      backend.matmul(A3.select(i), dC3.select(i), dB, false, false, Tensor(), 1.0f, beta);
    }
  }
  return dB;
}

}  // namespace

Variable matmul(const Variable& a, const Variable& b, bool trans_a, bool trans_b) {
  require("matmul", "a", a);
  require("matmul", "b", b);
  MatmulShapes s = matmul_shapes(a, b, trans_a, trans_b);
  Tensor A = a.data(), B = b.data();
  Tensor out = gemm(A, B, trans_a, trans_b, s.out);
  bool need_a = wants_grad(a), need_b = wants_grad(b), shared = s.b_shared;
  return record_op(
      "matmul", out, {a, b},
      [A, B, trans_a, trans_b, need_a, need_b, shared](const Tensor& g) -> std::vector<Tensor> {
        Tensor dA = need_a ? matmul_grad_a(A, B, g, trans_a, trans_b, shared) : Tensor();
        Tensor dB = need_b ? matmul_grad_b(A, B, g, trans_a, trans_b, shared) : Tensor();
        return {dA, dB};
      });
}

namespace {

// Linear's checks; returns in_features.
int64_t check_linear(const char* op, const Variable& x, const Variable& weight,
                     const Variable& bias) {
  require(op, "x", x);
  require(op, "weight", weight);
  RLAIF_CHECK(weight.dim() == 2, op, ": weight must be [out, in], got ", weight.str());
  int64_t out_features = weight.size(0), in_features = weight.size(1);
  RLAIF_CHECK(x.dim() >= 1 && x.size(-1) == in_features, op, ": x ", x.str(),
              " must end in in_features = ", in_features, " (weight ", weight.str(), ")");
  if (bias.defined()) {
    RLAIF_CHECK(bias.shape() == Shape{out_features}, op, ": bias ", bias.str(), " must be [",
                out_features, "] (weight ", weight.str(), ")");
  }
  return in_features;
}

// Y = X·Wᵀ + b with X [N, in] (x's leading dimensions folded), given dY [N, out]:
// dX = dY·W, dW = dYᵀ·X, db = Σ over rows of dY.
std::vector<Tensor> linear_grads(const Tensor& X, const Tensor& W, const Shape& x_shape,
                                 const Tensor& g2, bool need_x, bool need_w, bool need_b) {
  Tensor dx, dw, db;
  if (need_x) dx = gemm(g2, W, false, false, X.shape()).reshape(x_shape);
  if (need_w) dw = gemm(g2, X, true, false, W.shape());
  if (need_b) {
    db = empty_as({W.size(0)}, g2);
    backend_of(g2).reduce(ReduceOp::sum, g2, 0, db);
  }
  return {dx, dw, db};
}

}  // namespace

Variable linear(const Variable& x, const Variable& weight, const Variable& bias) {
  const int64_t in_features = check_linear("linear", x, weight, bias);
  const int64_t out_features = weight.size(0);
  // Leading dimensions fold into rows: one [N, in]·[out, in]ᵀ GEMM with the bias fused.
  Tensor X = x.data().reshape({-1, in_features}), W = weight.data();
  int64_t rows = X.size(0);
  Tensor out = empty_as({rows, out_features}, X);
  backend_of(X).matmul(X, W, out, false, true, bias.defined() ? bias.data() : Tensor());
  Shape out_shape = x.shape();
  out_shape.back() = out_features;
  bool need_x = wants_grad(x), need_w = wants_grad(weight), need_b = wants_grad(bias);
  Shape x_shape = x.shape();
  return record_op(
      "linear", out.reshape(out_shape), {x, weight, bias},
      [X, W, x_shape, need_x, need_w, need_b](const Tensor& g) {
        return linear_grads(X, W, x_shape, g.reshape({-1, W.size(0)}), need_x, need_w, need_b);
      });
}

Variable linear_low_rank(const Variable& x, const Variable& weight, const Variable& bias,
                         const Variable& a, const Variable& b, float alpha) {
  const int64_t in_features = check_linear("linear_low_rank", x, weight, bias);
  require("linear_low_rank", "a", a);
  require("linear_low_rank", "b", b);
  const int64_t out_features = weight.size(0);
  RLAIF_CHECK(b.dim() == 2 && b.size(0) == out_features, "linear_low_rank: b ", b.str(),
              " must be [out = ", out_features, ", r]");
  const int64_t rank = b.size(1);
  Shape a_expected = x.shape();
  a_expected.back() = rank;
  RLAIF_CHECK(a.shape() == a_expected, "linear_low_rank: a ", a.str(), " must be x ", x.str(),
              " with its last dimension r = ", rank);
  Tensor X = x.data().reshape({-1, in_features}), W = weight.data();
  Tensor Am = a.data().reshape({-1, rank}), Bm = b.data();
  Tensor out = empty_as({X.size(0), out_features}, X);
  Backend& backend = backend_of(X);
  backend.matmul(X, W, out, false, true, bias.defined() ? bias.data() : Tensor());
  backend.matmul(Am, Bm, out, false, true, Tensor(), alpha, 1.0f);
  Shape out_shape = x.shape();
  out_shape.back() = out_features;
  const bool need_x = wants_grad(x), need_w = wants_grad(weight), need_bias = wants_grad(bias);
  const bool need_a = wants_grad(a), need_b = wants_grad(b);
  const Shape x_shape = x.shape(), a_shape = a.shape();
  return record_op("linear_low_rank", out.reshape(out_shape), {x, weight, bias, a, b},
                   [X, W, Am, Bm, x_shape, a_shape, alpha, need_x, need_w, need_bias, need_a,
                    need_b](const Tensor& g) {
                     const Tensor g2 = g.reshape({-1, W.size(0)});
                     std::vector<Tensor> grads =
                         linear_grads(X, W, x_shape, g2, need_x, need_w, need_bias);
                     Tensor da, db;
                     if (need_a) {
                       da = empty_as(Am.shape(), g2);
                       backend_of(g2).matmul(g2, Bm, da, false, false, Tensor(), alpha);
                       da = da.reshape(a_shape);
                     }
                     if (need_b) {
                       db = empty_as(Bm.shape(), g2);
                       backend_of(g2).matmul(g2, Am, db, true, false, Tensor(), alpha);
                     }
                     grads.push_back(da);
                     grads.push_back(db);
                     return grads;
                   });
}

Variable linear_gelu(const Variable& x, const Variable& weight, const Variable& bias) {
  const int64_t in_features = check_linear("linear_gelu", x, weight, bias);
  const int64_t out_features = weight.size(0);
  Tensor X = x.data().reshape({-1, in_features}), W = weight.data();
  Tensor pre = empty_as({X.size(0), out_features}, X), out = empty_as(pre.shape(), X);
  backend_of(X).linear_gelu(X, W, bias.defined() ? bias.data() : Tensor(), pre, out);
  Shape out_shape = x.shape();
  out_shape.back() = out_features;
  bool need_x = wants_grad(x), need_w = wants_grad(weight), need_b = wants_grad(bias);
  Shape x_shape = x.shape();
  return record_op("linear_gelu", out.reshape(out_shape), {x, weight, bias},
                   [X, W, pre, out, x_shape, need_x, need_w, need_b](const Tensor& g) {
                     // d pre = dY ∘ gelu'(pre), then Linear's gradients.
                     Tensor g2 = g.reshape({-1, W.size(0)});
                     Tensor dpre = empty_like(pre);
                     backend_of(g2).unary_backward(UnaryOp::gelu_tanh, pre, out, g2, dpre);
                     return linear_grads(X, W, x_shape, dpre, need_x, need_w, need_b);
                   });
}

}  // namespace rlaif
