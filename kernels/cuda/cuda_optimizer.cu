// The AdamW update for the CUDA backend: adamw_steps updates many parameters per launch (the
// whole model of one dtype in a few launches; adamw_step is a batch of one), and the squared
// norm for gradient clipping.
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
//
// squared_norm(s) sum fixed 8192-element chunks in double (one block per chunk, a fixed tree),
// then one block per tensor adds its partials in a fixed order and writes the f32 result on the
// device: no host sync. squared_norms does up to 64 tensors per pair of launches, with the same
// arithmetic per tensor as squared_norm, so its results are bitwise squared_norm's.
#include <cuda_fp16.h>

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

// ---- squared_norm ----

// Elements per partial sum: the CPU reference's chunk, so both add the same partials in order.
constexpr int64_t kNormChunk = 8192;
constexpr int kNormThreads = 256;
constexpr int kNormTotalThreads = 1024;

__device__ __forceinline__ double widen(float v) {
  return v;
}
__device__ __forceinline__ double widen(bf16 v) {
  return __bfloat162float(v);
}
__device__ __forceinline__ double widen(__half v) {
  return __half2float(v);
}

// Sum over the block in a fixed tree order; every thread gets the result. scratch: blockDim.x
// doubles (a power of two).
__device__ double block_sum_double(double v, double* scratch) {
  __syncthreads();  // scratch may still be read by a previous call
  scratch[threadIdx.x] = v;
  for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
    __syncthreads();
    if (threadIdx.x < s) scratch[threadIdx.x] += scratch[threadIdx.x + s];
  }
  __syncthreads();
  return scratch[0];
}

// Up to kMaxNormTensors tensors, passed by value as the kernels' argument. Tensor i's chunks are
// partials [first_chunk[i], first_chunk[i+1]).
constexpr int kMaxNormTensors = 64;
enum class NormDType : int8_t { f32, bf16, f16 };
struct NormBatch {
  int count = 0;
  int64_t first_chunk[kMaxNormTensors + 1] = {};
  const void* x[kMaxNormTensors];
  int64_t n[kMaxNormTensors];
  NormDType dtype[kMaxNormTensors];
};
static_assert(sizeof(NormBatch) + 16 <= 4096,
              "a norm batch must fit the 4 KiB of kernel parameters");

// Σ x² over elements [begin, end) of x, in double: thread t adds elements begin + t, begin + t +
// kNormThreads, ..., then the block's sums meet in a fixed tree. Every thread gets the result.
template <typename T>
__device__ double chunk_sum(const T* x, int64_t begin, int64_t end, double* scratch) {
  double sum = 0.0;
  for (int64_t i = begin + threadIdx.x; i < end; i += kNormThreads) {
    const double e = widen(x[i]);
    sum += e * e;
  }
  return block_sum_double(sum, scratch);
}

// partial[c] = Σ x² over chunk c of the batch (an f32 value squared is exact in double).
__global__ void __launch_bounds__(kNormThreads)
    norm_partials_kernel(const NormBatch b, double* partial) {
  __shared__ double scratch[kNormThreads];
  for (int64_t c = blockIdx.x; c < b.first_chunk[b.count]; c += gridDim.x) {
    int t = 0;  // the tensor chunk c belongs to
    while (t + 1 < b.count && b.first_chunk[t + 1] <= c) ++t;
    const int64_t begin = (c - b.first_chunk[t]) * kNormChunk;
    const int64_t end = begin + kNormChunk < b.n[t] ? begin + kNormChunk : b.n[t];
    double sum;
    switch (b.dtype[t]) {
      case NormDType::f32:
        sum = chunk_sum(static_cast<const float*>(b.x[t]), begin, end, scratch);
        break;
      case NormDType::bf16:
        sum = chunk_sum(static_cast<const bf16*>(b.x[t]), begin, end, scratch);
        break;
      default:
        sum = chunk_sum(static_cast<const __half*>(b.x[t]), begin, end, scratch);
        break;
    }
    if (threadIdx.x == 0) partial[c] = sum;
  }
}

// out[i] = Σ of tensor i's partials, rounded to f32 once; one block per tensor. Thread t adds a
// contiguous run of partials in order, then the runs meet in a fixed tree. A tensor without
// chunks (no elements) gets 0.
__global__ void __launch_bounds__(kNormTotalThreads)
    norm_totals_kernel(const NormBatch b, const double* partial, float* out) {
  __shared__ double scratch[kNormTotalThreads];
  const int64_t first = b.first_chunk[blockIdx.x];
  const int64_t chunks = b.first_chunk[blockIdx.x + 1] - first;
  const int64_t per = (chunks + kNormTotalThreads - 1) / kNormTotalThreads;
  const int64_t begin = threadIdx.x * per;
  const int64_t end = begin + per < chunks ? begin + per : chunks;
  double sum = 0.0;
  for (int64_t c = begin; c < end; ++c) sum += partial[first + c];
  sum = block_sum_double(sum, scratch);
  if (threadIdx.x == 0) out[blockIdx.x] = static_cast<float>(sum);
}

// Writes out[i] = Σ xs[i]² (xs checked by the caller), kMaxNormTensors tensors per launch pair.
void launch_squared_norms(std::span<const Tensor> xs, float* out, Device device) {
  for (size_t first = 0; first < xs.size(); first += kMaxNormTensors) {
    NormBatch b;
    for (size_t i = first; i < xs.size() && b.count < kMaxNormTensors; ++i) {
      const Tensor& x = xs[i];
      const int t = b.count++;
      b.x[t] = x.raw_data();
      b.n[t] = x.numel();
      b.dtype[t] = x.dtype() == DType::f32    ? NormDType::f32
                   : x.dtype() == DType::bf16 ? NormDType::bf16
                                              : NormDType::f16;
      b.first_chunk[t + 1] = b.first_chunk[t] + (b.n[t] + kNormChunk - 1) / kNormChunk;
    }
    const int64_t chunks = b.first_chunk[b.count];
    // Doubles have no DType: the partials live in an i64 buffer of the same size. Freed on
    // return; the allocator hands it out again only to work queued after these kernels on the
    // same stream.
    Tensor partial = Tensor::empty({chunks > 0 ? chunks : 1}, DType::i64, device);
    double* pp = static_cast<double*>(partial.raw_data());
    const std::string what =
        std::to_string(b.count) + " tensors from index " + std::to_string(first);
    if (chunks > 0) {
      norm_partials_kernel<<<blocks_for(chunks), kNormThreads>>>(b, pp);
      check_launch("squared_norm (partial sums)", what);
    }
    norm_totals_kernel<<<b.count, kNormTotalThreads>>>(b, pp, out + first);
    check_launch("squared_norm (totals)", what);
  }
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

namespace {

// x: a float tensor on the device (the gradients' dtypes: f32, bf16, or f16).
void expect_norm_input(const char* op, const char* arg, const Tensor& x) {
  expect_cuda(op, arg, x);
  RLAIF_CHECK(x.dtype() == DType::f32 || x.dtype() == DType::bf16 || x.dtype() == DType::f16, op,
              ": ", arg, " is ", x, " but must be a float tensor (f32, bf16 or f16)");
}

}  // namespace

void CudaBackend::squared_norm(const Tensor& x, const Tensor& out) {
  const char* name = "squared_norm";
  expect_norm_input(name, "x", x);
  expect_cuda(name, "out", out);
  expect_dtype(name, "out", out, DType::f32);
  expect_shape(name, "out", out, Shape{});
  launch_squared_norms({&x, 1}, ptr<float>(out), x.device());
}

void CudaBackend::squared_norms(std::span<const Tensor> xs, const Tensor& out) {
  const char* name = "squared_norms";
  for (size_t i = 0; i < xs.size(); ++i) {
    const std::string arg = "xs[" + std::to_string(i) + "]";
    expect_norm_input(name, arg.c_str(), xs[i]);
  }
  expect_cuda(name, "out", out);
  expect_dtype(name, "out", out, DType::f32);
  expect_shape(name, "out", out, Shape{static_cast<int64_t>(xs.size())});
  launch_squared_norms(xs, ptr<float>(out), out.device());
}

}  // namespace rlaif::cuda
