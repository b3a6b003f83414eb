// Reductions on the GPU: reduce over any dimension (sum, mean, max) and its backward pass, argmax,
// and the masked row sums of the sequence losses.
//
// reduce, reduce_backward(max) and argmax view x as [outer, n, inner] around the reduced
// dimension. A block owns one outer index and a tile of TX consecutive inner indices (TX a power
// of two up to 32, so a warp reads consecutive addresses whatever inner is); its TY threads per
// column stride over n, and the TY partials of a column meet in a shared-memory tree. TX·TY is at
// most 256, or 1024 when there are few groups to spread over the GPU. TX and TY depend on the
// shape only, so the order of every f32 sum is fixed: results are bitwise reproducible. The max
// keeps (value, position) pairs and prefers NaN, then the larger value, then the earlier
// position, which is exactly the CPU reference's "first maximum, NaN wins". A sum or mean over a
// long dimension with few columns (fewer than 256 groups of 32, n ≥ 512: the bias gradients)
// takes cuda_column_sum.cu's kernels instead, which also split the rows over blocks.
//
// masked_reduce(_backward) give each row a block (block_sum's fixed butterfly order).
#include <cstdint>
#include <span>
#include <string>

#include "kernels/cuda/cuda_column_sum.cuh"
#include "kernels/cuda/cuda_common.cuh"

namespace rlaif::cuda {
namespace {

constexpr int kReduceThreads = 256;      // TX·TY ≤ this usually,
constexpr int kReduceMaxThreads = 1024;  // and ≤ this when there are few groups to spread

// x as [outer, n, inner]: element (o, k, i) sits at (o·n + k)·inner + i.
struct Layout {
  int64_t outer = 1, n = 1, inner = 1;
  int64_t tiles = 1;   // ⌈inner / tx⌉
  int tx = 1, ty = 1;  // threads per block along inner and along n; powers of two
};

Layout make_layout(int64_t outer, int64_t n, int64_t inner) {
  Layout l;
  l.outer = outer;
  l.n = n;
  l.inner = inner;
  while (l.tx < 32 && l.tx < inner) l.tx *= 2;
  l.tiles = (inner + l.tx - 1) / l.tx;
  // Few (outer, tile) groups, e.g. a sum over the rows of [8192, 768]: give each more threads
  // along n. This depends on the shape only, so the order of the sums stays fixed.
  const int limit = outer * l.tiles < 1024 ? kReduceMaxThreads : kReduceThreads;
  while (l.tx * l.ty < limit && l.ty < n) l.ty *= 2;
  return l;
}

// Whether (v, k) should replace the current best (bv, bk) of a max: a NaN beats any number (it
// propagates, as in torch.max), a larger value beats a smaller one, and on ties the earlier
// position wins.
__device__ __forceinline__ bool beats(float v, int64_t k, float bv, int64_t bk) {
  const bool vn = isnan(v), bn = isnan(bv);
  if (vn != bn) return vn;
  if (!vn && v != bv) return v > bv;
  return k < bk;
}

enum Mode { kSum, kMean, kMax, kArgmax, kMaxBackward };

// One block per (outer index, tile of inner indices), looping over such groups. See the file
// comment. out: the value (sum, mean, max); idx: argmax's i32 positions; for kMaxBackward,
// dx[o, k, i] = dy[o, i] at the first maximum k, else 0.
template <typename T, int kMode>
__global__ void __launch_bounds__(kReduceMaxThreads)
    reduce_kernel(const T* x, Layout l, T* out, int32_t* idx, const T* dy, T* dx) {
  constexpr bool kIsMax = kMode == kMax || kMode == kArgmax || kMode == kMaxBackward;
  __shared__ float sval[kReduceMaxThreads];
  __shared__ int64_t sidx[kReduceMaxThreads];
  const int tx = static_cast<int>(threadIdx.x) & (l.tx - 1);
  const int ty = static_cast<int>(threadIdx.x) / l.tx;
  const int slot = ty * l.tx + tx;
  const int64_t groups = l.outer * l.tiles;
  for (int64_t g = blockIdx.x; g < groups; g += gridDim.x) {
    const int64_t o = g / l.tiles;
    const int64_t i = (g % l.tiles) * l.tx + tx;
    const bool valid = i < l.inner;
    const int64_t base = o * l.n * l.inner + i;

    float acc = kIsMax ? -INFINITY : 0.0f;
    int64_t at = INT64_MAX;  // a thread without elements loses every tie
    if (valid) {
      for (int64_t k = ty; k < l.n; k += l.ty) {
        const float v = to_f32(x[base + k * l.inner]);
        if constexpr (kIsMax) {
          if (beats(v, k, acc, at)) {
            acc = v;
            at = k;
          }
        } else {
          acc += v;
        }
      }
    }
    __syncthreads();  // the slots may still be read for the previous group
    sval[slot] = acc;
    sidx[slot] = at;
    for (int s = l.ty / 2; s > 0; s >>= 1) {
      __syncthreads();
      if (ty < s) {
        const int other = slot + s * l.tx;
        if constexpr (kIsMax) {
          if (beats(sval[other], sidx[other], sval[slot], sidx[slot])) {
            sval[slot] = sval[other];
            sidx[slot] = sidx[other];
          }
        } else {
          sval[slot] += sval[other];
        }
      }
    }
    __syncthreads();
    // Column tx's result is in slot tx. Every read of x for this group is done: dx may alias x.
    if (!valid) continue;
    const int64_t out_at = o * l.inner + i;
    if constexpr (kMode == kMaxBackward) {
      const int64_t best = sidx[tx];
      const T g_best = dy[out_at];
      const T zero = from_f32<T>(0.0f);
      for (int64_t k = ty; k < l.n; k += l.ty) dx[base + k * l.inner] = k == best ? g_best : zero;
    } else if (ty == 0) {
      if constexpr (kMode == kSum || kMode == kMax) {
        out[out_at] = from_f32<T>(sval[tx]);
      } else if constexpr (kMode == kMean) {
        out[out_at] = from_f32<T>(sval[tx] / static_cast<float>(l.n));  // 0/0 = NaN when n = 0
      } else {
        idx[out_at] = static_cast<int32_t>(sidx[tx]);
      }
    }
  }
}

// dx[o, k, i] = dy[o, i] (scaled by 1/n for the mean): a broadcast, one thread per element.
template <typename T>
__global__ void broadcast_kernel(const T* dy, int64_t total, int64_t n, int64_t inner, bool mean,
                                 T* dx) {
  const float n_f = static_cast<float>(n);
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t o = e / (n * inner), i = e % inner;
    const float g = to_f32(dy[o * inner + i]);
    dx[e] = from_f32<T>(mean ? g / n_f : g);
  }
}

// Reads element i of a float tensor whose dtype (f32 or bf16) is known only at run time: the
// masked reductions accept either for each of their tensors.
__device__ __forceinline__ float load_any(const void* p, int64_t i, bool is_bf16) {
  return is_bf16 ? __bfloat162float(static_cast<const bf16*>(p)[i])
                 : static_cast<const float*>(p)[i];
}
__device__ __forceinline__ void store_any(void* p, int64_t i, bool is_bf16, float v) {
  if (is_bf16) {
    static_cast<bf16*>(p)[i] = __float2bfloat16_rn(v);
  } else {
    static_cast<float*>(p)[i] = v;
  }
}

// One block per row: out[r] = Σ_t x·mask (over Σ_t mask for the mean, 0 where that is 0).
__global__ void masked_reduce_kernel(const void* x, bool x_bf16, const void* mask, bool mask_bf16,
                                     int64_t rows, int64_t T, bool mean, void* out, bool out_bf16) {
  __shared__ float scratch[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    float sum = 0.0f, weight = 0.0f;
    for (int64_t t = r * T + threadIdx.x; t < (r + 1) * T; t += blockDim.x) {
      const float m = load_any(mask, t, mask_bf16);
      sum += load_any(x, t, x_bf16) * m;
      weight += m;
    }
    sum = block_sum(sum, scratch);
    weight = block_sum(weight, scratch);
    if (threadIdx.x == 0) {
      if (mean) sum = weight != 0.0f ? sum / weight : 0.0f;
      store_any(out, r, out_bf16, sum);
    }
  }
}

// One block per row: dx[r, t] = dy[r]·mask[r, t] (over Σ_t mask[r, :] for the mean; 0 where that
// is 0). The row's mask is summed before dx is written, so dx may alias mask.
__global__ void masked_reduce_backward_kernel(const void* mask, bool mask_bf16, const void* dy,
                                              bool dy_bf16, int64_t rows, int64_t T, bool mean,
                                              void* dx, bool dx_bf16) {
  __shared__ float scratch[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    float scale = load_any(dy, r, dy_bf16);
    if (mean) {
      float weight = 0.0f;
      for (int64_t t = r * T + threadIdx.x; t < (r + 1) * T; t += blockDim.x) {
        weight += load_any(mask, t, mask_bf16);
      }
      weight = block_sum(weight, scratch);
      scale = weight != 0.0f ? scale / weight : 0.0f;
    }
    for (int64_t t = r * T + threadIdx.x; t < (r + 1) * T; t += blockDim.x) {
      store_any(dx, t, dx_bf16, scale * load_any(mask, t, mask_bf16));
    }
  }
}

// ---- Host helpers ----

Layout reduce_layout(const char* op, const Tensor& x, int dim, Shape* out_shape) {
  RLAIF_CHECK(x.dim() >= 1, op, ": x ", x, " needs at least one dimension");
  const int64_t d = dim < 0 ? dim + x.dim() : dim;
  RLAIF_CHECK(d >= 0 && d < x.dim(), op, ": dim ", dim, " is out of range for x ", x);
  int64_t outer = 1, inner = 1;
  out_shape->clear();
  for (int64_t i = 0; i < x.dim(); ++i) {
    if (i < d) outer *= x.size(i);
    if (i > d) inner *= x.size(i);
    if (i != d) out_shape->push_back(x.size(i));
  }
  return make_layout(outer, x.size(d), inner);
}

// x's shape without the last dimension: the shape of per-row results.
Shape row_shape(const char* op, const char* arg, const Tensor& x) {
  last_dim(op, arg, x);  // throws for 0-d tensors
  return Shape(x.shape().begin(), x.shape().end() - 1);
}

// A float tensor (f32 or bf16) of the given shape.
void expect_float_shape(const char* op, const char* arg, const Tensor& t, const Shape& shape) {
  expect_float(op, arg, t);
  expect_shape(op, arg, t, shape);
}

unsigned row_threads(int64_t T) {
  unsigned threads = 32;
  while (threads < kThreads && threads < T) threads *= 2;
  return threads;
}

template <typename T, int kMode>
void launch_reduce(const Layout& l, const T* x, T* out, int32_t* idx, const T* dy, T* dx) {
  reduce_kernel<T, kMode><<<blocks_for(l.outer * l.tiles), l.tx * l.ty>>>(x, l, out, idx, dy, dx);
}

}  // namespace

void CudaBackend::reduce(ReduceOp op, const Tensor& x, int dim, const Tensor& out) {
  const char* name = "reduce";
  expect_float(name, "x", x);
  Shape out_shape;
  const Layout l = reduce_layout(name, x, dim, &out_shape);
  expect_float_shape(name, "out", out, out_shape);
  expect_same_dtype(name, "x", x, "out", out);
  RLAIF_CHECK(op != ReduceOp::max || l.n > 0 || out.numel() == 0, "reduce: max over dimension ",
              dim, " of x ", x, ", which is empty");
  if (out.numel() == 0) return;
  dispatch_float(x.dtype(), name, [&](auto tag) {
    using T = decltype(tag);
    const T* xp = ptr<T>(x);
    T* outp = ptr<T>(out);
    // A long sum with few outputs (bias gradients: the rows of [8192, 768]) is split over the
    // rows as well (cuda_column_sum.cu); max keeps reduce_kernel.
    if (op != ReduceOp::max && use_split_column_sum(l.outer, l.n, l.inner)) {
      split_column_sum<T>(xp, l.outer, l.n, l.inner, op == ReduceOp::mean, outp, x.device());
      return;
    }
    switch (op) {
      case ReduceOp::sum:
        launch_reduce<T, kSum>(l, xp, outp, nullptr, nullptr, nullptr);
        break;
      case ReduceOp::mean:
        launch_reduce<T, kMean>(l, xp, outp, nullptr, nullptr, nullptr);
        break;
      case ReduceOp::max:
        launch_reduce<T, kMax>(l, xp, outp, nullptr, nullptr, nullptr);
        break;
    }
  });
  check_launch("reduce", describe({{"x", &x}, {"out", &out}}));
}

void CudaBackend::reduce_backward(ReduceOp op, const Tensor& x, const Tensor& y, const Tensor& dy,
                                  int dim, const Tensor& dx) {
  const char* name = "reduce_backward";
  expect_float(name, "x", x);
  Shape out_shape;
  const Layout l = reduce_layout(name, x, dim, &out_shape);
  // The maximum's position is found from x (as on the CPU); y is still required for max, and
  // checked wherever it is given.
  if (y.defined() || op == ReduceOp::max) {
    expect_float_shape(name, "y", y, out_shape);
    expect_same_dtype(name, "x", x, "y", y);
  }
  expect_float_shape(name, "dy", dy, out_shape);
  expect_same_dtype(name, "x", x, "dy", dy);
  expect_float_shape(name, "dx", dx, x.shape());
  expect_same_dtype(name, "x", x, "dx", dx);
  if (l.n == 0 || dx.numel() == 0) return;  // dx is empty
  dispatch_float(x.dtype(), name, [&](auto tag) {
    using T = decltype(tag);
    if (op == ReduceOp::max) {
      launch_reduce<T, kMaxBackward>(l, ptr<T>(x), nullptr, nullptr, ptr<T>(dy), ptr<T>(dx));
    } else {
      broadcast_kernel<T><<<grid_for(dx.numel()), kThreads>>>(ptr<T>(dy), dx.numel(), l.n, l.inner,
                                                              op == ReduceOp::mean, ptr<T>(dx));
    }
  });
  check_launch("reduce_backward", describe({{"x", &x}, {"dy", &dy}, {"dx", &dx}}));
}

void CudaBackend::argmax(const Tensor& x, const Tensor& out) {
  const char* name = "argmax";
  expect_float(name, "x", x);
  expect_dtype(name, "out", out, DType::i32);
  expect_shape(name, "out", out, row_shape(name, "x", x));
  const int64_t D = x.size(-1);
  RLAIF_CHECK(D > 0 || out.numel() == 0, "argmax: x ", x, " has an empty last dimension");
  if (out.numel() == 0) return;
  const Layout l = make_layout(out.numel(), D, 1);
  dispatch_float(x.dtype(), name, [&](auto tag) {
    using T = decltype(tag);
    launch_reduce<T, kArgmax>(l, ptr<T>(x), nullptr, ptr<int32_t>(out), nullptr, nullptr);
  });
  check_launch("argmax", describe({{"x", &x}, {"out", &out}}));
}

void CudaBackend::masked_reduce(const Tensor& x, const Tensor& mask, bool mean, const Tensor& out) {
  const char* name = "masked_reduce";
  expect_float(name, "x", x);
  expect_float_shape(name, "mask", mask, x.shape());
  expect_float_shape(name, "out", out, row_shape(name, "x", x));
  // Rows are counted from out, not x: a [N, 0] input still has N (zero) results.
  const int64_t rows = out.numel(), T = x.size(-1);
  if (rows == 0) return;
  masked_reduce_kernel<<<blocks_for(rows), row_threads(T)>>>(
      x.raw_data(), x.dtype() == DType::bf16, mask.raw_data(), mask.dtype() == DType::bf16, rows, T,
      mean, out.raw_data(), out.dtype() == DType::bf16);
  check_launch("masked_reduce", describe({{"x", &x}, {"mask", &mask}, {"out", &out}}));
}

void CudaBackend::masked_reduce_backward(const Tensor& mask, const Tensor& dy, bool mean,
                                         const Tensor& dx) {
  const char* name = "masked_reduce_backward";
  expect_float(name, "mask", mask);
  expect_float_shape(name, "dy", dy, row_shape(name, "mask", mask));
  expect_float_shape(name, "dx", dx, mask.shape());
  const int64_t rows = dy.numel(), T = mask.size(-1);
  if (rows == 0 || T == 0) return;  // dx is empty
  masked_reduce_backward_kernel<<<blocks_for(rows), row_threads(T)>>>(
      mask.raw_data(), mask.dtype() == DType::bf16, dy.raw_data(), dy.dtype() == DType::bf16, rows,
      T, mean, dx.raw_data(), dx.dtype() == DType::bf16);
  check_launch("masked_reduce_backward", describe({{"mask", &mask}, {"dy", &dy}, {"dx", &dx}}));
}

}  // namespace rlaif::cuda
