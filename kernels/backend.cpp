// The names of the primitives' operations, and the optional primitives' default
// implementations: each composes required primitives.
#include "kernels/backend.h"

#include <cmath>

#include "kernels/shape_checks.h"

namespace rlaif {

const char* unary_op_name(UnaryOp op) {
  switch (op) {
    case UnaryOp::neg:
      return "neg";
    case UnaryOp::exp:
      return "exp";
    case UnaryOp::log:
      return "log";
    case UnaryOp::sqrt:
      return "sqrt";
    case UnaryOp::square:
      return "square";
    case UnaryOp::abs:
      return "abs";
    case UnaryOp::relu:
      return "relu";
    case UnaryOp::sigmoid:
      return "sigmoid";
    case UnaryOp::log_sigmoid:
      return "log_sigmoid";
    case UnaryOp::tanh:
      return "tanh";
    case UnaryOp::gelu_tanh:
      return "gelu_tanh";
    case UnaryOp::silu:
      return "silu";
  }
  return "?";
}

const char* binary_op_name(BinaryOp op) {
  switch (op) {
    case BinaryOp::add:
      return "add";
    case BinaryOp::sub:
      return "sub";
    case BinaryOp::mul:
      return "mul";
    case BinaryOp::div:
      return "div";
    case BinaryOp::minimum:
      return "minimum";
    case BinaryOp::maximum:
      return "maximum";
  }
  return "?";
}

const char* reduce_op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::sum:
      return "sum";
    case ReduceOp::mean:
      return "mean";
    case ReduceOp::max:
      return "max";
  }
  return "?";
}

void Backend::linear_gelu(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& pre,
                          const Tensor& out) {
  RLAIF_CHECK(x.dim() == 2 && w.dim() == 2 && pre.dim() == 2, "linear_gelu: x ", x, ", w ", w,
              " and pre ", pre, " must be 2-D");
  RLAIF_CHECK(out.shape() == pre.shape() && out.dtype() == pre.dtype(), "linear_gelu: out ", out,
              " must match pre ", pre);
  matmul(x, w, pre, false, true, bias);
  unary(UnaryOp::gelu_tanh, pre, out);
}

void check_adamw_entry(const std::string& op, const AdamWTensors& e) {
  RLAIF_CHECK(e.param.defined() && e.grad.defined() && e.m.defined() && e.v.defined(), op,
              ": param, grad, m and v must all be defined");
  expect_shape(op.c_str(), "grad", e.grad, e.param.shape());
  expect_shape(op.c_str(), "m", e.m, e.param.shape());
  expect_shape(op.c_str(), "v", e.v, e.param.shape());
  if (e.master.defined()) expect_shape(op.c_str(), "master", e.master, e.param.shape());
  RLAIF_CHECK(e.grad.dtype() == e.param.dtype(), op, ": grad ", e.grad, " must have param ",
              e.param, "'s dtype");
  RLAIF_CHECK(e.m.dtype() == DType::f32 && e.v.dtype() == DType::f32 &&
                  (!e.master.defined() || e.master.dtype() == DType::f32),
              op, ": m, v and master must be f32");
  RLAIF_CHECK(e.master.defined() || e.param.dtype() == DType::f32, op, ": param ", e.param,
              " must be f32 when there is no master copy");
  RLAIF_CHECK(std::isfinite(e.weight_decay), op, ": weight_decay is ", e.weight_decay);
}

void Backend::adamw_steps(std::span<const AdamWTensors> params, const AdamWHyper& h,
                          float grad_scale) {
  for (size_t i = 0; i < params.size(); ++i) {
    check_adamw_entry("adamw_steps (entry " + std::to_string(i) + ")", params[i]);
  }
  RLAIF_CHECK(h.step >= 1, "adamw_steps: step is ", h.step, " but must be ≥ 1 (it is 1-based)");
  for (const AdamWTensors& e : params) {
    AdamWHyper hi = h;
    hi.weight_decay = e.weight_decay;
    Tensor grad = e.grad;
    if (grad_scale != 1.0f) {
      grad = Tensor::empty(e.grad.shape(), e.grad.dtype(), e.grad.device());
      affine(e.grad, grad_scale, 0.0f, grad);
    }
    adamw_step(e.param, grad, e.m, e.v, e.master, hi);
  }
}

void Backend::squared_norms(std::span<const Tensor> xs, const Tensor& out) {
  expect_shape("squared_norms", "out", out, Shape{static_cast<int64_t>(xs.size())});
  for (size_t i = 0; i < xs.size(); ++i) {
    const int64_t k = static_cast<int64_t>(i);
    squared_norm(xs[i], out.slice(k, k + 1).reshape({}));
  }
}

}  // namespace rlaif
