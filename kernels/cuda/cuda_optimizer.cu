// The AdamW update for the CUDA backend: adamw_steps updates many parameters per launch (the
// whole model of one dtype in a few launches; adamw_step is a batch of one).
//
// A batch of up to 48 parameters travels as the kernel's argument; each block takes one 16K-element
// chunk of one parameter (it finds which by a short scan of the batch's block offsets), four
// elements per thread per step when every pointer of that parameter allows 16-byte (f32) / 8-byte
// (bf16) vector accesses, else one at a time. For GPT-2 124M that is 5 launches a step instead of
// 196 (most of its tensors are biases and norm gains of 768 elements, where a launch costs more
// than the bytes), and the clipping factor is applied as the gradient is read instead
// of in a pass of its own. Every element is independent, so the result depends on neither the
// launch shape nor the batching.
//
// Bitwise agreement with the CPU reference (kernels/cpu/cpu_optimizer.cpp): the per-step scalars
// are computed on the host in double and rounded to f32 once, exactly as the reference does, and
// every per-element operation is an explicitly rounded f32 intrinsic in PyTorch's order —
// __fmul_rn/__fadd_rn/__fsub_rn keep nvcc from contracting a multiply and an add into an FMA
// (the reference, built for x86-64-v2, has none), and __fsqrt_rn/__fdiv_rn are correctly
// rounded like the CPU's sqrt and division.
#include <cmath>
#include <span>
#include <string>
#include <type_traits>

#include "kernels/cuda/cuda_common.cuh"

namespace rlaif::cuda {
namespace {

template <typename T>
constexpr DType dtype_of() {
  return std::is_same_v<T, float> ? DType::f32 : DType::bf16;
}

// The per-step scalars (see AdamWScalars in the CPU reference).
struct AdamWScalars {
  float decay;     // 1 − lr·wd
  float w1;        // 1 − β1, the lerp weight
  float one_m_w1;  // 1 − w1 in f32, for lerp's second form
  bool small_w1;   // |w1| < 0.5: which form torch.lerp takes
  float beta2;     // β2
  float one_m_b2;  // 1 − β2
  float bc2_sqrt;  // √(1 − β2^t)
  float eps;
  float neg_step;  // −lr / (1 − β1^t)
};

AdamWScalars adamw_scalars(const AdamWHyper& h) {
  const double t = static_cast<double>(h.step);
  AdamWScalars s;
  s.decay = static_cast<float>(1.0 - h.lr * h.weight_decay);
  s.w1 = static_cast<float>(1.0 - h.beta1);
  s.one_m_w1 = 1.0f - s.w1;  // an f32 subtraction, as the reference computes it per element
  s.small_w1 = std::fabs(s.w1) < 0.5f;
  s.beta2 = static_cast<float>(h.beta2);
  s.one_m_b2 = static_cast<float>(1.0 - h.beta2);
  s.bc2_sqrt = static_cast<float>(std::sqrt(1.0 - std::pow(h.beta2, t)));
  s.eps = static_cast<float>(h.eps);
  s.neg_step = static_cast<float>(-(h.lr / (1.0 - std::pow(h.beta1, t))));
  return s;
}

// One element in PyTorch's f32 order; returns the new θ and updates m and v.
__device__ __forceinline__ float adamw_element(float theta, float g, float& m, float& v,
                                               const AdamWScalars& s) {
  theta = __fmul_rn(theta, s.decay);
  // torch.lerp(m, g, w1): m + w1·(g − m) for |w1| < 0.5, else g − (g − m)·(1 − w1).
  const float diff = __fsub_rn(g, m);
  m = s.small_w1 ? __fadd_rn(m, __fmul_rn(s.w1, diff)) : __fsub_rn(g, __fmul_rn(diff, s.one_m_w1));
  v = __fmul_rn(v, s.beta2);
  v = __fadd_rn(v, __fmul_rn(__fmul_rn(s.one_m_b2, g), g));
  const float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(v), s.bc2_sqrt), s.eps);
  return __fadd_rn(theta, __fdiv_rn(__fmul_rn(s.neg_step, m), denom));
}

// Four elements in one aligned access.
template <typename T>
struct alignas(4 * sizeof(T)) Vec4 {
  T x[4];
};

// The gradient as the update reads it: scaled by the clipping factor and rounded to its own
// dtype, as affine(g, scale, 0) would store it (AffineFn's __fmul_rn; its + 0 only turns −0 into
// +0, which the update cannot tell apart), or as it is when not scaled.
template <typename T>
__device__ __forceinline__ float read_grad(T g, float scale, bool scaled) {
  return scaled ? to_f32(from_f32<T>(__fmul_rn(to_f32(g), scale))) : to_f32(g);
}

// Up to kMaxTensors parameters of one dtype T, passed by value as the kernel's argument (4 KiB,
// the limit on kernel parameters of every CUDA version, holds them with room to spare). Tensor i
// owns blocks [first_block[i], first_block[i+1]), one per kChunk elements.
constexpr int kMaxTensors = 48;
constexpr int64_t kChunk = 16384;  // elements per block: 16 rounds of 256 threads × 4

template <typename T>
struct AdamWBatch {
  int count = 0;
  unsigned first_block[kMaxTensors + 1] = {};
  int64_t n[kMaxTensors];
  T* param[kMaxTensors];
  const T* grad[kMaxTensors];
  float* m[kMaxTensors];
  float* v[kMaxTensors];
  float* master[kMaxTensors];  // nullptr: param is f32 and is θ itself
  float decay[kMaxTensors];    // 1 − lr·wd with this parameter's wd
  bool vec[kMaxTensors];       // every pointer is aligned for Vec4 accesses
};
static_assert(sizeof(AdamWBatch<float>) + sizeof(AdamWScalars) + 8 <= 4096,
              "an AdamW batch must fit the 4 KiB of kernel parameters");

// Elements [begin, end) of one parameter, four at a time from `begin` (a multiple of 4) when
// kVec, the rest one by one. Each element is independent, so the launch shape and the way a
// tensor is cut into blocks do not change any result.
template <typename T, bool kVec>
__device__ void adamw_range(T* __restrict__ param, const T* __restrict__ grad,
                            float* __restrict__ m, float* __restrict__ v,
                            float* __restrict__ master, int64_t begin, int64_t end,
                            const AdamWScalars& s, float scale, bool scaled) {
  int64_t done = begin;  // elements [begin, done) are handled by the vector loop
  if constexpr (kVec) {
    const int64_t groups_end = begin / 4 + (end - begin) / 4;
    for (int64_t i = begin / 4 + threadIdx.x; i < groups_end; i += blockDim.x) {
      const Vec4<T> g4 = reinterpret_cast<const Vec4<T>*>(grad)[i];
      Vec4<float> m4 = reinterpret_cast<const Vec4<float>*>(m)[i];
      Vec4<float> v4 = reinterpret_cast<const Vec4<float>*>(v)[i];
      if (master != nullptr) {
        Vec4<float> w4 = reinterpret_cast<const Vec4<float>*>(master)[i];
        Vec4<T> p4;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          w4.x[j] = adamw_element(w4.x[j], read_grad(g4.x[j], scale, scaled), m4.x[j], v4.x[j], s);
          p4.x[j] = from_f32<T>(w4.x[j]);
        }
        reinterpret_cast<Vec4<float>*>(master)[i] = w4;
        reinterpret_cast<Vec4<T>*>(param)[i] = p4;
      } else {
        Vec4<T> p4 = reinterpret_cast<const Vec4<T>*>(param)[i];
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          p4.x[j] = from_f32<T>(adamw_element(to_f32(p4.x[j]), read_grad(g4.x[j], scale, scaled),
                                              m4.x[j], v4.x[j], s));
        }
        reinterpret_cast<Vec4<T>*>(param)[i] = p4;
      }
      reinterpret_cast<Vec4<float>*>(m)[i] = m4;
      reinterpret_cast<Vec4<float>*>(v)[i] = v4;
    }
    done = groups_end * 4;
  }
  for (int64_t i = done + threadIdx.x; i < end; i += blockDim.x) {
    float mi = m[i], vi = v[i];
    const float g = read_grad(grad[i], scale, scaled);
    if (master != nullptr) {
      const float w = adamw_element(master[i], g, mi, vi, s);
      master[i] = w;
      param[i] = from_f32<T>(w);
    } else {
      param[i] = from_f32<T>(adamw_element(to_f32(param[i]), g, mi, vi, s));
    }
    m[i] = mi;
    v[i] = vi;
  }
}

// One block per chunk of one parameter of the batch.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    adamw_batch_kernel(const AdamWBatch<T> b, AdamWScalars s, float scale) {
  // The parameter this block works on: the last whose first block is at or before this one.
  int t = 0;
  while (t + 1 < b.count && b.first_block[t + 1] <= blockIdx.x) ++t;
  const int64_t begin = static_cast<int64_t>(blockIdx.x - b.first_block[t]) * kChunk;
  const int64_t end = begin + kChunk < b.n[t] ? begin + kChunk : b.n[t];
  s.decay = b.decay[t];
  const bool scaled = scale != 1.0f;
  if (b.vec[t]) {
    adamw_range<T, true>(b.param[t], b.grad[t], b.m[t], b.v[t], b.master[t], begin, end, s, scale,
                         scaled);
  } else {
    adamw_range<T, false>(b.param[t], b.grad[t], b.m[t], b.v[t], b.master[t], begin, end, s, scale,
                          scaled);
  }
}

bool aligned(const void* p, size_t bytes) {
  return reinterpret_cast<uintptr_t>(p) % bytes == 0;
}

// adamw_step's checks for one entry, on the CUDA device, with the CUDA backend's dtypes.
void check_entry(const std::string& op, const AdamWTensors& e) {
  check_adamw_entry(op, e);
  const char* o = op.c_str();
  expect_cuda(o, "param", e.param);
  expect_float(o, "param", e.param);
  expect_cuda(o, "grad", e.grad);
  expect_cuda(o, "m", e.m);
  expect_cuda(o, "v", e.v);
  if (e.master.defined()) expect_cuda(o, "master", e.master);
}

// Updates the non-empty entries of dtype T, kMaxTensors per launch.
template <typename T>
void launch_batches(std::span<const AdamWTensors> params, const AdamWHyper& h, float scale) {
  AdamWBatch<T> b;
  const AdamWScalars s = adamw_scalars(h);
  auto flush = [&] {
    if (b.count == 0) return;
    adamw_batch_kernel<T><<<b.first_block[b.count], kThreads>>>(b, s, scale);
    check_launch("adamw_batch_kernel",
                 std::to_string(b.count) + " parameters of " + dtype_name(dtype_of<T>()));
    b.count = 0;
  };
  for (const AdamWTensors& e : params) {
    const int64_t n = e.param.numel();
    if (n == 0 || e.param.dtype() != dtype_of<T>()) continue;
    if (b.count == kMaxTensors) flush();
    const int64_t blocks = (n + kChunk - 1) / kChunk;
    // A grid holds at most 2^31 − 1 blocks: start a new launch before this tensor would overflow
    // it (a tensor alone needs 2^31 × 16384 elements to: far beyond any GPU's memory).
    if (b.count > 0 && b.first_block[b.count] + blocks > 0x7fffffffLL) flush();
    const int i = b.count++;
    b.n[i] = n;
    b.param[i] = ptr<T>(e.param);
    b.grad[i] = ptr<T>(e.grad);
    b.m[i] = ptr<float>(e.m);
    b.v[i] = ptr<float>(e.v);
    b.master[i] = e.master.defined() ? ptr<float>(e.master) : nullptr;
    b.decay[i] = static_cast<float>(1.0 - h.lr * e.weight_decay);
    b.vec[i] = aligned(b.param[i], 4 * sizeof(T)) && aligned(b.grad[i], 4 * sizeof(T)) &&
               aligned(b.m[i], 16) && aligned(b.v[i], 16) &&
               (b.master[i] == nullptr || aligned(b.master[i], 16));
    b.first_block[i + 1] = b.first_block[i] + static_cast<unsigned>(blocks);
  }
  flush();
}

}  // namespace

void CudaBackend::adamw_steps(std::span<const AdamWTensors> params, const AdamWHyper& h,
                              float grad_scale) {
  for (size_t i = 0; i < params.size(); ++i) {
    check_entry("adamw_steps (entry " + std::to_string(i) + ")", params[i]);
  }
  RLAIF_CHECK(h.step >= 1, "adamw_steps: step is ", h.step, " but must be ≥ 1 (it is 1-based)");
  launch_batches<float>(params, h, grad_scale);
  launch_batches<bf16>(params, h, grad_scale);
}

void CudaBackend::adamw_step(const Tensor& param, const Tensor& grad, const Tensor& m,
                             const Tensor& v, const Tensor& master, const AdamWHyper& h) {
  // One parameter is a batch of one; the messages name adamw_step.
  const AdamWTensors entry{param, grad, m, v, master, h.weight_decay};
  check_entry("adamw_step", entry);
  RLAIF_CHECK(h.step >= 1, "adamw_step: step is ", h.step, " but must be ≥ 1 (it is 1-based)");
  launch_batches<float>({&entry, 1}, h, 1.0f);
  launch_batches<bf16>({&entry, 1}, h, 1.0f);
}

}  // namespace rlaif::cuda
