// Differentiable operations on Variables.
//
// Each op computes its forward pass with the backend of its inputs' device (kernels/backend.h)
// and, when grad mode is on and some input requires a gradient, records a Node whose backward
// rule calls the matching backward primitive. Shapes, dtypes and broadcasting follow the
// primitive each op wraps (see backend.h); a bad argument throws rlaif::Error naming the op and
// the shapes involved. Non-differentiable arguments (token ids, masks, positions, segment ids,
// conditions) are plain Tensors.
#pragma once

#include <cstdint>
#include <vector>

#include "autograd/variable.h"
#include "runtime/tensor.h"

namespace rlaif {

// ---- Elementwise, two operands ----------------------------------------------------------------
// b has a's shape, or a suffix of it (broadcast over a's leading dimensions: a bias or a gain),
// or one element (a scalar). The result has a's shape; b's gradient is summed over the broadcast.

Variable add(const Variable& a, const Variable& b);
Variable sub(const Variable& a, const Variable& b);
Variable mul(const Variable& a, const Variable& b);
Variable div(const Variable& a, const Variable& b);
// On ties the gradient goes to a.
Variable minimum(const Variable& a, const Variable& b);
Variable maximum(const Variable& a, const Variable& b);

// ---- Elementwise, one operand -----------------------------------------------------------------

Variable scale(const Variable& x, float alpha);               // alpha·x
Variable affine(const Variable& x, float alpha, float beta);  // alpha·x + beta
Variable neg(const Variable& x);
Variable exp(const Variable& x);
Variable log(const Variable& x);
Variable sqrt(const Variable& x);
Variable square(const Variable& x);
Variable abs(const Variable& x);
Variable relu(const Variable& x);
Variable sigmoid(const Variable& x);
Variable log_sigmoid(const Variable& x);  // ln σ(x), stable for large |x|
Variable tanh(const Variable& x);
Variable gelu(const Variable& x);  // GPT-2's tanh approximation
Variable silu(const Variable& x);
// min(max(x, lo), hi); the gradient is 0 where the clamp is active.
Variable clamp(const Variable& x, float lo, float hi);
// cond ? a : b elementwise; cond is u8 (nonzero = true), all three of one shape.
Variable where(const Tensor& cond, const Variable& a, const Variable& b);

// ---- Reductions -------------------------------------------------------------------------------
// Over dimension `dim` (negative counts from the end), which is removed from the shape. max's
// gradient goes to the first position holding the maximum.

Variable sum(const Variable& x, int dim);
Variable mean(const Variable& x, int dim);
Variable max(const Variable& x, int dim);
// Over all elements: a 0-dimensional result.
Variable sum_all(const Variable& x);
Variable mean_all(const Variable& x);
// Row sums weighted by a (non-differentiable) float mask, for masked losses. x, mask: [N, T];
// result [N]. masked_mean divides by Σ_t mask (rows with an empty mask give 0).
Variable masked_sum(const Variable& x, const Tensor& mask);
Variable masked_mean(const Variable& x, const Tensor& mask);

// ---- Softmax (over the last dimension) --------------------------------------------------------

Variable softmax(const Variable& x);
Variable log_softmax(const Variable& x);

// ---- Transformer layers -----------------------------------------------------------------------

// weight [V, D], ids [...] i32 → [..., D]. Repeated ids sum their gradients.
Variable embedding(const Variable& weight, const Tensor& ids);
// Over the last dimension; gamma [D]; beta [D] or undefined (no bias).
Variable layernorm(const Variable& x, const Variable& gamma, const Variable& beta,
                   float eps = 1e-5f);
Variable rmsnorm(const Variable& x, const Variable& gamma, float eps = 1e-6f);
// A pre-norm transformer's residual step, fused: sum = x + residual (the updated residual stream)
// and out = layernorm(sum) (what the next block reads), computed by one kernel, the numbers of
// add then layernorm. x and residual have one shape. Gradients may arrive at either output or
// both; in the backward pass the norm's gradient is added into the sum's in place.
struct AddNorm {
  Variable sum;
  Variable out;
};
AddNorm add_layernorm(const Variable& x, const Variable& residual, const Variable& gamma,
                      const Variable& beta, float eps = 1e-5f);
// The same with RMSNorm: sum = x + residual, out = rmsnorm(sum).
AddNorm add_rmsnorm(const Variable& x, const Variable& residual, const Variable& gamma,
                    float eps = 1e-6f);
// silu(gate) ⊙ up (the Llama MLP's gate).
Variable swiglu(const Variable& gate, const Variable& up);
// Rotary embedding, Hugging Face Llama's rotate-half convention. x [B, T, H, Dh];
// positions [B, T] i32.
Variable rope(const Variable& x, const Tensor& positions, float theta);
// Causal grouped-query attention over the whole sequence (training: no KV cache).
// q [B, T, Hq, Dh]; k, v [B, T, Hkv, Dh], Hq % Hkv == 0; segment_ids [B, T] i32 or undefined
// (keys attend only within their query's segment: padding, packed examples); window > 0: query t
// attends only keys t - window + 1 .. t (sliding-window layers), 0: every earlier key.
// Result [B, T, Hq, Dh].
Variable attention(const Variable& q, const Variable& k, const Variable& v,
                   const Tensor& segment_ids, int64_t window, float scale);

// ---- Losses over a vocabulary -----------------------------------------------------------------

// Per-token softmax cross-entropy: logits [..., V], targets [...] i32 → losses [...] (f32);
// tokens whose target is ignore_index get loss 0 and no gradient.
Variable cross_entropy(const Variable& logits, const Tensor& targets, int ignore_index = -100);
// log softmax(logits)[target] per token: logits [..., V], targets [...] i32 → [...] (f32).
Variable gather_logprobs(const Variable& logits, const Tensor& targets);

// ---- Matrix products --------------------------------------------------------------------------

// op(a) @ op(b), op = transpose of the last two dimensions when the flag is set.
// a [..., M, K] ([..., K, M] when trans_a); b [..., K, N] ([..., N, K] when trans_b) with a's
// batch dimensions, or 2-D and shared by every batch entry. Result [..., M, N].
Variable matmul(const Variable& a, const Variable& b, bool trans_a = false, bool trans_b = false);
// x @ weightᵀ + bias, Hugging Face's Linear: x [..., in], weight [out, in], bias [out] or
// undefined. Result [..., out].
Variable linear(const Variable& x, const Variable& weight, const Variable& bias = Variable());
// A linear layer plus a low-rank update (a LoRA layer once a = A x):
//   y = x @ weightᵀ + bias + alpha · a @ bᵀ,   x [..., in], a [..., r], b [out, r] → y [..., out].
// One node: it keeps x, a and the result only (the composition linear + scale + add would keep
// three more [..., out] tensors until the backward pass). The update is accumulated into the
// linear layer's output by the GEMM (beta = 1). Gradients: dx = g W, dweight = gᵀ x,
// dbias = Σ over rows of g, da = alpha · g b, db = alpha · gᵀ a (each only when wanted).
Variable linear_low_rank(const Variable& x, const Variable& weight, const Variable& bias,
                         const Variable& a, const Variable& b, float alpha);
// gelu(linear(x, weight, bias)) in one backend call (Backend::linear_gelu: the GELU in the
// GEMM's epilogue where the backend can). The CPU gives exactly the composition's bits.
Variable linear_gelu(const Variable& x, const Variable& weight, const Variable& bias = Variable());

// ---- Shapes -----------------------------------------------------------------------------------

// Same elements, new shape (one dimension may be -1). Shares x's storage.
Variable reshape(const Variable& x, const Shape& shape);
// Rows [begin, end) of the leading dimension. Shares x's storage.
Variable slice(const Variable& x, int64_t begin, int64_t end);
// Stacked along the leading dimension; all other dimensions equal.
Variable concat(const std::vector<Variable>& xs);
// `wider` as a Variable, where x is wider's first x.size(0) rows (the same storage, as made by
// wider.slice(0, rows)) and the rows after them are constants: the inverse of slice, without a
// copy either way. The gradient of x is the first rows of the output's gradient (a view). Used
// to pad a weight's rows to an aligned count for a faster matrix product (Transformer's head).
Variable padded_view(const Variable& x, const Tensor& wider);

}  // namespace rlaif
