// Transformer building blocks: embedding, LayerNorm, RMSNorm (alone or fused with the residual
// add before them), SwiGLU, RoPE and attention. Each is one fused backend primitive forward and
// one backward, so the graph holds one node per layer piece and saves only what the fused
// backward needs (statistics, not intermediates).
#include <algorithm>
#include <memory>
#include <string>
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
  // dweight is a scatter-add over the rows the ids name: where the engine has a .grad to add it to
  // (a tied LM head's, which the backward pass reaches first, or an earlier micro-batch's), it is
  // added there in place, in those rows only, with no [V, D] temporary zeroed and then added in a
  // second pass over [V, D] (50257 × 768 for GPT-2).
  return record_op_into_leaves(
      "embedding", out, {weight},
      [ids, w_shape](const Tensor& g,
                     const std::vector<Tensor>& leaf_grads) -> std::vector<Tensor> {
        if (leaf_grads[0].defined()) {
          backend_of(g).embedding_backward(ids, g, leaf_grads[0], /*accumulate=*/true);
          return {Tensor()};
        }
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

namespace {

// Where the two output nodes of an add_layernorm / add_rmsnorm park their gradients.
struct AddNormGrads {
  Tensor dsum, dout;
};

// add_layernorm (layer) or add_rmsnorm. A node of the tape has one output, so, as in
// checkpoint_multi, sum and out get a node each, both consuming a hidden scalar made by the op's
// node proper: the engine runs that node after both output nodes (its consumers), that is once
// every gradient of sum and of out is in, each output node having parked its gradient here and
// passed a dummy one on. The node then starts dx from d(sum) and has the norm's backward add its
// gradient into it (accumulate_dx): no separate dx tensor written and re-read by an engine add.
// The numbers are those of add then norm: the accumulation is the f32 addition the engine would
// do, of the same two terms.
AddNorm add_norm(bool layer, const Variable& x, const Variable& residual, const Variable& gamma,
                 const Variable& beta, float eps) {
  const char* op = layer ? "add_layernorm" : "add_rmsnorm";
  require(op, "x", x);
  require(op, "residual", residual);
  require(op, "gamma", gamma);
  RLAIF_CHECK(x.dim() >= 1, op, ": x needs a feature dimension, got ", x.str());
  RLAIF_CHECK(residual.shape() == x.shape(), op, ": residual ", residual.str(),
              " must have the shape of x ", x.str());
  Tensor in = x.data(), w = gamma.data();
  const int64_t rows = in.numel() / std::max<int64_t>(in.size(-1), 1);
  Tensor sum = empty_like(in), out = empty_like(in);
  Tensor mean = layer ? Tensor::empty({rows}, DType::f32, in.device()) : Tensor();
  Tensor rstd = Tensor::empty({rows}, DType::f32, in.device());
  if (layer) {
    backend_of(in).add_layernorm(in, residual.data(), w, beta.defined() ? beta.data() : Tensor(),
                                 eps, sum, out, mean, rstd);
  } else {
    backend_of(in).add_rmsnorm(in, residual.data(), w, eps, sum, out, rstd);
  }

  std::vector<Variable> inputs{x, residual, gamma};
  if (layer) inputs.push_back(beta);
  if (!should_record(inputs)) return {Variable(sum), Variable(out)};
  const bool need_x = wants_grad(x), need_residual = wants_grad(residual);
  const bool need_gamma = wants_grad(gamma), need_beta = wants_grad(beta);
  auto grads = std::make_shared<AddNormGrads>();
  Variable node = record_op(
      op, Tensor::scalar(0.0f), inputs,
      [grads, layer, sum, w, mean, rstd, need_x, need_residual, need_gamma,
       need_beta](const Tensor&) -> std::vector<Tensor> {
        Tensor dx = std::exchange(grads->dsum, Tensor());  // undefined: sum got no gradient
        Tensor dout = std::exchange(grads->dout, Tensor());
        Tensor dgamma, dbeta;
        if (dout.defined()) {
          const bool accumulate = dx.defined();
          if (!accumulate) {
            dx = empty_like(sum);
          } else if (dx.use_count() > 1) {
            dx = dx.clone();  // shared (a gradient passed through, the caller's seed): not ours
          }
          if (layer) {
            dgamma = need_gamma ? empty_like(w) : Tensor();
            dbeta = need_beta ? empty_like(w) : Tensor();
            backend_of(dout).layernorm_backward(sum, w, mean, rstd, dout, dx, dgamma, dbeta,
                                                accumulate);
          } else {
            dgamma = empty_like(w);  // rmsnorm_backward always writes it
            backend_of(dout).rmsnorm_backward(sum, w, rstd, dout, dx, dgamma, accumulate);
            if (!need_gamma) dgamma = Tensor();
          }
        }
        // d(x + residual) reaches both terms unchanged.
        std::vector<Tensor> result{need_x ? dx : Tensor(), need_residual ? dx : Tensor(), dgamma};
        if (layer) result.push_back(dbeta);
        return result;
      });
  const std::string name(op);
  Variable sum_var =
      record_op(name + "_sum", sum, {node}, [grads](const Tensor& g) -> std::vector<Tensor> {
        grads->dsum = g;
        return {Tensor::scalar(0.0f)};
      });
  Variable out_var =
      record_op(name + "_out", out, {node}, [grads](const Tensor& g) -> std::vector<Tensor> {
        grads->dout = g;
        return {Tensor::scalar(0.0f)};
      });
  return {sum_var, out_var};
}

}  // namespace

AddNorm add_layernorm(const Variable& x, const Variable& residual, const Variable& gamma,
                      const Variable& beta, float eps) {
  return add_norm(true, x, residual, gamma, beta, eps);
}

AddNorm add_rmsnorm(const Variable& x, const Variable& residual, const Variable& gamma, float eps) {
  return add_norm(false, x, residual, gamma, Variable(), eps);
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
                   const Tensor& segment_ids, int64_t window, float scale) {
  require("attention", "q", q);
  require("attention", "k", k);
  require("attention", "v", v);
  RLAIF_CHECK(q.dim() == 4, "attention: q must be [B, T, Hq, Dh], got ", q.str());
  Tensor tq = q.data(), tk = k.data(), tv = v.data();
  Tensor out = empty_like(tq);
  Tensor lse = Tensor::empty({tq.size(0), tq.size(2), tq.size(1)}, DType::f32, tq.device());
  // kv_len = -1: training attends over the whole sequence, not a partially filled cache.
  backend_of(tq).attention(tq, tk, tv, segment_ids, -1, window, scale, out, lse);
  bool need_q = wants_grad(q), need_k = wants_grad(k), need_v = wants_grad(v);
  // Saves out and lse (the backward recomputes the probabilities; it never stores them).
  return record_op(
      "attention", out, {q, k, v},
      [tq, tk, tv, segment_ids, window, scale, out, lse, need_q, need_k,
       need_v](const Tensor& g) -> std::vector<Tensor> {
        Tensor dq = empty_like(tq), dk = empty_like(tk), dv = empty_like(tv);
        backend_of(g).attention_backward(tq, tk, tv, segment_ids, -1, window, scale, out, lse, g,
                                         dq, dk, dv);
        return {need_q ? dq : Tensor(), need_k ? dk : Tensor(), need_v ? dv : Tensor()};
      });
}

}  // namespace rlaif
