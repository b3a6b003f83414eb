// Softmax and log-softmax over the last dimension on the GPU, and their backward passes.
//
// A row of D values belongs to one group of threads: a warp for D ≤ 1024 (8 rows per block), else
// a whole block (256 threads up to D = 8192, 1024 beyond, e.g. a 50257-word vocabulary). Each
// thread walks the row with stride = group size, so a warp's loads are coalesced.
//
// The forward pass reads the row twice: first an online max and sum (each thread keeps a running
// maximum m and Σ exp(x - m), rescaling the sum when the maximum grows; the threads' pairs then
// merge in a fixed butterfly/tree order), then it writes exp(x - m) / s or (x - m) - log s.
// Every exponent is ≤ 0, so nothing overflows. The backward passes form one row sum (Σ dy·y or
// Σ dy) and then write dx. All arithmetic is f32; the group size depends on D only, so results
// are bitwise reproducible. Each row is reduced (behind a barrier or warp shuffle) before it is
// written, so out may alias x, and dx may alias y or dy.
#include <cstdint>
#include <type_traits>

#include "kernels/cuda/cuda_common.cuh"

namespace rlaif::cuda {
namespace {

constexpr int kWarpRowsPerBlock = 8;  // warp-per-row kernels run 8 warps (256 threads) a block

// Folds v into the running (m, s) = (max, Σ exp(x - m)). A -inf contributes nothing (and must not
// compute exp(-inf - -inf) = NaN); a NaN makes s NaN, as in the CPU reference.
__device__ __forceinline__ void online_add(float& m, float& s, float v) {
  if (v > m) {
    s = s * expf(m - v) + 1.0f;  // s = 0 while m = -inf, and 0·0 = 0
    m = v;
  } else if (v != -INFINITY) {
    s += expf(v - m);
  }
}

// (m, s) ∪ (m2, s2). Symmetric in its two arguments (float + and · commute), so every lane of a
// butterfly ends with bitwise the same pair.
__device__ __forceinline__ void merge(float& m, float& s, float m2, float s2) {
  const float mx = fmaxf(m, m2);
  if (mx == -INFINITY) {
    s = s + s2;  // both empty so far
  } else {
    s = s * expf(m - mx) + s2 * expf(m2 - mx);
  }
  m = mx;
}

__device__ __forceinline__ void warp_merge(float& m, float& s) {
  for (int o = 16; o > 0; o >>= 1) {
    const float m2 = __shfl_xor_sync(0xffffffffu, m, o);
    const float s2 = __shfl_xor_sync(0xffffffffu, s, o);
    merge(m, s, m2, s2);
  }
}

// The threads that own one row: a warp (kGroup = 32) or the whole block.
template <int kGroup>
struct RowGroup {
  static constexpr bool kWarp = kGroup == 32;
  __device__ static int rank() { return kWarp ? (threadIdx.x & 31) : threadIdx.x; }
  __device__ static int64_t first_row() {
    return kWarp ? blockIdx.x * static_cast<int64_t>(kWarpRowsPerBlock) + (threadIdx.x >> 5)
                 : blockIdx.x;
  }
  __device__ static int64_t row_stride() {
    return kWarp ? static_cast<int64_t>(gridDim.x) * kWarpRowsPerBlock : gridDim.x;
  }
  // Sum over the group; every thread gets the result. scratch: 32 floats of shared memory.
  __device__ static float sum(float v, float* scratch) {
    if constexpr (kWarp) {
      return warp_sum(v);
    } else {
      return block_sum(v, scratch);
    }
  }
  // Merge of the group's (m, s) pairs; every thread gets the result. scratch: 64 floats.
  __device__ static void merge_all(float& m, float& s, float* scratch) {
    warp_merge(m, s);
    if constexpr (!kWarp) {
      const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
      __syncthreads();  // scratch may still be read by a previous call
      if (lane == 0) {
        scratch[warp] = m;
        scratch[32 + warp] = s;
      }
      __syncthreads();
      m = lane < warps ? scratch[lane] : -INFINITY;
      s = lane < warps ? scratch[32 + lane] : 0.0f;
      warp_merge(m, s);
    }
  }
};

// out = softmax(x) (kLog: log_softmax(x)) row by row.
template <typename T, int kGroup, bool kLog>
__global__ void __launch_bounds__(kGroup == 32 ? 32 * kWarpRowsPerBlock : kGroup)
    softmax_kernel(const T* x, T* out, int64_t rows, int64_t D) {
  using G = RowGroup<kGroup>;
  __shared__ float scratch[64];
  for (int64_t r = G::first_row(); r < rows; r += G::row_stride()) {
    const T* xr = x + r * D;
    T* yr = out + r * D;
    float m = -INFINITY, s = 0.0f;
    for (int64_t d = G::rank(); d < D; d += kGroup) online_add(m, s, to_f32(xr[d]));
    G::merge_all(m, s, scratch);
    // A row of all -inf gives m = -inf, s = 0 and NaN below, as in the CPU reference and torch.
    if constexpr (kLog) {
      const float log_s = logf(s);
      for (int64_t d = G::rank(); d < D; d += kGroup) {
        yr[d] = from_f32<T>((to_f32(xr[d]) - m) - log_s);
      }
    } else {
      for (int64_t d = G::rank(); d < D; d += kGroup) {
        yr[d] = from_f32<T>(expf(to_f32(xr[d]) - m) / s);
      }
    }
  }
}

// Given y = softmax(x): dx = y ⊙ (dy - Σ dy·y). Given y = log_softmax(x) (kLog):
// dx = dy - exp(y)·Σ dy.
template <typename T, int kGroup, bool kLog>
__global__ void __launch_bounds__(kGroup == 32 ? 32 * kWarpRowsPerBlock : kGroup)
    softmax_backward_kernel(const T* y, const T* dy, T* dx, int64_t rows, int64_t D) {
  using G = RowGroup<kGroup>;
  __shared__ float scratch[64];
  for (int64_t r = G::first_row(); r < rows; r += G::row_stride()) {
    const T* yr = y + r * D;
    const T* dyr = dy + r * D;
    T* dxr = dx + r * D;
    float acc = 0.0f;
    for (int64_t d = G::rank(); d < D; d += kGroup) {
      acc += kLog ? to_f32(dyr[d]) : to_f32(dyr[d]) * to_f32(yr[d]);
    }
    acc = G::sum(acc, scratch);
    for (int64_t d = G::rank(); d < D; d += kGroup) {
      const float yv = to_f32(yr[d]), g = to_f32(dyr[d]);
      dxr[d] = from_f32<T>(kLog ? g - expf(yv) * acc : yv * (g - acc));
    }
  }
}

// Calls launch(std::integral_constant<int, G>{}, blocks, threads) with the group size for rows of
// D values (see the file comment).
template <typename Launch>
void with_group(int64_t rows, int64_t D, Launch&& launch) {
  if (D <= 1024) {
    launch(std::integral_constant<int, 32>{},
           blocks_for((rows + kWarpRowsPerBlock - 1) / kWarpRowsPerBlock), 32 * kWarpRowsPerBlock);
  } else if (D <= 8192) {
    launch(std::integral_constant<int, 256>{}, blocks_for(rows), 256);
  } else {
    launch(std::integral_constant<int, 1024>{}, blocks_for(rows), 1024);
  }
}

// Checks x (float, at least 1-D) and the tensor that must match it in shape and dtype; returns D.
int64_t check_rows(const char* op, const char* x_name, const Tensor& x, const char* other_name,
                   const Tensor& other) {
  expect_float(op, x_name, x);
  const int64_t D = last_dim(op, x_name, x);
  expect_float(op, other_name, other);
  expect_shape(op, other_name, other, x.shape());
  expect_same_dtype(op, x_name, x, other_name, other);
  return D;
}

template <bool kLog>
void run_softmax(const char* op, const Tensor& x, const Tensor& out) {
  const int64_t D = check_rows(op, "x", x, "out", out);
  const int64_t n = rows(x);
  if (n == 0) return;
  dispatch_float(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    with_group(n, D, [&](auto group, unsigned blocks, unsigned threads) {
      softmax_kernel<T, decltype(group)::value, kLog>
          <<<blocks, threads>>>(ptr<T>(x), ptr<T>(out), n, D);
    });
  });
  check_launch(op, describe({{"x", &x}, {"out", &out}}));
}

template <bool kLog>
void run_softmax_backward(const char* op, const Tensor& y, const Tensor& dy, const Tensor& dx) {
  const int64_t D = check_rows(op, "y", y, "dy", dy);
  expect_float(op, "dx", dx);
  expect_shape(op, "dx", dx, y.shape());
  expect_same_dtype(op, "y", y, "dx", dx);
  const int64_t n = rows(y);
  if (n == 0) return;
  dispatch_float(y.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    with_group(n, D, [&](auto group, unsigned blocks, unsigned threads) {
      softmax_backward_kernel<T, decltype(group)::value, kLog>
          <<<blocks, threads>>>(ptr<T>(y), ptr<T>(dy), ptr<T>(dx), n, D);
    });
  });
  check_launch(op, describe({{"y", &y}, {"dy", &dy}, {"dx", &dx}}));
}

}  // namespace

void CudaBackend::softmax(const Tensor& x, const Tensor& out) {
  run_softmax<false>("softmax", x, out);
}

void CudaBackend::log_softmax(const Tensor& x, const Tensor& out) {
  run_softmax<true>("log_softmax", x, out);
}

void CudaBackend::softmax_backward(const Tensor& y, const Tensor& dy, const Tensor& dx) {
  run_softmax_backward<false>("softmax_backward", y, dy, dx);
}

void CudaBackend::log_softmax_backward(const Tensor& y, const Tensor& dy, const Tensor& dx) {
  run_softmax_backward<true>("log_softmax_backward", y, dy, dx);
}

}  // namespace rlaif::cuda
