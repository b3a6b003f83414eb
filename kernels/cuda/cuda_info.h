// What the CUDA runtime sees: versions and devices. Plain C++ header (no CUDA types) so the CLI
// can report it without including CUDA headers.
#pragma once

#include <string>
#include <vector>

namespace rlaif::cuda {

struct CudaInfo {
  int runtime_version = 0;           // e.g. 13000 for CUDA 13.0
  int driver_version = 0;            // 0 when no driver is installed
  std::vector<std::string> devices;  // "NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB)"
  int nccl_version = 0;              // 0 when NCCL is not linked
  std::string problem;               // why no device is usable, when devices is empty
};

CudaInfo query_cuda();

// Runs a small kernel on device 0 (y = a·x + y over n elements) and returns the largest error
// against the host result; throws Error when no device is usable. Proves the toolchain, the
// architectures compiled in and the driver agree.
double cuda_saxpy_selfcheck(int n);

}  // namespace rlaif::cuda
