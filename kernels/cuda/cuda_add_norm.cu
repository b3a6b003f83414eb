// LayerNorm and RMSNorm forward on the GPU, plain (layernorm, rmsnorm) or fused with the residual
// add before them (add_layernorm, add_rmsnorm: llm.c's "fused residual forward").
//
// Design: one kernel template serves both; kAdd changes only its first pass. The plain kernel
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
#include "kernels/cuda/cuda_norm.cuh"

namespace rlaif::cuda {
namespace {

using namespace norm_rows;

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

}  // namespace rlaif::cuda
