// The AdamW update for the CUDA backend.
//
// One grid-stride kernel over the elements, four per thread per step when every pointer allows
// 16-byte (f32) / 8-byte (bf16) vector accesses, else one at a time; the tail past the last full
// group of four is done element by element. Every element is independent, so the result does not
// depend on the launch shape.
//
// Bitwise agreement with the CPU reference (kernels/cpu/cpu_optimizer.cpp): the per-step scalars
// are computed on the host in double and rounded to f32 once, exactly as the reference does, and
// every per-element operation is an explicitly rounded f32 intrinsic in PyTorch's order —
// __fmul_rn/__fadd_rn/__fsub_rn keep nvcc from contracting a multiply and an add into an FMA
// (the reference, built for x86-64-v2, has none), and __fsqrt_rn/__fdiv_rn are correctly
// rounded like the CPU's sqrt and division.
#include <cmath>

#include "kernels/cuda/cuda_common.cuh"

namespace rlaif::cuda {
namespace {

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

// master == nullptr: param is f32 (T = float) and is θ itself. Otherwise θ is master and param
// receives it rounded to T. kVec: every pointer is aligned for Vec4 accesses.
template <typename T, bool kVec>
__global__ void adamw_kernel(T* __restrict__ param, const T* __restrict__ grad,
                             float* __restrict__ m, float* __restrict__ v,
                             float* __restrict__ master, int64_t n, AdamWScalars s) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  int64_t done = 0;  // elements [0, done) are handled by the vector loop
  if constexpr (kVec) {
    const int64_t groups = n / 4;
    for (int64_t i = first; i < groups; i += stride) {
      const Vec4<T> g4 = reinterpret_cast<const Vec4<T>*>(grad)[i];
      Vec4<float> m4 = reinterpret_cast<const Vec4<float>*>(m)[i];
      Vec4<float> v4 = reinterpret_cast<const Vec4<float>*>(v)[i];
      if (master != nullptr) {
        Vec4<float> w4 = reinterpret_cast<const Vec4<float>*>(master)[i];
        Vec4<T> p4;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          w4.x[j] = adamw_element(w4.x[j], to_f32(g4.x[j]), m4.x[j], v4.x[j], s);
          p4.x[j] = from_f32<T>(w4.x[j]);
        }
        reinterpret_cast<Vec4<float>*>(master)[i] = w4;
        reinterpret_cast<Vec4<T>*>(param)[i] = p4;
      } else {
        Vec4<T> p4 = reinterpret_cast<const Vec4<T>*>(param)[i];
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          p4.x[j] =
              from_f32<T>(adamw_element(to_f32(p4.x[j]), to_f32(g4.x[j]), m4.x[j], v4.x[j], s));
        }
        reinterpret_cast<Vec4<T>*>(param)[i] = p4;
      }
      reinterpret_cast<Vec4<float>*>(m)[i] = m4;
      reinterpret_cast<Vec4<float>*>(v)[i] = v4;
    }
    done = groups * 4;
  }
  for (int64_t i = done + first; i < n; i += stride) {
    float mi = m[i], vi = v[i];
    if (master != nullptr) {
      const float w = adamw_element(master[i], to_f32(grad[i]), mi, vi, s);
      master[i] = w;
      param[i] = from_f32<T>(w);
    } else {
      param[i] = from_f32<T>(adamw_element(to_f32(param[i]), to_f32(grad[i]), mi, vi, s));
    }
    m[i] = mi;
    v[i] = vi;
  }
}

bool aligned(const void* p, size_t bytes) {
  return reinterpret_cast<uintptr_t>(p) % bytes == 0;
}

}  // namespace

void CudaBackend::adamw_step(const Tensor& param, const Tensor& grad, const Tensor& m,
                             const Tensor& v, const Tensor& master, const AdamWHyper& h) {
  const char* op = "adamw_step";
  const bool has_master = master.defined();
  // Without a master copy the update happens on param itself, which must then hold f32.
  if (has_master) {
    expect_float(op, "param", param);
  } else {
    expect_dtype(op, "param", param, DType::f32);
  }
  expect_dtype(op, "grad", grad, param.dtype());
  expect_shape(op, "grad", grad, param.shape());
  expect_dtype(op, "m", m, DType::f32);
  expect_shape(op, "m", m, param.shape());
  expect_dtype(op, "v", v, DType::f32);
  expect_shape(op, "v", v, param.shape());
  if (has_master) {
    expect_dtype(op, "master", master, DType::f32);
    expect_shape(op, "master", master, param.shape());
  }
  RLAIF_CHECK(h.step >= 1, op, ": step is ", h.step, " but must be ≥ 1 (it is 1-based)");

  const int64_t n = param.numel();
  if (n == 0) return;
  const AdamWScalars s = adamw_scalars(h);
  float* mp = ptr<float>(m);
  float* vp = ptr<float>(v);
  float* wp = has_master ? ptr<float>(master) : nullptr;
  dispatch_float(param.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    T* pp = ptr<T>(param);
    const T* gp = ptr<T>(grad);
    const bool vec = aligned(pp, 4 * sizeof(T)) && aligned(gp, 4 * sizeof(T)) && aligned(mp, 16) &&
                     aligned(vp, 16) && (wp == nullptr || aligned(wp, 16));
    if (vec) {
      adamw_kernel<T, true>
          <<<grid_for(n / 4 > 0 ? n / 4 : n), kThreads>>>(pp, gp, mp, vp, wp, n, s);
    } else {
      adamw_kernel<T, false><<<grid_for(n), kThreads>>>(pp, gp, mp, vp, wp, n, s);
    }
  });
  check_launch(
      "adamw_kernel",
      describe({{"param", &param}, {"grad", &grad}, {"m", &m}, {"v", &v}, {"master", &master}}));
}

}  // namespace rlaif::cuda
