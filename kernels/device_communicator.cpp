#include "kernels/device_communicator.h"

#include <cstdlib>
#include <cstring>
#include <mutex>

#ifdef RLAIF_HAVE_NCCL
#include "kernels/cuda/nccl_communicator.h"
#endif

namespace rlaif {

Communicator& communicator_for(Device device) {
  Communicator& world = world_communicator();
  if (device.type == DeviceType::cpu) return world;
  const char* forced = std::getenv("RLAIF_NCCL");
  const bool want_nccl = world.size() > 1 || (forced != nullptr && std::strcmp(forced, "1") == 0);
  if (!want_nccl) return world;
#ifdef RLAIF_HAVE_NCCL
  // One NCCL communicator per process: a rank drives one GPU. Never destroyed: at static
  // destruction the CUDA runtime may already be gone, and the process's exit frees it anyway.
  static std::mutex mutex;
  static cuda::NcclCommunicator* nccl = nullptr;
  std::lock_guard<std::mutex> lock(mutex);
  if (nccl == nullptr) nccl = new cuda::NcclCommunicator(world, device.index);
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

}  // namespace rlaif
