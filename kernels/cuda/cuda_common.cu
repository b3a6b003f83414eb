#include <sstream>

#include "kernels/cuda/cuda_common.cuh"

namespace rlaif::cuda {

void check_cuda(cudaError_t err, const char* what, const std::string& detail) {
  if (err == cudaSuccess) return;
  cudaGetLastError();  // clear a non-sticky error so the next call starts clean
  throw Error("CUDA error in ", what, detail.empty() ? "" : " (", detail, detail.empty() ? "" : ")",
              ": ", cudaGetErrorName(err), ": ", cudaGetErrorString(err));
}

void check_launch(const char* kernel, const std::string& detail) {
  check_cuda(cudaGetLastError(), kernel, detail);
#ifdef RLAIF_CUDA_SYNC_CHECKS
  // Debug builds of the GPU check: attribute asynchronous faults to the kernel that caused them.
  check_cuda(cudaDeviceSynchronize(), kernel, detail);
#endif
}

std::string describe(std::initializer_list<std::pair<const char*, const Tensor*>> tensors) {
  std::ostringstream os;
  bool first = true;
  for (const auto& [name, t] : tensors) {
    if (!t->defined()) continue;
    os << (first ? "" : ", ") << name << " " << t->str();
    first = false;
  }
  return os.str();
}

void expect_cuda(const char* op, const char* arg, const Tensor& t) {
  RLAIF_CHECK(t.defined(), op, ": ", arg, " is undefined");
  RLAIF_CHECK(t.device().is_cuda(), op, ": ", arg, " is ", t,
              " but the cuda backend needs cuda tensors");
}

void expect_float(const char* op, const char* arg, const Tensor& t) {
  expect_cuda(op, arg, t);
  RLAIF_CHECK(t.dtype() == DType::f32 || t.dtype() == DType::bf16, op, ": ", arg, " is ", t,
              " but the cuda backend computes floats in f32 or bf16");
}

void expect_dtype(const char* op, const char* arg, const Tensor& t, DType dtype) {
  expect_cuda(op, arg, t);
  RLAIF_CHECK(t.dtype() == dtype, op, ": ", arg, " is ", t, " but must be ", dtype_name(dtype));
}

void expect_same_dtype(const char* op, const char* arg_a, const Tensor& a, const char* arg_b,
                       const Tensor& b) {
  RLAIF_CHECK(a.dtype() == b.dtype(), op, ": ", arg_a, " ", a, " and ", arg_b, " ", b,
              " must have the same dtype (the cuda backend does not mix f32 and bf16 here)");
}

}  // namespace rlaif::cuda
