// Sampling the next token on the GPU (Backend::sample_tokens): greedy, temperature, top-k, top-p.
//
// Design: one block per row, and no sort. Sorting a 50k-150k vocabulary per row at every decoding
// step would cost far more than the answer needs: each rule only asks where a prefix of the
// candidate order (descending logit, ascending id) ends, and every such prefix is the set
//   P(t, i) = {v : key_v > t} ∪ {v : key_v = t, v ≤ i}
// for a threshold (t, i), where key_v is logit v's f32 bit pattern mapped to an unsigned integer
// whose order is the float order. The block measures a prefix with one pass over the row (which
// stays in L2 between passes) and a block reduction: its size, or its mass Σ p_v with
// p_v = exp((x_v - max) / T). Each rule is then the smallest prefix satisfying a condition that
// only becomes easier as the prefix grows:
//   top-k:  count ≥ k;
//   top-p:  mass ≥ top_p · total (within the top-k set; total is that set's mass);
//   token:  mass > u · total (within the kept set); the token is that prefix's last candidate.
// The search bisects the key between the row's smallest (or the kept set's threshold) and largest
// key (at most 32 passes), then, only when several kept candidates share the key found (ties:
// rare in f32, frequent in bf16), the id between the first and last of them (≤ log2 V passes).
// Greedy decoding, and top_k = 1, are one pass: a block argmax. Plain temperature sampling is
// about 35 passes; top-k adds about 33 (counting only, no exp), top-p about 35. A row is one
// block, so a batch smaller than the SM count leaves SMs idle; splitting a row over several
// blocks is the next step if sampling ever shows in a profile next to the decoding step itself.
//
// Agreement with the CPU reference: keys and counts are exact, so greedy, top_k = 1 and the
// top-k set are identical to the reference's. Masses are not: p_v is expf (f32: a double exp per
// element per pass would cost several times more) of an argument formed in double and rounded to
// f32, so a term is off by about |x_v - max|/T · 6e-8 relative plus expf's own ulps (≲ 1e-6 for
// any term above 1e-7 of the largest); terms are summed in double by each thread over its strided
// elements and then over the block in a fixed tree, whereas the CPU sums exp() in double in sorted
// order. The cumulative masses, weighted averages of those errors, agree to ~1e-7 relative, so a
// token can differ only where u · total (or top_p · total) lands that close to a cumulative sum:
// a draw on the boundary between two candidates, which either side rounds its own way.
// The measured mass is monotone in the prefix (every pass adds the same non-negative terms in the
// same per-thread order and the same tree, and rounded addition is monotone), so each search is
// exact with respect to the GPU's own sums: the kept set's total is a value the search computed,
// the token always lies in the kept set and has p > 0 (a -inf logit is never sampled).
//
// Errors: the first pass finds bad values (a NaN or +inf logit; when sampling, a row with no
// finite logit or a uniform outside [0, 1)); thread 0 records the smallest (row, position) with
// an integer atomicMin (order-independent), and the host reads it back after the kernel, one
// synchronisation per call, and throws naming it, as the CPU reference does.
// Determinism: no float atomics; every reduction has a fixed shape.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>

#include "kernels/cuda/cuda_common.cuh"

namespace rlaif::cuda {
namespace {

constexpr unsigned long long kNone = ~0ULL;

// ---- Keys and prefixes ----

// x < y ⇔ order_key(x) < order_key(y) for non-NaN floats. -0 maps as +0: the two compare equal on
// the CPU, so they tie (and are ordered by id) there too.
__device__ __forceinline__ uint32_t order_key(float x) {
  const uint32_t bits = __float_as_uint(x == 0.0f ? 0.0f : x);
  return (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
}
__device__ __forceinline__ float key_value(uint32_t key) {
  return __uint_as_float((key & 0x80000000u) ? (key & 0x7FFFFFFFu) : ~key);
}

// The prefix P(key, id) of the candidate order: every candidate with a larger key, and those with
// this key whose id is at most `id`.
struct Cut {
  uint32_t key;
  int64_t id;
};
__device__ __forceinline__ bool in_prefix(uint32_t key, int64_t id, const Cut& c) {
  return key > c.key || (key == c.key && id <= c.id);
}

// ---- Block reductions (every thread gets the result; scratch: 32 values of shared memory) ----

struct Sum {
  template <typename V>
  __device__ V operator()(V a, V b) const {
    return a + b;
  }
};
struct Min {
  template <typename V>
  __device__ V operator()(V a, V b) const {
    return b < a ? b : a;
  }
};
struct Max {
  template <typename V>
  __device__ V operator()(V a, V b) const {
    return a < b ? b : a;
  }
};

// A butterfly in each warp, then one over the warps' results: the same shape on every call, and
// every lane of a butterfly computes op(a, b) or op(b, a), equal for these commutative ops.
template <typename V, typename Op>
__device__ __forceinline__ V block_reduce(V v, Op op, V identity, V* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  __syncthreads();  // scratch may still be read by the previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : identity;
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// ---- Measuring prefixes ----

// One row of logits and its softmax parameters.
template <typename T>
struct Row {
  const T* x;
  int64_t vocab;
  double top;    // the row's largest logit
  double inv_t;  // 1 / temperature

  __device__ float value(int64_t v) const { return to_f32(x[v]); }
  // p_v, unnormalised: 1 for the largest logit, 0 for -inf (and for logits so far below that
  // expf underflows, as exp() does on the CPU at a slightly different point).
  __device__ float weight(float xv) const {
    return expf(static_cast<float>((static_cast<double>(xv) - top) * inv_t));
  }
};

// Size (kCounting) or mass of prefix `probe` ∩ `kept`, summed over the block. Each thread visits
// the same elements in the same order on every call, which makes the result monotone in probe.
template <bool kCounting, typename T>
__device__ double measure(const Row<T>& row, const Cut& probe, const Cut& kept, double* scratch) {
  double acc = 0.0;
  for (int64_t v = threadIdx.x; v < row.vocab; v += blockDim.x) {
    const float xv = row.value(v);
    const uint32_t k = order_key(xv);
    if (in_prefix(k, v, probe) && in_prefix(k, v, kept)) {
      acc += kCounting ? 1.0 : static_cast<double>(row.weight(xv));
    }
  }
  return block_reduce(acc, Sum{}, 0.0, scratch);
}

// The smallest prefix of `kept` whose measure satisfies `enough` (monotone: once true, true for
// every larger prefix), given that kept itself does (its measure is kept_measure) and the empty
// prefix does not. key_max: the row's largest key. Writes the prefix's measure to *found.
template <bool kCounting, typename T, typename Enough>
__device__ Cut smallest_prefix(const Row<T>& row, const Cut& kept, double kept_measure,
                               uint32_t key_max, Enough enough, double* dscratch,
                               unsigned long long* uscratch, double* found) {
  // The largest key t for which {key ≥ t} ∩ kept is enough: enough at lo ({key ≥ kept.key} ∩
  // kept is kept), not enough at hi (past the largest key, the prefix is empty).
  uint64_t lo = kept.key, hi = static_cast<uint64_t>(key_max) + 1;
  double m_lo = kept_measure;
  while (hi - lo > 1) {
    const uint64_t mid = lo + (hi - lo) / 2;
    const double m =
        measure<kCounting>(row, Cut{static_cast<uint32_t>(mid), row.vocab - 1}, kept, dscratch);
    if (enough(m)) {
      lo = mid;
      m_lo = m;
    } else {
      hi = mid;
    }
  }
  const uint32_t t = static_cast<uint32_t>(lo);
  // {key > t} ∩ kept is not enough and {key ≥ t} ∩ kept is, so some kept candidates have key t:
  // the answer is P(t, i) with i the id of one of them, found between the first and the last.
  unsigned long long first = kNone, last = 0;
  for (int64_t v = threadIdx.x; v < row.vocab; v += blockDim.x) {
    const uint32_t k = order_key(row.value(v));
    if (k == t && in_prefix(k, v, kept)) {
      const auto id = static_cast<unsigned long long>(v);
      first = first < id ? first : id;
      last = last > id ? last : id;
    }
  }
  first = block_reduce(first, Min{}, kNone, uscratch);
  last = block_reduce(last, Max{}, 0ULL, uscratch);
  // Not enough at id_lo (P(t, first - 1) ∩ kept = {key > t} ∩ kept), enough at id_hi.
  int64_t id_lo = static_cast<int64_t>(first) - 1, id_hi = static_cast<int64_t>(last);
  double m_hi = m_lo;
  while (id_hi - id_lo > 1) {
    const int64_t mid = id_lo + (id_hi - id_lo) / 2;
    const double m = measure<kCounting>(row, Cut{t, mid}, kept, dscratch);
    if (enough(m)) {
      id_hi = mid;
      m_hi = m;
    } else {
      id_lo = mid;
    }
  }
  *found = m_hi;
  return Cut{t, id_hi};
}

// ---- Kernel ----

// out[r] for each row r (grid-stride over rows, one block each). On a bad value the row's out is
// not written and *first_bad = min(*first_bad, r·(V + 2) + c) with c = the bad logit's id, V for
// a row with no finite logit (sampling only), V + 1 for a bad uniform (sampling only): the order
// in which the CPU reference checks.
template <typename T, int kThreads>
__global__ void __launch_bounds__(kThreads)
    sample_kernel(const T* logits, const float* uniforms, int64_t rows, int64_t vocab, bool greedy,
                  double inv_t, int64_t top_k, float top_p, int32_t* out,
                  unsigned long long* first_bad) {
  __shared__ double dscratch[32];
  __shared__ unsigned long long uscratch[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* x = logits + r * vocab;
    // One pass: the argmax (largest key, then smallest id: packed so that one max finds both),
    // the smallest key, and the first bad logit.
    unsigned long long best = 0, key_min = kNone, bad = kNone;
    for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x) {
      const float xv = to_f32(x[v]);
      const uint32_t k = order_key(xv);
      const unsigned long long packed =
          (static_cast<unsigned long long>(k) << 32) | (0xFFFFFFFFu - static_cast<uint32_t>(v));
      best = best > packed ? best : packed;
      key_min = key_min < k ? key_min : k;
      if (!isfinite(xv) && xv != -INFINITY && bad == kNone) bad = static_cast<uint64_t>(v);
    }
    best = block_reduce(best, Max{}, 0ULL, uscratch);
    key_min = block_reduce(key_min, Min{}, kNone, uscratch);
    bad = block_reduce(bad, Min{}, kNone, uscratch);
    // Every thread holds the same values from here on, so all branches are block-uniform.
    const auto flag = [&](int64_t code) {
      if (threadIdx.x == 0) {
        atomicMin(first_bad, static_cast<unsigned long long>(r * (vocab + 2) + code));
      }
    };
    if (bad != kNone) {
      flag(static_cast<int64_t>(bad));
      continue;
    }
    const auto key_max = static_cast<uint32_t>(best >> 32);
    const auto argmax = static_cast<int32_t>(0xFFFFFFFFu - static_cast<uint32_t>(best));
    if (greedy) {
      if (threadIdx.x == 0) out[r] = argmax;
      continue;
    }
    if (key_max == order_key(-INFINITY)) {
      flag(vocab);
      continue;
    }
    const float u = uniforms[r];
    if (!(u >= 0.0f && u < 1.0f)) {
      flag(vocab + 1);
      continue;
    }
    if (top_k == 1) {  // the largest logit alone: its p is 1 > u·1
      if (threadIdx.x == 0) out[r] = argmax;
      continue;
    }
    const Row<T> row{x, vocab, static_cast<double>(key_value(key_max)), inv_t};
    Cut kept{static_cast<uint32_t>(key_min), vocab - 1};  // every candidate
    if (top_k > 1 && top_k < vocab) {
      double count = 0.0;
      const double k = static_cast<double>(top_k);
      kept = smallest_prefix</*kCounting=*/true>(
          row, kept, static_cast<double>(vocab), key_max, [k](double c) { return c >= k; },
          dscratch, uscratch, &count);
    }
    double total = measure</*kCounting=*/false>(row, kept, kept, dscratch);
    if (top_p < 1.0f) {
      // total ≥ 1 (the largest logit's p is exactly 1), so need > 0: the empty prefix is short.
      const double need = static_cast<double>(top_p) * total;
      kept = smallest_prefix<false>(
          row, kept, total, key_max, [need](double m) { return m >= need; }, dscratch, uscratch,
          &total);
    }
    // u < 1 and total ≥ 1, so target < total: the kept set is enough, the empty prefix is not.
    const double target = static_cast<double>(u) * total;
    double reached = 0.0;
    const Cut pick = smallest_prefix<false>(
        row, kept, total, key_max, [target](double m) { return m > target; }, dscratch, uscratch,
        &reached);
    if (threadIdx.x == 0) out[r] = static_cast<int32_t>(pick.id);
  }
}

// ---- Host side ----

// Logit (row, id) of a row-major [N, V] f32 or bf16 tensor on the device, as f32 (for messages).
float read_logit(const Tensor& logits, int64_t at, const char* op, const std::string& detail) {
  if (logits.dtype() == DType::f32) {
    float value = 0.0f;
    check_cuda(cudaMemcpy(&value, ptr<float>(logits) + at, sizeof(value), cudaMemcpyDeviceToHost),
               op, detail);
    return value;
  }
  uint16_t half = 0;  // bf16: the upper 16 bits of an f32
  check_cuda(cudaMemcpy(&half, static_cast<const uint16_t*>(logits.raw_data()) + at, sizeof(half),
                        cudaMemcpyDeviceToHost),
             op, detail);
  const uint32_t bits = static_cast<uint32_t>(half) << 16;
  float value = 0.0f;
  std::memcpy(&value, &bits, sizeof(value));
  return value;
}

}  // namespace

void CudaBackend::sample_tokens(const Tensor& logits, const Tensor& uniforms, float temperature,
                                int64_t top_k, float top_p, const Tensor& out) {
  const char* op = "sample_tokens";
  expect_float(op, "logits", logits);
  RLAIF_CHECK(logits.dim() == 2, op, ": logits is ", logits, " but must be [N, V]");
  const int64_t n = logits.size(0), vocab = logits.size(1);
  RLAIF_CHECK(vocab > 0, op, ": logits ", logits, " has an empty vocabulary");
  RLAIF_CHECK(vocab <= INT32_MAX, op, ": logits ", logits, " has more ids than i32 holds");
  expect_dtype(op, "uniforms", uniforms, DType::f32);
  expect_shape(op, "uniforms", uniforms, {n});
  expect_dtype(op, "out", out, DType::i32);
  expect_shape(op, "out", out, {n});
  const bool greedy = temperature <= 0.0f;  // false for NaN, which the next check rejects
  if (!greedy) {
    RLAIF_CHECK(std::isfinite(temperature), op, ": temperature ", temperature, " must be finite");
    RLAIF_CHECK(top_k >= 0, op, ": top_k ", top_k, " must not be negative (0 keeps all)");
    RLAIF_CHECK(top_p > 0.0f && top_p <= 1.0f, op, ": top_p ", top_p, " must be in (0, 1]");
  }
  if (n == 0) return;

  const std::string detail =
      describe({{"logits", &logits}, {"uniforms", &uniforms}, {"out", &out}});
  Tensor flag = Tensor::empty({1}, DType::i64, logits.device());
  auto* first_bad = static_cast<unsigned long long*>(flag.raw_data());
  check_cuda(cudaMemsetAsync(first_bad, 0xFF, sizeof(unsigned long long), 0), op, detail);
  const double inv_t = greedy ? 0.0 : 1.0 / static_cast<double>(temperature);
  dispatch_float(logits.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    with_vocab_threads(vocab, [&](auto threads) {
      constexpr int kT = decltype(threads)::value;
      sample_kernel<T, kT><<<blocks_for(n), kT>>>(ptr<T>(logits), ptr<float>(uniforms), n, vocab,
                                                  greedy, inv_t, top_k, top_p, ptr<int32_t>(out),
                                                  first_bad);
    });
  });
  check_launch(op, detail);

  unsigned long long bad = kNone;
  check_cuda(cudaMemcpy(&bad, first_bad, sizeof(bad), cudaMemcpyDeviceToHost), op, detail);
  if (bad == kNone) return;
  const auto row = static_cast<int64_t>(bad / static_cast<unsigned long long>(vocab + 2));
  const auto code = static_cast<int64_t>(bad % static_cast<unsigned long long>(vocab + 2));
  if (code < vocab) {
    throw Error(op, ": logits[", row, ", ", code,
                "] = ", read_logit(logits, row * vocab + code, op, detail),
                " is not finite (only -inf is allowed)");
  }
  if (code == vocab) {
    throw Error(op, ": row ", row, " of logits ", logits, " is all -inf: no token to sample");
  }
  float u = 0.0f;
  check_cuda(cudaMemcpy(&u, ptr<float>(uniforms) + row, sizeof(u), cudaMemcpyDeviceToHost), op,
             detail);
  throw Error(op, ": uniforms[", row, "] = ", u, " is outside [0, 1)");
}

}  // namespace rlaif::cuda
