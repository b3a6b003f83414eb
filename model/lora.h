// LoRA adapters (Hu et al., 2021, "LoRA: Low-Rank Adaptation of Large Language Models"),
// computed and stored as Hugging Face PEFT computes and stores them.
//
// A frozen linear layer W [out, in], b [out] gains a trainable low-rank update:
//   y = W x + b + s · B (A (dropout(x))),   A [r, in], B [out, r],
//   s = alpha / r, or alpha / √r with rank-stabilised scaling (use_rslora; Kalajdzievski, 2023).
// Known values: r = 8, alpha = 16 gives s = 2; with use_rslora s = 16 / √8 = 5.6568542.
// Initialisation (PEFT's): A ~ U(-1/√in, 1/√in) (torch's kaiming_uniform_ with a = √5, whose
// bound is √(6 / ((1 + a²)·in)) = 1/√in), B = 0, so the adapted model starts as the base model
// exactly. Merging folds the update into the weight: W' = W + s · B A.
//
// Everything is composed from the autograd ops of autograd/ops.h (linear, linear_low_rank, mul),
// so gradients need no rule of their own: dA = s · Bᵀ g dropout(x)ᵀ summed over rows, dB = s · g
// (A dropout(x))ᵀ, and a frozen W or b costs no gradient product. linear_low_rank computes
// W x + b + s · B a as one node, so an adapted layer keeps no more activations than a plain one
// beyond a = A dropout(x) ([..., r]) and, with dropout, the dropped-out input.
//
// Dropout (PEFT's lora_dropout, applied to the adapter's input only) is a fixed mask times
// x / (1 - p). The mask is a pure function of (seed, offset, element): element i is kept iff
// u_i = philox_uniform(seed, offset + i) ≥ p', with p' = ⌈p · 2^24⌉ / 2^24 the probability on the
// 2^-24 grid that the Philox uniforms live on (it differs from p by less than 2^-24). Being pure,
// the mask is recomputed bit for bit by activation checkpointing, and a training step that is
// run again reproduces it.
//
// PEFT names (module paths of the Hugging Face model; targets are matched as PEFT matches a list:
// a module path equals a target or ends with "." + target):
//   Llama family (llama, mistral, qwen2, qwen3, gemma3_text): model.layers.{i}.self_attn.
//     {q,k,v,o}_proj and model.layers.{i}.mlp.{gate,up,down}_proj.
//   GPT-2: transformer.h.{i}.attn.c_attn (one adapter over the fused q/k/v: A [r, d] shared,
//     B [q + 2·kv, r] whose row blocks feed rlaif's separate q, k and v projections),
//     transformer.h.{i}.attn.c_proj (o_proj), transformer.h.{i}.mlp.c_fc (fc_in) and
//     transformer.h.{i}.mlp.c_proj (fc_out). The target "c_proj" matches both c_proj modules.
//   Tensors: base_model.model.<module path>.lora_A.weight [r, in] and .lora_B.weight [out, r]
//   (for GPT-2's Conv1D too: fan_in_fan_out changes how PEFT applies W, not A or B).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "autograd/variable.h"
#include "model/config.h"

namespace rlaif {

struct LoraConfig {
  int64_t r = 8;         // rank
  double alpha = 8.0;    // lora_alpha
  double dropout = 0.0;  // lora_dropout: p in [0, 1)
  // PEFT's target_modules: module names or dotted path suffixes, or the one entry "all-linear"
  // (every linear projection of the layers; never the LM head or the scalar head). Empty: PEFT's
  // default for the family (q_proj and v_proj; GPT-2's c_attn).
  std::vector<std::string> targets;
  bool use_rslora = false;
  // PEFT's modules_to_save: whole modules trained as copies next to the adapters. rlaif supports
  // "score", the scalar head of a reward or value model (PEFT's SEQ_CLS task always saves it).
  std::vector<std::string> modules_to_save;

  // s = alpha / r, or alpha / √r with use_rslora.
  double scale() const;
  // Error beginning with `source` for r < 1, a non-finite alpha, p outside [0, 1), an empty
  // target name, or a module to save other than "score" (and PEFT's "classifier", which names no
  // rlaif module and is ignored).
  void validate(const std::string& source) const;
};

// The PEFT module names the layers of `config`'s family offer, in layer order: q_proj, k_proj,
// v_proj, o_proj, gate_proj, up_proj, down_proj (Llama family) or c_attn, c_proj, c_fc (GPT-2);
// what "all-linear" expands to.
std::vector<std::string> lora_module_names(const ModelConfig& config);
// PEFT's default targets for the family: q_proj, v_proj (Llama family) or c_attn (GPT-2).
std::vector<std::string> default_lora_targets(const ModelConfig& config);
// PEFT's rule for a list of targets: `module_path` equals one or ends with "." + one.
bool lora_target_matches(const std::string& module_path, const std::vector<std::string>& targets);

// One adapter: A [r, in], B [out, r]. Both undefined where a module has none.
struct LoraPair {
  Variable A, B;
  bool defined() const { return A.defined(); }
};

// A layer's adapters, by rlaif's projections. The Llama family uses q, k, v, o, fc_in
// (gate_proj), up and fc_out (down_proj); GPT-2 uses qkv (c_attn, B [q + 2·kv, r]), o
// (attn.c_proj), fc_in (c_fc) and fc_out (mlp.c_proj).
struct LayerAdapters {
  LoraPair q, k, v, o, fc_in, up, fc_out, qkv;
};

// Where a layer's adapters sit, numbered for their dropout streams.
enum class LoraSlot { q = 0, k, v, o, fc_in, up, fc_out, qkv, count };

// The dropout of one adapter's input: element i kept iff philox_uniform(seed, offset + i) ≥ p'
// (see the top of this file). p = 0: no dropout.
struct LoraDropout {
  float p = 0.0f;
  uint64_t seed = 0;
  uint64_t offset = 0;
};

// dropout(x): x ⊙ mask / (1 - p), the mask a constant of the graph (gradient g ⊙ mask / (1 - p)).
// Returns x itself when p = 0. Error for p outside [0, 1).
Variable lora_dropout(const Variable& x, const LoraDropout& dropout);
// W x + b + s · B (A (dropout(x))): x [..., in], weight [out, in], bias [out] or undefined.
Variable lora_linear(const Variable& x, const Variable& weight, const Variable& bias,
                     const LoraPair& adapter, float scale, const LoraDropout& dropout = {});

// What one layer's forward pass needs of its adapters: a value (handles and numbers) that
// activation checkpoints copy and run again in the backward pass. Without adapters (none, or
// disabled) every pair is undefined and each projection is the plain linear layer, the same calls
// and bits as a model without LoRA.
struct LoraLayerRun {
  LayerAdapters adapters;
  float scale = 1.0f;
  float dropout = 0.0f;  // 0 outside training (decided before any checkpoint, see Transformer)
  uint64_t seed = 0;
  int64_t layer = 0;

  // The dropout stream of `slot` in this layer: offset (layer · slots + slot) · 2^40.
  LoraDropout dropout_of(LoraSlot slot) const;
  // linear(x, weight, bias), plus the adapter's update when `pair` is defined.
  Variable linear(const Variable& x, const Variable& weight, const Variable& bias,
                  const LoraPair& pair, LoraSlot slot) const;
  // The q, k and v projections of x, weights[j] and biases[j] each (biases may be undefined).
  // GPT-2's c_attn adapter (qkv) adds s · B_j (A (dropout(x))) to projection j, with B_j the
  // j-th row block of B (rows [0, q), [q, q + kv), [q + kv, q + 2·kv)): one A and one dropout mask
  // serve all three, as in the fused module. Otherwise each projection is linear() with its own
  // adapter.
  std::vector<Variable> qkv_linear(const Variable& x, const std::array<Variable, 3>& weights,
                                   const std::array<Variable, 3>& biases) const;
  // The adapters' Variables, undefined ones included: the inputs a checkpoint lists.
  std::vector<Variable> attention_inputs() const;  // q, k, v, qkv
  std::vector<Variable> mlp_inputs() const;        // fc_in, up, fc_out
};

// A model's adapters (see Transformer::add_lora).
struct LoraState {
  LoraConfig config;                  // targets explicit: defaults and "all-linear" expanded
  std::vector<LayerAdapters> layers;  // one per layer; empty: no adapters
  Variable score;                     // modules_to_save "score": the head's trained copy
};

}  // namespace rlaif
