// The backend interface: the one list of primitives that every backend implements.
//
// A transformer, its training and the alignment losses are built from these calls alone, so
// porting rlaif to a new accelerator means implementing this class and passing the conformance
// suite in tests/kernels/, which runs every primitive against the CPU reference.
//
// Conventions for every primitive:
// - Tensors are contiguous and row-major, all on the backend's device. Outputs are passed in,
//   already allocated with the documented shape and dtype, and are overwritten (never
//   accumulated into) unless a comment says otherwise. An undefined Tensor means "absent" where a
//   comment says a tensor is optional.
// - "Float" means f32 on every backend; a backend may also accept bf16 (the CUDA backend does,
//   with f32 accumulation). The CPU reference computes in f32 and rejects other float dtypes.
//   Per-row statistics (mean, rstd, lse) and losses are always f32. Token ids are i32.
// - Elementwise primitives allow `out` to alias an input (in-place use).
// - Shapes are written with these letters: N rows (the product of all leading dimensions),
//   D features, V vocabulary, B batch, T sequence length, H heads, Dh head size.
// - A bad argument (shape, dtype, device, id out of range) throws rlaif::Error naming the
//   primitive and the offending tensors.
// - Results are deterministic: the same inputs give bitwise-identical outputs, run after run, and
//   the order of every sum is fixed by the shapes alone, never by how many threads or blocks a
//   backend happens to use (the CPU reference gives the same bits on 1 or 64 threads). Bits may
//   differ between machines: OpenBLAS and libm pick CPU-specific code, GPUs of other models may
//   pick other GEMM algorithms (docs/DESIGN.md, Determinism).
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "kernels/queue_mark.h"
#include "runtime/tensor.h"

namespace rlaif {

enum class UnaryOp {
  neg,          // -x
  exp,          // e^x
  log,          // ln x
  sqrt,         // √x
  square,       // x²
  abs,          // |x|
  relu,         // max(x, 0)
  sigmoid,      // σ(x) = 1 / (1 + e^-x)
  log_sigmoid,  // ln σ(x) = -softplus(-x), computed without overflow for large |x|
  tanh,         // tanh x
  gelu_tanh,    // GPT-2's GELU: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
  silu,         // x·σ(x)
};

enum class BinaryOp {
  add,      // a + b
  sub,      // a - b
  mul,      // a · b
  div,      // a / b
  minimum,  // min(a, b); the gradient goes to a on ties
  maximum,  // max(a, b); the gradient goes to a on ties
};

enum class ReduceOp { sum, mean, max };

const char* unary_op_name(UnaryOp op);
const char* binary_op_name(BinaryOp op);
const char* reduce_op_name(ReduceOp op);

// Hyperparameters of one AdamW update (see Backend::adamw_step). Doubles, like the Python floats
// PyTorch computes its per-step scalars from: 1 − β2 taken from an f32 β2 = 0.999 would be off by
// 1.3e-5 relative, well above f32 rounding. A backend derives its f32 scalars from these once per
// call (on the host), so a GPU kernel never sees a double.
struct AdamWHyper {
  double lr;            // learning rate of this step (after the schedule)
  double beta1;         // first-moment decay, e.g. 0.9
  double beta2;         // second-moment decay, e.g. 0.95
  double eps;           // added to the bias-corrected √v, e.g. 1e-8
  double weight_decay;  // decoupled decay coefficient; 0 for biases and norm gains
  int64_t step;         // t, 1-based: the first update has step = 1 (bias correction)
};

// One parameter's tensors in a multi-tensor AdamW update (Backend::adamw_steps): adamw_step's
// arguments, with that parameter's own decay coefficient (biases and norm gains have none).
struct AdamWTensors {
  Tensor param, grad, m, v, master;
  double weight_decay = 0.0;
};

// Checks one entry of adamw_steps against adamw_step's rules (shapes; f32 moments and master;
// grad in param's dtype; param f32 without a master), throwing an Error that begins with `op`.
// Device and supported-dtype checks are each backend's own.
void check_adamw_entry(const std::string& op, const AdamWTensors& entry);

// Every primitive, listed once. Each entry is
//   REQUIRED(name, (parameters), (arguments))  a pure virtual: every backend implements it;
//   OPTIONAL(name, (parameters), (arguments))  "(optional)": the Backend base class implements it
//                                              by composing required primitives (backend.cpp), and
//                                              a backend overrides it where it can do better.
// The arguments repeat the parameter names, so a wrapper can forward a call (the profiler does).
// The class below declares every entry as a virtual method; a backend declares its overrides
// with RLAIF_BACKEND_PRIMITIVES(RLAIF_DECLARE_OVERRIDE, RLAIF_SKIP_PRIMITIVE) (plus the optional
// ones it overrides, by hand) and defines them in its own source files. Adding a primitive means
// adding an entry here, its definition in each backend, and its conformance test
// (tests/kernels/). `rlaif version --primitives` prints the list, counted; docs/PORTING.md is the
// porter's guide.
// clang-format off
#define RLAIF_BACKEND_PRIMITIVES(REQUIRED, OPTIONAL)                                               \
  /* ---- Memory ----------------------------------------------------------------------------- */  \
                                                                                                   \
  /* out[i] = value, converted to out's dtype (any dtype). */                                      \
  REQUIRED(fill, (const Tensor& out, double value), (out, value))                                  \
  /* dst = src: same dtype and numel (shapes may differ). Any dtype. */                            \
  REQUIRED(copy, (const Tensor& src, const Tensor& dst), (src, dst))                               \
  /* dst = src converted to dst's dtype (same numel): floats round to nearest even, float → int    \
     truncates toward zero, int → float rounds to nearest. Any pair of dtypes. */                  \
  REQUIRED(cast, (const Tensor& src, const Tensor& dst), (src, dst))                               \
  /* out (float) = the Philox streams of runtime/philox.h: out[i] = lo + (hi - lo)·uniform(seed,   \
     offset + i), or mean + std·normal(seed, offset + i). */                                       \
  REQUIRED(random_uniform,                                                                         \
           (const Tensor& out, uint64_t seed, uint64_t offset, float lo, float hi),                \
           (out, seed, offset, lo, hi))                                                            \
  REQUIRED(random_normal,                                                                          \
           (const Tensor& out, uint64_t seed, uint64_t offset, float mean, float std),             \
           (out, seed, offset, mean, std))                                                         \
  /* out = inputs stacked along the leading dimension: every input has out's shape apart from      \
     dimension 0, and out.size(0) is the sum of theirs. Any dtype (all equal). */                  \
  REQUIRED(concat, (const std::vector<Tensor>& inputs, const Tensor& out), (inputs, out))          \
                                                                                                   \
  /* ---- Matrix multiplication -------------------------------------------------------------- */  \
                                                                                                   \
  /* out = alpha · op(a) @ op(b) + bias + beta · out, with op(x) = xᵀ when the flag is set         \
     (transposing the last two dimensions; no transposed copy is made).                            \
       a: [..., M, K] ([..., K, M] when trans_a); b: [..., K, N] ([..., N, K] when trans_b), or    \
       2-D                                                                                         \
       and then shared by every batch entry; out: [..., M, N]; bias: optional [N], added to every  \
       row; batch dimensions of a, b (if not 2-D) and out are equal. beta = 0 ignores out's old    \
       contents (even NaN); beta = 1 accumulates (used for gradient accumulation).                 \
       Float; f32 accumulation.                                                                    \
     A Linear layer with Hugging Face's [out_features, in_features] weight W is                    \
     matmul(x, W, y, false, true, bias). */                                                        \
  REQUIRED(matmul,                                                                                 \
           (const Tensor& a, const Tensor& b, const Tensor& out, bool trans_a, bool trans_b,       \
            const Tensor& bias = Tensor(), float alpha = 1.0f, float beta = 0.0f),                 \
           (a, b, out, trans_a, trans_b, bias, alpha, beta))                                       \
  /* (optional)                                                                                    \
     A Linear layer followed by GPT-2's GELU: pre = x @ wᵀ + bias, out = gelu_tanh(pre).           \
       x: [N, K]; w: [M, K]; bias: optional [M]; pre, out: [N, M]. Float.                          \
     pre is what the backward pass needs (unary_backward of gelu_tanh reads it). This default      \
     runs matmul, then unary; a backend that can apply the GELU in its GEMM's epilogue, while the  \
     product is still in registers, overrides it (one pass over out less). A fused result may      \
     differ from the composition by the rounding of pre: the epilogue applies the GELU to the      \
     unrounded product. */                                                                         \
  OPTIONAL(linear_gelu,                                                                            \
           (const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& pre,               \
            const Tensor& out),                                                                    \
           (x, w, bias, pre, out))                                                                 \
                                                                                                   \
  /* ---- Elementwise ------------------------------------------------------------------------ */  \
                                                                                                   \
  /* out = op(x). Float, same shape. */                                                            \
  REQUIRED(unary, (UnaryOp op, const Tensor& x, const Tensor& out), (op, x, out))                  \
  /* dx = dy · op'(x), given x and y = op(x) (backends use whichever is cheaper). Float. */        \
  REQUIRED(unary_backward,                                                                         \
           (UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& dy, const Tensor& dx),     \
           (op, x, y, dy, dx))                                                                     \
  /* out = a ∘ b. Float. b has a's shape, or a suffix of it (then b is broadcast over a's leading  \
     dimensions: a bias or a gain), or has one element (a scalar). */                              \
  REQUIRED(binary,                                                                                 \
           (BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out),                     \
           (op, a, b, out))                                                                        \
  /* Gradients of out = a ∘ b given dout (a's shape): da (a's shape) and db (b's shape; summed     \
     over the broadcast dimensions). Either output may be undefined when not wanted. */            \
  REQUIRED(binary_backward,                                                                        \
           (BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& dout, const Tensor& da,   \
            const Tensor& db),                                                                     \
           (op, a, b, dout, da, db))                                                               \
  /* out = alpha · x + beta. Float. */                                                             \
  REQUIRED(affine,                                                                                 \
           (const Tensor& x, float alpha, float beta, const Tensor& out),                          \
           (x, alpha, beta, out))                                                                  \
  /* out = min(max(x, lo), hi). Float. */                                                          \
  REQUIRED(clamp, (const Tensor& x, float lo, float hi, const Tensor& out), (x, lo, hi, out))      \
  /* dx = dy where lo < x < hi, else 0 (the gradient is 0 where clamp is active). Float. */        \
  REQUIRED(clamp_backward,                                                                         \
           (const Tensor& x, float lo, float hi, const Tensor& dy, const Tensor& dx),              \
           (x, lo, hi, dy, dx))                                                                    \
  /* out = cond ? a : b elementwise. cond u8 (nonzero = true); a, b, out float, all one shape. */  \
  REQUIRED(where,                                                                                  \
           (const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out),              \
           (cond, a, b, out))                                                                      \
                                                                                                   \
  /* ---- Reductions ------------------------------------------------------------------------- */  \
                                                                                                   \
  /* out = op of x over dimension `dim` (negative counts from the end); out has x's shape with     \
     that dimension removed. Float; sums accumulate in f32 pairwise-or-better order that does not  \
     depend on thread count. */                                                                    \
  REQUIRED(reduce, (ReduceOp op, const Tensor& x, int dim, const Tensor& out), (op, x, dim, out))  \
  /* dx (x's shape) for out = reduce(op, x, dim): sum → dy broadcast; mean → dy / n; max → dy at   \
     the first position holding the maximum, 0 elsewhere. y is the forward output. */              \
  REQUIRED(reduce_backward,                                                                        \
           (ReduceOp op, const Tensor& x, const Tensor& y, const Tensor& dy, int dim,              \
            const Tensor& dx),                                                                     \
           (op, x, y, dy, dim, dx))                                                                \
  /* out[n] (i32) = index of the largest x[n, :] over the last dimension (first on ties). x: [N,   \
     D]. */                                                                                        \
  REQUIRED(argmax, (const Tensor& x, const Tensor& out), (x, out))                                 \
  /* Weighted row sums for masked losses. x, mask: [N, T] float (mask usually 0/1); out: [N].      \
       sum:  out[n] = Σ_t x[n,t]·mask[n,t]                                                         \
       mean: out[n] = Σ_t x[n,t]·mask[n,t] / Σ_t mask[n,t], and 0 where Σ_t mask[n,t] = 0. */      \
  REQUIRED(masked_reduce,                                                                          \
           (const Tensor& x, const Tensor& mask, bool mean, const Tensor& out),                    \
           (x, mask, mean, out))                                                                   \
  /* dx[n,t] = dy[n]·mask[n,t] (divided by Σ_t mask[n,t] for the mean; 0 where that is 0). */      \
  REQUIRED(masked_reduce_backward,                                                                 \
           (const Tensor& mask, const Tensor& dy, bool mean, const Tensor& dx),                    \
           (mask, dy, mean, dx))                                                                   \
                                                                                                   \
  /* ---- Softmax ---------------------------------------------------------------------------- */  \
                                                                                                   \
  /* Over the last dimension, max-subtracted. x, out: [N, D] float. */                             \
  REQUIRED(softmax, (const Tensor& x, const Tensor& out), (x, out))                                \
  REQUIRED(log_softmax, (const Tensor& x, const Tensor& out), (x, out))                            \
  /* Given y = softmax(x): dx = y ⊙ (dy - Σ_d dy·y). */                                            \
  REQUIRED(softmax_backward, (const Tensor& y, const Tensor& dy, const Tensor& dx), (y, dy, dx))   \
  /* Given y = log_softmax(x): dx = dy - exp(y)·Σ_d dy. */                                         \
  REQUIRED(log_softmax_backward,                                                                   \
           (const Tensor& y, const Tensor& dy, const Tensor& dx),                                  \
           (y, dy, dx))                                                                            \
                                                                                                   \
  /* ---- Embedding -------------------------------------------------------------------------- */  \
                                                                                                   \
  /* out[n, :] = weight[ids[n], :]. weight: [V, D] float; ids: [...] i32 (every id in [0, V),      \
     else                                                                                          \
     Error naming the id and its position); out: [..., D]. */                                      \
  REQUIRED(embedding,                                                                              \
           (const Tensor& weight, const Tensor& ids, const Tensor& out),                           \
           (weight, ids, out))                                                                     \
  /* dweight[v, :] = Σ_{n : ids[n] = v} dout[n, :] (scatter-add, in a fixed order:                 \
     deterministic). ids: [...] i32; dout: [..., D]; dweight: [V, D].                              \
     accumulate = false: dweight is written; rows no id points at become 0.                        \
     accumulate = true: dweight[v, :] += that sum instead, in the rows some id points at only      \
     (the other rows are left as they are: a gradient that is nonzero in a few rows of [V, D]      \
     is added without a [V, D] temporary). The sum is rounded to dweight's dtype first and added   \
     in f32 with no contraction: the bits of the accumulate = false result followed by             \
     binary(add), except that a -0 in a row no id points at stays -0. */                           \
  REQUIRED(embedding_backward,                                                                     \
           (const Tensor& ids, const Tensor& dout, const Tensor& dweight,                          \
            bool accumulate = false),                                                              \
           (ids, dout, dweight, accumulate))                                                       \
                                                                                                   \
  /* ---- Normalisation ---------------------------------------------------------------------- */  \
                                                                                                   \
  /* LayerNorm over the last dimension (Ba et al., 2016), as torch.nn.LayerNorm:                   \
       mean[n] = Σ_d x[n,d] / D;  rstd[n] = 1 / √(Σ_d (x[n,d] - mean)² / D + eps)                  \
       out[n,d] = (x[n,d] - mean[n])·rstd[n]·gamma[d] + beta[d]                                    \
     x, out: [N, D] (any leading dimensions); gamma: [D]; beta: optional [D]; mean, rstd: [N]      \
     f32. */                                                                                       \
  REQUIRED(layernorm,                                                                              \
           (const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps,                   \
            const Tensor& out, const Tensor& mean, const Tensor& rstd),                            \
           (x, gamma, beta, eps, out, mean, rstd))                                                 \
  /* With x̂ = (x - mean)·rstd and g = dout ⊙ gamma:                                               \
       dx = rstd·(g - mean_d(g) - x̂·mean_d(g ⊙ x̂));  dgamma = Σ_n dout ⊙ x̂;  dbeta = Σ_n dout.  \
     dgamma and dbeta may be undefined when not wanted.                                            \
     accumulate_dx: dx += that gradient instead of dx = it, so a residual stream's gradient        \
     collects the norm's in place (the backward half of add_layernorm). The new term is rounded    \
     to                                                                                            \
     dx's dtype before the addition: the result equals, bit for bit, writing it to a fresh tensor  \
     and then binary(add)-ing that into dx. */                                                     \
  REQUIRED(layernorm_backward,                                                                     \
           (const Tensor& x, const Tensor& gamma, const Tensor& mean, const Tensor& rstd,          \
            const Tensor& dout, const Tensor& dx, const Tensor& dgamma, const Tensor& dbeta,       \
            bool accumulate_dx = false),                                                           \
           (x, gamma, mean, rstd, dout, dx, dgamma, dbeta, accumulate_dx))                         \
  /* RMSNorm (Zhang & Sennrich, 2019), as Hugging Face's LlamaRMSNorm:                             \
       rstd[n] = 1 / √(Σ_d x[n,d]² / D + eps);  out[n,d] = x[n,d]·rstd[n]·gamma[d] */              \
  REQUIRED(rmsnorm,                                                                                \
           (const Tensor& x, const Tensor& gamma, float eps, const Tensor& out,                    \
            const Tensor& rstd),                                                                   \
           (x, gamma, eps, out, rstd))                                                             \
  /* With x̂ = x·rstd and g = dout ⊙ gamma: dx = rstd·(g - x̂·mean_d(g ⊙ x̂)); dgamma = Σ_n dout   \
     ⊙ x̂.                                                                                         \
     accumulate_dx as layernorm_backward's. */                                                     \
  REQUIRED(rmsnorm_backward,                                                                       \
           (const Tensor& x, const Tensor& gamma, const Tensor& rstd, const Tensor& dout,          \
            const Tensor& dx, const Tensor& dgamma, bool accumulate_dx = false),                   \
           (x, gamma, rstd, dout, dx, dgamma, accumulate_dx))                                      \
  /* The residual add of a pre-norm transformer fused with the norm that reads its result          \
     (llm.c's                                                                                      \
     "fused residual forward": the sum is normalised as it is made, not read back by a second      \
     pass):                                                                                        \
       sum = x + residual (rounded to sum's dtype);  out = layernorm(sum), mean and rstd as        \
       there.                                                                                      \
     x, residual, sum, out: one shape [N, D], float; sum may alias x or residual (the residual     \
     stream updated in place). The results are, bit for bit, those of binary(add, x, residual,     \
     sum) followed by layernorm(sum, gamma, beta, eps, out, mean, rstd) on the same backend: a     \
     model                                                                                         \
     may switch between the two forms (activation recomputation does) and change no number. */     \
  REQUIRED(add_layernorm,                                                                          \
           (const Tensor& x, const Tensor& residual, const Tensor& gamma, const Tensor& beta,      \
            float eps, const Tensor& sum, const Tensor& out, const Tensor& mean,                   \
            const Tensor& rstd),                                                                   \
           (x, residual, gamma, beta, eps, sum, out, mean, rstd))                                  \
  /* The same with RMSNorm: sum = x + residual;  out = rmsnorm(sum), rstd as there. */             \
  REQUIRED(add_rmsnorm,                                                                            \
           (const Tensor& x, const Tensor& residual, const Tensor& gamma, float eps,               \
            const Tensor& sum, const Tensor& out, const Tensor& rstd),                             \
           (x, residual, gamma, eps, sum, out, rstd))                                              \
                                                                                                   \
  /* ---- Activations (GELU and SiLU are unary ops above) ------------------------------------ */  \
                                                                                                   \
  /* SwiGLU (Shazeer, 2020), the Llama MLP's gate: out = silu(gate) ⊙ up. All one shape,           \
     float. */                                                                                     \
  REQUIRED(swiglu, (const Tensor& gate, const Tensor& up, const Tensor& out), (gate, up, out))     \
  /* dgate = dout ⊙ up ⊙ silu'(gate);  dup = dout ⊙ silu(gate). */                                 \
  REQUIRED(swiglu_backward,                                                                        \
           (const Tensor& gate, const Tensor& up, const Tensor& dout, const Tensor& dgate,         \
            const Tensor& dup),                                                                    \
           (gate, up, dout, dgate, dup))                                                           \
                                                                                                   \
  /* ---- Rotary position embedding ---------------------------------------------------------- */  \
                                                                                                   \
  /* RoPE (Su et al., 2021) in Hugging Face Llama's rotate-half convention. x, out: [B, T, H, Dh]  \
     float, Dh even; positions: [B, T] i32. With half = Dh/2, for i < half:                        \
       θ_i = positions[b,t] · theta^(-2i/Dh)  (angle computed in double, rounded to f32 once)      \
       out[i]        = x[i]·cos θ_i - x[i+half]·sin θ_i                                            \
       out[i + half] = x[i+half]·cos θ_i + x[i]·sin θ_i                                            \
     inverse = true rotates by -θ, which is also the backward pass (rotations are orthogonal). */  \
  REQUIRED(rope,                                                                                   \
           (const Tensor& x, const Tensor& positions, float theta, bool inverse,                   \
            const Tensor& out),                                                                    \
           (x, positions, theta, inverse, out))                                                    \
                                                                                                   \
  /* ---- Attention -------------------------------------------------------------------------- */  \
                                                                                                   \
  /* Scaled dot-product attention with causal masking, grouped-query heads and segments.           \
       q: [B, Tq, Hq, Dh]; k, v: [B, Tk, Hkv, Dh] with Hq % Hkv == 0 (query head h reads kv head   \
       h / (Hq/Hkv)); out: [B, Tq, Hq, Dh]; lse: [B, Hq, Tq] f32, the log-sum-exp of each row of   \
       scaled scores, saved for the backward pass.                                                 \
       kv_len: the number of valid keys (≤ Tk; -1 means Tk), so a preallocated KV cache can be     \
       passed whole. Query i sits at key position p(i) = kv_len - Tq + i and attends key j iff     \
       j ≤ p(i) (causal), when window > 0 also j > p(i) - window (a sliding window: the query's    \
       own key and the window - 1 before it; window = 0 means no limit), and, when segment_ids     \
       ([B, Tk] i32) is given, segment_ids[b, j] == segment_ids[b, p(i)]. Segments express         \
       padding                                                                                     \
       (pads get their own id) and packed examples.                                                \
       out = softmax(scale · q kᵀ over the allowed keys) v; a query with no allowed key gets       \
       out = 0 and lse = -inf. */                                                                  \
  REQUIRED(attention,                                                                              \
           (const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& segment_ids,          \
            int64_t kv_len, int64_t window, float scale, const Tensor& out, const Tensor& lse),    \
           (q, k, v, segment_ids, kv_len, window, scale, out, lse))                                \
  /* Gradients of attention from the saved out and lse (probabilities are recomputed, never        \
     stored): with P = exp(scale·q kᵀ - lse) over the allowed keys and Δ_i = Σ_d dout·out:         \
       dv = Pᵀ dout;  dS = P ⊙ (dout vᵀ - Δ);  dq = scale·dS k;  dk = scale·dSᵀ q                  \
     dk and dv sum over the query heads sharing a kv head; keys at or past kv_len get 0. A window  \
     is optional for a port: one that lacks it refuses any call whose window masks a key. */       \
  REQUIRED(attention_backward,                                                                     \
           (const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& segment_ids,          \
            int64_t kv_len, int64_t window, float scale, const Tensor& out, const Tensor& lse,     \
            const Tensor& dout, const Tensor& dq, const Tensor& dk, const Tensor& dv),             \
           (q, k, v, segment_ids, kv_len, window, scale, out, lse, dout, dq, dk, dv))              \
                                                                                                   \
  /* ---- Optimizer -------------------------------------------------------------------------- */  \
                                                                                                   \
  /* One AdamW update (Loshchilov & Hutter, 2019, "Decoupled Weight Decay Regularization", on      \
     Adam of Kingma & Ba, 2015), as PyTorch's torch.optim.AdamW (foreach=False). Per element,      \
     with                                                                                          \
     θ the parameter (or its master copy), g the gradient and t = h.step:                          \
       θ ← θ·(1 − lr·wd)                                  (decoupled decay, before the moments)    \
       m ← β1·m + (1 − β1)·g                                                                       \
       v ← β2·v + (1 − β2)·g²                                                                      \
       θ ← θ − (lr / (1 − β1^t)) · m / (√v / √(1 − β2^t) + eps)                                    \
     m, v: f32, param's shape, updated in place. The scalars 1 − lr·wd, 1 − β1, β2, 1 − β2,        \
     √(1 − β2^t), eps and lr / (1 − β1^t) are computed in double from h and rounded to f32 once    \
     (PyTorch computes them as Python floats); everything per element is f32 arithmetic in         \
     PyTorch's order (kernels/cpu/cpu_optimizer.cpp lists it), so a backend can match the          \
     reference to the last bit where its sqrt and division are correctly rounded.                  \
       master: optional f32 copy of the parameter. When defined, the update is computed on master  \
       and the result cast (round to nearest even) into param, which may then be any float dtype   \
       (bf16 on GPU backends; the CPU reference accepts bf16 and f16 here too). When undefined,    \
       param must be f32 and is updated in place.                                                  \
       grad: param's dtype and shape (read as f32).                                                \
     h.step ≥ 1, else Error. Deterministic; every element is independent. */                       \
  REQUIRED(adamw_step,                                                                             \
           (const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v,             \
            const Tensor& master, const AdamWHyper& h),                                            \
           (param, grad, m, v, master, h))                                                         \
  /* out (0-d f32, shape {}) = Σ x², for gradient-norm clipping. x: any shape, float (the CPU      \
     reference also accepts bf16 and f16: gradients may be kept in those). Accumulated in double   \
     over fixed-size chunks whose partial sums are added in chunk order, so the result does not    \
     depend on the thread count; it is rounded to f32 once at the end. */                          \
  REQUIRED(squared_norm, (const Tensor& x, const Tensor& out), (x, out))                           \
  /* (optional)                                                                                    \
     The update of a whole model: adamw_step on every entry (h with h.weight_decay replaced by     \
     the                                                                                           \
     entry's), each gradient first multiplied by grad_scale and rounded to its dtype, as           \
     affine(grad, grad_scale, 0, grad) would (gradient-norm clipping's factor, applied as the      \
     gradient is read: the gradients are left unchanged, and grad_scale = 1 reads them as they     \
     are). Bitwise the result of that affine followed by adamw_step, entry by entry. Entries must  \
     not share tensors; a bad entry is an Error naming its index (the CPU and CUDA backends check  \
     every entry before updating any). Why a primitive: GPT-2 124M has 196 parameter tensors,      \
     most of a few hundred elements, and a GPU launch per tensor (plus one per tensor to scale     \
     the                                                                                           \
     gradients) costs more than their bytes; the CUDA backend updates dozens of tensors per        \
     launch. The base class composes affine (into a scratch copy) and adamw_step. */               \
  OPTIONAL(adamw_steps,                                                                            \
           (std::span<const AdamWTensors> params, const AdamWHyper& h, float grad_scale),          \
           (params, h, grad_scale))                                                                \
  /* (optional)                                                                                    \
     out[i] = Σ xs[i]² for each i, bitwise squared_norm(xs[i], out[i]). out: [xs.size()] f32. A    \
     global gradient norm then reads one vector back instead of a scalar per parameter (on a GPU,  \
     each read is a wait for the device). The base class calls squared_norm per tensor. */         \
  OPTIONAL(squared_norms, (std::span<const Tensor> xs, const Tensor& out), (xs, out))              \
                                                                                                   \
  /* ---- Losses over a vocabulary ----------------------------------------------------------- */  \
                                                                                                   \
  /* Per-token softmax cross-entropy. logits: [N, V] float; targets: [N] i32; losses, lse: [N]     \
     f32.                                                                                          \
       lse[n] = log Σ_v exp(logits[n,v]);  losses[n] = lse[n] - logits[n, targets[n]],             \
       and losses[n] = 0 where targets[n] == ignore_index (lse is still written).                  \
     A target outside [0, V) other than ignore_index is an Error naming it. */                     \
  REQUIRED(cross_entropy,                                                                          \
           (const Tensor& logits, const Tensor& targets, int ignore_index, const Tensor& losses,   \
            const Tensor& lse),                                                                    \
           (logits, targets, ignore_index, losses, lse))                                           \
  /* dlogits[n,v] = dlosses[n]·(softmax(logits[n])[v] - [v == targets[n]]); rows whose target is   \
     ignore_index get 0. */                                                                        \
  REQUIRED(cross_entropy_backward,                                                                 \
           (const Tensor& logits, const Tensor& targets, const Tensor& lse,                        \
            const Tensor& dlosses, int ignore_index, const Tensor& dlogits),                       \
           (logits, targets, lse, dlosses, ignore_index, dlogits))                                 \
  /* Log-probabilities of given tokens, the quantity DPO and PPO work with:                        \
       logp[n] = logits[n, targets[n]] - lse[n]. Shapes as cross_entropy; every target in [0,      \
       V). */                                                                                      \
  REQUIRED(gather_logprobs,                                                                        \
           (const Tensor& logits, const Tensor& targets, const Tensor& logp, const Tensor& lse),   \
           (logits, targets, logp, lse))                                                           \
  /* dlogits[n,v] = dlogp[n]·([v == targets[n]] - softmax(logits[n])[v]). */                       \
  REQUIRED(gather_logprobs_backward,                                                               \
           (const Tensor& logits, const Tensor& targets, const Tensor& lse, const Tensor& dlogp,   \
            const Tensor& dlogits),                                                                \
           (logits, targets, lse, dlogp, dlogits))                                                 \
                                                                                                   \
  /* ---- Sampling --------------------------------------------------------------------------- */  \
                                                                                                   \
  /* Picks one token per row of logits, for generation: greedy, temperature, top-k and top-p       \
     (nucleus; Holtzman et al., 2020). The randomness comes in as one uniform draw per row, so a   \
     row's token depends on its logits and its draw only (not on the batch or the backend).        \
       logits: [N, V] float; uniforms: [N] f32, each in [0, 1); out: [N] i32.                      \
       temperature ≤ 0: out[n] = argmax_v logits[n, v], lowest id on ties (top_k, top_p and        \
       uniforms are then neither read nor checked). Otherwise, with row n's candidates ordered by  \
       descending logit, ascending id on ties, and m = the row's largest logit:                    \
       1. keep the first top_k candidates (top_k = 0: all);                                        \
       2. p_i = exp((logit_i - m) / temperature) for each kept candidate i; total = Σ p_i;         \
       3. if top_p < 1: keep the shortest prefix whose Σ p_i / total reaches top_p (at least one   \
          candidate), and let total = its Σ p_i;                                                   \
       4. out[n] = the first kept candidate whose cumulative Σ p_i exceeds uniforms[n]·total.      \
       A -inf logit has p = 0 and is never sampled.                                                \
     Errors (nothing is sampled): a NaN or +inf logit, naming its row and id (-inf is allowed);    \
     and when temperature > 0: a non-finite temperature, top_k < 0, top_p outside (0, 1], a row    \
     with no finite logit, a uniform outside [0, 1) (naming its row).                              \
     The CPU reference sorts the candidates and sums in double in that order. Other backends may   \
     compute p_i and sum them differently (the CUDA backend selects without sorting), so a token   \
     may differ from the reference only where uniforms[n]·total or top_p·total lies within         \
     rounding of a cumulative sum. Deterministic; the CUDA backend waits for the device to report  \
     bad values, so a call is synchronous there. */                                                \
  REQUIRED(sample_tokens,                                                                          \
           (const Tensor& logits, const Tensor& uniforms, float temperature, int64_t top_k,        \
            float top_p, const Tensor& out),                                                       \
           (logits, uniforms, temperature, top_k, top_p, out))
// clang-format on

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Device device() const = 0;
  // "cpu", "cuda": the device type's registered name, for messages and test names.
  virtual std::string name() const = 0;
  // (optional) Waits for all queued work (a no-op where primitives run synchronously).
  virtual void synchronize() {}
  // (optional) A mark in this backend's queue, for timing queued work (kernels/queue_mark.h). The
  // default waits for queued work and reads the host clock: exact where primitives run
  // synchronously (the CPU); a GPU backend records an event instead, so that marking does not
  // wait.
  virtual std::unique_ptr<QueueMark> mark();

#define RLAIF_DECLARE_PURE(name, params, args) virtual void name params = 0;
#define RLAIF_DECLARE_DEFAULT(name, params, args) virtual void name params;
  RLAIF_BACKEND_PRIMITIVES(RLAIF_DECLARE_PURE, RLAIF_DECLARE_DEFAULT)
#undef RLAIF_DECLARE_PURE
#undef RLAIF_DECLARE_DEFAULT
};

// For a backend's class: declares an entry of RLAIF_BACKEND_PRIMITIVES as an override, or skips
// it (an optional primitive the backend leaves to the base class).
#define RLAIF_DECLARE_OVERRIDE(name, params, args) void name params override;
#define RLAIF_SKIP_PRIMITIVE(name, params, args)

// How many primitives the list holds: required (each backend's to write) and optional.
#define RLAIF_COUNT_PRIMITIVE(name, params, args) +1
inline constexpr int kRequiredPrimitives =
    0 RLAIF_BACKEND_PRIMITIVES(RLAIF_COUNT_PRIMITIVE, RLAIF_SKIP_PRIMITIVE);
inline constexpr int kOptionalPrimitives =
    0 RLAIF_BACKEND_PRIMITIVES(RLAIF_SKIP_PRIMITIVE, RLAIF_COUNT_PRIMITIVE);
#undef RLAIF_COUNT_PRIMITIVE

// The list itself, in declaration order, for what prints it (`rlaif version --primitives`, the
// porter's checklist) and what checks against it.
struct BackendPrimitive {
  const char* name;
  bool optional;
};
#define RLAIF_REQUIRED_ENTRY(name, params, args) BackendPrimitive{#name, false},
#define RLAIF_OPTIONAL_ENTRY(name, params, args) BackendPrimitive{#name, true},
inline constexpr BackendPrimitive kBackendPrimitives[] = {
    RLAIF_BACKEND_PRIMITIVES(RLAIF_REQUIRED_ENTRY, RLAIF_OPTIONAL_ENTRY)};
#undef RLAIF_REQUIRED_ENTRY
#undef RLAIF_OPTIONAL_ENTRY

// The backend for a device: the CPU reference always; another device type's when it is registered
// (kernels/device_registry.h: CUDA when compiled in) and the device is usable (else Error saying
// which). Backends are created on first use and live until exit.
Backend& backend_for(Device device);
// Whether a backend for this device type is registered in this binary (it may still find no
// usable device at run time).
bool backend_available(DeviceType type);

}  // namespace rlaif
