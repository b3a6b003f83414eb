#include "kernels/cuda/nccl_communicator.h"

#include <nccl.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "kernels/cuda/cuda_common.cuh"

namespace rlaif::cuda {
namespace {

// The legacy default stream: the CUDA backend's (see the header).
constexpr cudaStream_t kComputeStream = 0;

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
  // Non-blocking: a stream made otherwise would wait for the legacy default stream (and make it
  // wait) at every launch, and nothing would run alongside.
  check_cuda(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate", where);
  check_cuda(cudaEventCreateWithFlags(&entry_, cudaEventDisableTiming), "cudaEventCreate", where);
  for (cudaEvent_t& e : done_)
    check_cuda(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "cudaEventCreate", where);
}

NcclCommunicator::~NcclCommunicator() {
  // Drain the stream before the communicator goes: its queued kernels use NCCL's buffers.
  cudaSetDevice(device_);
  if (stream_ != nullptr) cudaStreamSynchronize(stream_);
  if (comm_ != nullptr) ncclCommDestroy(comm_);
  for (cudaEvent_t e : done_)
    if (e != nullptr) cudaEventDestroy(e);
  if (entry_ != nullptr) cudaEventDestroy(entry_);
  if (stream_ != nullptr) cudaStreamDestroy(stream_);
  if (barrier_value_ != nullptr) cudaFree(barrier_value_);
}

void NcclCommunicator::enter(const std::string& where) {
  check_cuda(cudaEventRecord(entry_, kComputeStream), "cudaEventRecord", where);
  check_cuda(cudaStreamWaitEvent(stream_, entry_, 0), "cudaStreamWaitEvent", where);
}

Communicator::Ticket NcclCommunicator::leave(const std::string& where) {
  const Ticket ticket = ++last_ticket_;
  check_cuda(cudaEventRecord(done_[ticket % kTicketEvents], stream_), "cudaEventRecord", where);
  return ticket;
}

void NcclCommunicator::wait(Ticket ticket) {
  if (ticket == 0) return;  // nothing was queued (an empty tensor)
  RLAIF_CHECK(ticket <= last_ticket_, "NcclCommunicator::wait on rank ", rank_, ": ticket ", ticket,
              " was never issued (the last is ", last_ticket_, ")");
  check_cuda(cudaStreamWaitEvent(kComputeStream, done_[ticket % kTicketEvents], 0),
             "cudaStreamWaitEvent", "NcclCommunicator::wait");
}

void NcclCommunicator::queue_all_reduce(const Tensor& t, bool mean) {
  const std::string where =
      collective_context(*this, mean ? Collective::all_reduce_mean : Collective::all_reduce_sum) +
      " (" + t.str() + ")";
  enter(where);
  check_nccl(ncclAllReduce(t.raw_data(), t.raw_data(), static_cast<size_t>(t.numel()),
                           nccl_type(t.dtype()), mean ? ncclAvg : ncclSum, comm_, stream_),
             comm_, where, "ncclAllReduce");
}

void NcclCommunicator::queue_reduce_scatter(const Tensor& input, const Tensor& output) {
  const std::string where = collective_context(*this, Collective::reduce_scatter_sum) + " (input " +
                            input.str() + ", output " + output.str() + ")";
  enter(where);
  check_nccl(
      ncclReduceScatter(input.raw_data(), output.raw_data(), static_cast<size_t>(output.numel()),
                        nccl_type(input.dtype()), ncclSum, comm_, stream_),
      comm_, where, "ncclReduceScatter");
}

void NcclCommunicator::all_reduce_sum(const Tensor& t) {
  throw_if(
      collective_problem(*this, Collective::all_reduce_sum, t, Tensor(), 0, Device::cuda(device_)));
  if (t.numel() == 0) return;
  queue_all_reduce(t, /*mean=*/false);
  wait(leave("NcclCommunicator::all_reduce_sum"));
}

void NcclCommunicator::all_reduce_mean(const Tensor& t) {
  wait(start_all_reduce_mean(t));
}

Communicator::Ticket NcclCommunicator::start_all_reduce_mean(const Tensor& t) {
  throw_if(collective_problem(*this, Collective::all_reduce_mean, t, Tensor(), 0,
                              Device::cuda(device_)));
  if (t.numel() == 0) return 0;
  queue_all_reduce(t, /*mean=*/true);
  return leave("NcclCommunicator::all_reduce_mean");
}

void NcclCommunicator::reduce_scatter_sum(const Tensor& input, const Tensor& output) {
  wait(start_reduce_scatter_sum(input, output));
}

Communicator::Ticket NcclCommunicator::start_reduce_scatter_sum(const Tensor& input,
                                                                const Tensor& output) {
  throw_if(collective_problem(*this, Collective::reduce_scatter_sum, input, output, 0,
                              Device::cuda(device_)));
  if (output.numel() == 0) return 0;
  queue_reduce_scatter(input, output);
  return leave("NcclCommunicator::reduce_scatter_sum");
}

void NcclCommunicator::all_gather(const Tensor& input, const Tensor& output) {
  const Collective op = Collective::all_gather;
  throw_if(collective_problem(*this, op, input, output, 0, Device::cuda(device_)));
  if (input.numel() == 0) return;
  const std::string where =
      collective_context(*this, op) + " (input " + input.str() + ", output " + output.str() + ")";
  enter(where);
  // Bytes: every dtype gathers the same way.
  check_nccl(
      ncclAllGather(input.raw_data(), output.raw_data(), input.nbytes(), ncclUint8, comm_, stream_),
      comm_, where, "ncclAllGather");
  wait(leave(where));
}

void NcclCommunicator::broadcast(const Tensor& t, int root) {
  const Collective op = Collective::broadcast;
  throw_if(collective_problem(*this, op, t, Tensor(), root, Device::cuda(device_)));
  if (t.numel() == 0) return;
  const std::string where =
      collective_context(*this, op) + " (" + t.str() + ", root " + std::to_string(root) + ")";
  enter(where);
  check_nccl(ncclBroadcast(t.raw_data(), t.raw_data(), t.nbytes(), ncclUint8, root, comm_, stream_),
             comm_, where, "ncclBroadcast");
  wait(leave(where));
}

void NcclCommunicator::barrier() {
  const std::string where = collective_context(*this, Collective::barrier);
  check_cuda(cudaSetDevice(device_), "cudaSetDevice", where);
  enter(where);  // so the synchronize below also waits for the compute stream's work
  check_nccl(ncclAllReduce(barrier_value_, barrier_value_, 1, ncclFloat32, ncclSum, comm_, stream_),
             comm_, where, "ncclAllReduce");
  leave(where);
  check_cuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize", where);
}

void NcclCommunicator::abort_job(int exit_code) {
  if (comm_ != nullptr) ncclCommAbort(comm_);
  comm_ = nullptr;
  bootstrap_.abort_job(exit_code);
  std::_Exit(exit_code);  // not reached; nvcc's host pass loses the callee's [[noreturn]]
}

}  // namespace rlaif::cuda
