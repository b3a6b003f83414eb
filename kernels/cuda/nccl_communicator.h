// NcclCommunicator: the Communicator of a multi-GPU run: CUDA tensors, over NCCL.
//
// One rank per GPU. The ranks are those of a bootstrap communicator (world_communicator(): MPI
// under mpirun, or a single process): rank 0 makes NCCL's unique id and broadcasts it through the
// bootstrap, then every rank joins the NCCL communicator on its GPU. So one `mpirun` line starts
// a run on one machine or many, and a run without a launcher is a one-rank NCCL run.
//
// Streams. The CUDA backend queues its kernels on the legacy default stream (cuda_backend.h);
// every collective runs on a non-blocking stream of this communicator's own, after an event
// that makes it wait for the kernels queued before it. The plain forms then make the default
// stream wait for the collective, so kernels queued after it see its result, as if it ran there.
// start_* forms leave that wait to wait(ticket) (an event per collective, in a ring), so the
// kernels queued in between (the rest of a backward pass) run alongside the collective. One
// stream for all of them keeps NCCL's calls in one order on every rank, which NCCL requires.
// Calls return once the work is queued, not done.
//
// Differences from MpiCommunicator:
// - Ranks are trusted to make the same calls with the same shapes: checking would cost a host
//   round trip per call. A mismatch hangs or corrupts, as NCCL does; arguments that are invalid
//   on this rank (dtype, device, sizes) still throw before anything is queued.
// - The order in which NCCL adds the ranks' values depends on its algorithm (ring or tree), the
//   rank count and the topology, so sums are not the CPU's rank-order sums; for one configuration
//   they are the same on every rank and run after run. A mean is NCCL's ncclAvg.
//
// Built where NCCL is found (RLAIF_HAVE_NCCL). This header is plain C++ (no CUDA or NCCL types).
#pragma once

#include "runtime/communicator.h"

struct ncclComm;     // NCCL's ncclComm_t points to it
struct CUstream_st;  // cudaStream_t
struct CUevent_st;   // cudaEvent_t

namespace rlaif::cuda {

class NcclCommunicator final : public Communicator {
 public:
  // Collective over `bootstrap`'s ranks: every rank calls it with its own GPU `device` (cuda:
  // device). `bootstrap` must outlive this communicator (abort_job goes through it). Throws Error
  // naming the rank and the device when NCCL cannot start.
  NcclCommunicator(Communicator& bootstrap, int device);
  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const char* name() const override { return "NcclCommunicator"; }
  int device() const { return device_; }

  void all_reduce_sum(const Tensor& t) override;
  void all_reduce_mean(const Tensor& t) override;
  void reduce_scatter_sum(const Tensor& input, const Tensor& output) override;
  void all_gather(const Tensor& input, const Tensor& output) override;
  void broadcast(const Tensor& t, int root) override;
  bool runs_alongside_compute() const override { return true; }
  Ticket start_all_reduce_mean(const Tensor& t) override;
  Ticket start_reduce_scatter_sum(const Tensor& input, const Tensor& output) override;
  void wait(Ticket ticket) override;
  // Waits for this rank's queued work, then for every rank (a one-element all-reduce).
  void barrier() override;
  // Aborts the NCCL communicator (a kernel waiting on a dead rank stops), then the bootstrap's job.
  [[noreturn]] void abort_job(int exit_code) override;

 private:
  Communicator& bootstrap_;
  int device_;
  int rank_;
  int size_;
  ncclComm* comm_ = nullptr;
  float* barrier_value_ = nullptr;  // one float on the device, reduced by barrier()
  // Events of the last kTicketEvents collectives, ticket t in slot t % kTicketEvents. A slot
  // re-recorded by a later collective still serves an older ticket: collectives complete in
  // order, so waiting for the later one waits for the older one too.
  static constexpr int kTicketEvents = 64;
  CUstream_st* stream_ = nullptr;
  CUevent_st* entry_ = nullptr;  // recorded on the default stream before each collective
  CUevent_st* done_[kTicketEvents] = {};
  Ticket last_ticket_ = 0;

  // Makes stream_ wait for the work queued on the default stream so far.
  void enter(const std::string& where);
  // Records the end of the collective just queued on stream_; returns its ticket.
  Ticket leave(const std::string& where);
  // The collectives proper, queued on stream_ (arguments already checked).
  void queue_all_reduce(const Tensor& t, bool mean);
  void queue_reduce_scatter(const Tensor& input, const Tensor& output);
};

}  // namespace rlaif::cuda
