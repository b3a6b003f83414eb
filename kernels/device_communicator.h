// The communicator of a data-parallel run's device tensors (gradients, optimizer shards).
//
// world_communicator() (runtime/communicator.h) joins the ranks of a job and moves CPU tensors
// (MPI). Tensors on a GPU move through NCCL instead, GPU to GPU without a host copy; NCCL's ranks
// are the world's, bootstrapped through it (cuda::NcclCommunicator). Each device type registers
// its communicator (kernels/device_registry.h), so the trainer only asks for "the communicator of
// my model's device".
#pragma once

#include "runtime/communicator.h"
#include "runtime/device.h"

namespace rlaif {

// For CPU tensors: world_communicator(). For another device type: its registered communicator
// (CUDA: an NcclCommunicator over the world's ranks on `device`, made on first use and kept until
// exit, when the job has several ranks or the environment sets RLAIF_NCCL=1 (a one-rank NCCL run,
// to check NCCL against a plain run); else world_communicator(), one process, where every
// collective is the identity. Error when several ranks need NCCL and this rlaif was built without
// it, or when asked for a second device). A type registered without a communicator gets
// world_communicator() in a one-rank job and an Error otherwise.
Communicator& communicator_for(Device device);

}  // namespace rlaif
