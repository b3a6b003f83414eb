// LayerNorm and RMSNorm on the GPU, forward and backward. The forward is plain (layernorm,
// rmsnorm) or fused with the residual add before it (add_layernorm, add_rmsnorm: llm.c's "fused
// residual forward").
//
// Forward: one kernel template serves both; kAdd changes only its first pass. The plain kernel
// reads a row of x; the fused one reads x and residual, rounds x + residual to the storage dtype
// (exactly what binary(add) stores), writes that as `sum` and goes on with the rounded values as
// the row. Everything after the first pass (row groups, reductions, output) is the same code, so
// on aligned tensors (the plan, and with it the summation order, depends on D, the dtype and the
// alignment only) a fused call gives the bits of add then norm, and the add's extra read of x and
// write of the sum disappear: per element the fused kernel moves 2 reads and 2 writes instead of
// 3 reads and 2 writes.
//
// Row mapping (see cuda_norm.cuh): a warp per row when D ≤ 1024, else a block per row; rows that
// fit the registers are read once into them, longer rows (kSlots = 0) re-read each pass, from the
// sum this thread itself wrote in the fused kernel (every pass visits a thread's own elements, so
// no other thread's write is involved and no barrier is needed). Statistics are f32, two passes
// for LayerNorm (mean, then Σ(x - mean)²: no E[x²] - mean² cancellation).
//
// Aliasing: out may alias x in the plain kernel, sum may alias x or residual in the fused one: a
// thread reads each of its elements before it writes that element, and only it touches them.
//
// The plan (warp/block/stream, 16-byte vectors or not) of a fused call is taken over all six
// tensors; where x or residual alone would deny vectors, the call runs add then the plain norm.
//
// Backward: dx needs Σ_d g and Σ_d g·x̂ of its row (one fused two-value reduction), then a second
// pass over the row (an L1 hit) writes dx; the group's next row is prefetched into L2 meanwhile.
// With accumulate_dx the second pass also reads dx and stores old + new, the new term rounded to
// the storage dtype first and added with __fadd_rn (no FMA contraction): exactly what a separate dx
// tensor and binary(add) would give, so the fused backward of add_layernorm / add_rmsnorm changes
// no bit and saves the write and re-read of a separate dx.
// dgamma and dbeta are sums over rows, kept bitwise deterministic by a fixed partition: block c
// owns rows [c·R, (c+1)·R) and accumulates its threads' columns in registers in increasing row
// order (on the warp path the warps of a block interleave rows and are then added in warp order
// through shared memory); it writes f32 partials [chunks, D]; a second kernel adds the chunks per
// column in a fixed order, in double. Rows too long for register accumulators get their partials
// from a column-parallel kernel instead.
#include "kernels/cuda/cuda_norm.cuh"

namespace rlaif::cuda {
namespace {

using namespace norm_rows;

// ---- Forward -----------------------------------------------------------------------------------

template <typename T>
struct FwdArgs {
  const T* x;
  const T* residual;  // kAdd only: added to x
  T* sum;             // kAdd only: x + residual, written and then normalised
  const T* gamma;
  const T* beta;  // null: no shift (and always null for RMSNorm)
  T* out;
  float* mean;  // null for RMSNorm
  float* rstd;
  int64_t n;
  int d;
  float eps;
};

template <typename T, int kVec, int kSlots, bool kWarp, bool kLayer, bool kAdd>
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
    const int64_t base = row * a.d;
    T* yr = a.out + base;
    // Vector i of the row that is normalised: x, or the sum written in pass 1.
    auto fetch = [&](int k, int i, float(&v)[kVec]) {
      if constexpr (kSlots > 0) {
#pragma unroll
        for (int j = 0; j < kVec; ++j) v[j] = cache[k][j];
      } else {
        load_f32_vec<T, kVec>((kAdd ? a.sum : a.x) + base + static_cast<int64_t>(i) * kVec, v);
      }
    };

    // Pass 1: load the row (x, or x + residual, storing the sum), and Σx (LayerNorm) or Σx²
    // (RMSNorm).
    float s1 = 0.0f;
    for_owned<kSlots>(tid, group, nvec, [&](int k, int i) {
      const int64_t off = base + static_cast<int64_t>(i) * kVec;
      float v[kVec];
      load_f32_vec<T, kVec>(a.x + off, v);
      if constexpr (kAdd) {
        float r[kVec];
        load_f32_vec<T, kVec>(a.residual + off, r);
#pragma unroll
        for (int j = 0; j < kVec; ++j) v[j] = to_f32(from_f32<T>(v[j] + r[j]));  // as stored
        store_f32_vec<T, kVec>(a.sum + off, v);
      }
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

    // Output. Every read of x and residual in the row happened in pass 1, and a thread rereads
    // (streaming) only the elements it then writes.
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

// Launches the row kernel the plan names (kVec: elements per vector, 1 when not vectorised).
template <int kVec, typename T, bool kLayer, bool kAdd>
void launch_forward(const Plan& p, const FwdArgs<T>& a) {
  if (p.path == Path::warp) {
    norm_forward_kernel<T, kVec, kWarpFloats / kVec, true, kLayer, kAdd>
        <<<row_blocks(a.n, kWarpBlock / 32), kWarpBlock>>>(a);
  } else if (p.path == Path::block) {
    norm_forward_kernel<T, kVec, kBlockSlots, false, kLayer, kAdd>
        <<<row_blocks(a.n, 1), p.threads>>>(a);
  } else {
    norm_forward_kernel<T, kVec, 0, false, kLayer, kAdd><<<row_blocks(a.n, 1), p.threads>>>(a);
  }
}

template <int kVec, typename T, bool kLayer>
void launch_forward(const Plan& p, const FwdArgs<T>& a, bool add) {
  if (add) {
    launch_forward<kVec, T, kLayer, true>(p, a);
  } else {
    launch_forward<kVec, T, kLayer, false>(p, a);
  }
}

// The plain norm of x when residual is undefined, else the fused add and norm.
template <bool kLayer>
void forward(Backend& self, const char* op, const Tensor& x, const Tensor& residual,
             const Tensor& sum, const Tensor& gamma, const Tensor& beta, float eps,
             const Tensor& out, const Tensor& mean, const Tensor& rstd) {
  const Shapes s = check_input(op, x, gamma);
  const bool add = residual.defined();
  if (add) {
    check_like_x(op, "residual", residual, x);
    check_like_x(op, "sum", sum, x);
  }
  check_param(op, "beta", beta, x, s.d);
  check_like_x(op, "out", out, x);
  if (kLayer) check_stat(op, "mean", mean, x, s.n);
  check_stat(op, "rstd", rstd, x, s.n);
  if (s.n == 0) return;

  const Plan p = plan_rows(s.d, x.dtype(), {&x, &residual, &sum, &gamma, &beta, &out});
  if (add && p.vec != plan_rows(s.d, x.dtype(), {&sum, &gamma, &beta, &out}).vec) {
    // x or residual is misaligned where the rest is not (a view at an odd offset; rlaif's own
    // tensors never are): the fused kernel would sum in another order than the plain norm of the
    // sum, so keep the promise of add then norm by running exactly that.
    self.binary(BinaryOp::add, x, residual, sum);
    forward<kLayer>(self, op, sum, Tensor(), Tensor(), gamma, beta, eps, out, mean, rstd);
    return;
  }
  dispatch_float(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const FwdArgs<T> a{ptr<T>(x),
                       add ? ptr<T>(residual) : nullptr,
                       add ? ptr<T>(sum) : nullptr,
                       ptr<T>(gamma),
                       beta.defined() ? ptr<T>(beta) : nullptr,
                       ptr<T>(out),
                       kLayer ? ptr<float>(mean) : nullptr,
                       ptr<float>(rstd),
                       s.n,
                       static_cast<int>(s.d),
                       eps};
    if (p.vec) {
      launch_forward<vec_width<T>(), T, kLayer>(p, a, add);
    } else {
      launch_forward<1, T, kLayer>(p, a, add);
    }
  });
  check_launch(op, describe({{"x", &x},
                             {"residual", &residual},
                             {"gamma", &gamma},
                             {"beta", &beta},
                             {"sum", &sum},
                             {"out", &out}}));
}

// ---- Backward ----------------------------------------------------------------------------------

constexpr int64_t kMinChunkRows = 16;
constexpr int64_t kMaxChunks = 512;
constexpr int kFinalCols = 32, kFinalLanes = 32;  // finalize block: 32 columns × 32 chunk lanes

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
  bool accumulate;  // dx += instead of dx =
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
      // may alias x or dout (and with accumulate_dx, dx is read only where it is written).
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
        if (a.accumulate) {
          // As a separate dx tensor and binary(add) would: round the new term to T, then add.
          float old[kVec];
          load_f32_vec<T, kVec>(dxr + off, old);
#pragma unroll
          for (int j = 0; j < kVec; ++j) out[j] = __fadd_rn(old[j], to_f32(from_f32<T>(out[j])));
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

// ---- Backward, host side -----------------------------------------------------------------------

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

template <bool kLayer>
void backward(Backend& self, const char* op, const Tensor& x, const Tensor& gamma,
              const Tensor& mean, const Tensor& rstd, const Tensor& dout, const Tensor& dx,
              const Tensor& dgamma, const Tensor& dbeta, bool accumulate_dx) {
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

  const Plan p = plan_rows(s.d, x.dtype(), {&x, &gamma, &dout, &dx});
  if (accumulate_dx && p.vec != plan_rows(s.d, x.dtype(), {&x, &gamma, &dout}).vec) {
    // dx alone is misaligned (a view at an odd offset): accumulating into it would sum the rows
    // in another order than the fresh (aligned) dx tensor backend.h compares with, so keep the
    // promise by running exactly that, the backward into a fresh tensor and then the add.
    Tensor fresh = Tensor::empty(dx.shape(), dx.dtype(), dx.device());
    backward<kLayer>(self, op, x, gamma, mean, rstd, dout, fresh, dgamma, dbeta, false);
    self.binary(BinaryOp::add, dx, fresh, dx);
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
                       chunks,
                       accumulate_dx};
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
  forward<true>(*this, "layernorm", x, Tensor(), Tensor(), gamma, beta, eps, out, mean, rstd);
}

void CudaBackend::rmsnorm(const Tensor& x, const Tensor& gamma, float eps, const Tensor& out,
                          const Tensor& rstd) {
  forward<false>(*this, "rmsnorm", x, Tensor(), Tensor(), gamma, Tensor(), eps, out, Tensor(),
                 rstd);
}

void CudaBackend::add_layernorm(const Tensor& x, const Tensor& residual, const Tensor& gamma,
                                const Tensor& beta, float eps, const Tensor& sum, const Tensor& out,
                                const Tensor& mean, const Tensor& rstd) {
  expect_float("add_layernorm", "residual", residual);  // defined: it selects the fused kernel
  forward<true>(*this, "add_layernorm", x, residual, sum, gamma, beta, eps, out, mean, rstd);
}

void CudaBackend::add_rmsnorm(const Tensor& x, const Tensor& residual, const Tensor& gamma,
                              float eps, const Tensor& sum, const Tensor& out, const Tensor& rstd) {
  expect_float("add_rmsnorm", "residual", residual);
  forward<false>(*this, "add_rmsnorm", x, residual, sum, gamma, Tensor(), eps, out, Tensor(), rstd);
}

void CudaBackend::layernorm_backward(const Tensor& x, const Tensor& gamma, const Tensor& mean,
                                     const Tensor& rstd, const Tensor& dout, const Tensor& dx,
                                     const Tensor& dgamma, const Tensor& dbeta,
                                     bool accumulate_dx) {
  backward<true>(*this, "layernorm_backward", x, gamma, mean, rstd, dout, dx, dgamma, dbeta,
                 accumulate_dx);
}

void CudaBackend::rmsnorm_backward(const Tensor& x, const Tensor& gamma, const Tensor& rstd,
                                   const Tensor& dout, const Tensor& dx, const Tensor& dgamma,
                                   bool accumulate_dx) {
  backward<false>(*this, "rmsnorm_backward", x, gamma, Tensor(), rstd, dout, dx, dgamma, Tensor(),
                  accumulate_dx);
}

}  // namespace rlaif::cuda
