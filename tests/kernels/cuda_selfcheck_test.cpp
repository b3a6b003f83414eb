// The CUDA toolchain check: a kernel compiled for this build's architectures runs on the device
// and matches the host. Skips with the reason when there is no CUDA build or no device.
#include <gtest/gtest.h>

#ifdef RLAIF_HAVE_CUDA
#include "kernels/cuda/cuda_info.h"
#endif

namespace rlaif {
namespace {

TEST(CudaSelfcheck, SaxpyMatchesHost) {
#ifndef RLAIF_HAVE_CUDA
  GTEST_SKIP() << "built without the CUDA backend (no CUDA Toolkit or -DRLAIF_CUDA=OFF)";
#else
  cuda::CudaInfo info = cuda::query_cuda();
  if (info.devices.empty()) GTEST_SKIP() << "no usable CUDA device: " << info.problem;
  EXPECT_LE(cuda::cuda_saxpy_selfcheck(1 << 20 | 77), 1e-5);
#endif
}

}  // namespace
}  // namespace rlaif
