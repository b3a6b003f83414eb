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

namespace rlaif {

void CpuBackend::matmul(const Tensor& a, const Tensor& b, const Tensor& out, bool trans_a,
                        bool trans_b, const Tensor& bias, float alpha, float beta) {
  const char* op = "matmul";
  cpu::expect(op, "a", a, DType::f32);
  cpu::expect(op, "b", b, DType::f32);
  cpu::expect(op, "out", out, DType::f32);
  RLAIF_CHECK(a.dim() >= 2, op, ": a ", a, " needs at least two dimensions");
  RLAIF_CHECK(b.dim() >= 2, op, ": b ", b, " needs at least two dimensions");

  // a holds op(a) = [M, K] as [M, K], or as [K, M] when trans_a; likewise b.
  const int64_t M = trans_a ? a.size(-1) : a.size(-2);
  const int64_t K = trans_a ? a.size(-2) : a.size(-1);
  const int64_t Kb = trans_b ? b.size(-1) : b.size(-2);
  const int64_t N = trans_b ? b.size(-2) : b.size(-1);
  RLAIF_CHECK(K == Kb, op, ": inner dimensions differ: a ", a, (trans_a ? " transposed" : ""),
              " has K = ", K, " but b ", b, (trans_b ? " transposed" : ""), " has K = ", Kb);

  const Shape batch_shape(a.shape().begin(), a.shape().end() - 2);
  const bool shared_b = b.dim() == 2;
  if (!shared_b) {
    RLAIF_CHECK(Shape(b.shape().begin(), b.shape().end() - 2) == batch_shape, op, ": b ", b,
                " must be 2-D or have the batch dimensions of a ", a);
  }
  Shape out_shape = batch_shape;
  out_shape.push_back(M);
  out_shape.push_back(N);
  RLAIF_CHECK(out.shape() == out_shape, op, ": out is ", out, " but must have shape ",
              shape_str(out_shape), " for a ", a, (trans_a ? " transposed" : ""), " and b ", b,
              (trans_b ? " transposed" : ""));
  if (bias.defined()) cpu::expect(op, "bias", bias, DType::f32, {N});
  const int64_t batch = shape_numel(batch_shape);
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
