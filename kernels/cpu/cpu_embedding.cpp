// Embedding lookup and its gradient, the scatter-add.
//
// The forward pass is a gather: out[n, :] = weight[ids[n], :]. The backward pass sums every
// dout row into the weight row its id points at. Several positions can share an id, so a naive
// parallel loop over positions would race on dweight (and atomics would make the sum's order,
// hence its rounding, depend on thread timing). Instead the positions are bucketed by id with a
// counting sort, and each vocabulary row is then owned by one thread, which adds its positions in
// increasing order: deterministic whatever the thread count.
#include <vector>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/cpu_checks.h"

namespace rlaif {
namespace {

// Every id in [0, V), else Error naming the first bad id and its position. Checked before any
// parallel work: an exception must not escape an OpenMP region.
void check_ids(const char* op, const Tensor& ids, int64_t vocab) {
  const int32_t* id = ids.data<int32_t>();
  for (int64_t n = 0; n < ids.numel(); ++n) {
    RLAIF_CHECK(id[n] >= 0 && id[n] < vocab, op, ": ids[", n, "] = ", id[n],
                " is outside the vocabulary [0, ", vocab, ") (ids is ", ids,
                "; the index counts positions in row-major order)");
  }
}

// ids.shape + [D]: the shape out / dout must have.
Shape with_feature_dim(const Tensor& ids, int64_t d) {
  Shape shape = ids.shape();
  shape.push_back(d);
  return shape;
}

void check_weight(const char* op, const char* arg, const Tensor& w) {
  cpu::expect(op, arg, w, DType::f32);
  RLAIF_CHECK(w.dim() == 2, op, ": ", arg, " is ", w, " but must be [V, D]");
}

}  // namespace

void CpuBackend::embedding(const Tensor& weight, const Tensor& ids, const Tensor& out) {
  const char* op = "embedding";
  check_weight(op, "weight", weight);
  cpu::expect(op, "ids", ids, DType::i32);
  const int64_t vocab = weight.size(0), d = weight.size(1);
  cpu::expect(op, "out", out, DType::f32, with_feature_dim(ids, d));
  check_ids(op, ids, vocab);

  const float* w = weight.data<float>();
  const int32_t* id = ids.data<int32_t>();
  float* o = out.data<float>();
  cpu::parallel_for(ids.numel(), d, [&](int64_t n) {
    const float* src = w + static_cast<int64_t>(id[n]) * d;
    float* dst = o + n * d;
    for (int64_t j = 0; j < d; ++j) dst[j] = src[j];
  });
}

void CpuBackend::embedding_backward(const Tensor& ids, const Tensor& dout, const Tensor& dweight,
                                    bool accumulate) {
  const char* op = "embedding_backward";
  cpu::expect(op, "ids", ids, DType::i32);
  check_weight(op, "dweight", dweight);
  const int64_t vocab = dweight.size(0), d = dweight.size(1);
  cpu::expect(op, "dout", dout, DType::f32, with_feature_dim(ids, d));
  check_ids(op, ids, vocab);

  // Counting sort of the positions by id: the positions holding id v are
  // order[start[v] .. start[v+1]), in increasing position order (the sort is stable).
  const int32_t* id = ids.data<int32_t>();
  const int64_t n_ids = ids.numel();
  std::vector<int64_t> start(static_cast<size_t>(vocab) + 1, 0);
  for (int64_t n = 0; n < n_ids; ++n) ++start[static_cast<size_t>(id[n]) + 1];
  for (int64_t v = 0; v < vocab; ++v) start[v + 1] += start[v];
  std::vector<int64_t> order(static_cast<size_t>(n_ids));
  {
    std::vector<int64_t> next(start.begin(), start.end() - 1);
    for (int64_t n = 0; n < n_ids; ++n) order[next[id[n]]++] = n;
  }

  // One vocabulary row per task: dweight[v, :] = Σ over its positions (in increasing order) of
  // dout[n, :], accumulated in double so that frequent tokens (thousands of rows) keep f32
  // accuracy. With accumulate the rounded sum is added to the row (rows without ids untouched).
  const float* g = dout.data<float>();
  float* dw = dweight.data<float>();
  const int64_t avg_hits = vocab > 0 ? 1 + n_ids / vocab : 1;
  cpu::parallel_for(vocab, d * avg_hits, [&](int64_t v) {
    float* row = dw + v * d;
    const int64_t begin = start[v], end = start[v + 1];
    if (begin == end) {  // no id points here: the gradient is 0
      if (!accumulate) {
        for (int64_t j = 0; j < d; ++j) row[j] = 0.0f;
      }
      return;
    }
    std::vector<double> acc(static_cast<size_t>(d), 0.0);
    for (int64_t k = begin; k < end; ++k) {
      const float* src = g + order[k] * d;
      for (int64_t j = 0; j < d; ++j) acc[j] += src[j];
    }
    if (accumulate) {
      for (int64_t j = 0; j < d; ++j) row[j] += static_cast<float>(acc[j]);
    } else {
      for (int64_t j = 0; j < d; ++j) row[j] = static_cast<float>(acc[j]);
    }
  });
}

}  // namespace rlaif
