// Communicator: the collectives of a distributed (data-parallel) run, over the ranks of one job.
//
// Three implementations share this interface:
// - SingleProcessCommunicator (below): one rank; every collective is the identity or a copy, so
//   code written for many ranks runs unchanged on one, on any device.
// - MpiCommunicator (runtime/mpi_communicator.h): CPU tensors, over MPI, for `mpirun -np N`.
// - cuda::NcclCommunicator (kernels/cuda/nccl_communicator.h): CUDA tensors, over NCCL, its
//   ranks joined through another communicator (MPI in a multi-process run).
// world_communicator() picks the first or the second from how the process was launched.
//
// Rules every implementation follows:
// - Collective: every rank calls the same operations in the same order with tensors of the same
//   dtype and shape (and the same root). The MPI communicator checks this on every call and
//   throws the same Error on every rank when ranks disagree; NCCL trusts the caller.
// - Chunks are counted in elements of the flattened tensors: the input and output of
//   reduce_scatter_sum and all_gather relate by numel only, whatever their shapes.
// - Reductions (all_reduce_*, reduce_scatter_sum) take f32, bf16, i32 or i64 tensors; means take
//   f32 or bf16. all_gather and broadcast move bytes, so they take every dtype.
// - Errors are rlaif::Error naming the communicator, the operation, the tensors and the rank:
//   "MpiCommunicator::reduce_scatter_sum on rank 1 of 2: ...".
// - On CPU, a reduction's result is bitwise identical on every rank and independent of timing
//   (see MpiCommunicator for the summation order).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "runtime/tensor.h"

namespace rlaif {

class Communicator {
 public:
  virtual ~Communicator() = default;

  // This process's rank, in [0, size()).
  virtual int rank() const = 0;
  // Number of ranks in the job.
  virtual int size() const = 0;
  // "SingleProcessCommunicator", "MpiCommunicator", "NcclCommunicator": what errors print.
  virtual const char* name() const = 0;

  // In place: every rank's `t` becomes the elementwise sum of every rank's `t`.
  virtual void all_reduce_sum(const Tensor& t) = 0;
  // In place: the elementwise mean over ranks (the sum divided by size()).
  virtual void all_reduce_mean(const Tensor& t) = 0;
  // `input` holds size()·numel(output) elements; rank r's `output` becomes the elementwise sum
  // over ranks of input's chunk r (elements [r·m, (r+1)·m), m = numel(output)). `output` may be
  // input's own chunk r (in place); any other overlap is undefined.
  virtual void reduce_scatter_sum(const Tensor& input, const Tensor& output) = 0;
  // `output` holds size()·numel(input) elements; its chunk r becomes rank r's `input`. `input`
  // may be output's own chunk (in place); any other overlap is undefined.
  virtual void all_gather(const Tensor& input, const Tensor& output) = 0;
  // Every rank's `t` becomes rank `root`'s `t` (byte for byte).
  virtual void broadcast(const Tensor& t, int root) = 0;
  // Returns once every rank has called it.
  virtual void barrier() = 0;

  // ---- Collectives that run alongside computation -----------------------------------------
  // A communicator able to run collectives concurrently with the device's kernels (NCCL, on a
  // stream of its own) starts them here and returns at once, so that data-parallel training can
  // reduce one bucket of gradients while the backward pass computes the next. Until wait() on
  // the returned ticket, the caller must leave the tensors alone: no kernel may read or write
  // them, and they must stay allocated. Elsewhere (MPI on CPU tensors, one process) these run the
  // collective to completion, as the plain forms do, and wait() has nothing to do.
  // Collectives complete in the order they were started, plain forms included.
  using Ticket = uint64_t;
  // Whether start_* return before the collective is done.
  virtual bool runs_alongside_compute() const { return false; }
  virtual Ticket start_all_reduce_mean(const Tensor& t) {
    all_reduce_mean(t);
    return 0;
  }
  virtual Ticket start_reduce_scatter_sum(const Tensor& input, const Tensor& output) {
    reduce_scatter_sum(input, output);
    return 0;
  }
  // Device work queued after this call waits for the collective `ticket` (and so for every one
  // started before it); on a GPU the host does not block.
  virtual void wait(Ticket /*ticket*/) {}

  // Ends every rank of the job with `exit_code`. For a rank that fails while the others may be
  // waiting in a collective: exiting alone would leave them (and mpirun) waiting forever.
  [[noreturn]] virtual void abort_job(int exit_code) = 0;
};

// One rank. Reductions leave their tensor as it is; reduce_scatter_sum, all_gather copy input to
// output. Tensors may live on any device. Arguments are checked as a multi-rank communicator
// checks them, so a mistake shows on one rank too.
class SingleProcessCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  const char* name() const override { return "SingleProcessCommunicator"; }
  void all_reduce_sum(const Tensor& t) override;
  void all_reduce_mean(const Tensor& t) override;
  void reduce_scatter_sum(const Tensor& input, const Tensor& output) override;
  void all_gather(const Tensor& input, const Tensor& output) override;
  void broadcast(const Tensor& t, int root) override;
  void barrier() override {}
  // std::exit(exit_code): there is no other rank to stop.
  [[noreturn]] void abort_job(int exit_code) override;
};

// The job's communicator, made on first use and kept until exit: an MpiCommunicator over every
// rank when an MPI launcher started this process (launcher_world_size() > 0, whatever the size),
// else a SingleProcessCommunicator. Throws Error when a launcher asked for more than one rank
// but rlaif was built without MPI (every rank would believe it is alone and repeat the work).
Communicator& world_communicator();

// The rank count an MPI launcher announced in the environment (OMPI_COMM_WORLD_SIZE from Open
// MPI's mpirun, PMI_SIZE from MPICH's Hydra and PMI-based launchers), or 0 when none did. That
// is how a process knows MPI is wanted: initialising MPI without a launcher is slow or fails.
int launcher_world_size();

// This process's rank among the ranks on its own machine, as the launcher announced it
// (OMPI_COMM_WORLD_LOCAL_RANK from Open MPI, MPI_LOCALRANKID from MPICH's Hydra, SLURM_LOCALID
// from srun), or -1 when none did. Ranks pick their GPU by it.
int launcher_local_rank();

// ---- For implementations -----------------------------------------------------------------------

enum class Collective {
  all_reduce_sum,
  all_reduce_mean,
  reduce_scatter_sum,
  all_gather,
  broadcast,
  barrier
};
// "all_reduce_sum", ...
const char* collective_name(Collective op);

// "MpiCommunicator::all_gather on rank 1 of 2": how every error message of a call begins.
std::string collective_context(const Communicator& comm, Collective op);

// What is wrong with this rank's arguments to `op`, or "" when nothing is. Checks the rules above:
// tensors defined, dtypes the op takes, input and output of one dtype with the numel relation of
// the op, root in range, and every tensor on `device` (std::nullopt: any device). `b` is the
// output of reduce_scatter_sum and all_gather and is ignored otherwise; `root` is ignored but by
// broadcast. The message begins with collective_context().
std::string collective_problem(const Communicator& comm, Collective op, const Tensor& a,
                               const Tensor& b, int root, std::optional<Device> device);

}  // namespace rlaif
