#include "runtime/communicator.h"

#include <charconv>
#include <cstdlib>
#include <cstring>

#ifdef RLAIF_HAVE_MPI
#include "runtime/mpi_communicator.h"
#endif

namespace rlaif {
namespace {

bool is_reducible(DType d) {
  return d == DType::f32 || d == DType::bf16 || d == DType::i32 || d == DType::i64;
}

// Copies src into dst unless they are the same memory (the in-place forms of the collectives).
void copy_unless_same(const Tensor& dst, const Tensor& src) {
  if (dst.raw_data() != src.raw_data()) dst.copy_from(src);
}

void throw_if(const std::string& problem) {
  if (!problem.empty()) throw Error(problem);
}

// A positive integer from the environment variable `name`, or 0.
int env_size(const char* name) {
  const char* text = std::getenv(name);
  if (text == nullptr) return 0;
  int value = 0;
  const char* end = text + std::strlen(text);
  auto [ptr, ec] = std::from_chars(text, end, value);
  return ec == std::errc() && ptr == end && value > 0 ? value : 0;
}

}  // namespace

const char* collective_name(Collective op) {
  switch (op) {
    case Collective::all_reduce_sum:
      return "all_reduce_sum";
    case Collective::all_reduce_mean:
      return "all_reduce_mean";
    case Collective::reduce_scatter_sum:
      return "reduce_scatter_sum";
    case Collective::all_gather:
      return "all_gather";
    case Collective::broadcast:
      return "broadcast";
    case Collective::barrier:
      return "barrier";
  }
  return "?";
}

std::string collective_context(const Communicator& comm, Collective op) {
  return Error::concat(comm.name(), "::", collective_name(op), " on rank ", comm.rank(), " of ",
                       comm.size());
}

std::string collective_problem(const Communicator& comm, Collective op, const Tensor& a,
                               const Tensor& b, int root, std::optional<Device> device) {
  if (op == Collective::barrier) return "";
  const std::string where = collective_context(comm, op);
  const bool two = op == Collective::reduce_scatter_sum || op == Collective::all_gather;
  const char* a_name = two ? "input" : "tensor";

  if (!a.defined()) return Error::concat(where, ": ", a_name, " is undefined");
  if (two && !b.defined()) return Error::concat(where, ": output is undefined");
  for (const Tensor* t : {&a, two ? &b : nullptr}) {
    if (t == nullptr || !device || t->device() == *device) continue;
    return Error::concat(where, ": ", t == &a ? a_name : "output", " is ", *t, " but ", comm.name(),
                         " works on ", device->str(), " tensors");
  }

  switch (op) {
    case Collective::all_reduce_sum:
    case Collective::reduce_scatter_sum:
      if (!is_reducible(a.dtype())) {
        return Error::concat(where, ": ", a_name, " is ", a,
                             " but reductions take f32, bf16, i32 or i64 tensors");
      }
      break;
    case Collective::all_reduce_mean:
      if (a.dtype() != DType::f32 && a.dtype() != DType::bf16) {
        return Error::concat(where, ": tensor is ", a, " but means take f32 or bf16 tensors");
      }
      break;
    case Collective::broadcast:
      if (root < 0 || root >= comm.size()) {
        return Error::concat(where, ": root ", root, " is not a rank (tensor ", a, ")");
      }
      break;
    default:
      break;
  }

  if (two) {
    if (a.dtype() != b.dtype()) {
      return Error::concat(where, ": input ", a, " and output ", b, " must have one dtype");
    }
    // reduce_scatter: input = size·output; all_gather: output = size·input.
    const bool scatter = op == Collective::reduce_scatter_sum;
    const Tensor& whole = scatter ? a : b;
    const Tensor& part = scatter ? b : a;
    if (whole.numel() != comm.size() * part.numel()) {
      return Error::concat(where, ": ", scatter ? "input " : "output ", whole, " holds ",
                           whole.numel(), " elements but must hold size·numel(",
                           scatter ? "output" : "input", ") = ", comm.size(), "·", part.numel(),
                           " = ", comm.size() * part.numel(), " (", scatter ? "output " : "input ",
                           part, ")");
    }
  }
  return "";
}

// ---- SingleProcessCommunicator -----------------------------------------------------------------

void SingleProcessCommunicator::all_reduce_sum(const Tensor& t) {
  throw_if(collective_problem(*this, Collective::all_reduce_sum, t, Tensor(), 0, std::nullopt));
}

void SingleProcessCommunicator::all_reduce_mean(const Tensor& t) {
  throw_if(collective_problem(*this, Collective::all_reduce_mean, t, Tensor(), 0, std::nullopt));
}

void SingleProcessCommunicator::reduce_scatter_sum(const Tensor& input, const Tensor& output) {
  throw_if(
      collective_problem(*this, Collective::reduce_scatter_sum, input, output, 0, std::nullopt));
  copy_unless_same(output, input.reshape(output.shape()));
}

void SingleProcessCommunicator::all_gather(const Tensor& input, const Tensor& output) {
  throw_if(collective_problem(*this, Collective::all_gather, input, output, 0, std::nullopt));
  copy_unless_same(output, input.reshape(output.shape()));
}

void SingleProcessCommunicator::broadcast(const Tensor& t, int root) {
  throw_if(collective_problem(*this, Collective::broadcast, t, Tensor(), root, std::nullopt));
}

void SingleProcessCommunicator::abort_job(int exit_code) {
  std::exit(exit_code);
}

// ---- The job's communicator --------------------------------------------------------------------

int launcher_world_size() {
  if (int n = env_size("OMPI_COMM_WORLD_SIZE")) return n;
  return env_size("PMI_SIZE");
}

int launcher_local_rank() {
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"}) {
    const char* text = std::getenv(name);
    if (text == nullptr) continue;
    int value = -1;
    const char* end = text + std::strlen(text);
    auto [ptr, ec] = std::from_chars(text, end, value);
    if (ec == std::errc() && ptr == end && value >= 0) return value;
  }
  return -1;
}

Communicator& world_communicator() {
  const int launched = launcher_world_size();
#ifdef RLAIF_HAVE_MPI
  if (launched > 0) {
    static MpiCommunicator mpi;
    return mpi;
  }
#else
  RLAIF_CHECK(launched <= 1, "world_communicator: an MPI launcher started ", launched,
              " ranks but this rlaif was built without MPI; install libopenmpi-dev "
              "(tools/install_deps.sh) and rebuild");
#endif
  static SingleProcessCommunicator single;
  return single;
}

}  // namespace rlaif
