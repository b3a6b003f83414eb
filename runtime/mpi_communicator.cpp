#include "runtime/mpi_communicator.h"

// Only MPI's C interface is used; the deprecated C++ bindings would come with <mpi.h> otherwise.
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "runtime/half.h"

namespace rlaif {

struct MpiCommunicator::State {
  MPI_Comm comm = MPI_COMM_NULL;
};

namespace {

// MPI's lifetime in this process: started by the first communicator, finished at exit by the
// destructor of this function-local static, which runs after those of every communicator made
// after it (statics die in reverse order of construction). MPI started by someone else (a host
// program calling MPI_Init first) is theirs to finish.
class MpiRuntime {
 public:
  static void ensure() { static MpiRuntime runtime; }
  ~MpiRuntime() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (owned_ && !finalized) MPI_Finalize();
  }

 private:
  MpiRuntime() {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (initialized) return;
    int provided = 0;
    int err = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
    RLAIF_CHECK(err == MPI_SUCCESS, "MpiCommunicator: MPI_Init_thread failed with error ", err,
                " (was this process started by mpirun?)");
    owned_ = true;
  }
  bool owned_ = false;
};

void check_mpi(int err, const Communicator& comm, Collective op, const char* call) {
  if (err == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(err, text, &length) != MPI_SUCCESS) length = 0;
  throw Error(collective_context(comm, op), ": ", call,
              " failed: ", length > 0 ? std::string(text, length) : "error " + std::to_string(err));
}

// ---- The record every rank gathers before a call moves data (see the header's "Safety") ---------

constexpr size_t kTensorText = 112;
constexpr size_t kProblemText = 400;

struct CallRecord {
  int32_t op;
  int32_t root;
  int64_t numel_a;
  int64_t numel_b;
  char a[kTensorText];  // Tensor::str(), e.g. "f32[2, 3] cpu", truncated
  char b[kTensorText];
  char problem[kProblemText];  // collective_problem(), truncated; "" when the arguments are valid
};
static_assert(std::is_trivially_copyable_v<CallRecord>);

void copy_text(char* dst, size_t capacity, const std::string& text) {
  size_t n = std::min(text.size(), capacity - 1);
  std::memcpy(dst, text.data(), n);
  dst[n] = '\0';
}

bool two_tensors(Collective op) {
  return op == Collective::reduce_scatter_sum || op == Collective::all_gather;
}

CallRecord make_record(Collective op, const Tensor& a, const Tensor& b, int root,
                       const std::string& problem) {
  CallRecord r;
  std::memset(&r, 0, sizeof r);  // padding too: records travel as bytes
  r.op = static_cast<int32_t>(op);
  r.root = op == Collective::broadcast ? root : 0;
  if (op != Collective::barrier) {
    r.numel_a = a.defined() ? a.numel() : -1;
    copy_text(r.a, kTensorText, a.str());
  }
  if (two_tensors(op)) {
    r.numel_b = b.defined() ? b.numel() : -1;
    copy_text(r.b, kTensorText, b.str());
  }
  copy_text(r.problem, kProblemText, problem);
  return r;
}

bool same_call(const CallRecord& x, const CallRecord& y) {
  return x.op == y.op && x.root == y.root && x.numel_a == y.numel_a && x.numel_b == y.numel_b &&
         std::strcmp(x.a, y.a) == 0 && std::strcmp(x.b, y.b) == 0;
}

// "all_gather(input f32[3] cpu, output f32[6] cpu)".
std::string describe(const CallRecord& r) {
  auto op = static_cast<Collective>(r.op);
  std::string text = std::string(collective_name(op)) + "(";
  if (two_tensors(op)) {
    text += std::string("input ") + r.a + ", output " + r.b;
  } else if (op != Collective::barrier) {
    text += r.a;
  }
  if (op == Collective::broadcast) text += ", root " + std::to_string(r.root);
  return text + ")";
}

// ---- Data movement -----------------------------------------------------------------------------

struct Span {
  char* data;
  int64_t bytes;
};

// Sends send(j) to every rank j and receives recv(j) from every rank j at once, then waits for all
// of them; this rank's own piece is copied locally (nothing to do when it is already in place).
template <typename SendFn, typename RecvFn>
void exchange(MPI_Comm mpi, const Communicator& comm, Collective op, int tag, SendFn send,
              RecvFn recv) {
  const int rank = comm.rank(), size = comm.size();
  std::vector<MPI_Request> requests;
  requests.reserve(2 * static_cast<size_t>(size));
  for (int j = 0; j < size; ++j) {
    if (j == rank) continue;
    Span in = recv(j);
    requests.emplace_back();
    check_mpi(
        MPI_Irecv(in.data, static_cast<int>(in.bytes), MPI_BYTE, j, tag, mpi, &requests.back()),
        comm, op, "MPI_Irecv");
  }
  for (int j = 0; j < size; ++j) {
    if (j == rank) continue;
    Span out = send(j);
    requests.emplace_back();
    check_mpi(
        MPI_Isend(out.data, static_cast<int>(out.bytes), MPI_BYTE, j, tag, mpi, &requests.back()),
        comm, op, "MPI_Isend");
  }
  Span own_out = send(rank), own_in = recv(rank);
  if (own_out.data != own_in.data && own_out.bytes > 0) {
    std::memmove(own_in.data, own_out.data, static_cast<size_t>(own_out.bytes));
  }
  check_mpi(MPI_Waitall(static_cast<int>(requests.size()), requests.data(), MPI_STATUSES_IGNORE),
            comm, op, "MPI_Waitall");
}

// The type sums of T are accumulated in: f32 for floats; for integers a wider or unsigned type,
// so that overflow wraps instead of being undefined behaviour.
template <typename T>
using Accumulator =
    std::conditional_t<std::is_same_v<T, int32_t>, int64_t,
                       std::conditional_t<std::is_same_v<T, int64_t>, uint64_t, float>>;

template <typename T>
Accumulator<T> load(T x) {
  if constexpr (std::is_integral_v<T>) {
    return static_cast<Accumulator<T>>(x);
  } else {
    return widen(x);
  }
}

template <typename T>
T store(Accumulator<T> x) {
  if constexpr (std::is_integral_v<T>) {
    return static_cast<T>(x);  // modular since C++20
  } else {
    return narrow<T>(x);
  }
}

// out[i] = (...((pieces[0][i] + pieces[1][i]) + pieces[2][i]) ...) over `size` pieces of m
// elements stored one after another, divided by size when `mean`: the fixed order that makes
// every rank's result the same.
template <typename T>
void sum_in_rank_order(const T* pieces, int64_t m, int size, bool mean, T* out) {
  std::vector<Accumulator<T>> acc(static_cast<size_t>(m));
  for (int64_t i = 0; i < m; ++i) acc[i] = load(pieces[i]);
  for (int j = 1; j < size; ++j) {
    const T* piece = pieces + j * m;
    for (int64_t i = 0; i < m; ++i) acc[i] += load(piece[i]);
  }
  if (mean) {
    if constexpr (std::is_floating_point_v<Accumulator<T>>) {
      for (auto& a : acc) a /= static_cast<float>(size);
    }
  }
  for (int64_t i = 0; i < m; ++i) out[i] = store<T>(acc[i]);
}

template <typename Body>
void dispatch_reducible(DType dtype, Body&& body) {
  switch (dtype) {
    case DType::f32:
      return body(float{});
    case DType::bf16:
      return body(bf16_t{});
    case DType::i32:
      return body(int32_t{});
    case DType::i64:
      return body(int64_t{});
    default:
      throw Error("MpiCommunicator: no reduction for ", dtype_name(dtype));  // checked before
  }
}

constexpr int kTagScatter = 1, kTagGather = 2, kTagReduceScatter = 3, kTagAllGather = 4;

}  // namespace

// ---- MpiCommunicator ---------------------------------------------------------------------------

MpiCommunicator::MpiCommunicator(int64_t segment_elements)
    : state_(std::make_unique<State>()), segment_elements_(segment_elements) {
  // A message holds at most segment_elements elements of at most 8 bytes, and MPI counts are int.
  RLAIF_CHECK(segment_elements >= 1 && segment_elements <= INT_MAX / 8,
              "MpiCommunicator: segment_elements ", segment_elements, " is not in [1, ",
              INT_MAX / 8, "]");
  MpiRuntime::ensure();
  auto check = [](int err, const char* call) {
    RLAIF_CHECK(err == MPI_SUCCESS, "MpiCommunicator: ", call, " failed with error ", err);
  };
  check(MPI_Comm_dup(MPI_COMM_WORLD, &state_->comm), "MPI_Comm_dup");
  // Errors come back as codes (turned into rlaif::Error) instead of killing the job.
  check(MPI_Comm_set_errhandler(state_->comm, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
  check(MPI_Comm_rank(state_->comm, &rank_), "MPI_Comm_rank");
  check(MPI_Comm_size(state_->comm, &size_), "MPI_Comm_size");
}

MpiCommunicator::~MpiCommunicator() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized && state_->comm != MPI_COMM_NULL) MPI_Comm_free(&state_->comm);
}

void MpiCommunicator::agree(Collective op, const Tensor& a, const Tensor& b, int root) {
  const std::string problem = collective_problem(*this, op, a, b, root, Device::cpu());
  const CallRecord mine = make_record(op, a, b, root, problem);
  std::vector<CallRecord> all(static_cast<size_t>(size_));
  check_mpi(
      MPI_Allgather(&mine, sizeof mine, MPI_BYTE, all.data(), sizeof mine, MPI_BYTE, state_->comm),
      *this, op, "MPI_Allgather");
  if (!problem.empty()) throw Error(problem);
  for (int r = 0; r < size_; ++r) {
    if (all[r].problem[0] != '\0') {
      throw Error(collective_context(*this, op), ": rank ", r,
                  " rejected its arguments, so no rank goes on: ", all[r].problem);
    }
  }
  for (int r = 1; r < size_; ++r) {
    if (same_call(all[r], all[0])) continue;
    std::string calls;
    for (int s = 0; s < size_; ++s) {
      calls += (s ? "; rank " : "rank ") + std::to_string(s) + ": " + describe(all[s]);
    }
    throw Error(collective_context(*this, op),
                ": ranks must make the same call with tensors of one dtype and shape, but ", calls);
  }
}

void MpiCommunicator::reduce(Collective op, const Tensor& t) {
  agree(op, t, Tensor(), 0);
  const bool mean = op == Collective::all_reduce_mean;
  dispatch_reducible(t.dtype(), [&]<typename T>(T) {
    T* data = t.data<T>();
    std::vector<T> pieces;
    for (int64_t start = 0; start < t.numel(); start += segment_elements_) {
      const int64_t n = std::min(segment_elements_, t.numel() - start);
      T* seg = data + start;
      // Rank j owns elements [first(j), first(j + 1)) of the segment.
      auto first = [&](int j) { return n * j / size_; };
      auto span = [&](int j) {
        return Span{reinterpret_cast<char*>(seg + first(j)),
                    (first(j + 1) - first(j)) * static_cast<int64_t>(sizeof(T))};
      };
      const int64_t mine = first(rank_ + 1) - first(rank_);
      pieces.resize(static_cast<size_t>(size_ * mine));
      auto piece = [&](int j) {
        return Span{reinterpret_cast<char*>(pieces.data() + j * mine),
                    mine * static_cast<int64_t>(sizeof(T))};
      };
      exchange(state_->comm, *this, op, kTagScatter, span, piece);
      sum_in_rank_order(pieces.data(), mine, size_, mean, seg + first(rank_));
      exchange(
          state_->comm, *this, op, kTagGather, [&](int) { return span(rank_); }, span);
    }
  });
}

void MpiCommunicator::all_reduce_sum(const Tensor& t) {
  reduce(Collective::all_reduce_sum, t);
}

void MpiCommunicator::all_reduce_mean(const Tensor& t) {
  reduce(Collective::all_reduce_mean, t);
}

void MpiCommunicator::reduce_scatter_sum(const Tensor& input, const Tensor& output) {
  const Collective op = Collective::reduce_scatter_sum;
  agree(op, input, output, 0);
  dispatch_reducible(input.dtype(), [&]<typename T>(T) {
    const char* in_bytes = static_cast<const char*>(input.raw_data());
    const int64_t elem = static_cast<int64_t>(sizeof(T));
    T* out = output.data<T>();
    const int64_t m = output.numel();
    // A segment takes k elements of every rank's chunk, so the buffer holds about a segment.
    const int64_t k_max = std::max<int64_t>(1, segment_elements_ / size_);
    std::vector<T> pieces;
    for (int64_t start = 0; start < m; start += k_max) {
      const int64_t k = std::min(k_max, m - start);
      const int64_t bytes = k * static_cast<int64_t>(sizeof(T));
      pieces.resize(static_cast<size_t>(size_ * k));
      exchange(
          state_->comm, *this, op, kTagReduceScatter,
          [&](int j) {
            return Span{const_cast<char*>(in_bytes + (j * m + start) * elem), bytes};
          },
          [&](int j) {
            return Span{reinterpret_cast<char*>(pieces.data() + j * k), bytes};
          });
      sum_in_rank_order(pieces.data(), k, size_, false, out + start);
    }
  });
}

void MpiCommunicator::all_gather(const Tensor& input, const Tensor& output) {
  const Collective op = Collective::all_gather;
  agree(op, input, output, 0);
  const int64_t elem = static_cast<int64_t>(dtype_size(input.dtype()));
  const int64_t m = input.numel();
  char* in = static_cast<char*>(input.raw_data());
  char* out = static_cast<char*>(output.raw_data());
  for (int64_t start = 0; start < m; start += segment_elements_) {
    const int64_t k = std::min(segment_elements_, m - start);
    exchange(
        state_->comm, *this, op, kTagAllGather,
        [&](int) {
          return Span{in + start * elem, k * elem};
        },
        [&](int j) {
          return Span{out + (j * m + start) * elem, k * elem};
        });
  }
}

void MpiCommunicator::broadcast(const Tensor& t, int root) {
  const Collective op = Collective::broadcast;
  agree(op, t, Tensor(), root);
  const int64_t bytes = static_cast<int64_t>(t.nbytes());
  const int64_t step = segment_elements_ * 8;
  char* data = static_cast<char*>(t.raw_data());
  for (int64_t start = 0; start < bytes; start += step) {
    const int64_t n = std::min(step, bytes - start);
    check_mpi(MPI_Bcast(data + start, static_cast<int>(n), MPI_BYTE, root, state_->comm), *this, op,
              "MPI_Bcast");
  }
}

void MpiCommunicator::barrier() {
  // The record exchange is itself a barrier, and catches a rank calling something else.
  agree(Collective::barrier, Tensor(), Tensor(), 0);
}

void MpiCommunicator::abort_job(int exit_code) {
  MPI_Abort(state_->comm, exit_code);
  std::_Exit(exit_code);  // MPI_Abort does not return; this tells the compiler so
}

}  // namespace rlaif
