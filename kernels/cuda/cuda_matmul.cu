// Matrix multiplication for the CUDA backend, through cuBLASLt.
//
// Row-major handling: cuBLASLt is column-major, and a row-major [R, C] matrix is the same bytes
// as a column-major [C, R] one. So instead of out = op(a)·op(b) we ask cuBLASLt for
//   outᵀ = op(b)ᵀ·op(a)ᵀ    (column-major D = [N, M], A' = b's buffer, B' = a's buffer)
// with each buffer described as it lies in memory (b: column-major [N, K] with ld N, or [K, N]
// with ld K and transposed when trans_b; a likewise) — the operands swap, the flags stay. This
// keeps the default COL order that every cuBLASLt kernel supports, rather than ORDER_ROW layouts.
//
// Bias: it runs along N, the rows of the column-major D, which is exactly what
// CUBLASLT_EPILOGUE_BIAS adds (a vector of D's row count broadcast over its columns; its batch
// stride defaults to 0, so batched products share it). Where the heuristic finds no algorithm
// with that epilogue, a small kernel first rewrites out as beta·out + bias (as the CPU reference
// does) and the GEMM then runs with beta = 1.
//
// Batches: when b is shared (2-D) and a is not transposed, a's rows are contiguous across the
// batch and the whole call is one [batch·M, K]·[K, N] product; otherwise a strided-batched
// product (b's batch stride 0 when shared). beta goes to cuBLASLt with C = D = out; with beta = 0
// cuBLASLt never reads C, so NaN in an uninitialised out cannot leak into the result.
//
// Unaligned rows: Hopper's fast GEMM kernels move tiles with the Tensor Memory Accelerator, which
// needs every matrix's leading dimension to be a multiple of 16 bytes; cuBLASLt falls back to
// much slower kernels otherwise. GPT-2's vocabulary (50257) makes the LM head's logits [N, 50257]
// exactly that case, in its forward product and both backward ones, about a third of the model's
// FLOPs (llm.c pads the vocabulary to 50304 for this reason). So for an unbatched product whose
// operand or output rows are not 16-byte multiples, that matrix is copied (cudaMemcpy2DAsync)
// into a scratch buffer with a padded leading dimension, and an output is copied back: a copy
// costs its bytes at memory bandwidth, far less than the slow GEMM. The values are those of the
// unpadded product. RLAIF_MATMUL_PAD=0 in the environment turns this off (to measure both).
//
// Precision: CUBLAS_COMPUTE_32F (true f32, not TF32) with an f32 scale type, for f32 and for
// bf16 operands; bf16 products only take split-K schemes that reduce in f32.
//
// Caches (per device, created on first use and kept until exit): the cuBLASLt handle, a 32 MiB
// workspace, and per problem shape the descriptors and the heuristic's algorithm, keyed by
// everything the heuristic looks at (dtype, flags, sizes, strides, pointer alignments, epilogue).
// Reusing the algorithm per shape also keeps results bitwise reproducible run after run.
#include <cublasLt.h>

#include <array>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <unordered_map>

#include "kernels/cuda/cublaslt_library.h"
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/matmul_dims.h"
#include "runtime/fnv1a.h"

namespace rlaif::cuda {
namespace {

constexpr size_t kWorkspaceBytes = size_t{32} << 20;

// The call's arguments, described only when an error message needs them (building the string
// on every call would cost more host time than the rest of the call's bookkeeping).
struct CallInfo {
  const Tensor& a;
  const Tensor& b;
  const Tensor& out;
  const Tensor& bias;
  bool trans_a, trans_b;
  std::string str() const {
    return describe({{"a", &a}, {"b", &b}, {"out", &out}, {"bias", &bias}}) +
           (trans_a ? ", trans_a" : "") + (trans_b ? ", trans_b" : "");
  }
};

void check_cublas(cublasStatus_t status, const char* what, const CallInfo& info) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  throw Error("matmul: cuBLASLt error in ", what, " (", info.str(),
              "): ", cublaslt().GetStatusName(status), ": ", cublaslt().GetStatusString(status));
}

// out = beta·out + bias over rows × n elements (bias optional, [n]); beta = 0 ignores out's old
// contents. Used for K = 0 or alpha = 0 (the product adds nothing) and as the bias fallback.
// Separate multiply and add (no FMA contraction) as the CPU reference computes them.
template <typename T>
__global__ void scale_add_bias_kernel(T* __restrict__ out, const T* __restrict__ bias,
                                      int64_t total, int64_t n, float beta) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += stride) {
    float v = beta == 0.0f ? 0.0f : __fmul_rn(beta, to_f32(out[i]));
    if (bias != nullptr) v = __fadd_rn(v, to_f32(bias[i % n]));
    out[i] = from_f32<T>(v);
  }
}

void scale_add_bias(const Tensor& out, const Tensor& bias, float beta, int64_t rows, int64_t n,
                    const CallInfo& info) {
  const int64_t total = rows * n;
  if (total == 0) return;
  if (beta == 1.0f && !bias.defined()) return;  // out stays as it is
  dispatch_float(out.dtype(), "matmul", [&](auto tag) {
    using T = decltype(tag);
    scale_add_bias_kernel<T><<<grid_for(total), kThreads>>>(
        ptr<T>(out), bias.defined() ? ptr<T>(bias) : nullptr, total, n, beta);
  });
  check_launch("matmul (scale_add_bias_kernel)", info.str());
}

// The largest power of two (at most 256, cuBLASLt's default assumption) dividing the address and
// the batch stride in bytes: the alignment every batch entry's matrix is guaranteed to have.
uint32_t alignment_of(const void* p, int64_t stride_bytes) {
  const uint64_t bits = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(p)) |
                        static_cast<uint64_t>(stride_bytes) | uint64_t{256};
  return static_cast<uint32_t>(bits & (~bits + 1));  // lowest set bit
}

// One GEMM problem in cuBLASLt's column-major terms (see the file comment).
struct Problem {
  cudaDataType_t type;
  bool trans_a, trans_b;                   // of A' = b's buffer and B' = a's buffer
  int64_t m, n, k;                         // D is [m, n] = [N, rows of out in this product]
  int64_t a_rows, a_cols, b_rows, b_cols;  // the buffers as stored
  int64_t batch;                           // 1: not batched
  int64_t stride_a, stride_b, stride_d;    // in elements
  bool bias;                               // the caller wants the bias added
  bool beta_nonzero;
  uint32_t align_a, align_b, align_c, align_bias;
  int64_t ld_a, ld_b, ld_d;  // leading dimensions: a_rows, b_rows, m unless padded
  bool gelu;                 // linear_gelu: GELU epilogue, its input kept in an aux matrix
  uint32_t align_aux;
};

using PlanKey = std::array<int64_t, 25>;

PlanKey key_of(const Problem& p) {
  return {static_cast<int64_t>(p.type),
          p.trans_a,
          p.trans_b,
          p.m,
          p.n,
          p.k,
          p.a_rows,
          p.a_cols,
          p.b_rows,
          p.b_cols,
          p.batch,
          p.stride_a,
          p.stride_b,
          p.stride_d,
          p.bias,
          p.beta_nonzero,
          p.align_a,
          p.align_b,
          p.align_c,
          p.align_bias,
          p.ld_a,
          p.ld_b,
          p.ld_d,
          p.gelu,
          p.align_aux};
}

struct PlanKeyHash {
  size_t operator()(const PlanKey& key) const {
    Fnv1a64 h;  // over the fields, a word each
    for (int64_t v : key) h.add_word(static_cast<uint64_t>(v));
    return static_cast<size_t>(h.value() ^ (h.value() >> 29));
  }
};

// The descriptors and algorithm for one problem. Never destroyed: they live as long as the
// process, and destroying cuBLASLt objects from static destructors after the CUDA runtime has
// begun its own teardown is not safe. A GELU problem without a fused algorithm caches a Plan
// with no descriptor: linear_gelu then composes matmul and unary.
struct Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  cublasLtMatmulAlgo_t algo{};
  bool fused_bias = false;  // the epilogue adds the bias
};

struct DeviceState {
  cublasLtHandle_t handle = nullptr;
  void* workspace = nullptr;
  std::unordered_map<PlanKey, Plan, PlanKeyHash> plans;
};

// Guards the per-device states and their plan caches; held for the whole host side of a call
// (the plan's descriptor gets this call's bias pointer before cublasLtMatmul reads it).
std::mutex& matmul_mutex() {
  static std::mutex mutex;
  return mutex;
}

// Caller holds matmul_mutex(). Created on the device's first matmul; never freed (see Plan).
DeviceState& device_state(int device, const CallInfo& info) {
  static std::unordered_map<int, DeviceState*> states;
  auto it = states.find(device);
  if (it != states.end()) return *it->second;
  int previous = 0;
  check_cuda(cudaGetDevice(&previous), "matmul", "cudaGetDevice");
  check_cuda(cudaSetDevice(device), "matmul", "cudaSetDevice");
  auto* state = new DeviceState;
  cublasStatus_t status = cublaslt().Create(&state->handle);
  cudaError_t err = status == CUBLAS_STATUS_SUCCESS ? cudaMalloc(&state->workspace, kWorkspaceBytes)
                                                    : cudaSuccess;
  cudaSetDevice(previous);
  if (status != CUBLAS_STATUS_SUCCESS || err != cudaSuccess) {
    if (state->handle != nullptr) cublaslt().Destroy(state->handle);
    delete state;
    check_cublas(status, "cublasLtCreate", info);
    check_cuda(err, "matmul", "allocating the 32 MiB cuBLASLt workspace");
  }
  states.emplace(device, state);
  return *state;
}

void destroy(Plan& plan) {
  if (plan.a != nullptr) cublaslt().MatrixLayoutDestroy(plan.a);
  if (plan.b != nullptr) cublaslt().MatrixLayoutDestroy(plan.b);
  if (plan.d != nullptr) cublaslt().MatrixLayoutDestroy(plan.d);
  if (plan.desc != nullptr) cublaslt().MatmulDescDestroy(plan.desc);
  plan = Plan{};
}

// Sets one attribute of a matmul descriptor; `name` is the attribute's, for the error (the
// message is built only on failure: the pointers are set on every call).
template <typename T>
void set_desc(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attr, const T& value,
              const char* name, const CallInfo& info) {
  const cublasStatus_t status = cublaslt().MatmulDescSetAttribute(desc, attr, &value, sizeof value);
  if (status == CUBLAS_STATUS_SUCCESS) return;
  check_cublas(status, (std::string("cublasLtMatmulDescSetAttribute(") + name + ")").c_str(), info);
}

cublasLtMatrixLayout_t make_layout(cudaDataType_t type, int64_t rows, int64_t cols, int64_t ld,
                                   int64_t batch, int64_t stride, const CallInfo& info) {
  cublasLtMatrixLayout_t layout = nullptr;
  check_cublas(cublaslt().MatrixLayoutCreate(&layout, type, static_cast<uint64_t>(rows),
                                             static_cast<uint64_t>(cols), ld),
               "cublasLtMatrixLayoutCreate", info);
  if (batch > 1) {
    const int32_t count = static_cast<int32_t>(batch);
    cublasStatus_t status = cublaslt().MatrixLayoutSetAttribute(
        layout, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof count);
    if (status == CUBLAS_STATUS_SUCCESS) {
      status = cublaslt().MatrixLayoutSetAttribute(
          layout, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof stride);
    }
    if (status != CUBLAS_STATUS_SUCCESS) cublaslt().MatrixLayoutDestroy(layout);
    check_cublas(status, "cublasLtMatrixLayoutSetAttribute", info);
  }
  return layout;
}

// Descriptors and layouts for p, with or without the bias epilogue (an exception leaves nothing
// allocated).
Plan make_descriptors(const Problem& p, bool fused_bias, const void* bias_ptr, void* aux_ptr,
                      const CallInfo& info) {
  Plan plan;
  plan.fused_bias = fused_bias;
  try {
    check_cublas(cublaslt().MatmulDescCreate(&plan.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F),
                 "cublasLtMatmulDescCreate", info);
    const int32_t ta = p.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    const int32_t tb = p.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    set_desc(plan.desc, CUBLASLT_MATMUL_DESC_TRANSA, ta, "TRANSA", info);
    set_desc(plan.desc, CUBLASLT_MATMUL_DESC_TRANSB, tb, "TRANSB", info);
    if (fused_bias || p.gelu) {
      const uint32_t epilogue = !p.gelu      ? CUBLASLT_EPILOGUE_BIAS
                                : fused_bias ? CUBLASLT_EPILOGUE_GELU_AUX_BIAS
                                             : CUBLASLT_EPILOGUE_GELU_AUX;
      set_desc(plan.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, epilogue, "EPILOGUE", info);
    }
    if (p.gelu) {
      // The GELU's input (the product plus bias) goes to an aux matrix shaped like D.
      const int64_t aux_ld = p.ld_d;
      set_desc(plan.desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, aux_ld, "EPILOGUE_AUX_LD", info);
      set_desc(plan.desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, aux_ptr,
               "EPILOGUE_AUX_POINTER", info);
    }
    if (fused_bias) {
      const int32_t bias_type = p.type;
      set_desc(plan.desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, bias_type, "BIAS_DATA_TYPE", info);
      // The heuristic reads the pointer's alignment (part of the plan key).
      set_desc(plan.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, bias_ptr, "BIAS_POINTER", info);
    }
    plan.a = make_layout(p.type, p.a_rows, p.a_cols, p.ld_a, p.batch, p.stride_a, info);
    plan.b = make_layout(p.type, p.b_rows, p.b_cols, p.ld_b, p.batch, p.stride_b, info);
    plan.d = make_layout(p.type, p.m, p.n, p.ld_d, p.batch, p.stride_d, info);
  } catch (...) {
    destroy(plan);
    throw;
  }
  return plan;
}

// Asks the heuristic for the best algorithm; false when it has none for these descriptors.
bool find_algorithm(cublasLtHandle_t handle, const Problem& p, Plan& plan, uint32_t reduction_mask,
                    cublasStatus_t& status, const CallInfo& info) {
  cublasLtMatmulPreference_t pref = nullptr;
  check_cublas(cublaslt().MatmulPreferenceCreate(&pref), "cublasLtMatmulPreferenceCreate", info);
  const uint64_t workspace = kWorkspaceBytes;
  status = cublaslt().MatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                   &workspace, sizeof workspace);
  const std::pair<cublasLtMatmulPreferenceAttributes_t, uint32_t> attributes[] = {
      {CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, reduction_mask},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, p.align_a},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, p.align_b},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, p.align_c},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, p.align_c},
  };
  for (const auto& [attribute, value] : attributes) {
    if (status != CUBLAS_STATUS_SUCCESS) break;
    status = cublaslt().MatmulPreferenceSetAttribute(pref, attribute, &value, sizeof value);
  }
  if (status != CUBLAS_STATUS_SUCCESS) {
    cublaslt().MatmulPreferenceDestroy(pref);
    check_cublas(status, "cublasLtMatmulPreferenceSetAttribute", info);
  }
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  status = cublaslt().MatmulAlgoGetHeuristic(handle, plan.desc, plan.a, plan.b, plan.d, plan.d,
                                             pref, 1, &result, &found);
  cublaslt().MatmulPreferenceDestroy(pref);
  if (status != CUBLAS_STATUS_SUCCESS || found < 1) return false;
  if (result.state != CUBLAS_STATUS_SUCCESS) {
    status = result.state;
    return false;
  }
  plan.algo = result.algo;
  return true;
}

// Builds the plan for p: the bias epilogue first when a bias is wanted, then without it; for
// bf16 first with the split-K schemes that reduce in f32 only, then with any.
Plan make_plan(cublasLtHandle_t handle, const Problem& p, const void* bias_ptr, void* aux_ptr,
               const CallInfo& info) {
  const uint32_t f32_reduction =
      CUBLASLT_REDUCTION_SCHEME_NONE | CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE |
      (p.type == CUDA_R_32F
           ? CUBLASLT_REDUCTION_SCHEME_INPLACE | CUBLASLT_REDUCTION_SCHEME_OUTPUT_TYPE
           : 0u);
  const uint32_t masks[] = {f32_reduction, CUBLASLT_REDUCTION_SCHEME_MASK};
  cublasStatus_t status = CUBLAS_STATUS_NOT_SUPPORTED;
  for (bool fused : {true, false}) {
    if (fused && !p.bias) continue;
    if (!fused && p.bias && p.gelu) break;  // GELU_AUX_BIAS or nothing: then compose
    Plan plan = make_descriptors(p, fused, bias_ptr, aux_ptr, info);
    for (uint32_t mask : masks) {
      bool ok = false;
      try {
        ok = find_algorithm(handle, p, plan, mask, status, info);
      } catch (...) {
        destroy(plan);
        throw;
      }
      if (ok) return plan;
      if (mask == CUBLASLT_REDUCTION_SCHEME_MASK) break;
    }
    destroy(plan);
  }
  if (p.gelu) return Plan{};  // no fused GELU here: linear_gelu composes
  throw Error("matmul: cuBLASLt has no algorithm for ", info.str(),
              " (cublasLtMatmulAlgoGetHeuristic: ", cublaslt().GetStatusName(status), ")");
}

// Caller holds matmul_mutex(). p's plan, made on the first call with its shape.
Plan& cached_plan(DeviceState& state, const Problem& p, const void* bias_ptr, void* aux_ptr,
                  const CallInfo& info) {
  const PlanKey key = key_of(p);
  auto it = state.plans.find(key);
  if (it == state.plans.end()) {
    it = state.plans.emplace(key, make_plan(state.handle, p, bias_ptr, aux_ptr, info)).first;
  }
  return it->second;
}

bool gelu_epilogue_enabled() {
  static const bool on = [] {
    const char* text = std::getenv("RLAIF_GELU_EPILOGUE");
    return text == nullptr || std::strcmp(text, "0") != 0;
  }();
  return on;
}

bool padding_enabled() {
  static const bool on = [] {
    const char* text = std::getenv("RLAIF_MATMUL_PAD");
    return text == nullptr || std::strcmp(text, "0") != 0;
  }();
  return on;
}

// A column-major matrix of `rows` × `cols` elements of `elem` bytes, from leading dimension
// src_ld to dst_ld (in elements), queued on the legacy default stream like the GEMM.
void copy_matrix(void* dst, int64_t dst_ld, const void* src, int64_t src_ld, int64_t rows,
                 int64_t cols, size_t elem, const CallInfo& info) {
  check_cuda(cudaMemcpy2DAsync(dst, static_cast<size_t>(dst_ld) * elem, src,
                               static_cast<size_t>(src_ld) * elem, static_cast<size_t>(rows) * elem,
                               static_cast<size_t>(cols), cudaMemcpyDeviceToDevice, 0),
             "matmul (padding copy)", info.str());
}

}  // namespace

void CudaBackend::matmul(const Tensor& a, const Tensor& b, const Tensor& out, bool trans_a,
                         bool trans_b, const Tensor& bias, float alpha, float beta) {
  const char* op = "matmul";
  expect_float(op, "a", a);
  expect_float(op, "b", b);
  expect_float(op, "out", out);
  expect_same_dtype(op, "a", a, "b", b);
  expect_same_dtype(op, "a", a, "out", out);
  const MatmulDims dims = matmul_dims(op, a, b, out, trans_a, trans_b);
  const int64_t M = dims.M, K = dims.K, N = dims.N, batch = dims.batch;
  const bool shared_b = dims.shared_b;
  if (bias.defined()) {
    expect_float(op, "bias", bias);
    expect_same_dtype(op, "a", a, "bias", bias);
    expect_shape(op, "bias", bias, {N});
  }
  const CallInfo info{a, b, out, bias, trans_a, trans_b};

  if (batch == 0 || M == 0 || N == 0) return;  // out is empty
  if (K == 0 || alpha == 0.0f) {
    // The product adds nothing (BLAS reads neither a nor b when alpha = 0).
    scale_add_bias(out, bias, beta, batch * M, N, info);
    return;
  }

  // Fold the batch into the rows of the product where a's rows are contiguous over it.
  const bool fold = batch == 1 || (shared_b && !trans_a);
  const int64_t rows = fold ? batch * M : M;  // rows of out per product
  const int64_t count = fold ? 1 : batch;
  RLAIF_CHECK(count <= INT_MAX, op, ": ", count, " batch entries exceed cuBLASLt's 32-bit count");
  const size_t elem = dtype_size(a.dtype());

  Problem p{};
  p.type = a.dtype() == DType::bf16 ? CUDA_R_16BF : CUDA_R_32F;
  p.trans_a = trans_b;  // A' = b's buffer: [N, K] column-major, or [K, N] transposed
  p.trans_b = trans_a;  // B' = a's buffer: [K, rows] column-major, or [M, K] transposed
  p.m = N;
  p.n = rows;
  p.k = K;
  p.a_rows = trans_b ? K : N;
  p.a_cols = trans_b ? N : K;
  p.b_rows = trans_a ? M : K;
  p.b_cols = trans_a ? K : rows;
  p.batch = count;
  p.stride_a = count > 1 && !shared_b ? K * N : 0;
  p.stride_b = count > 1 ? M * K : 0;
  p.stride_d = count > 1 ? M * N : 0;
  p.bias = bias.defined();
  p.beta_nonzero = beta != 0.0f;
  p.ld_a = p.a_rows;
  p.ld_b = p.b_rows;
  p.ld_d = p.m;
  // Padded copies of matrices whose rows are not 16-byte multiples (see the file comment).
  Tensor padded_a, padded_b, padded_d;
  if (count == 1 && padding_enabled()) {
    const int64_t quantum = static_cast<int64_t>(16 / elem);
    auto pad = [&](int64_t ld) { return (ld + quantum - 1) / quantum * quantum; };
    if (p.a_rows % quantum != 0) {
      p.ld_a = pad(p.a_rows);
      padded_a = Tensor::empty({p.a_cols, p.ld_a}, a.dtype(), out.device());
      copy_matrix(padded_a.raw_data(), p.ld_a, b.raw_data(), p.a_rows, p.a_rows, p.a_cols, elem,
                  info);
    }
    if (p.b_rows % quantum != 0) {
      p.ld_b = pad(p.b_rows);
      padded_b = Tensor::empty({p.b_cols, p.ld_b}, a.dtype(), out.device());
      copy_matrix(padded_b.raw_data(), p.ld_b, a.raw_data(), p.b_rows, p.b_rows, p.b_cols, elem,
                  info);
    }
    if (p.m % quantum != 0) {
      p.ld_d = pad(p.m);
      padded_d = Tensor::empty({p.n, p.ld_d}, a.dtype(), out.device());
    }
  }
  const void* a_ptr = padded_a.defined() ? padded_a.raw_data() : b.raw_data();  // A' = b
  const void* b_ptr = padded_b.defined() ? padded_b.raw_data() : a.raw_data();  // B' = a
  void* d_ptr = padded_d.defined() ? padded_d.raw_data() : out.raw_data();
  p.align_a = alignment_of(a_ptr, p.stride_a * static_cast<int64_t>(elem));
  p.align_b = alignment_of(b_ptr, p.stride_b * static_cast<int64_t>(elem));
  p.align_c = alignment_of(d_ptr, p.stride_d * static_cast<int64_t>(elem));
  p.align_bias = bias.defined() ? alignment_of(bias.raw_data(), 0) : 0;
  const void* bias_ptr = bias.defined() ? bias.raw_data() : nullptr;

  std::lock_guard<std::mutex> lock(matmul_mutex());
  DeviceState& state = device_state(index_, info);
  Plan& plan = cached_plan(state, p, bias_ptr, nullptr, info);

  float beta_gemm = beta;
  if (plan.fused_bias) {
    set_desc(plan.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, bias_ptr, "BIAS_POINTER", info);
  } else if (bias.defined()) {
    // No algorithm takes the epilogue here: out = beta·out + bias first, then accumulate.
    scale_add_bias(out, bias, beta, batch * M, N, info);
    beta_gemm = 1.0f;
  }
  // A padded output starts as out's values when the product accumulates into them.
  if (padded_d.defined() && beta_gemm != 0.0f) {
    copy_matrix(d_ptr, p.ld_d, out.raw_data(), p.m, p.m, p.n, elem, info);
  }
  check_cublas(cublaslt().Matmul(state.handle, plan.desc, &alpha, a_ptr, plan.a, b_ptr, plan.b,
                                 &beta_gemm, d_ptr, plan.d, d_ptr, plan.d, &plan.algo,
                                 state.workspace, kWorkspaceBytes, /*stream=*/0),
               "cublasLtMatmul", info);
  if (padded_d.defined()) copy_matrix(out.raw_data(), p.m, d_ptr, p.ld_d, p.m, p.n, elem, info);
}

void CudaBackend::linear_gelu(const Tensor& x, const Tensor& w, const Tensor& bias,
                              const Tensor& pre, const Tensor& out) {
  const char* op = "linear_gelu";
  for (const auto& [name, t] :
       {std::pair<const char*, const Tensor*>{"x", &x}, {"w", &w}, {"pre", &pre}, {"out", &out}}) {
    expect_float(op, name, *t);
    expect_same_dtype(op, "x", x, name, *t);
  }
  RLAIF_CHECK(x.dim() == 2 && w.dim() == 2 && x.size(1) == w.size(1), op, ": x ", x, " and w ", w,
              " must be [N, K] and [M, K]");
  const int64_t N = x.size(0), K = x.size(1), M = w.size(0);
  expect_shape(op, "pre", pre, {N, M});
  expect_shape(op, "out", out, {N, M});
  if (bias.defined()) {
    expect_float(op, "bias", bias);
    expect_same_dtype(op, "x", x, "bias", bias);
    expect_shape(op, "bias", bias, {M});
  }
  // The epilogue wants the aux matrix's leading dimension a multiple of 8 and, like the fast
  // kernels, rows of 16-byte multiples; anything else composes (the unpadded GEMM and a GELU).
  const size_t elem = dtype_size(x.dtype());
  const bool fusable = gelu_epilogue_enabled() && N > 0 && K > 0 && M > 0 && M % 8 == 0 &&
                       (static_cast<size_t>(K) * elem) % 16 == 0;
  if (!fusable) {
    Backend::linear_gelu(x, w, bias, pre, out);
    return;
  }
  const CallInfo info{x, w, out, bias, false, true};
  // matmul(x, w, out, false, true, bias) in cuBLASLt's terms (see the file comment).
  Problem p{};
  p.type = x.dtype() == DType::bf16 ? CUDA_R_16BF : CUDA_R_32F;
  p.trans_a = true;   // A' = w's buffer, column-major [K, M], transposed
  p.trans_b = false;  // B' = x's buffer, column-major [K, N]
  p.m = M;
  p.n = N;
  p.k = K;
  p.a_rows = K;
  p.a_cols = M;
  p.b_rows = K;
  p.b_cols = N;
  p.batch = 1;
  p.bias = bias.defined();
  p.ld_a = K;
  p.ld_b = K;
  p.ld_d = M;
  p.gelu = true;
  p.align_a = alignment_of(w.raw_data(), 0);
  p.align_b = alignment_of(x.raw_data(), 0);
  p.align_c = alignment_of(out.raw_data(), 0);
  p.align_bias = bias.defined() ? alignment_of(bias.raw_data(), 0) : 0;
  p.align_aux = alignment_of(pre.raw_data(), 0);
  const void* bias_ptr = bias.defined() ? bias.raw_data() : nullptr;
  void* aux_ptr = pre.raw_data();
  {
    std::lock_guard<std::mutex> lock(matmul_mutex());
    DeviceState& state = device_state(index_, info);
    Plan& plan = cached_plan(state, p, bias_ptr, aux_ptr, info);
    if (plan.desc != nullptr) {
      if (plan.fused_bias) {
        set_desc(plan.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, bias_ptr, "BIAS_POINTER", info);
      }
      set_desc(plan.desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, aux_ptr,
               "EPILOGUE_AUX_POINTER", info);
      const float alpha = 1.0f, beta = 0.0f;
      check_cublas(
          cublaslt().Matmul(state.handle, plan.desc, &alpha, w.raw_data(), plan.a, x.raw_data(),
                            plan.b, &beta, out.raw_data(), plan.d, out.raw_data(), plan.d,
                            &plan.algo, state.workspace, kWorkspaceBytes, /*stream=*/0),
          "cublasLtMatmul (GELU epilogue)", info);
      return;
    }
  }
  Backend::linear_gelu(x, w, bias, pre, out);  // no fused algorithm for this shape
}

}  // namespace rlaif::cuda
