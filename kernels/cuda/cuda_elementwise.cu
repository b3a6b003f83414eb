// Elementwise primitives of the CUDA backend: unary ops and their derivatives, binary ops with
// suffix / scalar broadcasting and their gradients, affine, clamp and where.
//
// Design:
// - One generic grid-stride "map" kernel serves every per-element op: it reads up to three inputs
//   (the second may be broadcast: element i pairs with element i mod nb) and writes one or two
//   outputs, computing in f32 whatever the storage dtype. When every pointer is 16-byte aligned
//   the body moves 16-byte packs (4 f32 or 8 bf16), and the tail is done element by element.
//   The op is a template functor (the UnaryOp / BinaryOp is a template argument), so the inner
//   loop has no switch. Each thread reads all inputs of its elements before writing them, so
//   `out` may alias an input.
// - The formulas (cuda_elementwise_ops.cuh) are cpu_elementwise.cpp's, written with the same
//   operations in the same order.
// - db of a broadcast binary op is a deterministic two-pass reduction in double (the CPU reference
//   also sums in double): pass 1 sums fixed row chunks of each column (blocks of 32 columns × 8
//   row lanes, summed in a fixed order; for a one-element b, fixed grid-stride partial sums per
//   block), pass 2 adds the chunk partials of each column in chunk order. The chunking depends
//   only on the shape, so results are bitwise reproducible. The partials are taken before da is
//   written and db is written last, so da and db may alias the inputs as on the CPU.
#include <algorithm>
#include <array>
#include <cmath>
#include <numbers>
#include <type_traits>
#include <utility>

#include "kernels/broadcast_rule.h"
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_elementwise_ops.cuh"

namespace rlaif::cuda {
namespace {

using namespace elementwise;

// ---- Functors for the map kernel: f(x0, x1, x2) → float (one output) or Grads (two) ---------

template <UnaryOp OP>
struct UnaryFn {
  float gelu_scale;
  __device__ float operator()(float x, float, float) const {
    return unary_forward<OP>(x, gelu_scale);
  }
};

template <UnaryOp OP>
struct UnaryBackwardFn {  // inputs: x, y, dy
  float gelu_scale;
  __device__ float operator()(float x, float y, float dy) const {
    return dy * unary_derivative<OP>(x, y, gelu_scale);
  }
};

template <BinaryOp OP>
struct BinaryFn {
  __device__ float operator()(float a, float b, float) const { return binary_forward<OP>(a, b); }
};

template <BinaryOp OP>
struct BinaryGradFn {  // inputs: a, b, dout
  __device__ Grads operator()(float a, float b, float g) const { return binary_grads<OP>(a, b, g); }
};

struct AffineFn {
  float alpha, beta;
  // _rn intrinsics: no FMA contraction, as the CPU reference (built without FMA) computes it.
  __device__ float operator()(float x, float, float) const {
    return __fadd_rn(__fmul_rn(alpha, x), beta);
  }
};

struct ClampFn {
  float lo, hi;
  // Comparisons that are false for NaN, so NaN passes through (as torch.clamp).
  __device__ float operator()(float x, float, float) const {
    float v = x < lo ? lo : x;
    return v > hi ? hi : v;
  }
};

struct ClampBackwardFn {  // inputs: x, dy
  float lo, hi;
  __device__ float operator()(float x, float dy, float) const {
    return (lo < x && x < hi) ? dy : 0.0f;
  }
};

// ---- The map kernel
// ------------------------------------------------------------------------------

template <typename T>
constexpr int kVec = 16 / sizeof(T);
template <typename T>
struct alignas(16) Pack {
  T v[kVec<T>];
};

template <typename T>
struct MapArgs {
  const T* in[3];  // the first NIN are read
  T* out[2];       // the first NOUT may be written; null = not wanted
  int64_t n;       // elements of in[0], in[2] and the outputs
  int64_t nb;      // elements of in[1]: n, or n's divisor it is broadcast over (i mod nb)
};

// Writes result r (float, or Grads for two outputs) of element e of a pack into o.
template <typename T>
__device__ __forceinline__ void put(Pack<T>* o, int e, float r) {
  o[0].v[e] = from_f32<T>(r);
}
template <typename T>
__device__ __forceinline__ void put(Pack<T>* o, int e, Grads r) {
  o[0].v[e] = from_f32<T>(r.a);
  o[1].v[e] = from_f32<T>(r.b);
}
template <typename T>
__device__ __forceinline__ void put(T* const* out, int64_t i, float r) {
  out[0][i] = from_f32<T>(r);
}
template <typename T>
__device__ __forceinline__ void put(T* const* out, int64_t i, Grads r) {
  if (out[0] != nullptr) out[0][i] = from_f32<T>(r.a);
  if (out[1] != nullptr) out[1][i] = from_f32<T>(r.b);
}

// vec: every pointer is 16-byte aligned, so the first n / kVec packs move as whole packs.
template <typename T, int NIN, int NOUT, typename F>
__global__ void map_kernel(F f, MapArgs<T> args, bool vec) {
  constexpr int V = kVec<T>;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t n = args.n, nb = args.nb;
  int64_t done = 0;
  if (vec) {
    const int64_t packs = n / V;
    for (int64_t k = tid; k < packs; k += stride) {
      Pack<T> x[3];
      x[0] = reinterpret_cast<const Pack<T>*>(args.in[0])[k];
      if constexpr (NIN > 1) {
        if (nb == n) {
          x[1] = reinterpret_cast<const Pack<T>*>(args.in[1])[k];
        } else {
          int64_t j = (k * V) % nb;
#pragma unroll
          for (int e = 0; e < V; ++e) {
            x[1].v[e] = args.in[1][j];
            if (++j == nb) j = 0;
          }
        }
      }
      if constexpr (NIN > 2) x[2] = reinterpret_cast<const Pack<T>*>(args.in[2])[k];
      Pack<T> o[NOUT];
#pragma unroll
      for (int e = 0; e < V; ++e) {
        float x1 = NIN > 1 ? to_f32(x[1].v[e]) : 0.0f;
        float x2 = NIN > 2 ? to_f32(x[2].v[e]) : 0.0f;
        put<T>(o, e, f(to_f32(x[0].v[e]), x1, x2));
      }
#pragma unroll
      for (int q = 0; q < NOUT; ++q)
        if (args.out[q] != nullptr) reinterpret_cast<Pack<T>*>(args.out[q])[k] = o[q];
    }
    done = packs * V;
  }
  for (int64_t i = done + tid; i < n; i += stride) {
    float x0 = to_f32(args.in[0][i]);
    float x1 = NIN > 1 ? to_f32(args.in[1][nb == n ? i : i % nb]) : 0.0f;
    float x2 = NIN > 2 ? to_f32(args.in[2][i]) : 0.0f;
    put<T>(args.out, i, f(x0, x1, x2));
  }
}

bool aligned16(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % 16 == 0;
}

// Launches map_kernel over n elements. `in` holds NIN pointers (in[1] has nb elements), `out`
// NOUT (null = skip).
template <typename T, int NIN, int NOUT, typename F>
void launch_map(const char* kernel, const std::string& detail, F f, std::array<const T*, 3> in,
                std::array<T*, 2> out, int64_t n, int64_t nb) {
  if (n == 0) return;
  MapArgs<T> args{{in[0], in[1], in[2]}, {out[0], out[1]}, n, nb};
  bool vec = true;
  for (int q = 0; q < NIN; ++q) vec = vec && aligned16(in[q]);
  for (int q = 0; q < NOUT; ++q) vec = vec && aligned16(out[q]);  // null is aligned
  const int64_t packs = vec ? n / kVec<T> : 0;
  const int64_t work = packs + (n - packs * kVec<T>);
  map_kernel<T, NIN, NOUT, F><<<grid_for(work), kThreads>>>(f, args, vec);
  check_launch(kernel, detail);
}

// ---- db reductions
// ---------------------------------------------------------------------------------

constexpr int kColumnsPerBlock = 32;  // one warp across 32 neighbouring columns: coalesced rows
constexpr int kRowLanes = 8;          // warps per block, each taking every 8th row of the chunk

// partial[c, j] = Σ over rows r of chunk c of ∂out/∂b (a[r, j], b[j], g[r, j]), in double.
// Block (32, 8), grid (column blocks, chunks). Every sum runs in a fixed order.
template <typename T, BinaryOp OP>
__global__ void column_grad_kernel(const T* a, const T* b, const T* g, int64_t nb, int64_t rows,
                                   int64_t rows_per_chunk, double* partial) {
  __shared__ double sums[kRowLanes][kColumnsPerBlock + 1];
  const int64_t j = static_cast<int64_t>(blockIdx.x) * kColumnsPerBlock + threadIdx.x;
  const int64_t r0 = static_cast<int64_t>(blockIdx.y) * rows_per_chunk;
  const int64_t r1 = min(rows, r0 + rows_per_chunk);
  double sum = 0.0;
  if (j < nb) {
    const float bj = to_f32(b[j]);
    for (int64_t r = r0 + threadIdx.y; r < r1; r += kRowLanes) {
      const int64_t i = r * nb + j;
      sum += binary_grads<OP>(to_f32(a[i]), bj, to_f32(g[i])).b;
    }
  }
  sums[threadIdx.y][threadIdx.x] = sum;
  __syncthreads();
  if (threadIdx.y == 0 && j < nb) {
    double total = 0.0;
    for (int k = 0; k < kRowLanes; ++k) total += sums[k][threadIdx.x];
    partial[static_cast<int64_t>(blockIdx.y) * nb + j] = total;
  }
}

__device__ __forceinline__ double warp_sum_d(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// partial[block] = Σ over a fixed grid-stride share of the n elements of ∂out/∂b with b one
// element. The grid size depends only on n, so the order of every sum is fixed.
template <typename T, BinaryOp OP>
__global__ void scalar_grad_kernel(const T* a, const T* b, const T* g, int64_t n, double* partial) {
  __shared__ double warps[kThreads / 32];
  const float b0 = to_f32(b[0]);
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  double sum = 0.0;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    sum += binary_grads<OP>(to_f32(a[i]), b0, to_f32(g[i])).b;
  sum = warp_sum_d(sum);
  if ((threadIdx.x & 31) == 0) warps[threadIdx.x >> 5] = sum;
  __syncthreads();
  if (threadIdx.x == 0) {
    double total = 0.0;
    for (int w = 0; w < kThreads / 32; ++w) total += warps[w];
    partial[blockIdx.x] = total;
  }
}

// db[j] = Σ_c partial[c, j] in chunk order, rounded once.
template <typename T>
__global__ void column_finish_kernel(const double* partial, int64_t chunks, int64_t nb, T* db) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; j < nb;
       j += stride) {
    double total = 0.0;
    for (int64_t c = 0; c < chunks; ++c) total += partial[c * nb + j];
    db[j] = from_f32<T>(static_cast<float>(total));
  }
}

// db of a broadcast b (nb < n, or n = 0): pass 1 into a scratch buffer of partials. Returns the
// scratch and the number of chunks; column_finish_kernel then writes db.
template <typename T, BinaryOp OP>
std::pair<Tensor, int64_t> db_partials(const T* a, const T* b, const T* g, int64_t n, int64_t nb,
                                       const Tensor& like, const std::string& detail) {
  int64_t chunks;
  // Doubles have no DType; i64 storage has their size and alignment.
  auto scratch = [&](int64_t count) { return Tensor::empty({count}, DType::i64, like.device()); };
  if (nb == 1) {
    chunks = std::min<int64_t>((n + kThreads * 4 - 1) / (kThreads * 4), 1024);
    chunks = std::max<int64_t>(chunks, 1);
    Tensor part = scratch(chunks);
    scalar_grad_kernel<T, OP><<<static_cast<unsigned>(chunks), kThreads>>>(
        a, b, g, n, static_cast<double*>(part.raw_data()));
    check_launch("scalar_grad_kernel", detail);
    return {part, chunks};
  }
  const int64_t rows = n / nb;
  const int64_t col_blocks = (nb + kColumnsPerBlock - 1) / kColumnsPerBlock;
  // Enough chunks to fill the GPU (about 2048 blocks), at least 64 rows each.
  chunks = std::min<int64_t>((rows + 63) / 64, std::max<int64_t>(1, 2048 / col_blocks));
  chunks = std::clamp<int64_t>(chunks, 1, 1024);
  const int64_t rows_per_chunk = std::max<int64_t>((rows + chunks - 1) / chunks, 1);
  chunks = std::max<int64_t>((rows + rows_per_chunk - 1) / rows_per_chunk, 1);
  Tensor part = scratch(chunks * nb);
  dim3 grid(static_cast<unsigned>(col_blocks), static_cast<unsigned>(chunks));
  dim3 block(kColumnsPerBlock, kRowLanes);
  column_grad_kernel<T, OP>
      <<<grid, block>>>(a, b, g, nb, rows, rows_per_chunk, static_cast<double*>(part.raw_data()));
  check_launch("column_grad_kernel", detail);
  return {part, chunks};
}

// out = cond ? a : b, moving values without conversion; 16-byte packs when aligned.
template <typename T>
__global__ void where_kernel(const uint8_t* cond, const T* a, const T* b, T* out, int64_t n,
                             bool vec) {
  constexpr int V = kVec<T>;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  int64_t done = 0;
  if (vec) {
    const int64_t packs = n / V;
    for (int64_t k = tid; k < packs; k += stride) {
      Pack<T> pa = reinterpret_cast<const Pack<T>*>(a)[k];
      Pack<T> pb = reinterpret_cast<const Pack<T>*>(b)[k];
      Pack<T> o;
#pragma unroll
      for (int e = 0; e < V; ++e) o.v[e] = cond[k * V + e] != 0 ? pa.v[e] : pb.v[e];
      reinterpret_cast<Pack<T>*>(out)[k] = o;
    }
    done = packs * V;
  }
  for (int64_t i = done + tid; i < n; i += stride) out[i] = cond[i] != 0 ? a[i] : b[i];
}

// ---- Dispatch and checks
// -------------------------------------------------------------------------

// √(2/π), computed as the CPU reference computes it (sqrtf of 2/π rounded to f32).
const float kGeluScale = std::sqrt(static_cast<float>(2.0 / std::numbers::pi));

// Calls body(std::integral_constant<E, op>{}) so the op becomes a template argument of the
// kernel; E's values are 0 .. Last (UnaryOp and BinaryOp are plain enumerations from 0).
template <typename E, E Last, int I = 0, typename Body>
void dispatch_op(E op, const char* name, Body&& body) {
  if constexpr (I <= static_cast<int>(Last)) {
    if (static_cast<int>(op) == I) return body(std::integral_constant<E, static_cast<E>(I)>{});
    return dispatch_op<E, Last, I + 1>(op, name, std::forward<Body>(body));
  } else {
    throw Error(name, ": unknown op ", static_cast<int>(op));
  }
}
template <typename Body>
void dispatch_unary(UnaryOp op, const char* name, Body&& body) {
  dispatch_op<UnaryOp, UnaryOp::silu>(op, name, std::forward<Body>(body));
}
template <typename Body>
void dispatch_binary(BinaryOp op, const char* name, Body&& body) {
  dispatch_op<BinaryOp, BinaryOp::maximum>(op, name, std::forward<Body>(body));
}

// A float tensor with x's dtype and shape.
void expect_like(const char* op, const char* arg, const Tensor& t, const char* x_arg,
                 const Tensor& x) {
  expect_float(op, arg, t);
  expect_same_dtype(op, x_arg, x, arg, t);
  expect_shape(op, arg, t, x.shape());
}

}  // namespace

void CudaBackend::unary(UnaryOp op, const Tensor& x, const Tensor& out) {
  expect_float("unary", "x", x);
  expect_like("unary", "out", out, "x", x);
  dispatch_float(x.dtype(), "unary", [&](auto tag) {
    using T = decltype(tag);
    dispatch_unary(op, "unary", [&](auto opc) {
      launch_map<T, 1, 1>("unary map_kernel", describe({{"x", &x}, {"out", &out}}),
                          UnaryFn<decltype(opc)::value>{kGeluScale}, {ptr<T>(x), nullptr, nullptr},
                          {ptr<T>(out), nullptr}, x.numel(), x.numel());
    });
  });
}

void CudaBackend::unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& dy,
                                 const Tensor& dx) {
  const char* name = "unary_backward";
  expect_float(name, "x", x);
  expect_like(name, "y", y, "x", x);
  expect_like(name, "dy", dy, "x", x);
  expect_like(name, "dx", dx, "x", x);
  dispatch_float(x.dtype(), name, [&](auto tag) {
    using T = decltype(tag);
    dispatch_unary(op, name, [&](auto opc) {
      launch_map<T, 3, 1>(
          "unary_backward map_kernel", describe({{"x", &x}, {"y", &y}, {"dy", &dy}, {"dx", &dx}}),
          UnaryBackwardFn<decltype(opc)::value>{kGeluScale}, {ptr<T>(x), ptr<T>(y), ptr<T>(dy)},
          {ptr<T>(dx), nullptr}, x.numel(), x.numel());
    });
  });
}

void CudaBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  expect_float("binary", "a", a);
  expect_float("binary", "b", b);
  expect_same_dtype("binary", "a", a, "b", b);
  expect_like("binary", "out", out, "a", a);
  check_broadcast("binary", a, b);
  dispatch_float(a.dtype(), "binary", [&](auto tag) {
    using T = decltype(tag);
    dispatch_binary(op, "binary", [&](auto opc) {
      launch_map<T, 2, 1>("binary map_kernel", describe({{"a", &a}, {"b", &b}, {"out", &out}}),
                          BinaryFn<decltype(opc)::value>{}, {ptr<T>(a), ptr<T>(b), nullptr},
                          {ptr<T>(out), nullptr}, a.numel(), b.numel());
    });
  });
}

void CudaBackend::binary_backward(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& dout,
                                  const Tensor& da, const Tensor& db) {
  const char* name = "binary_backward";
  expect_float(name, "a", a);
  expect_float(name, "b", b);
  expect_same_dtype(name, "a", a, "b", b);
  expect_like(name, "dout", dout, "a", a);
  check_broadcast(name, a, b);
  if (da.defined()) expect_like(name, "da", da, "a", a);
  if (db.defined()) expect_like(name, "db", db, "b", b);
  const int64_t n = a.numel(), nb = b.numel();
  const std::string detail =
      describe({{"a", &a}, {"b", &b}, {"dout", &dout}, {"da", &da}, {"db", &db}});
  dispatch_float(a.dtype(), name, [&](auto tag) {
    using T = decltype(tag);
    dispatch_binary(op, name, [&](auto opc) {
      constexpr BinaryOp OP = decltype(opc)::value;
      T* dap = da.defined() ? ptr<T>(da) : nullptr;
      T* dbp = db.defined() ? ptr<T>(db) : nullptr;
      const std::array<const T*, 3> in{ptr<T>(a), ptr<T>(b), ptr<T>(dout)};
      if (nb == n) {
        // No broadcasting: one pass that reads a, b and dout before writing da and db.
        if (dap != nullptr || dbp != nullptr)
          launch_map<T, 3, 2>("binary_backward map_kernel", detail, BinaryGradFn<OP>{}, in,
                              {dap, dbp}, n, nb);
        return;
      }
      // Broadcast b: db's partial sums first (they read a, b, dout), then da (which may alias
      // a or dout), then db from the partials alone (db may alias b, which da reads).
      std::pair<Tensor, int64_t> part;
      if (dbp != nullptr) part = db_partials<T, OP>(in[0], in[1], in[2], n, nb, a, detail);
      if (dap != nullptr)
        launch_map<T, 3, 2>("binary_backward map_kernel", detail, BinaryGradFn<OP>{}, in,
                            {dap, nullptr}, n, nb);
      if (dbp != nullptr) {
        column_finish_kernel<T><<<grid_for(nb), kThreads>>>(
            static_cast<const double*>(part.first.raw_data()), part.second, nb, dbp);
        check_launch("column_finish_kernel", detail);
      }
    });
  });
}

void CudaBackend::affine(const Tensor& x, float alpha, float beta, const Tensor& out) {
  expect_float("affine", "x", x);
  expect_like("affine", "out", out, "x", x);
  dispatch_float(x.dtype(), "affine", [&](auto tag) {
    using T = decltype(tag);
    launch_map<T, 1, 1>("affine map_kernel", describe({{"x", &x}, {"out", &out}}),
                        AffineFn{alpha, beta}, {ptr<T>(x), nullptr, nullptr},
                        {ptr<T>(out), nullptr}, x.numel(), x.numel());
  });
}

void CudaBackend::clamp(const Tensor& x, float lo, float hi, const Tensor& out) {
  expect_float("clamp", "x", x);
  expect_like("clamp", "out", out, "x", x);
  dispatch_float(x.dtype(), "clamp", [&](auto tag) {
    using T = decltype(tag);
    launch_map<T, 1, 1>("clamp map_kernel", describe({{"x", &x}, {"out", &out}}), ClampFn{lo, hi},
                        {ptr<T>(x), nullptr, nullptr}, {ptr<T>(out), nullptr}, x.numel(),
                        x.numel());
  });
}

void CudaBackend::clamp_backward(const Tensor& x, float lo, float hi, const Tensor& dy,
                                 const Tensor& dx) {
  const char* name = "clamp_backward";
  expect_float(name, "x", x);
  expect_like(name, "dy", dy, "x", x);
  expect_like(name, "dx", dx, "x", x);
  dispatch_float(x.dtype(), name, [&](auto tag) {
    using T = decltype(tag);
    launch_map<T, 2, 1>("clamp_backward map_kernel",
                        describe({{"x", &x}, {"dy", &dy}, {"dx", &dx}}), ClampBackwardFn{lo, hi},
                        {ptr<T>(x), ptr<T>(dy), nullptr}, {ptr<T>(dx), nullptr}, x.numel(),
                        x.numel());
  });
}

void CudaBackend::where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out) {
  expect_dtype("where", "cond", cond, DType::u8);
  expect_float("where", "a", a);
  expect_shape("where", "a", a, cond.shape());
  expect_like("where", "b", b, "a", a);
  expect_like("where", "out", out, "a", a);
  const int64_t n = cond.numel();
  if (n == 0) return;
  dispatch_float(a.dtype(), "where", [&](auto tag) {
    using T = decltype(tag);
    const bool vec =
        aligned16(a.raw_data()) && aligned16(b.raw_data()) && aligned16(out.raw_data());
    const int64_t packs = vec ? n / kVec<T> : 0;
    const int64_t work = packs + (n - packs * kVec<T>);
    where_kernel<T><<<grid_for(work), kThreads>>>(ptr<uint8_t>(cond), ptr<T>(a), ptr<T>(b),
                                                  ptr<T>(out), n, vec);
    check_launch("where_kernel", describe({{"cond", &cond}, {"a", &a}, {"b", &b}, {"out", &out}}));
  });
}

}  // namespace rlaif::cuda
