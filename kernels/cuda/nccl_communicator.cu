#include "kernels/cuda/nccl_communicator.h"

#include <nccl.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "kernels/cuda/cuda_common.cuh"

namespace rlaif::cuda {
namespace {

// The legacy default stream: the CUDA backend's (see the header).
constexpr cudaStream_t kStream = 0;

ncclDataType_t nccl_type(DType dtype) {
  switch (dtype) {
    case DType::f32:
      return ncclFloat32;
    case DType::bf16:
      return ncclBfloat16;
    case DType::i32:
      return ncclInt32;
    case DType::i64:
      return ncclInt64;
    default:
      throw Error("NcclCommunicator: no NCCL reduction for ", dtype_name(dtype));  // checked before
  }
}

void check_nccl(ncclResult_t result, ncclComm* comm, const std::string& where, const char* call) {
  if (result == ncclSuccess) return;
  const char* last = comm ? ncclGetLastError(comm) : nullptr;
  throw Error(where, ": ", call, " failed: ", ncclGetErrorString(result),
              last && *last ? std::string(" (") + last + ")" : "");
}

void throw_if(const std::string& problem) {
  if (!problem.empty()) throw Error(problem);
}

}  // namespace

NcclCommunicator::NcclCommunicator(Communicator& bootstrap, int device)
    : bootstrap_(bootstrap), device_(device), rank_(bootstrap.rank()), size_(bootstrap.size()) {
  const std::string where = Error::concat("NcclCommunicator on rank ", rank_, " of ", size_,
                                          " (cuda:", device, ", bootstrap ", bootstrap.name(), ")");
  // Rank 0's unique id travels through the bootstrap behind one status byte, so that a failure
  // on rank 0 stops every rank instead of leaving them waiting in ncclCommInitRank.
  Tensor id_bytes = Tensor::zeros({1 + static_cast<int64_t>(sizeof(ncclUniqueId))}, DType::u8);
  uint8_t* bytes = id_bytes.data<uint8_t>();
  ncclUniqueId id;
  std::string rank0_error;
  if (rank_ == 0) {
    ncclResult_t made = ncclGetUniqueId(&id);
    if (made == ncclSuccess) {
      bytes[0] = 1;
      std::memcpy(bytes + 1, &id, sizeof id);
    } else {
      rank0_error = ncclGetErrorString(made);
    }
  }
  bootstrap_.broadcast(id_bytes, 0);
  RLAIF_CHECK(bytes[0] == 1, where, ": rank 0 could not make NCCL's unique id",
              rank0_error.empty() ? "" : ": ", rank0_error);
  std::memcpy(&id, bytes + 1, sizeof id);

  check_cuda(cudaSetDevice(device_), "cudaSetDevice", where);
  check_nccl(ncclCommInitRank(&comm_, size_, id, rank_), nullptr, where, "ncclCommInitRank");
  check_cuda(cudaMalloc(&barrier_value_, sizeof(float)), "cudaMalloc", where);
  check_cuda(cudaMemset(barrier_value_, 0, sizeof(float)), "cudaMemset", where);
}

NcclCommunicator::~NcclCommunicator() {
  if (comm_ != nullptr) ncclCommDestroy(comm_);
  if (barrier_value_ != nullptr) cudaFree(barrier_value_);
}

void NcclCommunicator::all_reduce_sum(const Tensor& t) {
  const Collective op = Collective::all_reduce_sum;
  throw_if(collective_problem(*this, op, t, Tensor(), 0, Device::cuda(device_)));
  if (t.numel() == 0) return;
  check_nccl(ncclAllReduce(t.raw_data(), t.raw_data(), static_cast<size_t>(t.numel()),
                           nccl_type(t.dtype()), ncclSum, comm_, kStream),
             comm_, collective_context(*this, op) + " (" + t.str() + ")", "ncclAllReduce");
}

void NcclCommunicator::all_reduce_mean(const Tensor& t) {
  const Collective op = Collective::all_reduce_mean;
  throw_if(collective_problem(*this, op, t, Tensor(), 0, Device::cuda(device_)));
  if (t.numel() == 0) return;
  check_nccl(ncclAllReduce(t.raw_data(), t.raw_data(), static_cast<size_t>(t.numel()),
                           nccl_type(t.dtype()), ncclAvg, comm_, kStream),
             comm_, collective_context(*this, op) + " (" + t.str() + ")", "ncclAllReduce");
}

void NcclCommunicator::reduce_scatter_sum(const Tensor& input, const Tensor& output) {
  const Collective op = Collective::reduce_scatter_sum;
  throw_if(collective_problem(*this, op, input, output, 0, Device::cuda(device_)));
  if (output.numel() == 0) return;
  check_nccl(
      ncclReduceScatter(input.raw_data(), output.raw_data(), static_cast<size_t>(output.numel()),
                        nccl_type(input.dtype()), ncclSum, comm_, kStream),
      comm_,
      collective_context(*this, op) + " (input " + input.str() + ", output " + output.str() + ")",
      "ncclReduceScatter");
}

void NcclCommunicator::all_gather(const Tensor& input, const Tensor& output) {
  const Collective op = Collective::all_gather;
  throw_if(collective_problem(*this, op, input, output, 0, Device::cuda(device_)));
  if (input.numel() == 0) return;
  // Bytes: every dtype gathers the same way.
  check_nccl(
      ncclAllGather(input.raw_data(), output.raw_data(), input.nbytes(), ncclUint8, comm_, kStream),
      comm_,
      collective_context(*this, op) + " (input " + input.str() + ", output " + output.str() + ")",
      "ncclAllGather");
}

void NcclCommunicator::broadcast(const Tensor& t, int root) {
  const Collective op = Collective::broadcast;
  throw_if(collective_problem(*this, op, t, Tensor(), root, Device::cuda(device_)));
  if (t.numel() == 0) return;
  check_nccl(
      ncclBroadcast(t.raw_data(), t.raw_data(), t.nbytes(), ncclUint8, root, comm_, kStream), comm_,
      collective_context(*this, op) + " (" + t.str() + ", root " + std::to_string(root) + ")",
      "ncclBroadcast");
}

void NcclCommunicator::barrier() {
  const std::string where = collective_context(*this, Collective::barrier);
  check_cuda(cudaSetDevice(device_), "cudaSetDevice", where);
  check_nccl(ncclAllReduce(barrier_value_, barrier_value_, 1, ncclFloat32, ncclSum, comm_, kStream),
             comm_, where, "ncclAllReduce");
  check_cuda(cudaStreamSynchronize(kStream), "cudaStreamSynchronize", where);
}

void NcclCommunicator::abort_job(int exit_code) {
  if (comm_ != nullptr) ncclCommAbort(comm_);
  comm_ = nullptr;
  bootstrap_.abort_job(exit_code);
  std::_Exit(exit_code);  // not reached; nvcc's host pass loses the callee's [[noreturn]]
}

}  // namespace rlaif::cuda
