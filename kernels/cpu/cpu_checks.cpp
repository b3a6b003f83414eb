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
  expect_shape(op, arg, t, shape);
}

}  // namespace rlaif::cpu
