// Embedding lookup and its deterministic gradient on the GPU.
//
// Forward: a check kernel records the lowest position holding an id outside [0, V) (atomicMin on
// an integer: the result does not depend on timing); one readback turns it into the Error the CPU
// reference raises. The gather then copies rows, a warp per row, in 16-byte units when the rows
// allow it.
//
// Backward: dweight[v] = Σ_{n: ids[n] = v} dout[n], summed in increasing n (as the CPU reference
// does) without float atomics. The positions are bucketed by id with a stable counting sort:
//   1. counts[v] = how many positions hold v (integer atomics: exact, so order-free);
//   2. start = exclusive scan of counts (tile sums, then per-tile scans);
//   3. rank[n] = #{m < n : ids[m] = ids[n]}: tiles of 256 positions compared against every earlier
//      tile through shared memory, the per-tile counts added with integer atomics (exact). This is
//      O(N²/2) comparisons, but fully parallel and cheap up to ~10⁵ positions;
//   4. order[start[ids[n]] + rank[n]] = n, so each bucket lists its positions in increasing order;
//   5. one warp per vocabulary row sums its bucket's dout rows in that order, in double (as the
//      CPU reference, so frequent tokens keep f32 accuracy), and writes zeros for empty buckets;
//      with accumulate it adds the sum, rounded to the dtype, to the row with __fadd_rn (what a
//      separate dweight and binary(add) give) and leaves empty buckets' rows alone.
#include <climits>
#include <cstring>

#include "kernels/cuda/cuda_common.cuh"

namespace rlaif::cuda {
namespace {

constexpr int kRankTile = 256;
constexpr int kRankMaxTilesY = 64;  // earlier tiles a rank block may loop over, beyond the grid
constexpr int kScanTile = 1024;     // ids per scan block (one per thread)

// ---- Id validation ---------------------------------------------------------------------------

__global__ void find_bad_id_kernel(const int32_t* ids, int64_t n, int64_t vocab,
                                   unsigned long long* first_bad) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int32_t id = ids[i];
    if (id < 0 || id >= vocab) atomicMin(first_bad, static_cast<unsigned long long>(i));
  }
}

// Every id in [0, vocab), else Error naming the first bad id and its position (like the CPU).
void check_ids(const char* op, const Tensor& ids, int64_t vocab) {
  const int64_t n = ids.numel();
  if (n == 0) return;
  Tensor flag = Tensor::empty({1}, DType::i64, ids.device());
  auto* first_bad = static_cast<unsigned long long*>(flag.raw_data());
  check_cuda(cudaMemsetAsync(first_bad, 0xff, sizeof(unsigned long long), 0), op);
  find_bad_id_kernel<<<grid_for(n), kThreads>>>(ptr<int32_t>(ids), n, vocab, first_bad);
  check_launch("find_bad_id_kernel", describe({{"ids", &ids}}));
  unsigned long long pos = 0;
  check_cuda(cudaMemcpy(&pos, first_bad, sizeof(pos), cudaMemcpyDeviceToHost), op,
             "reading back the id check");
  if (pos >= static_cast<unsigned long long>(n)) return;
  int32_t id = 0;
  check_cuda(cudaMemcpy(&id, ptr<int32_t>(ids) + pos, sizeof(id), cudaMemcpyDeviceToHost), op,
             "reading back the bad id");
  throw Error(op, ": ids[", pos, "] = ", id, " is outside the vocabulary [0, ", vocab, ") (ids is ",
              ids, "; the index counts positions in row-major order)");
}

// ---- Vectors ---------------------------------------------------------------------------------

bool aligned16(const Tensor& t) {
  return reinterpret_cast<uintptr_t>(t.raw_data()) % 16 == 0;
}

// ---- Forward ---------------------------------------------------------------------------------

// out row n = weight row ids[n], copied in units U (int4 or the element type); `units` per row.
// Block (32, 8): warp y copies rows y, y + 8·gridDim.x, ...
template <typename U>
__global__ void gather_kernel(const U* weight, const int32_t* ids, int64_t n, int64_t units,
                              U* out) {
  for (int64_t row = blockIdx.x * static_cast<int64_t>(blockDim.y) + threadIdx.y; row < n;
       row += static_cast<int64_t>(gridDim.x) * blockDim.y) {
    const U* src = weight + static_cast<int64_t>(ids[row]) * units;
    U* dst = out + row * units;
    for (int64_t k = threadIdx.x; k < units; k += 32) dst[k] = src[k];
  }
}

template <typename U>
void launch_gather(const Tensor& weight, const Tensor& ids, const Tensor& out, int64_t row_bytes) {
  const int64_t n = ids.numel();
  const int64_t blocks64 = (n + 7) / 8;
  const unsigned blocks = static_cast<unsigned>(blocks64 < (1 << 20) ? blocks64 : (1 << 20));
  gather_kernel<U><<<blocks, dim3(32, 8)>>>(
      static_cast<const U*>(weight.raw_data()), ptr<int32_t>(ids), n,
      row_bytes / static_cast<int64_t>(sizeof(U)), static_cast<U*>(out.raw_data()));
}

// ---- Backward --------------------------------------------------------------------------------

__global__ void count_kernel(const int32_t* ids, int64_t n, int32_t* counts) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    atomicAdd(&counts[ids[i]], 1);
  }
}

// rank[p] += #{m in tile t, m < p : ids[m] = ids[p]} for the positions p of tile blockIdx.x and
// the tiles t = blockIdx.y, blockIdx.y + gridDim.y, ... ≤ blockIdx.x. rank starts at 0.
__global__ void rank_kernel(const int32_t* ids, int64_t n, int32_t* rank) {
  __shared__ int32_t tile[kRankTile];
  const int64_t p = blockIdx.x * static_cast<int64_t>(kRankTile) + threadIdx.x;
  const int32_t mine = p < n ? ids[p] : -1;
  int32_t count = 0;
  for (int64_t t = blockIdx.y; t <= blockIdx.x; t += gridDim.y) {  // uniform over the block
    const int64_t m = t * kRankTile + threadIdx.x;
    __syncthreads();                          // the previous tile has been read
    tile[threadIdx.x] = m < n ? ids[m] : -2;  // -2 never equals a checked id nor `mine`
    __syncthreads();
    const int limit = t == blockIdx.x ? static_cast<int>(threadIdx.x) : kRankTile;
#pragma unroll 8
    for (int j = 0; j < limit; ++j) count += tile[j] == mine;
  }
  if (p < n && count > 0) atomicAdd(&rank[p], count);
}

// Exclusive scan of counts into start[0..vocab] (start[vocab] = N), in two parallel passes over
// tiles of kScanTile ids (integers: exact, so any order gives the same result).
// Pass 1: tile_sums[b] = Σ counts over tile b.
__global__ void tile_sum_kernel(const int32_t* counts, int64_t vocab, int32_t* tile_sums) {
  __shared__ int32_t warp_total[kScanTile / 32];
  const int64_t v = blockIdx.x * static_cast<int64_t>(kScanTile) + threadIdx.x;
  int32_t c = v < vocab ? counts[v] : 0;
  for (int o = 16; o > 0; o >>= 1) c += __shfl_xor_sync(0xffffffffu, c, o);
  if ((threadIdx.x & 31) == 0) warp_total[threadIdx.x >> 5] = c;
  __syncthreads();
  if (threadIdx.x < 32) {
    c = warp_total[threadIdx.x];  // kScanTile / 32 == 32 warps
    for (int o = 16; o > 0; o >>= 1) c += __shfl_xor_sync(0xffffffffu, c, o);
    if (threadIdx.x == 0) tile_sums[blockIdx.x] = c;
  }
}

// Pass 2: block b adds the sums of the tiles before it, then scans its own tile.
__global__ void tile_scan_kernel(const int32_t* counts, const int32_t* tile_sums, int64_t vocab,
                                 int32_t* start) {
  __shared__ int32_t warp_total[kScanTile / 32];
  __shared__ int32_t base;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  int32_t before = 0;
  for (int64_t t = tid; t < blockIdx.x; t += kScanTile) before += tile_sums[t];
  for (int o = 16; o > 0; o >>= 1) before += __shfl_xor_sync(0xffffffffu, before, o);
  if (lane == 0) warp_total[warp] = before;
  __syncthreads();
  if (warp == 0) {
    int32_t w = warp_total[lane];
    for (int o = 16; o > 0; o >>= 1) w += __shfl_xor_sync(0xffffffffu, w, o);
    if (lane == 0) base = w;
  }
  __syncthreads();  // base is set; warp_total may be reused

  const int64_t v = blockIdx.x * static_cast<int64_t>(kScanTile) + tid;
  const int32_t c = v < vocab ? counts[v] : 0;
  int32_t incl = c;  // inclusive scan within the warp
  for (int o = 1; o < 32; o <<= 1) {
    const int32_t up = __shfl_up_sync(0xffffffffu, incl, o);
    if (lane >= o) incl += up;
  }
  if (lane == 31) warp_total[warp] = incl;
  __syncthreads();
  if (warp == 0) {
    int32_t w = warp_total[lane];
    for (int o = 1; o < 32; o <<= 1) {
      const int32_t up = __shfl_up_sync(0xffffffffu, w, o);
      if (lane >= o) w += up;
    }
    warp_total[lane] = w;  // inclusive over the warps
  }
  __syncthreads();
  const int32_t excl = base + (warp > 0 ? warp_total[warp - 1] : 0) + incl - c;
  if (v < vocab) start[v] = excl;
  if (v == vocab - 1) start[vocab] = excl + c;
}

__global__ void scatter_kernel(const int32_t* ids, const int32_t* start, const int32_t* rank,
                               int64_t n, int32_t* order) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    order[start[ids[i]] + rank[i]] = static_cast<int32_t>(i);
  }
}

// dweight row v = Σ over its bucket (increasing positions) of the dout rows, in double. A warp
// per vocabulary row, lanes over 16-byte column vectors; the bucket is walked in batches whose
// loads are all issued before the (in-order) additions.
template <typename T, int kVec>
__global__ void bucket_sum_kernel(const T* dout, const int32_t* start, const int32_t* order,
                                  int64_t vocab, int64_t d, T* dweight, bool accumulate) {
  constexpr int kBatch = kVec >= 8 ? 4 : 32 / kVec;
  const int lane = threadIdx.x & 31;
  const int64_t per_block = blockDim.x / 32;
  const int64_t nvec = d / kVec;
  for (int64_t v = blockIdx.x * per_block + threadIdx.x / 32; v < vocab;
       v += static_cast<int64_t>(gridDim.x) * per_block) {
    const int32_t begin = start[v], end = start[v + 1];
    if (accumulate && begin == end) continue;  // a row no id points at keeps its value
    T* dst = dweight + v * d;
    for (int64_t i = lane; i < nvec; i += 32) {
      double acc[kVec] = {};
      for (int32_t k0 = begin; k0 < end; k0 += kBatch) {
        float g[kBatch][kVec];
#pragma unroll
        for (int q = 0; q < kBatch; ++q) {
          if (k0 + q < end) {
            load_f32_vec<T, kVec>(dout + static_cast<int64_t>(order[k0 + q]) * d + i * kVec, g[q]);
          }
        }
#pragma unroll
        for (int q = 0; q < kBatch; ++q) {
          if (k0 + q < end) {
#pragma unroll
            for (int j = 0; j < kVec; ++j) acc[j] += g[q][j];
          }
        }
      }
      float out[kVec];
#pragma unroll
      for (int j = 0; j < kVec; ++j) out[j] = static_cast<float>(acc[j]);
      if (accumulate) {
        float old[kVec];
        load_f32_vec<T, kVec>(dst + i * kVec, old);
#pragma unroll
        for (int j = 0; j < kVec; ++j) out[j] = __fadd_rn(old[j], to_f32(from_f32<T>(out[j])));
      }
      store_f32_vec<T, kVec>(dst + i * kVec, out);
    }
  }
}

// ids.shape + [D]: the shape out / dout must have.
Shape with_feature_dim(const Tensor& ids, int64_t d) {
  Shape shape = ids.shape();
  shape.push_back(d);
  return shape;
}

void check_weight(const char* op, const char* arg, const Tensor& w) {
  expect_float(op, arg, w);
  RLAIF_CHECK(w.dim() == 2, op, ": ", arg, " is ", w, " but must be [V, D]");
}

}  // namespace

void CudaBackend::embedding(const Tensor& weight, const Tensor& ids, const Tensor& out) {
  const char* op = "embedding";
  check_weight(op, "weight", weight);
  expect_dtype(op, "ids", ids, DType::i32);
  const int64_t vocab = weight.size(0), d = weight.size(1);
  expect_float(op, "out", out);
  expect_same_dtype(op, "weight", weight, "out", out);
  expect_shape(op, "out", out, with_feature_dim(ids, d));
  check_ids(op, ids, vocab);
  if (ids.numel() == 0 || d == 0) return;

  // The copy is dtype-blind: whole rows move in 16-byte units when every row start is aligned.
  const int64_t row_bytes = d * static_cast<int64_t>(dtype_size(weight.dtype()));
  if (row_bytes % 16 == 0 && aligned16(weight) && aligned16(out)) {
    launch_gather<int4>(weight, ids, out, row_bytes);
  } else if (weight.dtype() == DType::f32) {
    launch_gather<float>(weight, ids, out, row_bytes);
  } else {
    launch_gather<bf16>(weight, ids, out, row_bytes);
  }
  check_launch("embedding gather_kernel",
               describe({{"weight", &weight}, {"ids", &ids}, {"out", &out}}));
}

void CudaBackend::embedding_backward(const Tensor& ids, const Tensor& dout, const Tensor& dweight,
                                     bool accumulate) {
  const char* op = "embedding_backward";
  expect_dtype(op, "ids", ids, DType::i32);
  check_weight(op, "dweight", dweight);
  const int64_t vocab = dweight.size(0), d = dweight.size(1);
  expect_float(op, "dout", dout);
  expect_same_dtype(op, "dout", dout, "dweight", dweight);
  expect_shape(op, "dout", dout, with_feature_dim(ids, d));
  check_ids(op, ids, vocab);
  const int64_t n = ids.numel();
  if (vocab == 0 || d == 0) return;
  if (n == 0) {  // no position points anywhere: the gradient is 0 (nothing to add)
    if (!accumulate) check_cuda(cudaMemsetAsync(dweight.raw_data(), 0, dweight.nbytes(), 0), op);
    return;
  }
  RLAIF_CHECK(n < INT32_MAX && vocab < INT32_MAX, op, ": ids ", ids, " and dweight ", dweight,
              " are too large for the cuda kernel's 32-bit bucket offsets");

  // Scratch, i32: counts [V] and rank [N] (zeroed together), start [V + 1], order [N], and the
  // scan's tile sums.
  const int64_t scan_tiles = (vocab + kScanTile - 1) / kScanTile;
  Tensor scratch = Tensor::empty({2 * vocab + 1 + 2 * n + scan_tiles}, DType::i32, ids.device());
  int32_t* counts = ptr<int32_t>(scratch);
  int32_t* rank = counts + vocab;
  int32_t* start = rank + n;
  int32_t* order = start + vocab + 1;
  int32_t* tile_sums = order + n;
  check_cuda(cudaMemsetAsync(counts, 0, static_cast<size_t>(vocab + n) * sizeof(int32_t), 0), op);
  const int32_t* id = ptr<int32_t>(ids);

  count_kernel<<<grid_for(n), kThreads>>>(id, n, counts);
  check_launch("embedding count_kernel", describe({{"ids", &ids}}));

  const int64_t tiles = (n + kRankTile - 1) / kRankTile;
  RLAIF_CHECK(tiles < (int64_t{1} << 31), op, ": ids ", ids, " has too many positions");
  const dim3 rank_grid(static_cast<unsigned>(tiles),
                       static_cast<unsigned>(tiles < kRankMaxTilesY ? tiles : kRankMaxTilesY));
  rank_kernel<<<rank_grid, kRankTile>>>(id, n, rank);
  check_launch("embedding rank_kernel", describe({{"ids", &ids}}));

  tile_sum_kernel<<<static_cast<unsigned>(scan_tiles), kScanTile>>>(counts, vocab, tile_sums);
  check_launch("embedding tile_sum_kernel", describe({{"dweight", &dweight}}));
  tile_scan_kernel<<<static_cast<unsigned>(scan_tiles), kScanTile>>>(counts, tile_sums, vocab,
                                                                     start);
  check_launch("embedding tile_scan_kernel", describe({{"dweight", &dweight}}));

  scatter_kernel<<<grid_for(n), kThreads>>>(id, start, rank, n, order);
  check_launch("embedding scatter_kernel", describe({{"ids", &ids}}));

  dispatch_float(dweight.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    constexpr int kWide = static_cast<int>(16 / sizeof(T));
    const bool vec = d % kWide == 0 && aligned16(dout) && aligned16(dweight);
    const int64_t blocks64 = (vocab + 7) / 8;  // 8 warps per block, a warp per row
    const unsigned blocks = static_cast<unsigned>(blocks64 < (1 << 20) ? blocks64 : (1 << 20));
    if (vec) {
      bucket_sum_kernel<T, kWide>
          <<<blocks, 256>>>(ptr<T>(dout), start, order, vocab, d, ptr<T>(dweight), accumulate);
    } else {
      bucket_sum_kernel<T, 1>
          <<<blocks, 256>>>(ptr<T>(dout), start, order, vocab, d, ptr<T>(dweight), accumulate);
    }
  });
  check_launch("embedding bucket_sum_kernel",
               describe({{"ids", &ids}, {"dout", &dout}, {"dweight", &dweight}}));
}

}  // namespace rlaif::cuda
