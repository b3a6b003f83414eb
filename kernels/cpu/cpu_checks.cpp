#include "kernels/cpu/cpu_checks.h"

namespace rlaif::cpu {

void expect(const char* op, const char* arg, const Tensor& t, DType dtype) {
  RLAIF_CHECK(t.defined(), op, ": ", arg, " is undefined");
  RLAIF_CHECK(t.device().is_cpu(), op, ": ", arg, " is ", t,
              " but the cpu backend needs cpu tensors");
  RLAIF_CHECK(t.dtype() == dtype, op, ": ", arg, " is ", t, " but must be ", dtype_name(dtype),
              dtype == DType::f32 && is_floating(t.dtype())
                  ? " (the cpu backend computes in f32: cast first)"
                  : "");
}

void expect(const char* op, const char* arg, const Tensor& t, DType dtype, const Shape& shape) {
  expect(op, arg, t, dtype);
  RLAIF_CHECK(t.shape() == shape, op, ": ", arg, " is ", t, " but must have shape ",
              shape_str(shape));
}

void expect_same_shape(const char* op, const char* arg_a, const Tensor& a, const char* arg_b,
                       const Tensor& b) {
  RLAIF_CHECK(a.shape() == b.shape(), op, ": ", arg_a, " ", a, " and ", arg_b, " ", b,
              " must have the same shape");
}

int64_t last_dim(const char* op, const char* arg, const Tensor& t) {
  RLAIF_CHECK(t.dim() >= 1, op, ": ", arg, " ", t, " needs at least one dimension");
  return t.size(-1);
}

int64_t rows(const Tensor& t) {
  int64_t d = t.dim() >= 1 ? t.size(-1) : 1;
  return d == 0 ? 0 : t.numel() / d;
}

}  // namespace rlaif::cpu
