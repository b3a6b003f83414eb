// Column sums split over the rows (see cuda_column_sum.cuh).
//
// reduce_kernel (cuda_reduce.cu) gives each group of 32 columns one block, which walks every row.
// A bias gradient's [8192, 768] has only 24 such groups: 24 of the GPU's 132 SMs read 12.6 MB
// with a few loads in flight each, so the sum is latency-bound at a fraction of the memory's
// bandwidth. Here the rows are also cut into S segments, S fixed by the shape (about 1024
// blocks in all, and no more than ⌈n / 64⌉ segments, so about 64 rows each at least):
//   1. block (group g, segment s), 32 × 8 threads: thread (c, r) adds rows s·R + r, + 8, ... of
//      column c in f32 (four loads in flight), the 8 row lanes meet in a fixed tree, and the block
//      writes partial[o, s, i];
//   2. one thread per output adds its S partials in segment order (and divides by n for a mean).
// Every order is fixed by the shape: the result is bitwise reproducible, as every reduction of
// the backend is.
#include "kernels/cuda/cuda_column_sum.cuh"

namespace rlaif::cuda {
namespace {

constexpr int kCols = 32;         // columns per block (a warp's lanes)
constexpr int kRowLanes = 8;      // row lanes per block
constexpr int64_t kMinRows = 64;  // at most ⌈n / kMinRows⌉ segments (600 rows: 10 of 60)
constexpr int64_t kTargetBlocks = 1024;
constexpr int64_t kMaxGroups = 256;  // more column groups than this keep the GPU busy unsplit
constexpr int64_t kMinSplitRows = 512;

struct Split {
  int64_t outer, n, inner, tiles, segments, rows;  // rows per segment
};

Split make_split(int64_t outer, int64_t n, int64_t inner) {
  Split s{outer, n, inner, (inner + kCols - 1) / kCols, 1, n};
  const int64_t groups = outer * s.tiles;
  int64_t want = (kTargetBlocks + groups - 1) / groups;
  const int64_t most = (n + kMinRows - 1) / kMinRows;
  if (want > most) want = most;
  if (want < 1) want = 1;
  s.rows = (n + want - 1) / want;
  s.segments = (n + s.rows - 1) / s.rows;
  return s;
}

template <typename T>
__global__ void __launch_bounds__(kCols* kRowLanes)
    column_partials_kernel(const T* __restrict__ x, Split s, float* __restrict__ partial) {
  __shared__ float lanes[kRowLanes][kCols];
  const int c = static_cast<int>(threadIdx.x) % kCols, r = static_cast<int>(threadIdx.x) / kCols;
  const int64_t seg = blockIdx.x % s.segments, g = blockIdx.x / s.segments;
  const int64_t o = g / s.tiles, i = (g % s.tiles) * kCols + c;
  const int64_t first = seg * s.rows;
  const int64_t last = first + s.rows < s.n ? first + s.rows : s.n;
  float acc = 0.0f;
  if (i < s.inner) {
    const T* col = x + o * s.n * s.inner + i;
    int64_t k = first + r;
    // Four independent loads per round, added in row order.
    for (; k + 3 * kRowLanes < last; k += 4 * kRowLanes) {
      const float a = to_f32(col[k * s.inner]);
      const float b = to_f32(col[(k + kRowLanes) * s.inner]);
      const float d = to_f32(col[(k + 2 * kRowLanes) * s.inner]);
      const float e = to_f32(col[(k + 3 * kRowLanes) * s.inner]);
      acc += a;
      acc += b;
      acc += d;
      acc += e;
    }
    for (; k < last; k += kRowLanes) acc += to_f32(col[k * s.inner]);
  }
  lanes[r][c] = acc;
  for (int half = kRowLanes / 2; half > 0; half /= 2) {
    __syncthreads();
    if (r < half) lanes[r][c] += lanes[r + half][c];
  }
  if (r == 0 && i < s.inner) partial[(o * s.segments + seg) * s.inner + i] = lanes[0][c];
}

template <typename T>
__global__ void column_totals_kernel(const float* __restrict__ partial, Split s, bool mean,
                                     T* __restrict__ out) {
  const int64_t total = s.outer * s.inner;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t o = e / s.inner, i = e % s.inner;
    const float* p = partial + o * s.segments * s.inner + i;
    float sum = 0.0f;
    for (int64_t seg = 0; seg < s.segments; ++seg) sum += p[seg * s.inner];
    out[e] = from_f32<T>(mean ? sum / static_cast<float>(s.n) : sum);
  }
}

}  // namespace

bool use_split_column_sum(int64_t outer, int64_t n, int64_t inner) {
  const int64_t tiles = (inner + kCols - 1) / kCols;
  return n >= kMinSplitRows && outer * tiles < kMaxGroups;
}

template <typename T>
void split_column_sum(const T* x, int64_t outer, int64_t n, int64_t inner, bool mean, T* out,
                      Device device) {
  const Split s = make_split(outer, n, inner);
  // Freed on return; the allocator hands the memory out again only to work queued after these
  // kernels on the same stream.
  Tensor partial = Tensor::empty({outer * s.segments * inner}, DType::f32, device);
  const int64_t blocks = outer * s.tiles * s.segments;
  column_partials_kernel<T><<<static_cast<unsigned>(blocks), kCols * kRowLanes>>>(
      x, s, static_cast<float*>(partial.raw_data()));
  check_launch("column_partials_kernel", std::to_string(blocks) + " blocks");
  column_totals_kernel<T><<<grid_for(outer * inner), kThreads>>>(
      static_cast<const float*>(partial.raw_data()), s, mean, out);
  check_launch("column_totals_kernel");
}

template void split_column_sum<float>(const float*, int64_t, int64_t, int64_t, bool, float*,
                                      Device);
template void split_column_sum<bf16>(const bf16*, int64_t, int64_t, int64_t, bool, bf16*, Device);

}  // namespace rlaif::cuda
