// Losses over a vocabulary on the GPU: softmax cross-entropy and gathered log-probabilities,
// forward and backward, fused so that the probabilities are never stored.
//
// One block per row of V logits (128 threads below V = 8192, 512 above). The forward pass reads
// the row once: each thread keeps an online (running max m, Σ exp(x - m)) pair, rescaling the sum
// when the maximum grows, and the block merges the pairs in a fixed butterfly/tree order; then
//   lse = m + log s,  loss = log s + (m - x_t),  logp = (x_t - m) - log s
// (forming m - x_t first keeps a small loss accurate instead of subtracting two close lse-sized
// numbers). The backward pass reads each logit once and writes its gradient once:
//   dx_v = coef·(exp(x_v - lse) - [v = t]),  coef = dloss (cross-entropy) or -dlogp.
// Rows are read as 16-byte packs: a few scalar elements up to the first 16-byte boundary (rows of
// odd length V start at varying alignments), aligned packs, then a scalar tail; the backward takes
// that path only when logits and dlogits are equally aligned, else it goes scalar. Four packs are
// loaded before any is used, so enough bytes are in flight to run near memory bandwidth.
//
// Targets are validated first by a small kernel that records the first bad position (an integer
// atomicMin: order-independent) and one readback, so a bad target is an Error naming its value
// and position, as on the CPU, and nothing is written. All arithmetic is f32; the per-thread
// element order depends only on V and the alignment, so results are bitwise reproducible.
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>

#include "kernels/cuda/cuda_common.cuh"

namespace rlaif::cuda {
namespace {

constexpr int kUnroll = 4;  // packs loaded before the first is used

// ---- 16-byte packs ----

template <typename T>
struct alignas(16) Pack {
  static constexpr int kSize = 16 / sizeof(T);
  T v[kSize];
};

template <typename T>
__device__ __forceinline__ Pack<T> load_pack(const T* p) {
  const int4 bits = *reinterpret_cast<const int4*>(p);
  Pack<T> out;
  memcpy(&out, &bits, sizeof(out));
  return out;
}

// Stores build the 128-bit word explicitly and go through the __stwb intrinsic: a pack written
// element by element, or a plain vector assignment, may be split into narrow stores.
__device__ __forceinline__ void store_pack(float* p, const Pack<float>& pack) {
  __stwb(reinterpret_cast<float4*>(p), make_float4(pack.v[0], pack.v[1], pack.v[2], pack.v[3]));
}

__device__ __forceinline__ unsigned pair_bits(bf16 lo, bf16 hi) {
  return static_cast<unsigned>(__bfloat16_as_ushort(lo)) |
         (static_cast<unsigned>(__bfloat16_as_ushort(hi)) << 16);
}

__device__ __forceinline__ void store_pack(bf16* p, const Pack<bf16>& pack) {
  __stwb(reinterpret_cast<uint4*>(p),
         make_uint4(pair_bits(pack.v[0], pack.v[1]), pair_bits(pack.v[2], pack.v[3]),
                    pair_bits(pack.v[4], pack.v[5]), pair_bits(pack.v[6], pack.v[7])));
}

// Elements before the first 16-byte boundary at or after p, at most V.
template <typename T>
__device__ __forceinline__ int64_t misaligned_head(const T* p, int64_t V) {
  const auto head =
      static_cast<int64_t>((16 - reinterpret_cast<uintptr_t>(p) % 16) % 16 / sizeof(T));
  return head < V ? head : V;
}

// Calls f(v, x[v] as f32) for the elements of a row this thread owns: scalar head, packs, scalar
// tail, each strided over the block.
template <typename T, typename F>
__device__ __forceinline__ void for_each_in_row(const T* x, int64_t V, F&& f) {
  constexpr int W = Pack<T>::kSize;
  const int64_t tid = threadIdx.x, nt = blockDim.x;
  const int64_t head = misaligned_head(x, V);
  const int64_t packs = (V - head) / W;
  for (int64_t i = tid; i < head; i += nt) f(i, to_f32(x[i]));
  const T* body = x + head;
  int64_t j = tid;
  for (; j + (kUnroll - 1) * nt < packs; j += kUnroll * nt) {
    Pack<T> p[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) p[u] = load_pack(body + (j + u * nt) * W);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
#pragma unroll
      for (int e = 0; e < W; ++e) f(head + (j + u * nt) * W + e, to_f32(p[u].v[e]));
    }
  }
  for (; j < packs; j += nt) {
    const Pack<T> p = load_pack(body + j * W);
#pragma unroll
    for (int e = 0; e < W; ++e) f(head + j * W + e, to_f32(p.v[e]));
  }
  for (int64_t i = head + packs * W + tid; i < V; i += nt) f(i, to_f32(x[i]));
}

// y[v] = f(v, x[v] as f32) over a row. Each element is read before it is written (by the same
// thread), so y may alias x. vec_ok: x and y are equally aligned modulo 16 bytes.
template <typename T, typename F>
__device__ __forceinline__ void map_row(const T* x, T* y, int64_t V, bool vec_ok, F&& f) {
  constexpr int W = Pack<T>::kSize;
  const int64_t tid = threadIdx.x, nt = blockDim.x;
  if (!vec_ok) {
    for (int64_t i = tid; i < V; i += nt) y[i] = from_f32<T>(f(i, to_f32(x[i])));
    return;
  }
  const int64_t head = misaligned_head(x, V);
  const int64_t packs = (V - head) / W;
  for (int64_t i = tid; i < head; i += nt) y[i] = from_f32<T>(f(i, to_f32(x[i])));
  const T* xb = x + head;
  T* yb = y + head;
  int64_t j = tid;
  for (; j + (kUnroll - 1) * nt < packs; j += kUnroll * nt) {
    Pack<T> p[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) p[u] = load_pack(xb + (j + u * nt) * W);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t at = (j + u * nt) * W;
#pragma unroll
      for (int e = 0; e < W; ++e) p[u].v[e] = from_f32<T>(f(head + at + e, to_f32(p[u].v[e])));
      store_pack(yb + at, p[u]);
    }
  }
  for (; j < packs; j += nt) {
    Pack<T> p = load_pack(xb + j * W);
#pragma unroll
    for (int e = 0; e < W; ++e) p.v[e] = from_f32<T>(f(head + j * W + e, to_f32(p.v[e])));
    store_pack(yb + j * W, p);
  }
  for (int64_t i = head + packs * W + tid; i < V; i += nt) y[i] = from_f32<T>(f(i, to_f32(x[i])));
}

// y[0, V) = 0, written without reading anything.
template <typename T>
__device__ __forceinline__ void zero_row(T* y, int64_t V) {
  constexpr int W = Pack<T>::kSize;
  const int64_t tid = threadIdx.x, nt = blockDim.x;
  const T zero = from_f32<T>(0.0f);
  const int64_t head = misaligned_head(y, V);
  const int64_t packs = (V - head) / W;
  for (int64_t i = tid; i < head; i += nt) y[i] = zero;
  Pack<T> zeros;
#pragma unroll
  for (int e = 0; e < W; ++e) zeros.v[e] = zero;
  for (int64_t j = tid; j < packs; j += nt) store_pack(y + head + j * W, zeros);
  for (int64_t i = head + packs * W + tid; i < V; i += nt) y[i] = zero;
}

// ---- Online log-sum-exp ----

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

// (m, s) ∪ (m2, s2); symmetric in its arguments, so every lane of a butterfly gets the same pair.
__device__ __forceinline__ void merge(float& m, float& s, float m2, float s2) {
  const float mx = fmaxf(m, m2);
  if (mx == -INFINITY) {
    s = s + s2;
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

// Merges the block's pairs; every thread gets the result. scratch: 64 floats of shared memory.
__device__ __forceinline__ void block_merge(float& m, float& s, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  warp_merge(m, s);
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

// ---- Kernels ----

// lse[r] = log Σ_v exp(x[r, v]); value[r] = the loss (ce) or the log-probability of targets[r].
// Targets were validated on the host side: every one is in [0, V) or (ce) ignore_index.
template <typename T, int kThreads>
__global__ void __launch_bounds__(kThreads)
    lse_forward_kernel(const T* logits, const int32_t* targets, int64_t rows, int64_t V, bool ce,
                       int ignore_index, float* value, float* lse) {
  __shared__ float scratch[64];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* x = logits + r * V;
    float m = -INFINITY, s = 0.0f;
    for_each_in_row(x, V, [&](int64_t, float v) { online_add(m, s, v); });
    block_merge(m, s, scratch);
    if (threadIdx.x == 0) {
      // An empty or all -inf row: m = -inf, s = 0, lse = -inf (as on the CPU).
      const float log_s = logf(s);
      lse[r] = m + log_s;
      const int32_t t = targets[r];
      if (ce && t == ignore_index) {
        value[r] = 0.0f;
      } else {
        const float xt = to_f32(x[t]);
        value[r] = ce ? log_s + (m - xt) : (xt - m) - log_s;
      }
    }
  }
}

// dlogits[r, v] = sign·dvalue[r]·(exp(x[r, v] - lse[r]) - [v = targets[r]]); rows whose target is
// ignore_index (when has_ignore) get 0.
template <typename T, int kThreads>
__global__ void __launch_bounds__(kThreads)
    lse_backward_kernel(const T* logits, const int32_t* targets, const float* lse,
                        const float* dvalue, float sign, bool has_ignore, int ignore_index,
                        int64_t rows, int64_t V, bool vec_ok, T* dlogits) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    T* y = dlogits + r * V;
    const int64_t t = targets[r];
    if (has_ignore && t == ignore_index) {  // an ignored row contributed nothing to the loss
      zero_row(y, V);
      continue;
    }
    const float l = lse[r], coef = sign * dvalue[r];
    map_row(logits + r * V, y, V, vec_ok, [&](int64_t v, float xv) {
      const float p = expf(xv - l);
      return coef * (v == t ? p - 1.0f : p);
    });
  }
}

// *first_bad = the smallest position i whose target is outside [0, V) (and, when allow_ignore,
// is not ignore_index); untouched when there is none.
__global__ void find_bad_target_kernel(const int32_t* targets, int64_t n, int64_t V,
                                       bool allow_ignore, int ignore_index,
                                       unsigned long long* first_bad) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int32_t t = targets[i];
    if (allow_ignore && t == ignore_index) continue;
    if (t < 0 || t >= V) atomicMin(first_bad, static_cast<unsigned long long>(i));
  }
}

// ---- Host side ----

// Shapes of one loss call: n rows of v logits.
struct Rows {
  int64_t n;
  int64_t v;
};

Rows check_logits(const char* op, const char* arg, const Tensor& logits) {
  expect_float(op, arg, logits);
  const int64_t v = last_dim(op, arg, logits);
  return {rows(logits), v};
}

// A per-row tensor (targets, losses, lse, ...): shaped [N] or as logits without the last
// dimension (so [B, T, V] logits may come with [B, T] targets).
void check_per_row(const char* op, const char* arg, const Tensor& t, DType dtype,
                   const Tensor& logits, int64_t n) {
  expect_dtype(op, arg, t, dtype);
  Shape leading(logits.shape().begin(), logits.shape().end() - 1);
  RLAIF_CHECK(t.shape() == Shape{n} || t.shape() == leading, op, ": ", arg, " is ", t,
              " but must have shape ", shape_str({n}), " (one value per row of logits ", logits,
              ")");
}

// Every target in [0, V) or equal to ignore_index (allow_ignore = false when there is none);
// otherwise an Error naming the first bad target and its position. Waits for the device.
void check_targets(const char* op, const Tensor& targets, int64_t vocab, bool allow_ignore,
                   int ignore_index) {
  const int64_t n = targets.numel();
  if (n == 0) return;
  Tensor flag = Tensor::empty({1}, DType::i64, targets.device());
  auto* first_bad = static_cast<unsigned long long*>(flag.raw_data());
  const std::string detail = describe({{"targets", &targets}});
  check_cuda(cudaMemsetAsync(first_bad, 0xFF, sizeof(unsigned long long), 0), op, detail);
  find_bad_target_kernel<<<grid_for(n), kThreads>>>(ptr<int32_t>(targets), n, vocab, allow_ignore,
                                                    ignore_index, first_bad);
  check_launch(op, detail);
  unsigned long long bad = 0;
  check_cuda(cudaMemcpy(&bad, first_bad, sizeof(bad), cudaMemcpyDeviceToHost), op, detail);
  if (bad == ~0ULL) return;
  int32_t value = 0;
  check_cuda(cudaMemcpy(&value, ptr<int32_t>(targets) + bad, sizeof(value), cudaMemcpyDeviceToHost),
             op, detail);
  throw Error(op, ": targets[", static_cast<int64_t>(bad), "] = ", value,
              " is outside the vocabulary [0, ", vocab, ")",
              allow_ignore ? Error::concat(" and is not ignore_index (", ignore_index, ")")
                           : std::string());
}

// The shared forward of cross_entropy (ce) and gather_logprobs.
void lse_forward(const char* op, const Tensor& logits, const Tensor& targets, bool ce,
                 int ignore_index, const Tensor& value, const char* value_name, const Tensor& lse) {
  const Rows r = check_logits(op, "logits", logits);
  check_per_row(op, "targets", targets, DType::i32, logits, r.n);
  check_per_row(op, value_name, value, DType::f32, logits, r.n);
  check_per_row(op, "lse", lse, DType::f32, logits, r.n);
  check_targets(op, targets, r.v, ce, ignore_index);
  if (r.n == 0) return;
  dispatch_float(logits.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    with_vocab_threads(r.v, [&](auto threads) {
      constexpr int kT = decltype(threads)::value;
      lse_forward_kernel<T, kT><<<blocks_for(r.n), kT>>>(ptr<T>(logits), ptr<int32_t>(targets), r.n,
                                                         r.v, ce, ignore_index, ptr<float>(value),
                                                         ptr<float>(lse));
    });
  });
  check_launch(op, describe({{"logits", &logits}, {"targets", &targets}}));
}

// The shared backward: cross_entropy_backward (sign +1, has_ignore) and gather_logprobs_backward
// (sign -1).
void lse_backward(const char* op, const Tensor& logits, const Tensor& targets, const Tensor& lse,
                  const Tensor& dvalue, const char* dvalue_name, float sign, bool has_ignore,
                  int ignore_index, const Tensor& dlogits) {
  const Rows r = check_logits(op, "logits", logits);
  check_per_row(op, "targets", targets, DType::i32, logits, r.n);
  check_per_row(op, "lse", lse, DType::f32, logits, r.n);
  check_per_row(op, dvalue_name, dvalue, DType::f32, logits, r.n);
  expect_float(op, "dlogits", dlogits);
  expect_shape(op, "dlogits", dlogits, logits.shape());
  expect_same_dtype(op, "logits", logits, "dlogits", dlogits);
  check_targets(op, targets, r.v, has_ignore, ignore_index);
  if (r.n == 0) return;
  const bool vec_ok = ((reinterpret_cast<uintptr_t>(logits.raw_data()) -
                        reinterpret_cast<uintptr_t>(dlogits.raw_data())) &
                       15u) == 0;
  dispatch_float(logits.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    with_vocab_threads(r.v, [&](auto threads) {
      constexpr int kT = decltype(threads)::value;
      lse_backward_kernel<T, kT><<<blocks_for(r.n), kT>>>(
          ptr<T>(logits), ptr<int32_t>(targets), ptr<float>(lse), ptr<float>(dvalue), sign,
          has_ignore, ignore_index, r.n, r.v, vec_ok, ptr<T>(dlogits));
    });
  });
  check_launch(op, describe({{"logits", &logits}, {"targets", &targets}, {"dlogits", &dlogits}}));
}

}  // namespace

void CudaBackend::cross_entropy(const Tensor& logits, const Tensor& targets, int ignore_index,
                                const Tensor& losses, const Tensor& lse) {
  lse_forward("cross_entropy", logits, targets, /*ce=*/true, ignore_index, losses, "losses", lse);
}

void CudaBackend::cross_entropy_backward(const Tensor& logits, const Tensor& targets,
                                         const Tensor& lse, const Tensor& dlosses, int ignore_index,
                                         const Tensor& dlogits) {
  lse_backward("cross_entropy_backward", logits, targets, lse, dlosses, "dlosses", 1.0f,
               /*has_ignore=*/true, ignore_index, dlogits);
}

void CudaBackend::gather_logprobs(const Tensor& logits, const Tensor& targets, const Tensor& logp,
                                  const Tensor& lse) {
  lse_forward("gather_logprobs", logits, targets, /*ce=*/false, 0, logp, "logp", lse);
}

void CudaBackend::gather_logprobs_backward(const Tensor& logits, const Tensor& targets,
                                           const Tensor& lse, const Tensor& dlogp,
                                           const Tensor& dlogits) {
  // dlogp·([v = t] - softmax_v) = (-dlogp)·(softmax_v - [v = t]).
  lse_backward("gather_logprobs_backward", logits, targets, lse, dlogp, "dlogp", -1.0f,
               /*has_ignore=*/false, 0, dlogits);
}

}  // namespace rlaif::cuda
