#include "kernels/cuda/cuda_common.cuh"

namespace rlaif::cuda {

CudaBackend::CudaBackend(int index) : index_(index) {
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();
    throw Error("cuda backend: no usable CUDA device (", cudaGetErrorString(err), ")");
  }
  RLAIF_CHECK(index >= 0 && index < count, "cuda backend: device cuda:", index, " does not exist (",
              count, " CUDA device", count == 1 ? "" : "s", " present)");
  check_cuda(cudaSetDevice(index), "cudaSetDevice", "cuda:" + std::to_string(index));
  check_cuda(cudaFree(nullptr), "creating the CUDA context", "cuda:" + std::to_string(index));
}

CudaBackend::~CudaBackend() = default;

void CudaBackend::synchronize() {
  check_cuda(cudaDeviceSynchronize(), "synchronize",
             "an earlier kernel failed; rerun with CUDA_LAUNCH_BLOCKING=1 to name it");
}

Backend* make_cuda_backend(int index) {
  return new CudaBackend(index);
}

}  // namespace rlaif::cuda
