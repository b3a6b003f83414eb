// MpiCommunicator: the Communicator of a CPU run launched by `mpirun -np N`, over MPI.
//
// Built only when CMake finds MPI (RLAIF_HAVE_MPI); world_communicator() makes the one a job
// normally uses. MPI is initialised (MPI_Init_thread, MPI_THREAD_FUNNELED: only the thread that
// made the communicator calls it) when the first MpiCommunicator is made, and finalised at exit.
//
// Determinism. MPI_Allreduce may add floats in any order (it depends on the implementation, the
// rank count, the message size, even the rank), so its result may differ between ranks and runs.
// Reductions here are a reduce-scatter then an all-gather over explicit point-to-point messages:
// the tensor is cut into size() chunks, rank r receives every rank's chunk r and adds them in rank
// order 0, 1, ..., size()-1 (bf16 widened to f32 and rounded once at the end; a mean divides the
// sum by size() before that rounding), then every rank receives every chunk from its owner.
// Each element is computed once, by one rank, in a fixed order: the result is bitwise identical
// on every rank, run after run, whatever the timing. On one rank it is the tensor itself.
//
// Safety. Before moving any data, every call gathers from every rank a short record of the call
// (operation, tensors, root, and whether this rank's arguments were valid). A disagreement, or
// invalid arguments on any rank, throws an Error on every rank naming each rank's tensors,
// instead of the hang or silent corruption MPI gives for mismatched collectives. The communicator
// stays usable after such an Error.
//
// Large tensors are moved in segments of at most `segment_elements` elements, which bounds the
// temporary buffer and keeps MPI's int counts small; the result does not depend on the segment.
#pragma once

#include <cstdint>
#include <memory>

#include "runtime/communicator.h"

namespace rlaif {

class MpiCommunicator final : public Communicator {
 public:
  static constexpr int64_t kDefaultSegmentElements = int64_t{1} << 22;

  // Every rank of MPI_COMM_WORLD, on a private duplicate of it (so its messages never meet
  // anyone else's). Collective: every rank must make it. Throws Error when MPI cannot start.
  explicit MpiCommunicator(int64_t segment_elements = kDefaultSegmentElements);
  ~MpiCommunicator() override;
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const char* name() const override { return "MpiCommunicator"; }
  void all_reduce_sum(const Tensor& t) override;
  void all_reduce_mean(const Tensor& t) override;
  void reduce_scatter_sum(const Tensor& input, const Tensor& output) override;
  void all_gather(const Tensor& input, const Tensor& output) override;
  void broadcast(const Tensor& t, int root) override;
  void barrier() override;
  // MPI_Abort: mpirun ends every rank.
  [[noreturn]] void abort_job(int exit_code) override;

 private:
  struct State;  // the MPI communicator; keeps <mpi.h> out of this header
  // Gathers every rank's record of this call; throws the same Error on every rank when records
  // differ or one rank's arguments are invalid.
  void agree(Collective op, const Tensor& a, const Tensor& b, int root);
  void reduce(Collective op, const Tensor& t);

  std::unique_ptr<State> state_;
  int rank_ = 0;
  int size_ = 1;
  int64_t segment_elements_;
};

}  // namespace rlaif
