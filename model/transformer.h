// The decoder-only transformer: GPT-2 and the Llama family in one forward pass.
//
//   GPT-2 (Radford et al., 2019):  x = wte[ids] + wpe[pos]
//     per layer: x += o_proj(attn(ln_1(x)));  x += fc_out(gelu(fc_in(ln_2(x))))
//     logits = ln_f(x) · wteᵀ
//   Llama (Touvron et al., 2023), Mistral, Qwen2:  x = embed[ids]
//     per layer: x += o_proj(attn(rope(q), rope(k), v));  x += down(silu(gate(h)) ⊙ up(h)),
//     with h the RMSNorm of x before each block; logits = norm(x) · headᵀ (head tied or not)
//
// Every tensor of the model is a named Variable (see parameters()); the names are Hugging Face's
// where the layout is Hugging Face's, and differ where rlaif stores a different layout (GPT-2's
// fused, transposed Conv1D c_attn is kept as separate [out, in] q/k/v projections), so io/ can
// convert both ways unambiguously.
//
// Batches: ids [B, T] i32, positions [B, T] i32 (per sequence, so left-padded prompts start at 0)
// and optional segment ids [B, T] i32 (attention stays inside a segment: padding gets its own
// segment, packed examples one each). Training runs through autograd; inference runs the same
// code under NoGradGuard, optionally with a KV cache.
//
// LoRA adapters (model/lora.h) may sit on the layers' linear projections: q, k, v, o and the MLP's
// (y = W x + b + (alpha/r) · B A x). They are kept apart from the base weights (see add_lora).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/variable.h"
#include "model/config.h"
#include "model/kv_cache.h"
#include "model/lora.h"
#include "runtime/tensor.h"

namespace rlaif {

struct TransformerLayer {
  Variable attn_norm_weight, attn_norm_bias;  // bias: GPT-2 only
  Variable q_weight, q_bias, k_weight, k_bias, v_weight, v_bias, o_weight, o_bias;
  Variable q_norm_weight, k_norm_weight;  // Qwen3, Gemma 3: RMSNorm of each head's q and k
  // Gemma 3: the norms of the attention's and the MLP's outputs, and whether the layer's
  // attention slides (its own RoPE base).
  Variable post_attn_norm_weight, post_mlp_norm_weight;
  bool sliding = false;
  Variable mlp_norm_weight, mlp_norm_bias;
  // GPT-2: fc_in = c_fc, fc_out = c_proj. Llama: gate = fc_in, up, fc_out = down_proj.
  Variable fc_in_weight, fc_in_bias, up_weight, up_bias, fc_out_weight, fc_out_bias;
};

// What one forward pass takes. segment_ids may be undefined (one segment per row).
struct TransformerInput {
  Tensor ids;          // [B, T] i32
  Tensor positions;    // [B, T] i32
  Tensor segment_ids;  // [B, T] i32 or undefined
};

class Transformer {
 public:
  // Allocates every parameter (uninitialised) on `device`, in f32 or, for mixed-precision
  // training on a GPU, bf16 (activations then follow the parameters; losses, norms' statistics
  // and the optimizer's master weights and moments stay f32). The CPU backend computes in f32
  // only.
  Transformer(ModelConfig config, Device device = Device::cpu(), DType dtype = DType::f32);

  const ModelConfig& config() const { return config_; }
  Device device() const { return device_; }
  DType dtype() const { return dtype_; }

  // Every parameter with its name, in a fixed order (embeddings, layers, final norm, heads).
  // A tied head appears once (as the embedding).
  std::vector<std::pair<std::string, Variable>> parameters() const;
  // The parameter called `name`; Error naming it when there is none.
  Variable parameter(const std::string& name) const;
  // Marks every parameter as trainable (or frozen).
  void set_requires_grad(bool requires_grad);

  // GPT-2 style initialisation: weights ~ normal(0, 0.02), projections that write into the
  // residual stream (o_proj, fc_out) scaled by 1/√(2·layers), biases 0, norm gains 1; the
  // scalar head ~ normal(0, 1/√(d+1)). Deterministic in (seed).
  void init_weights(uint64_t seed);

  // Final hidden states [B, T, D] (after the last norm). With a cache, the batch's tokens are
  // appended to it and attend to everything cached before them.
  Variable hidden_states(const TransformerInput& input, KVCache* cache = nullptr) const;
  // Next-token logits [B·T, V] from hidden states [B, T, D] (or [N, D]).
  Variable logits(const Variable& hidden) const;
  // The same logits for softmax-based uses (losses, log-probs, entropies), which they give the
  // same values faster: [B·T, Vp] with the columns past V at -1e30 when the head is padded (see
  // set_vocab_padding), else logits(). token_logprobs and token_losses are built on it.
  Variable masked_logits(const Variable& hidden) const;
  // Scalar head outputs [B·T] from hidden states (reward/value models; needs num_labels = 1).
  Variable scalar_head(const Variable& hidden) const;

  // Per-token log-probabilities of `targets` ([B, T] i32): log softmax(logits)[target], [B, T].
  Variable token_logprobs(const TransformerInput& input, const Tensor& targets) const;
  // Per-token cross-entropy [B·T] with targets equal to ignore_index contributing 0.
  Variable token_losses(const TransformerInput& input, const Tensor& targets,
                        int ignore_index = -100) const;

  // Vocabulary padding of the head (llm.c's). A row of 50257 bf16 logits (GPT-2's vocabulary)
  // is not a multiple of 16 bytes, which keeps the GPU's fast GEMM kernels (TMA) away from the
  // head's three products, a third of GPT-2 124M's FLOPs. So when V is not a multiple of 64, the
  // head's weight [V, D] is the first rows of a [Vp, D] buffer (Vp = V rounded up to 64; the
  // rows after V stay zero: no gradient reaches them), and masked_logits (so token_logprobs,
  // token_losses and PPO's log-probs) computes logits [B·T, Vp] against the whole buffer, plus
  // a constant bias of -1e30 on the padded columns. Their softmax weight is then exactly 0 (exp
  // underflows), so losses, log-probs, entropies and gradients are those of the [B·T, V]
  // logits; -1e30 rather than -inf keeps p·log p at 0. logits() stays [B·T, V]. On by default;
  // set_vocab_padding(false) or RLAIF_PAD_VOCAB=0 in the environment (read at construction, to
  // measure both) computes the unpadded product.
  void set_vocab_padding(bool on) { pad_vocab_ = on; }
  bool vocab_padding() const { return pad_vocab_; }
  // Vp: the vocabulary rounded up to a multiple of 64.
  int64_t padded_vocab() const;

  // Activation recomputation (--recompute): the pre-norm and q/k/v projections of each attention
  // block and each whole MLP block (norm, up projections, activation, down projection) keep only
  // their inputs and outputs in the graph and run again in the backward pass (autograd/
  // checkpoint.h). Gradients are bit for bit the same; activation memory drops (the norm outputs
  // and the MLP's hidden activations, the widest tensors of a layer, are not stored) at the cost of
  // re-running those matmuls once more. The residual adds before those norms are then separate
  // kernels, not fused with the norms as they are otherwise (see hidden_states). Off by default;
  // no effect without grad mode.
  void set_recompute(bool recompute) { recompute_ = recompute; }
  bool recompute() const { return recompute_; }

  // Whether the model has a scalar head (config().num_labels == 1), and adding one.
  bool has_scalar_head() const { return score_.defined(); }
  void add_scalar_head();

  // ---- LoRA adapters (model/lora.h; these methods are defined in model/lora.cpp) --------------
  //
  // The adapters are kept out of parameters(), which stays the base model's list (what
  // save_model, load_model, checkpoints and model hashes read). A copy of a Transformer is
  // another handle to the same model: it shares the base weights and the adapters, so adding,
  // merging or removing adapters through one handle shows through every copy, made before or
  // after. Whether the adapters are applied is each handle's own setting: a copy with
  // set_adapters_enabled(false) is the base model (a reference policy) at no memory cost.

  // Adds an adapter to every layer module that config.targets names (PEFT's matching, see
  // LoraConfig; empty targets: PEFT's family default; "all-linear": every projection), in the
  // model's device and dtype: A ~ U(-1/√in, 1/√in) drawn from Philox(seed), each adapter from its
  // own region of the stream, and B = 0, so the model computes exactly what it did before.
  // A model with a scalar head also trains a copy of it (modules_to_save "score", as PEFT's
  // SEQ_CLS task does). Error when the model has adapters already, for an invalid config, or for
  // a target that matches no module rlaif adapts (naming it).
  void add_lora(const LoraConfig& config, uint64_t seed);
  bool has_adapters() const;
  // The adapters' configuration, targets explicit; Error without adapters.
  const LoraConfig& lora_config() const;
  // Every adapter tensor with its PEFT name, layer by layer in module order (lora_A then
  // lora_B), then the head's copy: base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight
  // [r, in], ....lora_B.weight [out, r]; GPT-2's base_model.model.transformer.h.0.attn.c_attn
  // .lora_B.weight is [q + 2·kv, r]; base_model.model.score.weight [1, d]. Empty without adapters.
  std::vector<std::pair<std::string, Variable>> adapter_parameters() const;
  // Freezes the base weights (requires_grad false) and makes the adapters trainable.
  void freeze_base();
  // Whether this handle applies the adapters (on by default). Off, the forward pass is the base
  // model's, the same calls and bits as before add_lora.
  void set_adapters_enabled(bool enabled) { adapters_enabled_ = enabled; }
  bool adapters_enabled() const { return adapters_enabled_; }
  // Folds the adapters into the base weights, W ← W + s · B A (GPT-2's c_attn: each of q, k and v
  // with its row block of B), and the head's copy into the head, then drops the adapters: a plain
  // model computing what the adapted one did (up to rounding). The base weights change in place,
  // for every handle sharing them.
  void merge_adapters();
  // Drops the adapters unmerged (the base model is left as it was).
  void remove_adapters();
  // The seed of LoRA dropout's masks, which are a pure function of (seed, layer, module,
  // element): a trainer sets it from (run seed, step, micro-batch) before each forward pass.
  // Dropout applies only in grad mode (training); without it the adapters' inputs pass as is.
  void set_lora_dropout_seed(uint64_t seed) { lora_dropout_seed_ = seed; }
  uint64_t lora_dropout_seed() const { return lora_dropout_seed_; }

 private:
  // A block's output (before its residual add) from h, the pre-norm of the residual stream x; or,
  // when checkpointed, from x, normalising it inside the checkpoint (h is then undefined).
  // `lora` is the layer's adapters as this pass applies them (see lora_run).
  Variable attention_block(const TransformerLayer& layer, const LoraLayerRun& lora, int64_t index,
                           const Variable& x, const Variable& h, const TransformerInput& input,
                           KVCache* cache, bool checkpointed) const;
  Variable mlp_block(const TransformerLayer& layer, const LoraLayerRun& lora, const Variable& x,
                     const Variable& h, bool checkpointed) const;
  // What layer `layer`'s forward pass applies of the adapters: none when this handle has them
  // disabled, dropout only in grad mode (decided here, outside the checkpoints, whose first run
  // is without grad mode).
  LoraLayerRun lora_run(int64_t layer) const;
  // The scalar head the forward pass uses: the adapters' copy when applied, else the base one.
  const Variable& active_score() const;
  // Gemma 3's layers: each block between a pre-norm and a post-norm, then the residual add.
  Variable gemma_hidden_states(const TransformerInput& input, KVCache* cache) const;

  ModelConfig config_;
  Device device_;
  DType dtype_ = DType::f32;
  bool recompute_ = false;
  bool pad_vocab_ = true;
  Variable tok_emb_, pos_emb_, final_norm_weight_, final_norm_bias_, lm_head_, score_;
  // With V not a multiple of 64: the head's [Vp, D] buffer and the [Vp] bias that masks the
  // padded logits (undefined otherwise).
  Tensor head_buffer_, head_mask_;
  std::vector<TransformerLayer> layers_;
  // Shared by copies (see add_lora); the enabled flag and the dropout seed are per handle.
  std::shared_ptr<LoraState> lora_ = std::make_shared<LoraState>();
  bool adapters_enabled_ = true;
  uint64_t lora_dropout_seed_ = 0;
};

}  // namespace rlaif
