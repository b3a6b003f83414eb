// Sums over a long dimension with few outputs (internal to the CUDA backend; used by
// CudaBackend::reduce in cuda_reduce.cu): the bias gradients of every linear layer are sums over
// the rows of a [B·T, C] gradient, 8192 rows by 768 to 3072 columns at GPT-2 124M's shapes.
#pragma once

#include <cstdint>

#include "kernels/cuda/cuda_common.cuh"

namespace rlaif::cuda {

// Whether split_column_sum should take the sum over n of x viewed as [outer, n, inner]: few
// columns for one block each to keep the GPU busy, and n long enough to split. Depends on the
// shape alone, so a shape always takes the same path and gets the same bits.
bool use_split_column_sum(int64_t outer, int64_t n, int64_t inner);

// out[o, i] = Σ_k x[o, k, i] (divided by n when mean), in f32: each block sums one segment of
// rows for 32 columns, writing f32 partials, then a second kernel adds each column's partials in
// segment order. Queued on the default stream; n ≥ 1.
template <typename T>
void split_column_sum(const T* x, int64_t outer, int64_t n, int64_t inner, bool mean, T* out,
                      Device device);

}  // namespace rlaif::cuda
