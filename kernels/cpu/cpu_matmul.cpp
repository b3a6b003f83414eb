// Matrix multiplication for the CPU reference, through OpenBLAS's cblas_sgemm.
//
// out = alpha · op(a) @ op(b) + bias + beta · out is done in two steps: first out is rewritten
// as C = beta · out + bias (with beta = 0 the old contents are never read, so NaN or garbage in
// an uninitialised output cannot leak through 0 · NaN), then sgemm adds alpha · op(a) @ op(b)
// to C with its own beta fixed at 1.
//
// Why the product is cut into tiles here rather than left to OpenBLAS's own threading: how
// OpenBLAS splits C over its threads depends on the thread count, and on some of its kernel sets
// (Haswell and Zen among them) the elements at a split's edges are summed by other code than the
// rest, so their last bits change with the thread count. rlaif promises CPU results that do not
// depend on the thread count (kernels/backend.h), so C is cut into tiles whose bounds depend only
// on the shape, and each tile is one single-threaded sgemm call (OpenBLAS's OpenMP build runs
// single-threaded inside an active OpenMP region). Whichever thread computes a tile, it computes
// it the same way. Measured on 2 cores with GPT-2 124M's shapes, 256-wide tiles cost the same as
// OpenBLAS's own split within a few percent either way.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <climits>
#include <vector>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/cpu_checks.h"
#include "kernels/matmul_dims.h"

namespace rlaif {
namespace {

// One way of cutting [0, n) into parts of about kTileTarget, each a multiple of kTileAlign (the
// last may be shorter): a pure function of n.
struct Split {
  int64_t step = 0;  // the length of every part but the last
  int64_t parts = 0;
};

constexpr int64_t kTileTarget = 256;
constexpr int64_t kTileAlign = 16;

Split split(int64_t n) {
  const int64_t parts = std::max<int64_t>(1, (n + kTileTarget / 2) / kTileTarget);
  int64_t step = (n + parts - 1) / parts;
  step = (step + kTileAlign - 1) / kTileAlign * kTileAlign;
  return {step, (n + step - 1) / step};
}

// C (rows × n, leading dimension ldc) += alpha · op(A) @ op(B), where op(A) is rows × k and op(B)
// is k × n, as stored for cblas_sgemm (row-major) with leading dimensions lda and ldb.
struct Product {
  bool trans_a = false, trans_b = false;
  int64_t rows = 0, n = 0, k = 0;
  float alpha = 1.0f;
  const float* a = nullptr;
  int64_t lda = 0;
  const float* b = nullptr;
  int64_t ldb = 0;
  float* c = nullptr;
  int64_t ldc = 0;

  // The tile of rows [r0, r0 + nr) and columns [c0, c0 + nc), as one sgemm call.
  void tile(int64_t r0, int64_t nr, int64_t c0, int64_t nc) const {
    const float* a_tile = trans_a ? a + r0 : a + r0 * lda;
    const float* b_tile = trans_b ? b + c0 * ldb : b + c0;
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, static_cast<int>(nr), static_cast<int>(nc),
                static_cast<int>(k), alpha, a_tile, static_cast<int>(lda), b_tile,
                static_cast<int>(ldb), 1.0f, c + r0 * ldc + c0, static_cast<int>(ldc));
  }
};

// Below this many multiply-adds in all, the products run on the calling thread alone: waking
// the other OpenMP threads costs more than they save. On a 2-core VM a fork and join took about
// 50 us under rlaif's OMP_WAIT_POLICY=passive (1-3 us with active), and 2^20 multiply-adds 20-40
// us on one core. Decoding a small model is made of such products: there this bound made
// stories260K-sized decoding 7x faster, and 2^22 made the Llama 124M preset's decoding 20%
// slower.
constexpr int64_t kParallelMultiplyAdds = int64_t{1} << 20;

// Keeps OpenBLAS single-threaded outside an OpenMP region, as it is inside one: its OpenMP build
// takes its thread count from omp_get_max_threads() on every call.
class OneThreadScope {
 public:
  OneThreadScope() : saved_(omp_get_max_threads()) { omp_set_num_threads(1); }
  ~OneThreadScope() { omp_set_num_threads(saved_); }
  OneThreadScope(const OneThreadScope&) = delete;
  OneThreadScope& operator=(const OneThreadScope&) = delete;

 private:
  int saved_;
};

// Runs every tile of every product. The tiles are fixed by the shapes; the threads only choose
// which of them each computes, and every tile is one single-threaded sgemm call wherever it runs.
// Hence a small product, or a single tile, runs on the calling thread with the same result.
void run_tiles(const std::vector<Product>& products) {
  if (products.empty()) return;
  const Split rows = split(products[0].rows), cols = split(products[0].n);
  const int64_t per_product = rows.parts * cols.parts;
  const int64_t tiles = per_product * static_cast<int64_t>(products.size());
  auto run = [&](int64_t t) {
    const Product& p = products[static_cast<size_t>(t / per_product)];
    const int64_t i = (t % per_product) / cols.parts, j = t % cols.parts;
    const int64_t r0 = i * rows.step, c0 = j * cols.step;
    p.tile(r0, std::min(rows.step, p.rows - r0), c0, std::min(cols.step, p.n - c0));
  };
  const Product& first = products[0];
  const int64_t multiply_adds =
      first.rows * first.n * first.k * static_cast<int64_t>(products.size());
  if (omp_get_max_threads() == 1 || tiles == 1 || multiply_adds < kParallelMultiplyAdds) {
    const OneThreadScope one_thread;
    for (int64_t t = 0; t < tiles; ++t) run(t);
    return;
  }
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t t = 0; t < tiles; ++t) run(t);
}

}  // namespace

void CpuBackend::matmul(const Tensor& a, const Tensor& b, const Tensor& out, bool trans_a,
                        bool trans_b, const Tensor& bias, float alpha, float beta) {
  const char* op = "matmul";
  cpu::expect(op, "a", a, DType::f32);
  cpu::expect(op, "b", b, DType::f32);
  cpu::expect(op, "out", out, DType::f32);
  const MatmulDims dims = matmul_dims(op, a, b, out, trans_a, trans_b);
  const int64_t M = dims.M, K = dims.K, N = dims.N, batch = dims.batch;
  const bool shared_b = dims.shared_b;
  if (bias.defined()) cpu::expect(op, "bias", bias, DType::f32, {N});
  RLAIF_CHECK(batch * M <= INT_MAX && N <= INT_MAX && K <= INT_MAX, op,
              ": dimensions exceed OpenBLAS's 32-bit sizes: a ", a, ", b ", b);

  // Step 1: C = beta · out + bias.
  float* c = out.data<float>();
  const float* bias_p = bias.defined() ? bias.data<float>() : nullptr;
  if (beta != 1.0f || bias_p != nullptr) {
    cpu::parallel_for(batch * M, N, [&](int64_t r) {
      float* row = c + r * N;
      for (int64_t n = 0; n < N; ++n) {
        float v = beta == 0.0f ? 0.0f : beta * row[n];
        row[n] = bias_p != nullptr ? v + bias_p[n] : v;
      }
    });
  }
  // An empty product adds nothing (and BLAS rejects leading dimensions of 0).
  if (batch == 0 || M == 0 || N == 0 || K == 0) return;

  // Step 2: C += alpha · op(a) @ op(b), in tiles.
  Product p;
  p.trans_a = trans_a;
  p.trans_b = trans_b;
  p.n = N;
  p.k = K;
  p.alpha = alpha;
  p.lda = a.size(-1);
  p.ldb = b.size(-1);
  p.ldc = N;
  std::vector<Product> products;
  if (shared_b && !trans_a) {
    // Every batch entry multiplies the same b, and a's rows are contiguous across the batch:
    // one [batch·M, K] @ [K, N] product does it all.
    p.rows = batch * M;
    p.a = a.data<float>();
    p.b = b.data<float>();
    p.c = c;
    products.push_back(p);
  } else {
    p.rows = M;
    for (int64_t i = 0; i < batch; ++i) {
      p.a = a.data<float>() + i * M * K;
      p.b = b.data<float>() + (shared_b ? 0 : i * K * N);
      p.c = c + i * M * N;
      products.push_back(p);
    }
  }
  run_tiles(products);
}

}  // namespace rlaif
