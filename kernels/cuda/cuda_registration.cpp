// The "cuda" device type's registration (kernels/device_registry.h): the caching allocator, the
// backend factory, the communicator of GPU tensors, and the float dtypes (f32 and bf16).
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "kernels/cuda/cuda_backend.h"
#include "runtime/error.h"
#ifdef RLAIF_HAVE_NCCL
#include "kernels/cuda/nccl_communicator.h"
#endif

namespace rlaif::cuda {
namespace {

// An NcclCommunicator over the world's ranks on `device`, made on first use and kept until exit,
// when the job has several ranks or the environment sets RLAIF_NCCL=1 (a one-rank NCCL run, to
// check NCCL against a plain run); else world_communicator() (one process: every collective is
// the identity, on any device). Error when several ranks need NCCL and this rlaif was built
// without it, or when asked for a second device.
Communicator& cuda_communicator(Device device) {
  Communicator& world = world_communicator();
  const char* forced = std::getenv("RLAIF_NCCL");
  const bool want_nccl = world.size() > 1 || (forced != nullptr && std::strcmp(forced, "1") == 0);
  if (!want_nccl) return world;
#ifdef RLAIF_HAVE_NCCL
  // One NCCL communicator per process: a rank drives one GPU. Never destroyed: at static
  // destruction the CUDA runtime may already be gone, and the process's exit frees it anyway.
  static std::mutex mutex;
  static NcclCommunicator* nccl = nullptr;
  std::lock_guard<std::mutex> lock(mutex);
  if (nccl == nullptr) nccl = new NcclCommunicator(world, device.index);
  RLAIF_CHECK(nccl->device() == device.index, "communicator_for(", device.str(),
              "): this rank already communicates on cuda:", nccl->device(),
              "; one rank drives one GPU");
  return *nccl;
#else
  throw Error("communicator_for(", device.str(), "): ", world.size(),
              " ranks train on the GPU, which needs NCCL, but this rlaif was built without it "
              "(install NCCL, libnccl-dev, and rebuild; `rlaif version` lists what was built in)");
#endif
}

}  // namespace

DeviceTypeRegistration cuda_registration() {
  DeviceTypeRegistration r;
  r.type = DeviceType::cuda;
  r.memory = cuda_device_memory();
  r.make_backend = &make_cuda_backend;
  r.communicator = &cuda_communicator;
  r.float_dtypes = {DType::f32, DType::bf16};
  return r;
}

}  // namespace rlaif::cuda
