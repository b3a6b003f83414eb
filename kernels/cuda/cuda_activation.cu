// SwiGLU, the gated activation of the Llama MLP, forward and backward, on the GPU.
//
//   out   = silu(gate) ⊙ up,  silu(g) = g·σ(g)
//   dgate = dout ⊙ up ⊙ silu'(gate),  silu'(g) = σ(g)·(1 + g·(1 - σ(g)))
//   dup   = dout ⊙ silu(gate)
// Elementwise over the flat tensors: a grid-stride loop over 16-byte vectors when every pointer is
// aligned, then a scalar loop over the tail. The math is done in double for f32 storage (as the
// CPU reference, so results match it to the last bit almost always; the kernels stay memory
// bound on Hopper's FP64 units) and in f32 for bf16 storage. Each thread reads all its inputs
// before writing its outputs, so outputs may alias inputs.
#include <cstring>
#include <type_traits>

#include "kernels/cuda/cuda_common.cuh"

namespace rlaif::cuda {
namespace {

template <typename T>
using Acc = std::conditional_t<std::is_same_v<T, float>, double, float>;

// σ(g) without overflow: e^-g is only evaluated for g ≥ 0 and e^g only for g < 0.
__device__ __forceinline__ double sigmoid(double g) {
  if (g >= 0.0) return 1.0 / (1.0 + exp(-g));
  const double e = exp(g);
  return e / (1.0 + e);
}
__device__ __forceinline__ float sigmoid(float g) {
  if (g >= 0.0f) return 1.0f / (1.0f + expf(-g));
  const float e = expf(g);
  return e / (1.0f + e);
}

template <typename T, int kVec>
__device__ __forceinline__ void load_vec(const T* p, T (&out)[kVec]) {
  if constexpr (kVec == 1) {
    out[0] = *p;
  } else {
    static_assert(sizeof(T) * kVec == 16, "vectors are 16 bytes");
    const int4 raw = *reinterpret_cast<const int4*>(p);
    memcpy(out, &raw, sizeof(raw));
  }
}
template <typename T, int kVec>
__device__ __forceinline__ void store_vec(T* p, const T (&in)[kVec]) {
  if constexpr (kVec == 1) {
    *p = in[0];
  } else {
    int4 raw;
    memcpy(&raw, in, sizeof(raw));
    *reinterpret_cast<int4*>(p) = raw;
  }
}

template <typename T>
__device__ __forceinline__ T swiglu_one(T g, T u) {
  using A = Acc<T>;
  const A x = static_cast<A>(to_f32(g));
  return from_f32<T>(static_cast<float>(x * sigmoid(x) * static_cast<A>(to_f32(u))));
}

template <typename T>
__device__ __forceinline__ void swiglu_grad_one(T g, T u, T dy, T& dg, T& du) {
  using A = Acc<T>;
  const A x = static_cast<A>(to_f32(g)), up = static_cast<A>(to_f32(u));
  const A d = static_cast<A>(to_f32(dy));
  const A s = sigmoid(x);
  const A silu = x * s;
  const A dsilu = s * (A(1) + x * (A(1) - s));
  dg = from_f32<T>(static_cast<float>(d * up * dsilu));
  du = from_f32<T>(static_cast<float>(d * silu));
}

// Elements [0, nvec·kVec) as vectors, then the tail [nvec·kVec, n) one by one.
template <typename T, int kVec>
__global__ void swiglu_kernel(const T* gate, const T* up, T* out, int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t first = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  const int64_t nvec = n / kVec;
  for (int64_t i = first; i < nvec; i += stride) {
    T g[kVec], u[kVec], o[kVec];
    load_vec<T, kVec>(gate + i * kVec, g);
    load_vec<T, kVec>(up + i * kVec, u);
#pragma unroll
    for (int j = 0; j < kVec; ++j) o[j] = swiglu_one(g[j], u[j]);
    store_vec<T, kVec>(out + i * kVec, o);
  }
  for (int64_t i = nvec * kVec + first; i < n; i += stride) out[i] = swiglu_one(gate[i], up[i]);
}

template <typename T, int kVec>
__global__ void swiglu_backward_kernel(const T* gate, const T* up, const T* dout, T* dgate, T* dup,
                                       int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t first = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  const int64_t nvec = n / kVec;
  for (int64_t i = first; i < nvec; i += stride) {
    T g[kVec], u[kVec], dy[kVec], dg[kVec], du[kVec];
    load_vec<T, kVec>(gate + i * kVec, g);
    load_vec<T, kVec>(up + i * kVec, u);
    load_vec<T, kVec>(dout + i * kVec, dy);
#pragma unroll
    for (int j = 0; j < kVec; ++j) swiglu_grad_one(g[j], u[j], dy[j], dg[j], du[j]);
    store_vec<T, kVec>(dgate + i * kVec, dg);
    store_vec<T, kVec>(dup + i * kVec, du);
  }
  for (int64_t i = nvec * kVec + first; i < n; i += stride) {
    T dg, du;
    swiglu_grad_one(gate[i], up[i], dout[i], dg, du);
    dgate[i] = dg;
    dup[i] = du;
  }
}

bool all_aligned16(std::initializer_list<const Tensor*> tensors) {
  for (const Tensor* t : tensors) {
    if (reinterpret_cast<uintptr_t>(t->raw_data()) % 16 != 0) return false;
  }
  return true;
}

void check_like_gate(const char* op, const char* arg, const Tensor& t, const Tensor& gate) {
  expect_float(op, arg, t);
  expect_same_dtype(op, "gate", gate, arg, t);
  expect_shape(op, arg, t, gate.shape());
}

}  // namespace

void CudaBackend::swiglu(const Tensor& gate, const Tensor& up, const Tensor& out) {
  const char* op = "swiglu";
  expect_float(op, "gate", gate);
  check_like_gate(op, "up", up, gate);
  check_like_gate(op, "out", out, gate);
  const int64_t n = gate.numel();
  if (n == 0) return;
  const bool vec = all_aligned16({&gate, &up, &out});
  dispatch_float(gate.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    constexpr int kWide = static_cast<int>(16 / sizeof(T));
    if (vec) {
      swiglu_kernel<T, kWide>
          <<<grid_for(n / kWide + 1), kThreads>>>(ptr<T>(gate), ptr<T>(up), ptr<T>(out), n);
    } else {
      swiglu_kernel<T, 1><<<grid_for(n), kThreads>>>(ptr<T>(gate), ptr<T>(up), ptr<T>(out), n);
    }
  });
  check_launch("swiglu_kernel", describe({{"gate", &gate}, {"up", &up}, {"out", &out}}));
}

void CudaBackend::swiglu_backward(const Tensor& gate, const Tensor& up, const Tensor& dout,
                                  const Tensor& dgate, const Tensor& dup) {
  const char* op = "swiglu_backward";
  expect_float(op, "gate", gate);
  check_like_gate(op, "up", up, gate);
  check_like_gate(op, "dout", dout, gate);
  check_like_gate(op, "dgate", dgate, gate);
  check_like_gate(op, "dup", dup, gate);
  const int64_t n = gate.numel();
  if (n == 0) return;
  const bool vec = all_aligned16({&gate, &up, &dout, &dgate, &dup});
  dispatch_float(gate.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    constexpr int kWide = static_cast<int>(16 / sizeof(T));
    if (vec) {
      swiglu_backward_kernel<T, kWide><<<grid_for(n / kWide + 1), kThreads>>>(
          ptr<T>(gate), ptr<T>(up), ptr<T>(dout), ptr<T>(dgate), ptr<T>(dup), n);
    } else {
      swiglu_backward_kernel<T, 1><<<grid_for(n), kThreads>>>(
          ptr<T>(gate), ptr<T>(up), ptr<T>(dout), ptr<T>(dgate), ptr<T>(dup), n);
    }
  });
  check_launch(
      "swiglu_backward_kernel",
      describe({{"gate", &gate}, {"up", &up}, {"dout", &dout}, {"dgate", &dgate}, {"dup", &dup}}));
}

}  // namespace rlaif::cuda
