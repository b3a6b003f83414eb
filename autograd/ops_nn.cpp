// Transformer building blocks: embedding, LayerNorm, RMSNorm, SwiGLU, RoPE and attention. Each
// is one fused backend primitive forward and one backward, so the graph holds one node per layer
// piece and saves only what the fused backward needs (statistics, not intermediates).
#include <algorithm>
#include <utility>

#include "autograd/ops.h"
#include "autograd/ops_util.h"

namespace rlaif {

using namespace ops_detail;

Variable embedding(const Variable& weight, const Tensor& ids) {
  require("embedding", "weight", weight);
  RLAIF_CHECK(ids.defined(), "embedding: ids are undefined");
  RLAIF_CHECK(weight.dim() == 2, "embedding: weight must be [V, D], got ", weight.str());
  Shape out_shape = ids.shape();
  out_shape.push_back(weight.size(1));
  Tensor out = empty_as(out_shape, weight.data());
  backend_of(weight).embedding(weight.data(), ids, out);
  Shape w_shape = weight.shape();
  return record_op("embedding", out, {weight},
                   [ids, w_shape](const Tensor& g) -> std::vector<Tensor> {
                     Tensor dw = empty_as(w_shape, g);
                     backend_of(g).embedding_backward(ids, g, dw);
                     return {dw};
                   });
}

Variable layernorm(const Variable& x, const Variable& gamma, const Variable& beta, float eps) {
  require("layernorm", "x", x);
  require("layernorm", "gamma", gamma);
  RLAIF_CHECK(x.dim() >= 1, "layernorm: x needs a feature dimension, got ", x.str());
  Tensor in = x.data();
  int64_t rows = in.numel() / std::max<int64_t>(in.size(-1), 1);
  Tensor out = empty_like(in);
  Tensor mean = Tensor::empty({rows}, DType::f32, in.device());
  Tensor rstd = Tensor::empty({rows}, DType::f32, in.device());
  Tensor b = beta.defined() ? beta.data() : Tensor();
  backend_of(in).layernorm(in, gamma.data(), b, eps, out, mean, rstd);
  Tensor w = gamma.data();
  bool need_x = wants_grad(x), need_gamma = wants_grad(gamma), need_beta = wants_grad(beta);
  return record_op(
      "layernorm", out, {x, gamma, beta},
      [in, w, mean, rstd, need_x, need_gamma, need_beta](const Tensor& g) -> std::vector<Tensor> {
        // dx is always written by the primitive; it is only handed on when x wants it.
        Tensor dx = empty_like(in);
        Tensor dgamma = need_gamma ? empty_like(w) : Tensor();
        Tensor dbeta = need_beta ? empty_like(w) : Tensor();
        backend_of(g).layernorm_backward(in, w, mean, rstd, g, dx, dgamma, dbeta);
        return {need_x ? dx : Tensor(), dgamma, dbeta};
      });
}

Variable rmsnorm(const Variable& x, const Variable& gamma, float eps) {
  require("rmsnorm", "x", x);
  require("rmsnorm", "gamma", gamma);
  RLAIF_CHECK(x.dim() >= 1, "rmsnorm: x needs a feature dimension, got ", x.str());
  Tensor in = x.data();
  int64_t rows = in.numel() / std::max<int64_t>(in.size(-1), 1);
  Tensor out = empty_like(in);
  Tensor rstd = Tensor::empty({rows}, DType::f32, in.device());
  backend_of(in).rmsnorm(in, gamma.data(), eps, out, rstd);
  Tensor w = gamma.data();
  bool need_x = wants_grad(x);
  return record_op("rmsnorm", out, {x, gamma},
                   [in, w, rstd, need_x](const Tensor& g) -> std::vector<Tensor> {
                     // The primitive always writes both gradients (no optional outputs).
                     Tensor dx = empty_like(in);
                     Tensor dgamma = empty_like(w);
                     backend_of(g).rmsnorm_backward(in, w, rstd, g, dx, dgamma);
                     return {need_x ? dx : Tensor(), dgamma};
                   });
}

Variable swiglu(const Variable& gate, const Variable& up) {
  require("swiglu", "gate", gate);
  require("swiglu", "up", up);
  Tensor a = gate.data(), b = up.data();
  Tensor out = empty_like(a);
  backend_of(a).swiglu(a, b, out);
  bool need_gate = wants_grad(gate), need_up = wants_grad(up);
  return record_op("swiglu", out, {gate, up},
                   [a, b, need_gate, need_up](const Tensor& g) -> std::vector<Tensor> {
                     Tensor dgate = empty_like(a);
                     Tensor dup = empty_like(b);
                     backend_of(g).swiglu_backward(a, b, g, dgate, dup);
                     return {need_gate ? dgate : Tensor(), need_up ? dup : Tensor()};
                   });
}

Variable rope(const Variable& x, const Tensor& positions, float theta) {
  require("rope", "x", x);
  RLAIF_CHECK(positions.defined(), "rope: positions are undefined");
  Tensor out = empty_like(x.data());
  backend_of(x).rope(x.data(), positions, theta, false, out);
  // A rotation's transpose is its inverse: the backward pass rotates the gradient back.
  return record_op("rope", out, {x}, [positions, theta](const Tensor& g) -> std::vector<Tensor> {
    Tensor dx = empty_like(g);
    backend_of(g).rope(g, positions, theta, true, dx);
    return {dx};
  });
}

Variable attention(const Variable& q, const Variable& k, const Variable& v,
                   const Tensor& segment_ids, float scale) {
  require("attention", "q", q);
  require("attention", "k", k);
  require("attention", "v", v);
  RLAIF_CHECK(q.dim() == 4, "attention: q must be [B, T, Hq, Dh], got ", q.str());
  Tensor tq = q.data(), tk = k.data(), tv = v.data();
  Tensor out = empty_like(tq);
  Tensor lse = Tensor::empty({tq.size(0), tq.size(2), tq.size(1)}, DType::f32, tq.device());
  // kv_len = -1: training attends over the whole sequence, not a partially filled cache.
  backend_of(tq).attention(tq, tk, tv, segment_ids, -1, scale, out, lse);
  bool need_q = wants_grad(q), need_k = wants_grad(k), need_v = wants_grad(v);
  // Saves out and lse (the backward recomputes the probabilities; it never stores them).
  return record_op(
      "attention", out, {q, k, v},
      [tq, tk, tv, segment_ids, scale, out, lse, need_q, need_k,
       need_v](const Tensor& g) -> std::vector<Tensor> {
        Tensor dq = empty_like(tq), dk = empty_like(tk), dv = empty_like(tv);
        backend_of(g).attention_backward(tq, tk, tv, segment_ids, -1, scale, out, lse, g, dq, dk,
                                         dv);
        return {need_q ? dq : Tensor(), need_k ? dk : Tensor(), need_v ? dv : Tensor()};
      });
}

}  // namespace rlaif
