// Elementwise ops: binary arithmetic with suffix broadcasting, the unary functions, affine,
// clamp and where.
#include <utility>

#include "autograd/ops.h"
#include "autograd/ops_util.h"

namespace rlaif {

using namespace ops_detail;

namespace {

// d(broadcast b) from a gradient of a's shape: the sum over the leading dimensions b was
// broadcast across. b is a's shape, a suffix of it, or one element, so viewing g as
// [rows, b.numel()] and summing the rows covers all three.
Tensor reduce_to(const Tensor& g, const Shape& b_shape) {
  if (g.shape() == b_shape) return g;
  int64_t n = shape_numel(b_shape);
  Tensor out = empty_as({n}, g);
  backend_of(g).reduce(ReduceOp::sum, g.reshape({-1, n}), 0, out);
  return out.reshape(b_shape);
}

Variable binary_op(BinaryOp op, const Variable& a, const Variable& b) {
  const char* name = binary_op_name(op);
  require(name, "a", a);
  require(name, "b", b);
  Tensor x = a.data(), y = b.data();
  Tensor out = empty_like(x);
  backend_of(x).binary(op, x, y, out);
  bool need_a = wants_grad(a), need_b = wants_grad(b);

  if (op == BinaryOp::add || op == BinaryOp::sub) {
    // The gradient does not depend on the operands' values: save only b's shape, and pass dout
    // through to a without a copy.
    Shape b_shape = y.shape();
    bool negate = op == BinaryOp::sub;
    return record_op(name, out, {a, b},
                     [need_a, need_b, negate, b_shape](const Tensor& g) -> std::vector<Tensor> {
                       Tensor da = need_a ? g : Tensor();
                       Tensor db;
                       if (need_b) {
                         db = reduce_to(g, b_shape);
                         if (negate) {
                           Tensor neg = empty_like(db);
                           backend_of(db).unary(UnaryOp::neg, db, neg);
                           db = neg;
                         }
                       }
                       return {da, db};
                     });
  }
  return record_op(name, out, {a, b},
                   [op, x, y, need_a, need_b](const Tensor& g) -> std::vector<Tensor> {
                     Tensor da = need_a ? empty_like(x) : Tensor();
                     Tensor db = need_b ? empty_like(y) : Tensor();
                     backend_of(g).binary_backward(op, x, y, g, da, db);
                     return {da, db};
                   });
}

Variable unary_op(UnaryOp op, const Variable& x) {
  const char* name = unary_op_name(op);
  require(name, "x", x);
  Tensor in = x.data();
  Tensor out = empty_like(in);
  backend_of(in).unary(op, in, out);
  return record_op(name, out, {x}, [op, in, out](const Tensor& g) -> std::vector<Tensor> {
    Tensor dx = empty_like(in);
    backend_of(g).unary_backward(op, in, out, g, dx);
    return {dx};
  });
}

}  // namespace

Variable add(const Variable& a, const Variable& b) {
  return binary_op(BinaryOp::add, a, b);
}
Variable sub(const Variable& a, const Variable& b) {
  return binary_op(BinaryOp::sub, a, b);
}
Variable mul(const Variable& a, const Variable& b) {
  return binary_op(BinaryOp::mul, a, b);
}
Variable div(const Variable& a, const Variable& b) {
  return binary_op(BinaryOp::div, a, b);
}
Variable minimum(const Variable& a, const Variable& b) {
  return binary_op(BinaryOp::minimum, a, b);
}
Variable maximum(const Variable& a, const Variable& b) {
  return binary_op(BinaryOp::maximum, a, b);
}

Variable neg(const Variable& x) {
  return unary_op(UnaryOp::neg, x);
}
Variable exp(const Variable& x) {
  return unary_op(UnaryOp::exp, x);
}
Variable log(const Variable& x) {
  return unary_op(UnaryOp::log, x);
}
Variable sqrt(const Variable& x) {
  return unary_op(UnaryOp::sqrt, x);
}
Variable square(const Variable& x) {
  return unary_op(UnaryOp::square, x);
}
Variable abs(const Variable& x) {
  return unary_op(UnaryOp::abs, x);
}
Variable relu(const Variable& x) {
  return unary_op(UnaryOp::relu, x);
}
Variable sigmoid(const Variable& x) {
  return unary_op(UnaryOp::sigmoid, x);
}
Variable log_sigmoid(const Variable& x) {
  return unary_op(UnaryOp::log_sigmoid, x);
}
Variable tanh(const Variable& x) {
  return unary_op(UnaryOp::tanh, x);
}
Variable gelu(const Variable& x) {
  return unary_op(UnaryOp::gelu_tanh, x);
}
Variable silu(const Variable& x) {
  return unary_op(UnaryOp::silu, x);
}

Variable affine(const Variable& x, float alpha, float beta) {
  require("affine", "x", x);
  Tensor out = empty_like(x.data());
  backend_of(x).affine(x.data(), alpha, beta, out);
  return record_op("affine", out, {x}, [alpha](const Tensor& g) -> std::vector<Tensor> {
    Tensor dx = empty_like(g);
    backend_of(g).affine(g, alpha, 0.0f, dx);
    return {dx};
  });
}

Variable scale(const Variable& x, float alpha) {
  return affine(x, alpha, 0.0f);
}

Variable clamp(const Variable& x, float lo, float hi) {
  require("clamp", "x", x);
  RLAIF_CHECK(lo <= hi, "clamp: lo ", lo, " > hi ", hi, " for ", x.str());
  Tensor in = x.data();
  Tensor out = empty_like(in);
  backend_of(in).clamp(in, lo, hi, out);
  return record_op("clamp", out, {x}, [in, lo, hi](const Tensor& g) -> std::vector<Tensor> {
    Tensor dx = empty_like(in);
    backend_of(g).clamp_backward(in, lo, hi, g, dx);
    return {dx};
  });
}

Variable where(const Tensor& cond, const Variable& a, const Variable& b) {
  require("where", "a", a);
  require("where", "b", b);
  RLAIF_CHECK(cond.defined(), "where: cond is undefined");
  Tensor out = empty_like(a.data());
  backend_of(a).where(cond, a.data(), b.data(), out);
  bool need_a = wants_grad(a), need_b = wants_grad(b);
  return record_op("where", out, {a, b},
                   [cond, need_a, need_b](const Tensor& g) -> std::vector<Tensor> {
                     // The gradient is routed like the values: dout where chosen, 0 elsewhere.
                     Backend& backend = backend_of(g);
                     Tensor zero = Tensor::zeros(g.shape(), g.dtype(), g.device());
                     Tensor da, db;
                     if (need_a) {
                       da = empty_like(g);
                       backend.where(cond, g, zero, da);
                     }
                     if (need_b) {
                       db = empty_like(g);
                       backend.where(cond, zero, g, db);
                     }
                     return {da, db};
                   });
}

}  // namespace rlaif
