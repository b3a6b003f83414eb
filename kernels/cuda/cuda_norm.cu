// LayerNorm and RMSNorm over the last dimension on the GPU, forward and backward.
//
// Rows are handled by "row groups": a warp per row when D ≤ 1024 (8 warps per block, reductions
// by shuffles only), else a block per row. A thread owns the vectors i = tid + k·G of its row
// (G the group size; 16-byte vectors when D and every pointer allow, else single elements).
//
// Forward: the row is read once into registers (rows too long for the registers stream x from
// memory on each pass instead), then the statistics are taken in f32 in two passes, mean first
// and then Σ(x - mean)² (no E[x²] - mean² cancellation), and out is written.
//
// Backward: dx needs Σ_d g and Σ_d g·x̂ of its row (one fused two-value reduction), then a second
// pass over the row (an L1 hit) writes dx; the group's next row is prefetched into L2 meanwhile.
// dgamma and dbeta are sums over rows, kept bitwise deterministic by a fixed partition: block c
// owns rows [c·R, (c+1)·R) and accumulates its threads' columns in registers in increasing row
// order (on the warp path the warps of a block interleave rows and are then added in warp order
// through shared memory); it writes f32 partials [chunks, D]; a second kernel adds the chunks per
// column in a fixed order, in double. Rows too long for register accumulators get their partials
// from a column-parallel kernel instead.
#include <cstring>

#include "kernels/cuda/cuda_common.cuh"

namespace rlaif::cuda {
namespace {

constexpr int kMaxThreads = 512;  // launch bound: leaves up to 128 registers per thread
constexpr int kWarpBlock = 256;   // threads per block on the warp path (8 rows in flight)
constexpr int kWarpFloats = 32;   // floats a lane holds on the warp path: D ≤ 32·32
constexpr int kBlockSlots = 2;    // vectors a thread holds on the block path
constexpr int64_t kMinChunkRows = 16;
constexpr int64_t kMaxChunks = 512;
constexpr int kFinalCols = 32, kFinalLanes = 32;  // finalize block: 32 columns × 32 chunk lanes

template <typename T>
constexpr int vec_width() {
  return static_cast<int>(16 / sizeof(T));
}

// load_f32_vec / store_f32_vec (cuda_common.cuh) move kVec elements per 16-byte access.

// Calls f(k, i) for the vectors i this thread owns: i = tid + k·G. With kSlots > 0 the loop is
// unrolled (k is a compile-time register slot; the host guarantees nvec ≤ G·kSlots); with
// kSlots == 0 it strides over any number of vectors (k is then 0 and meaningless).
template <int kSlots, typename F>
__device__ __forceinline__ void for_owned(int tid, int group, int nvec, F&& f) {
  if constexpr (kSlots > 0) {
#pragma unroll
    for (int k = 0; k < kSlots; ++k) {
      const int i = tid + k * group;
      if (i < nvec) f(k, i);
    }
  } else {
    for (int i = tid; i < nvec; i += group) f(0, i);
  }
}

template <bool kWarp>
__device__ __forceinline__ float group_sum(float v, float* scratch) {
  if constexpr (kWarp) {
    return warp_sum(v);
  } else {
    return block_sum(v, scratch);
  }
}

// Two sums in one reduction (one pair of barriers on the block path). scratch: 64 floats.
template <bool kWarp>
__device__ __forceinline__ void group_sum2(float& a, float& b, float* scratch) {
  for (int o = 16; o > 0; o >>= 1) {
    a += __shfl_xor_sync(0xffffffffu, a, o);
    b += __shfl_xor_sync(0xffffffffu, b, o);
  }
  if constexpr (!kWarp) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    __syncthreads();  // scratch may still be read by the previous call
    if (lane == 0) {
      scratch[warp] = a;
      scratch[32 + warp] = b;
    }
    __syncthreads();
    a = lane < warps ? scratch[lane] : 0.0f;
    b = lane < warps ? scratch[32 + lane] : 0.0f;
    for (int o = 16; o > 0; o >>= 1) {
      a += __shfl_xor_sync(0xffffffffu, a, o);
      b += __shfl_xor_sync(0xffffffffu, b, o);
    }
  }
}

// dst[0, kVec) = (first ? 0 : dst) + acc, in shared memory; 16-byte accesses when kVec allows
// (a lane's kVec consecutive floats would otherwise hit the same banks as its neighbours').
template <int kVec>
__device__ __forceinline__ void add_partial(float* dst, const float (&acc)[kVec], bool first) {
  if constexpr (kVec % 4 == 0) {
#pragma unroll
    for (int q = 0; q < kVec; q += 4) {
      float4* p = reinterpret_cast<float4*>(dst + q);
      float4 v = first ? make_float4(0.0f, 0.0f, 0.0f, 0.0f) : *p;
      v.x += acc[q];
      v.y += acc[q + 1];
      v.z += acc[q + 2];
      v.w += acc[q + 3];
      *p = v;
    }
  } else {
#pragma unroll
    for (int j = 0; j < kVec; ++j) dst[j] = (first ? 0.0f : dst[j]) + acc[j];
  }
}

// Asks L2 for the line holding p, so that a row's loads overlap the previous row's arithmetic.
__device__ __forceinline__ void prefetch_l2(const void* p) {
  asm volatile("prefetch.global.L2 [%0];" ::"l"(p));
}

// ---- Forward ---------------------------------------------------------------------------------

template <typename T>
struct FwdArgs {
  const T* x;
  const T* gamma;
  const T* beta;  // null: no shift (and always null for RMSNorm)
  T* out;
  float* mean;  // null for RMSNorm
  float* rstd;
  int64_t n;
  int d;
  float eps;
};

template <typename T, int kVec, int kSlots, bool kWarp, bool kLayer>
__global__ void __launch_bounds__(kMaxThreads) norm_forward_kernel(FwdArgs<T> a) {
  __shared__ float scratch[32];
  const int tid = kWarp ? static_cast<int>(threadIdx.x & 31) : static_cast<int>(threadIdx.x);
  const int group = kWarp ? 32 : static_cast<int>(blockDim.x);
  const int64_t per_block = kWarp ? blockDim.x / 32 : 1;
  const int64_t first = blockIdx.x * per_block + (kWarp ? threadIdx.x / 32 : 0);
  const int64_t stride = gridDim.x * per_block;
  const int nvec = a.d / kVec;
  const float d = static_cast<float>(a.d);

  // The row's values when they fit in registers (kSlots > 0).
  float cache[kSlots > 0 ? kSlots : 1][kVec];
  for (int64_t row = first; row < a.n; row += stride) {  // uniform over the group
    const T* xr = a.x + row * a.d;
    T* yr = a.out + row * a.d;
    auto fetch = [&](int k, int i, float(&v)[kVec]) {
      if constexpr (kSlots > 0) {
#pragma unroll
        for (int j = 0; j < kVec; ++j) v[j] = cache[k][j];
      } else {
        load_f32_vec<T, kVec>(xr + static_cast<int64_t>(i) * kVec, v);
      }
    };

    // Pass 1: Σx (LayerNorm) or Σx² (RMSNorm), loading the row.
    float s1 = 0.0f;
    for_owned<kSlots>(tid, group, nvec, [&](int k, int i) {
      float v[kVec];
      load_f32_vec<T, kVec>(xr + static_cast<int64_t>(i) * kVec, v);
#pragma unroll
      for (int j = 0; j < kVec; ++j) {
        if constexpr (kSlots > 0) cache[k][j] = v[j];
        s1 += kLayer ? v[j] : v[j] * v[j];
      }
    });
    s1 = group_sum<kWarp>(s1, scratch);

    float mu = 0.0f, sq = s1;
    if constexpr (kLayer) {
      // Pass 2: the squared deviations from the mean.
      mu = s1 / d;
      float s2 = 0.0f;
      for_owned<kSlots>(tid, group, nvec, [&](int k, int i) {
        float v[kVec];
        fetch(k, i, v);
#pragma unroll
        for (int j = 0; j < kVec; ++j) {
          const float dev = v[j] - mu;
          s2 += dev * dev;
        }
      });
      sq = group_sum<kWarp>(s2, scratch);
    }
    const float rs = 1.0f / sqrtf(sq / d + a.eps);
    if (tid == 0) {
      if constexpr (kLayer) a.mean[row] = mu;
      a.rstd[row] = rs;
    }

    // Output. Every read of x in the row happened before the reduction above, and a thread
    // rereads (streaming) only the elements it then writes: out may alias x.
    for_owned<kSlots>(tid, group, nvec, [&](int k, int i) {
      float v[kVec], g[kVec], b[kVec] = {};
      fetch(k, i, v);
      load_f32_vec<T, kVec>(a.gamma + static_cast<int64_t>(i) * kVec, g);
      if (kLayer && a.beta != nullptr)
        load_f32_vec<T, kVec>(a.beta + static_cast<int64_t>(i) * kVec, b);
#pragma unroll
      for (int j = 0; j < kVec; ++j) {
        v[j] = (v[j] - mu) * rs * g[j];
        if constexpr (kLayer) v[j] += b[j];
      }
      store_f32_vec<T, kVec>(yr + static_cast<int64_t>(i) * kVec, v);
    });
  }
}

// ---- Backward --------------------------------------------------------------------------------

template <typename T>
struct BwdArgs {
  const T* x;
  const T* gamma;
  const float* mean;  // null for RMSNorm
  const float* rstd;
  const T* dout;
  T* dx;
  float* part_gamma;  // [chunks, d] partial Σ dout·x̂, or null
  float* part_beta;   // [chunks, d] partial Σ dout, or null
  int64_t n;
  int d;
  int64_t chunk_rows;
  int64_t chunks;
};

// dx for every row, and (kSlots > 0) the chunk partials of dgamma/dbeta. With kSlots == 0 the
// partials come from column_partials_kernel, launched before this one.
template <typename T, int kVec, int kSlots, bool kWarp, bool kLayer>
__global__ void __launch_bounds__(kMaxThreads) norm_backward_kernel(BwdArgs<T> a) {
  extern __shared__ float combine[];  // warp path: [2, d] running sums of the warps' partials
  __shared__ float scratch[64];
  const int tid = kWarp ? static_cast<int>(threadIdx.x & 31) : static_cast<int>(threadIdx.x);
  const int group = kWarp ? 32 : static_cast<int>(blockDim.x);
  const int warps = kWarp ? static_cast<int>(blockDim.x / 32) : 1;
  const int warp = kWarp ? static_cast<int>(threadIdx.x / 32) : 0;
  const int nvec = a.d / kVec;
  const float d = static_cast<float>(a.d);
  constexpr int kAcc = kSlots > 0 ? kSlots : 1;

  for (int64_t c = blockIdx.x; c < a.chunks; c += gridDim.x) {  // uniform over the block
    const int64_t row0 = c * a.chunk_rows;
    const int64_t row1 = row0 + a.chunk_rows < a.n ? row0 + a.chunk_rows : a.n;
    float acc_g[kAcc][kVec] = {}, acc_b[kAcc][kVec] = {};

    for (int64_t row = row0 + warp; row < row1; row += warps) {  // uniform over the group
      const T* xr = a.x + row * a.d;
      const T* dyr = a.dout + row * a.d;
      T* dxr = a.dx + row * a.d;
      const float mu = kLayer ? a.mean[row] : 0.0f, rs = a.rstd[row];
      if (row + warps < row1) {  // the group's next row: one prefetch per 128-byte line
        const int64_t next = (row + warps) * a.d;
        for_owned<kSlots>(tid, group, nvec, [&](int, int i) {
          const int64_t off = static_cast<int64_t>(i) * kVec;
          if ((off * static_cast<int64_t>(sizeof(T))) % 128 <
              static_cast<int64_t>(sizeof(T)) * kVec) {
            prefetch_l2(a.x + next + off);
            prefetch_l2(a.dout + next + off);
          }
        });
      }

      // Σ g and Σ g·x̂ with g = dout ⊙ gamma.
      float sg = 0.0f, sgx = 0.0f;
      for_owned<kSlots>(tid, group, nvec, [&](int, int i) {
        const int64_t off = static_cast<int64_t>(i) * kVec;
        float xv[kVec], dv[kVec], gv[kVec];
        load_f32_vec<T, kVec>(xr + off, xv);
        load_f32_vec<T, kVec>(dyr + off, dv);
        load_f32_vec<T, kVec>(a.gamma + off, gv);
#pragma unroll
        for (int j = 0; j < kVec; ++j) {
          const float g = dv[j] * gv[j];
          sg += g;
          sgx += g * ((xv[j] - mu) * rs);
        }
      });
      group_sum2<kWarp>(sg, sgx, scratch);
      const float mean_g = kLayer ? sg / d : 0.0f, mean_gx = sgx / d;

      // dx, and the parameter-gradient partials. All reads of the row in the first pass are done
      // (the reduction is a barrier), and a thread rereads only the elements it then writes: dx
      // may alias x or dout.
      for_owned<kSlots>(tid, group, nvec, [&](int k, int i) {
        const int64_t off = static_cast<int64_t>(i) * kVec;
        float xv[kVec], dv[kVec], gv[kVec], out[kVec];
        load_f32_vec<T, kVec>(xr + off, xv);
        load_f32_vec<T, kVec>(dyr + off, dv);
        load_f32_vec<T, kVec>(a.gamma + off, gv);
#pragma unroll
        for (int j = 0; j < kVec; ++j) {
          const float xh = (xv[j] - mu) * rs;
          out[j] = rs * (dv[j] * gv[j] - mean_g - xh * mean_gx);
          if constexpr (kSlots > 0) {
            acc_g[k][j] += dv[j] * xh;
            acc_b[k][j] += dv[j];
          }
        }
        store_f32_vec<T, kVec>(dxr + off, out);
      });
    }

    if constexpr (kSlots > 0) {
      float* pg = a.part_gamma ? a.part_gamma + c * a.d : nullptr;
      float* pb = a.part_beta ? a.part_beta + c * a.d : nullptr;
      if constexpr (kWarp) {
        // Add the warps' partials in warp order: ((w0 + w1) + w2) + ...
        float* sum_g = combine;
        float* sum_b = combine + a.d;
        for (int step = 0; step < warps; ++step) {
          if (warp == step) {
            for_owned<kSlots>(tid, group, nvec, [&](int k, int i) {
              add_partial<kVec>(sum_g + i * kVec, acc_g[k], step == 0);
              add_partial<kVec>(sum_b + i * kVec, acc_b[k], step == 0);
            });
          }
          __syncthreads();
        }
        for (int col = threadIdx.x; col < a.d; col += blockDim.x) {
          if (pg) pg[col] = sum_g[col];
          if (pb) pb[col] = sum_b[col];
        }
        __syncthreads();  // the sums are rewritten by the next chunk
      } else {
        for_owned<kSlots>(tid, group, nvec, [&](int k, int i) {
#pragma unroll
          for (int j = 0; j < kVec; ++j) {
            if (pg) pg[i * kVec + j] = acc_g[k][j];
            if (pb) pb[i * kVec + j] = acc_b[k][j];
          }
        });
      }
    }
  }
}

// Chunk partials for rows too long for register accumulators: thread = column, rows of the chunk
// in increasing order. Grid: (column blocks, chunks).
template <typename T, bool kLayer>
__global__ void column_partials_kernel(BwdArgs<T> a) {
  const int64_t col = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (col >= a.d) return;
  for (int64_t c = blockIdx.y; c < a.chunks; c += gridDim.y) {
    const int64_t row0 = c * a.chunk_rows;
    const int64_t row1 = row0 + a.chunk_rows < a.n ? row0 + a.chunk_rows : a.n;
    float sg = 0.0f, sb = 0.0f;
    for (int64_t row = row0; row < row1; ++row) {
      const float dy = to_f32(a.dout[row * a.d + col]);
      const float mu = kLayer ? a.mean[row] : 0.0f;
      sg += dy * ((to_f32(a.x[row * a.d + col]) - mu) * a.rstd[row]);
      sb += dy;
    }
    if (a.part_gamma) a.part_gamma[c * a.d + col] = sg;
    if (a.part_beta) a.part_beta[c * a.d + col] = sb;
  }
}

// out[col] = Σ_c part[c, col] in a fixed order: lane ty sums chunks ty, ty + kFinalLanes, ... in
// double (loads batched so that several are in flight), then lane 0 adds the lane sums in order.
template <typename T>
__global__ void finalize_kernel(const float* part_gamma, const float* part_beta, int64_t chunks,
                                int d, T* dgamma, T* dbeta) {
  constexpr int kBatch = 4;
  __shared__ double sums[2][kFinalLanes][kFinalCols + 1];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t col = blockIdx.x * static_cast<int64_t>(kFinalCols) + tx;
  double g = 0.0, b = 0.0;
  if (col < d) {
    for (int64_t c0 = ty; c0 < chunks; c0 += kBatch * kFinalLanes) {
      float pg[kBatch], pb[kBatch];
#pragma unroll
      for (int q = 0; q < kBatch; ++q) {
        const int64_t c = c0 + q * kFinalLanes;
        pg[q] = part_gamma && c < chunks ? part_gamma[c * d + col] : 0.0f;
        pb[q] = part_beta && c < chunks ? part_beta[c * d + col] : 0.0f;
      }
#pragma unroll
      for (int q = 0; q < kBatch; ++q) {
        g += pg[q];
        b += pb[q];
      }
    }
  }
  sums[0][ty][tx] = g;
  sums[1][ty][tx] = b;
  __syncthreads();
  if (ty == 0 && col < d) {
    double tg = 0.0, tb = 0.0;
    for (int l = 0; l < kFinalLanes; ++l) {
      tg += sums[0][l][tx];
      tb += sums[1][l][tx];
    }
    if (dgamma) dgamma[col] = from_f32<T>(static_cast<float>(tg));
    if (dbeta) dbeta[col] = from_f32<T>(static_cast<float>(tb));
  }
}

// ---- Host side -------------------------------------------------------------------------------

bool aligned16(const Tensor& t) {
  return !t.defined() || reinterpret_cast<uintptr_t>(t.raw_data()) % 16 == 0;
}

int round_up32(int64_t v) {
  return static_cast<int>((v + 31) / 32 * 32);
}

// The launch configuration of a row kernel.
enum class Path { warp, block, stream };
struct Plan {
  bool vec;  // 16-byte vectors
  Path path;
  int threads;
};

Plan plan_rows(int64_t d, DType dtype, std::initializer_list<const Tensor*> tensors) {
  const int64_t width = dtype == DType::bf16 ? 8 : 4;
  bool vec = d % width == 0;
  for (const Tensor* t : tensors) vec = vec && aligned16(*t);
  const int64_t unit = vec ? width : 1;
  const int64_t nvec = d / unit;
  if (d <= 32 * kWarpFloats) return {vec, Path::warp, kWarpBlock};
  if (nvec <= static_cast<int64_t>(kMaxThreads) * kBlockSlots) {
    const int64_t threads = round_up32((nvec + kBlockSlots - 1) / kBlockSlots);
    return {vec, Path::block, static_cast<int>(threads < 64 ? 64 : threads)};
  }
  return {vec, Path::stream, kMaxThreads};
}

unsigned row_blocks(int64_t groups, int per_block) {
  const int64_t blocks = (groups + per_block - 1) / per_block;
  return static_cast<unsigned>(blocks < (1 << 20) ? blocks : (1 << 20));
}

// Launches the row kernel the plan names (kVec: elements per vector, 1 when not vectorised).
template <int kVec, typename T, bool kLayer>
void launch_forward(const Plan& p, const FwdArgs<T>& a) {
  if (p.path == Path::warp) {
    norm_forward_kernel<T, kVec, kWarpFloats / kVec, true, kLayer>
        <<<row_blocks(a.n, kWarpBlock / 32), kWarpBlock>>>(a);
  } else if (p.path == Path::block) {
    norm_forward_kernel<T, kVec, kBlockSlots, false, kLayer><<<row_blocks(a.n, 1), p.threads>>>(a);
  } else {
    norm_forward_kernel<T, kVec, 0, false, kLayer><<<row_blocks(a.n, 1), p.threads>>>(a);
  }
}

template <int kVec, typename T, bool kLayer>
void launch_backward(const Plan& p, const BwdArgs<T>& a) {
  const unsigned blocks = static_cast<unsigned>(a.chunks);
  if (p.path == Path::warp) {
    const size_t smem = 2 * static_cast<size_t>(a.d) * sizeof(float);
    norm_backward_kernel<T, kVec, kWarpFloats / kVec, true, kLayer>
        <<<blocks, kWarpBlock, smem>>>(a);
  } else if (p.path == Path::block) {
    norm_backward_kernel<T, kVec, kBlockSlots, false, kLayer><<<blocks, p.threads>>>(a);
  } else {
    if (a.part_gamma || a.part_beta) {
      const dim3 grid(static_cast<unsigned>((a.d + 255) / 256),
                      static_cast<unsigned>(a.chunks < 65535 ? a.chunks : 65535));
      column_partials_kernel<T, kLayer><<<grid, 256>>>(a);
      check_launch("norm column_partials_kernel");
    }
    BwdArgs<T> rows = a;
    rows.part_gamma = rows.part_beta = nullptr;
    norm_backward_kernel<T, kVec, 0, false, kLayer><<<blocks, p.threads>>>(rows);
  }
}

struct Shapes {
  int64_t n;
  int64_t d;
};

Shapes check_input(const char* op, const Tensor& x, const Tensor& gamma) {
  expect_float(op, "x", x);
  const int64_t d = last_dim(op, "x", x);
  RLAIF_CHECK(d > 0, op, ": x ", x, " has no features to normalise");
  RLAIF_CHECK(d <= (int64_t{1} << 30), op, ": x ", x, " has too many features for the cuda kernel");
  expect_float(op, "gamma", gamma);
  expect_same_dtype(op, "x", x, "gamma", gamma);
  expect_shape(op, "gamma", gamma, {d});
  return {rows(x), d};
}

// Optional [D] parameter or gradient of x's dtype.
void check_param(const char* op, const char* arg, const Tensor& t, const Tensor& x, int64_t d) {
  if (!t.defined()) return;
  expect_float(op, arg, t);
  expect_same_dtype(op, "x", x, arg, t);
  expect_shape(op, arg, t, {d});
}

void check_like_x(const char* op, const char* arg, const Tensor& t, const Tensor& x) {
  expect_float(op, arg, t);
  expect_same_dtype(op, "x", x, arg, t);
  expect_shape(op, arg, t, x.shape());
}

// A per-row statistic (mean, rstd): f32, shaped [N] or as x without its last dimension.
void check_stat(const char* op, const char* arg, const Tensor& stat, const Tensor& x, int64_t n) {
  expect_dtype(op, arg, stat, DType::f32);
  Shape leading(x.shape().begin(), x.shape().end() - 1);
  RLAIF_CHECK(stat.shape() == Shape{n} || stat.shape() == leading, op, ": ", arg, " is ", stat,
              " but must have shape ", shape_str({n}), " (one value per row of x ", x, ")");
}

template <bool kLayer>
void forward(const char* op, const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps,
             const Tensor& out, const Tensor& mean, const Tensor& rstd) {
  const Shapes s = check_input(op, x, gamma);
  check_param(op, "beta", beta, x, s.d);
  check_like_x(op, "out", out, x);
  if (kLayer) check_stat(op, "mean", mean, x, s.n);
  check_stat(op, "rstd", rstd, x, s.n);
  if (s.n == 0) return;

  const Plan p = plan_rows(s.d, x.dtype(), {&x, &gamma, &beta, &out});
  dispatch_float(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const FwdArgs<T> a{ptr<T>(x),
                       ptr<T>(gamma),
                       beta.defined() ? ptr<T>(beta) : nullptr,
                       ptr<T>(out),
                       kLayer ? ptr<float>(mean) : nullptr,
                       ptr<float>(rstd),
                       s.n,
                       static_cast<int>(s.d),
                       eps};
    if (p.vec) {
      launch_forward<vec_width<T>(), T, kLayer>(p, a);
    } else {
      launch_forward<1, T, kLayer>(p, a);
    }
  });
  check_launch(kLayer ? "layernorm_kernel" : "rmsnorm_kernel",
               describe({{"x", &x}, {"gamma", &gamma}, {"beta", &beta}, {"out", &out}}));
}

template <bool kLayer>
void backward(const char* op, const Tensor& x, const Tensor& gamma, const Tensor& mean,
              const Tensor& rstd, const Tensor& dout, const Tensor& dx, const Tensor& dgamma,
              const Tensor& dbeta) {
  const Shapes s = check_input(op, x, gamma);
  if (kLayer) check_stat(op, "mean", mean, x, s.n);
  check_stat(op, "rstd", rstd, x, s.n);
  check_like_x(op, "dout", dout, x);
  check_like_x(op, "dx", dx, x);
  check_param(op, "dgamma", dgamma, x, s.d);
  check_param(op, "dbeta", dbeta, x, s.d);
  const bool want_params = dgamma.defined() || dbeta.defined();
  if (s.n == 0) {  // sums over no rows
    if (dgamma.defined()) check_cuda(cudaMemsetAsync(dgamma.raw_data(), 0, dgamma.nbytes(), 0), op);
    if (dbeta.defined()) check_cuda(cudaMemsetAsync(dbeta.raw_data(), 0, dbeta.nbytes(), 0), op);
    return;
  }

  // Fixed partition of the rows into chunks: depends on N only, so results are reproducible.
  int64_t chunk_rows = (s.n + kMaxChunks - 1) / kMaxChunks;
  if (chunk_rows < kMinChunkRows) chunk_rows = kMinChunkRows;
  const int64_t chunks = (s.n + chunk_rows - 1) / chunk_rows;
  Tensor partials;
  if (want_params) partials = Tensor::empty({2, chunks, s.d}, DType::f32, x.device());
  float* part_g = dgamma.defined() ? ptr<float>(partials) : nullptr;
  float* part_b = dbeta.defined() ? ptr<float>(partials) + chunks * s.d : nullptr;

  const Plan p = plan_rows(s.d, x.dtype(), {&x, &gamma, &dout, &dx});
  dispatch_float(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const BwdArgs<T> a{ptr<T>(x),
                       ptr<T>(gamma),
                       kLayer ? ptr<float>(mean) : nullptr,
                       ptr<float>(rstd),
                       ptr<T>(dout),
                       ptr<T>(dx),
                       part_g,
                       part_b,
                       s.n,
                       static_cast<int>(s.d),
                       chunk_rows,
                       chunks};
    if (p.vec) {
      launch_backward<vec_width<T>(), T, kLayer>(p, a);
    } else {
      launch_backward<1, T, kLayer>(p, a);
    }
    check_launch(kLayer ? "layernorm_backward_kernel" : "rmsnorm_backward_kernel",
                 describe({{"x", &x}, {"dout", &dout}, {"dx", &dx}}));
    if (want_params) {
      const unsigned blocks = static_cast<unsigned>((s.d + kFinalCols - 1) / kFinalCols);
      finalize_kernel<T><<<blocks, dim3(kFinalCols, kFinalLanes)>>>(
          part_g, part_b, chunks, static_cast<int>(s.d),
          dgamma.defined() ? ptr<T>(dgamma) : nullptr, dbeta.defined() ? ptr<T>(dbeta) : nullptr);
      check_launch("norm finalize_kernel", describe({{"dgamma", &dgamma}, {"dbeta", &dbeta}}));
    }
  });
}

}  // namespace

void CudaBackend::layernorm(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps,
                            const Tensor& out, const Tensor& mean, const Tensor& rstd) {
  forward<true>("layernorm", x, gamma, beta, eps, out, mean, rstd);
}

void CudaBackend::layernorm_backward(const Tensor& x, const Tensor& gamma, const Tensor& mean,
                                     const Tensor& rstd, const Tensor& dout, const Tensor& dx,
                                     const Tensor& dgamma, const Tensor& dbeta) {
  backward<true>("layernorm_backward", x, gamma, mean, rstd, dout, dx, dgamma, dbeta);
}

void CudaBackend::rmsnorm(const Tensor& x, const Tensor& gamma, float eps, const Tensor& out,
                          const Tensor& rstd) {
  forward<false>("rmsnorm", x, gamma, Tensor(), eps, out, Tensor(), rstd);
}

void CudaBackend::rmsnorm_backward(const Tensor& x, const Tensor& gamma, const Tensor& rstd,
                                   const Tensor& dout, const Tensor& dx, const Tensor& dgamma) {
  backward<false>("rmsnorm_backward", x, gamma, Tensor(), rstd, dout, dx, dgamma, Tensor());
}

}  // namespace rlaif::cuda
