// Matrix multiplication for the CPU reference, through OpenBLAS's cblas_sgemm.
//
// out = alpha · op(a) @ op(b) + bias + beta · out is done in two steps: first out is rewritten
// as C = beta · out + bias (with beta = 0 the old contents are never read, so NaN or garbage in
// an uninitialised output cannot leak through 0 · NaN), then sgemm adds alpha · op(a) @ op(b)
// to C with its own beta fixed at 1. sgemm splits its work over rows and columns of C only,
// never over K, so each element sums in the same order whatever the thread count.
#include <cblas.h>

#include <climits>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/cpu_checks.h"
#include "kernels/matmul_dims.h"

namespace rlaif {

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

  // Step 2: C += alpha · op(a) @ op(b), one sgemm per batch entry. sgemm is itself
  // multithreaded, so it is called from this thread, never from inside an OpenMP region.
  const float* ap = a.data<float>();
  const float* bp = b.data<float>();
  const int lda = static_cast<int>(a.size(-1));
  const int ldb = static_cast<int>(b.size(-1));
  auto gemm = [&](int64_t rows, const float* a_mat, const float* b_mat, float* c_mat) {
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, static_cast<int>(rows), static_cast<int>(N),
                static_cast<int>(K), alpha, a_mat, lda, b_mat, ldb, 1.0f, c_mat,
                static_cast<int>(N));
  };
  if (shared_b && !trans_a) {
    // Every batch entry multiplies the same b, and a's rows are contiguous across the batch:
    // one [batch·M, K] @ [K, N] product does it all.
    gemm(batch * M, ap, bp, c);
    return;
  }
  for (int64_t i = 0; i < batch; ++i) {
    gemm(M, ap + i * M * K, shared_b ? bp : bp + i * K * N, c + i * M * N);
  }
}

}  // namespace rlaif
