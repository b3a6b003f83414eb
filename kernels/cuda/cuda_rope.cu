// Rotary position embedding (Su et al., 2021) in Hugging Face Llama's rotate-half convention, on
// the GPU. Feature i of each head is paired with feature i + half and rotated by
// θ_i = position · theta^(-2i/Dh); inverse = true rotates by -θ_i (also the backward pass).
//
// One block per token (b, t): its H heads share the angles, so the block first fills a shared
// table of cos θ_i, ±sin θ_i (in chunks of kChunk frequencies, any Dh), then rotates every pair of
// every head, 16-byte vectors of consecutive i when the layout allows.
//
// Precision follows kernels/cpu/cpu_rope.cpp exactly: the inverse frequency, the angle and its
// cosine and sine are computed in double and rounded to f32 once (positions reach tens of
// thousands, where an f32 angle would be off by several ulps of a radian). The rotated pair is
// formed in double from those f32 factors for f32 storage (the products are exact in double, so
// this matches the CPU bit for bit) and in f32 for bf16 storage.
#include <cstring>
#include <type_traits>

#include "kernels/cuda/cuda_common.cuh"

namespace rlaif::cuda {
namespace {

constexpr int kChunk = 512;  // frequencies per shared table fill

template <typename T>
using Acc = std::conditional_t<std::is_same_v<T, float>, double, float>;

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

template <typename T, int kVec>
__global__ void rope_kernel(const T* x, const int32_t* positions, T* out, int64_t tokens, int heads,
                            int half, double theta, double direction) {
  __shared__ float cos_t[kChunk], sin_t[kChunk];
  using A = Acc<T>;
  const int64_t head_dim = 2 * static_cast<int64_t>(half);
  for (int64_t token = blockIdx.x; token < tokens; token += gridDim.x) {  // uniform over the block
    const double pos = static_cast<double>(positions[token]);
    for (int i0 = 0; i0 < half; i0 += kChunk) {
      const int len = half - i0 < kChunk ? half - i0 : kChunk;
      __syncthreads();  // the previous table has been used
      for (int i = threadIdx.x; i < len; i += blockDim.x) {
        // The CPU reference's expression, term for term.
        const double inv_freq =
            pow(theta, -2.0 * static_cast<double>(i0 + i) / static_cast<double>(head_dim));
        const double angle = pos * inv_freq;
        double s, c;
        sincos(angle, &s, &c);
        cos_t[i] = static_cast<float>(c);
        sin_t[i] = static_cast<float>(direction * s);
      }
      __syncthreads();

      const int vecs = len / kVec;  // len is a multiple of kVec when vectorised
      const int64_t work = static_cast<int64_t>(heads) * vecs;
      for (int64_t w = threadIdx.x; w < work; w += blockDim.x) {
        const int h = static_cast<int>(w / vecs), iv = static_cast<int>(w % vecs);
        const int64_t base = (token * heads + h) * head_dim + i0 + iv * kVec;
        // Both halves are read before either is written: out may alias x.
        T a[kVec], b[kVec], lo[kVec], hi[kVec];
        load_vec<T, kVec>(x + base, a);
        load_vec<T, kVec>(x + base + half, b);
#pragma unroll
        for (int j = 0; j < kVec; ++j) {
          const A c = cos_t[iv * kVec + j], s = sin_t[iv * kVec + j];
          const A av = to_f32(a[j]), bv = to_f32(b[j]);
          lo[j] = from_f32<T>(static_cast<float>(av * c - bv * s));
          hi[j] = from_f32<T>(static_cast<float>(bv * c + av * s));
        }
        store_vec<T, kVec>(out + base, lo);
        store_vec<T, kVec>(out + base + half, hi);
      }
    }
  }
}

bool aligned16(const Tensor& t) {
  return reinterpret_cast<uintptr_t>(t.raw_data()) % 16 == 0;
}

}  // namespace

void CudaBackend::rope(const Tensor& x, const Tensor& positions, float theta, bool inverse,
                       const Tensor& out) {
  const char* op = "rope";
  expect_float(op, "x", x);
  RLAIF_CHECK(x.dim() == 4, op, ": x is ", x, " but must be [B, T, H, Dh]");
  const int64_t batch = x.size(0), seq = x.size(1), heads = x.size(2), head_dim = x.size(3);
  RLAIF_CHECK(head_dim % 2 == 0, op, ": x is ", x, " but the head size Dh = ", head_dim,
              " must be even (features i and i + Dh/2 are rotated together)");
  RLAIF_CHECK(theta > 0.0f, op, ": theta = ", theta, " must be positive");
  expect_dtype(op, "positions", positions, DType::i32);
  expect_shape(op, "positions", positions, {batch, seq});
  expect_float(op, "out", out);
  expect_same_dtype(op, "x", x, "out", out);
  expect_shape(op, "out", out, x.shape());
  if (x.numel() == 0) return;
  RLAIF_CHECK(heads < INT32_MAX && head_dim < INT32_MAX, op, ": x ", x,
              " is too large for the cuda kernel");

  const int64_t tokens = batch * seq;
  const int half = static_cast<int>(head_dim / 2);
  const double direction = inverse ? -1.0 : 1.0;
  const unsigned blocks = static_cast<unsigned>(tokens < (1 << 20) ? tokens : (1 << 20));
  dispatch_float(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    constexpr int kWide = static_cast<int>(16 / sizeof(T));
    // Vectors need every (head, i) start aligned: half a multiple of the width (kChunk is too).
    const bool vec = half % kWide == 0 && aligned16(x) && aligned16(out);
    const int64_t per_token = heads * (vec ? half / kWide : half);
    const int64_t t32 = (per_token + 31) / 32 * 32;
    const unsigned threads = static_cast<unsigned>(t32 < 256 ? t32 : 256);
    if (vec) {
      rope_kernel<T, kWide><<<blocks, threads>>>(ptr<T>(x), ptr<int32_t>(positions), ptr<T>(out),
                                                 tokens, static_cast<int>(heads), half,
                                                 static_cast<double>(theta), direction);
    } else {
      rope_kernel<T, 1><<<blocks, threads>>>(ptr<T>(x), ptr<int32_t>(positions), ptr<T>(out),
                                             tokens, static_cast<int>(heads), half,
                                             static_cast<double>(theta), direction);
    }
  });
  check_launch("rope_kernel", describe({{"x", &x}, {"positions", &positions}, {"out", &out}}));
}

}  // namespace rlaif::cuda
