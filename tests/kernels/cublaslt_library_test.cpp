// cuBLASLt is opened on first use, not linked: a process that never multiplies on a GPU never
// loads it (nor pays for its start-up code), and the first use finds the library and every
// function the CUDA backend calls. Needs the CUDA Toolkit's libraries, not a GPU.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#ifdef RLAIF_HAVE_CUDA
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_info.h"
#endif

namespace rlaif {
namespace {

[[maybe_unused]] bool mapped(const std::string& library) {
  std::ifstream maps("/proc/self/maps");
  std::stringstream text;
  text << maps.rdbuf();
  return text.str().find(library) != std::string::npos;
}

TEST(CublasLtLibrary, IsOpenedOnFirstUseWithEveryFunction) {
#ifndef RLAIF_HAVE_CUDA
  GTEST_SKIP() << "built without the CUDA backend (no CUDA Toolkit or -DRLAIF_CUDA=OFF)";
#else
  // Without a GPU nothing has multiplied on one, so the library must not be open yet. (With a
  // GPU, tests run before this one in the same process may have opened it.)
  if (cuda::query_cuda().devices.empty()) {
    EXPECT_FALSE(mapped("libcublasLt.so")) << "cuBLASLt was loaded at start-up";
  }
  const size_t version = cuda::cublaslt_version();  // opens it and resolves every function
  EXPECT_GE(version, 110000u) << "cuBLASLt " << version << " predates CUDA 11";
  EXPECT_EQ(cuda::cublaslt_version(), version);
  EXPECT_TRUE(mapped("libcublasLt.so"));
#endif
}

}  // namespace
}  // namespace rlaif
