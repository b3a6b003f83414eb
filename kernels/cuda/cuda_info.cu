// Placeholder of the CUDA backend (the kernels come with the CUDA backend issue): device query
// and a saxpy self-check that proves nvcc, the compiled architectures and the driver agree.
#include "kernels/cuda/cuda_info.h"

#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <vector>

#ifdef RLAIF_HAVE_NCCL
#include <nccl.h>
#endif

#include "runtime/error.h"

namespace rlaif::cuda {
namespace {

void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) throw Error("CUDA error in ", what, ": ", cudaGetErrorString(err));
}

__global__ void saxpy_kernel(int n, float a, const float* x, float* y) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = a * x[i] + y[i];
}

}  // namespace

CudaInfo query_cuda() {
  CudaInfo info;
  cudaRuntimeGetVersion(&info.runtime_version);
  cudaDriverGetVersion(&info.driver_version);
#ifdef RLAIF_HAVE_NCCL
  ncclGetVersion(&info.nccl_version);
#endif
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    info.problem = cudaGetErrorString(err);
    cudaGetLastError();  // clear the sticky error so later calls start clean
    return info;
  }
  for (int d = 0; d < count; ++d) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, d) != cudaSuccess) continue;
    char size[32];
    std::snprintf(size, sizeof size, "%.1f GiB",
                  static_cast<double>(prop.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0));
    info.devices.push_back(std::string(prop.name) + " (sm_" + std::to_string(prop.major) +
                           std::to_string(prop.minor) + ", " + size + ")");
  }
  if (info.devices.empty()) info.problem = "no CUDA device found";
  return info;
}

double cuda_saxpy_selfcheck(int n) {
  CudaInfo info = query_cuda();
  if (info.devices.empty()) throw Error("cuda_saxpy_selfcheck: ", info.problem);
  std::vector<float> x(n), y(n);
  for (int i = 0; i < n; ++i) {
    x[i] = 0.5f * static_cast<float>(i % 97);
    y[i] = 1.0f - 0.25f * static_cast<float>(i % 13);
  }
  float *dx = nullptr, *dy = nullptr;
  size_t bytes = sizeof(float) * static_cast<size_t>(n);
  check(cudaMalloc(&dx, bytes), "cudaMalloc");
  check(cudaMalloc(&dy, bytes), "cudaMalloc");
  check(cudaMemcpy(dx, x.data(), bytes, cudaMemcpyHostToDevice), "cudaMemcpy");
  check(cudaMemcpy(dy, y.data(), bytes, cudaMemcpyHostToDevice), "cudaMemcpy");
  saxpy_kernel<<<(n + 255) / 256, 256>>>(n, 3.0f, dx, dy);
  check(cudaGetLastError(), "saxpy_kernel launch");
  std::vector<float> out(n);
  check(cudaMemcpy(out.data(), dy, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy");
  cudaFree(dx);
  cudaFree(dy);
  double worst = 0.0;
  for (int i = 0; i < n; ++i) {
    worst = std::max(worst, std::fabs(static_cast<double>(out[i]) - (3.0 * x[i] + y[i])));
  }
  return worst;
}

}  // namespace rlaif::cuda
