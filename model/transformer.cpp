#include "model/transformer.h"

#include <cmath>
#include <cstdlib>
#include <string>

#include "autograd/checkpoint.h"
#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "kernels/backend.h"
#include "model/scaled_rope.h"

namespace rlaif {
namespace {

Variable param(const Shape& shape, Device device, DType dtype) {
  return Variable(Tensor::empty(shape, dtype, device), true);
}

constexpr int64_t kVocabMultiple = 64;
// The bias of the padded logits: exp(-1e30 - max) is exactly 0 in f32, and bf16 holds -1e30.
constexpr double kMaskedLogit = -1e30;

bool vocab_padding_from_env() {
  const char* v = std::getenv("RLAIF_PAD_VOCAB");
  return v == nullptr || std::string(v) != "0";
}

std::string layer_prefix(const ModelConfig& c, int64_t i) {
  return (c.is_gpt2() ? "transformer.h." : "model.layers.") + std::to_string(i) + ".";
}

// The pieces of a layer are free functions of (config, layer), so a checkpoint can run them again
// in the backward pass without reference to the Transformer object.

// Gemma's RMSNorms weigh by (1 + w): the same norm with the weight shifted.
Variable norm_gain(const ModelConfig& c, const Variable& weight) {
  return c.gemma ? affine(weight, 1.0f, 1.0f) : weight;
}

Variable block_norm(const ModelConfig& c, const Variable& x, const Variable& weight,
                    const Variable& bias) {
  const float eps = static_cast<float>(c.norm_eps);
  return c.is_gpt2() ? layernorm(x, weight, bias, eps) : rmsnorm(x, norm_gain(c, weight), eps);
}

// {x + r, norm(x + r)} by one fused kernel: the residual add and the norm that reads its result.
AddNorm add_block_norm(const ModelConfig& c, const Variable& x, const Variable& r,
                       const Variable& weight, const Variable& bias) {
  const float eps = static_cast<float>(c.norm_eps);
  return c.is_gpt2() ? add_layernorm(x, r, weight, bias, eps) : add_rmsnorm(x, r, weight, eps);
}

// The attention's inputs from h [B, T, D], the pre-norm of the residual stream: q [B, T, Hq, Dh]
// and k, v [B, T, Hkv, Dh], q and k normalised per head (Qwen3) and then rotated (Llama). The
// projections carry the layer's adapters, if any.
std::vector<Variable> project_qkv(const ModelConfig& c, const TransformerLayer& l,
                                  const LoraLayerRun& lora, const Variable& h,
                                  const Tensor& positions) {
  const int64_t B = h.size(0), T = h.size(1);
  std::vector<Variable> qkv =
      lora.qkv_linear(h, {l.q_weight, l.k_weight, l.v_weight}, {l.q_bias, l.k_bias, l.v_bias});
  Variable q = reshape(qkv[0], {B, T, c.num_heads, c.head_dim});
  Variable k = reshape(qkv[1], {B, T, c.num_kv_heads, c.head_dim});
  Variable v = reshape(qkv[2], {B, T, c.num_kv_heads, c.head_dim});
  if (c.qk_norm) {
    const float eps = static_cast<float>(c.norm_eps);
    q = rmsnorm(q, norm_gain(c, l.q_norm_weight), eps);
    k = rmsnorm(k, norm_gain(c, l.k_norm_weight), eps);
  }
  if (l.sliding && c.gemma) {  // Gemma's sliding layers: their own base, never rescaled
    const float theta = static_cast<float>(c.rope_local_theta);
    q = rope(q, positions, theta);
    k = rope(k, positions, theta);
  } else if (!c.rope_scaling.type.empty()) {
    const std::vector<double> frequencies = c.rope_inverse_frequencies();
    q = rope_with_frequencies(q, positions, frequencies);
    k = rope_with_frequencies(k, positions, frequencies);
  } else if (!c.is_gpt2()) {
    const float theta = static_cast<float>(c.rope_theta);
    q = rope(q, positions, theta);
    k = rope(k, positions, theta);
  }
  return {q, k, v};
}

// fc_in → GELU → fc_out (GPT-2), or silu(gate) ⊙ up → down (Llama), of the pre-norm h, each
// projection with its adapter, if any. GPT-2's fc_in and GELU are one call (the GELU fused into
// the GEMM's epilogue on the GPU), or gelu(fc_in) when an adapter adds to fc_in's output.
Variable mlp(const ModelConfig& c, const TransformerLayer& l, const LoraLayerRun& lora,
             const Variable& h) {
  const LayerAdapters& a = lora.adapters;
  auto fc_in = [&] {
    return lora.linear(h, l.fc_in_weight, l.fc_in_bias, a.fc_in, LoraSlot::fc_in);
  };
  auto up = [&] { return lora.linear(h, l.up_weight, l.up_bias, a.up, LoraSlot::up); };
  Variable inner;
  if (c.is_gpt2()) {
    inner = a.fc_in.defined() ? gelu(fc_in()) : linear_gelu(h, l.fc_in_weight, l.fc_in_bias);
  } else if (c.gemma) {
    inner = mul(gelu(fc_in()), up());
  } else {
    inner = swiglu(fc_in(), up());
  }
  return lora.linear(inner, l.fc_out_weight, l.fc_out_bias, a.fc_out, LoraSlot::fc_out);
}

// inputs followed by extra ones.
std::vector<Variable> concat_inputs(std::vector<Variable> inputs,
                                    const std::vector<Variable>& extra) {
  inputs.insert(inputs.end(), extra.begin(), extra.end());
  return inputs;
}

}  // namespace

Transformer::Transformer(ModelConfig config, Device device, DType dtype)
    : config_(std::move(config)), device_(device), dtype_(dtype) {
  RLAIF_CHECK(dtype == DType::f32 || dtype == DType::bf16,
              "Transformer: parameters must be f32 or bf16, not ", dtype_name(dtype));
  config_.validate("Transformer");
  const ModelConfig& c = config_;
  const int64_t d = c.hidden_size, q = c.num_heads * c.head_dim, kv = c.num_kv_heads * c.head_dim;
  const int64_t f = c.intermediate_size;
  pad_vocab_ = vocab_padding_from_env();
  // The head's weight: in a [Vp, D] buffer when V needs padding (see set_vocab_padding).
  auto head_param = [&]() -> Variable {
    const int64_t vp = padded_vocab();
    if (vp == c.vocab_size) return param({c.vocab_size, d}, device, dtype);
    head_buffer_ = Tensor::zeros({vp, d}, dtype, device);
    head_mask_ = Tensor::zeros({vp}, dtype, device);
    backend_for(device).fill(head_mask_.slice(c.vocab_size, vp), kMaskedLogit);
    return Variable(head_buffer_.slice(0, c.vocab_size), true);
  };
  tok_emb_ = c.tie_word_embeddings ? head_param() : param({c.vocab_size, d}, device, dtype);
  if (c.is_gpt2()) pos_emb_ = param({c.max_position_embeddings, d}, device, dtype);
  final_norm_weight_ = param({d}, device, dtype);
  if (c.is_gpt2()) final_norm_bias_ = param({d}, device, dtype);
  if (!c.tie_word_embeddings) lm_head_ = head_param();
  if (c.num_labels == 1) score_ = param({1, d}, device, dtype);
  for (int64_t i = 0; i < c.num_layers; ++i) {
    TransformerLayer l;
    l.attn_norm_weight = param({d}, device, dtype);
    l.mlp_norm_weight = param({d}, device, dtype);
    if (c.is_gpt2()) {
      l.attn_norm_bias = param({d}, device, dtype);
      l.mlp_norm_bias = param({d}, device, dtype);
    }
    l.q_weight = param({q, d}, device, dtype);
    l.k_weight = param({kv, d}, device, dtype);
    l.v_weight = param({kv, d}, device, dtype);
    l.o_weight = param({d, q}, device, dtype);
    if (c.qkv_bias) {
      l.q_bias = param({q}, device, dtype);
      l.k_bias = param({kv}, device, dtype);
      l.v_bias = param({kv}, device, dtype);
    }
    if (c.o_bias) l.o_bias = param({d}, device, dtype);
    if (c.qk_norm) {
      l.q_norm_weight = param({c.head_dim}, device, dtype);
      l.k_norm_weight = param({c.head_dim}, device, dtype);
    }
    if (c.gemma) {
      l.post_attn_norm_weight = param({d}, device, dtype);
      l.post_mlp_norm_weight = param({d}, device, dtype);
    }
    l.sliding = !c.sliding_layers.empty() && c.sliding_layers[static_cast<size_t>(i)];
    l.fc_in_weight = param({f, d}, device, dtype);
    l.fc_out_weight = param({d, f}, device, dtype);
    if (!c.is_gpt2()) l.up_weight = param({f, d}, device, dtype);
    if (c.mlp_bias) {
      l.fc_in_bias = param({f}, device, dtype);
      l.fc_out_bias = param({d}, device, dtype);
      if (!c.is_gpt2()) l.up_bias = param({f}, device, dtype);
    }
    layers_.push_back(std::move(l));
  }
}

std::vector<std::pair<std::string, Variable>> Transformer::parameters() const {
  const ModelConfig& c = config_;
  std::vector<std::pair<std::string, Variable>> out;
  auto add = [&](const std::string& name, const Variable& v) {
    if (v.defined()) out.emplace_back(name, v);
  };
  if (c.is_gpt2()) {
    add("transformer.wte.weight", tok_emb_);
    add("transformer.wpe.weight", pos_emb_);
  } else {
    add("model.embed_tokens.weight", tok_emb_);
  }
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const TransformerLayer& l = layers_[static_cast<size_t>(i)];
    std::string p = layer_prefix(c, i);
    if (c.is_gpt2()) {
      // Separate [out, in] projections instead of HF's fused, transposed Conv1D (see header).
      add(p + "ln_1.weight", l.attn_norm_weight);
      add(p + "ln_1.bias", l.attn_norm_bias);
      add(p + "attn.q_proj.weight", l.q_weight);
      add(p + "attn.q_proj.bias", l.q_bias);
      add(p + "attn.k_proj.weight", l.k_weight);
      add(p + "attn.k_proj.bias", l.k_bias);
      add(p + "attn.v_proj.weight", l.v_weight);
      add(p + "attn.v_proj.bias", l.v_bias);
      add(p + "attn.o_proj.weight", l.o_weight);
      add(p + "attn.o_proj.bias", l.o_bias);
      add(p + "ln_2.weight", l.mlp_norm_weight);
      add(p + "ln_2.bias", l.mlp_norm_bias);
      add(p + "mlp.fc_in.weight", l.fc_in_weight);
      add(p + "mlp.fc_in.bias", l.fc_in_bias);
      add(p + "mlp.fc_out.weight", l.fc_out_weight);
      add(p + "mlp.fc_out.bias", l.fc_out_bias);
    } else {
      add(p + "input_layernorm.weight", l.attn_norm_weight);
      add(p + "self_attn.q_proj.weight", l.q_weight);
      add(p + "self_attn.q_proj.bias", l.q_bias);
      add(p + "self_attn.k_proj.weight", l.k_weight);
      add(p + "self_attn.k_proj.bias", l.k_bias);
      add(p + "self_attn.v_proj.weight", l.v_weight);
      add(p + "self_attn.v_proj.bias", l.v_bias);
      add(p + "self_attn.o_proj.weight", l.o_weight);
      add(p + "self_attn.o_proj.bias", l.o_bias);
      add(p + "self_attn.q_norm.weight", l.q_norm_weight);
      add(p + "self_attn.k_norm.weight", l.k_norm_weight);
      if (c.gemma) {  // Gemma's post_attention_layernorm normalises the attention's output
        add(p + "post_attention_layernorm.weight", l.post_attn_norm_weight);
        add(p + "pre_feedforward_layernorm.weight", l.mlp_norm_weight);
        add(p + "post_feedforward_layernorm.weight", l.post_mlp_norm_weight);
      } else {
        add(p + "post_attention_layernorm.weight", l.mlp_norm_weight);
      }
      add(p + "mlp.gate_proj.weight", l.fc_in_weight);
      add(p + "mlp.gate_proj.bias", l.fc_in_bias);
      add(p + "mlp.up_proj.weight", l.up_weight);
      add(p + "mlp.up_proj.bias", l.up_bias);
      add(p + "mlp.down_proj.weight", l.fc_out_weight);
      add(p + "mlp.down_proj.bias", l.fc_out_bias);
    }
  }
  if (c.is_gpt2()) {
    add("transformer.ln_f.weight", final_norm_weight_);
    add("transformer.ln_f.bias", final_norm_bias_);
  } else {
    add("model.norm.weight", final_norm_weight_);
  }
  add("lm_head.weight", lm_head_);
  add("score.weight", score_);
  return out;
}

Variable Transformer::parameter(const std::string& name) const {
  for (auto& [n, v] : parameters()) {
    if (n == name) return v;
  }
  throw Error("Transformer: no parameter named '", name, "' in this ", config_.model_type,
              " model");
}

void Transformer::set_requires_grad(bool requires_grad) {
  for (auto& [name, v] : parameters()) v.set_requires_grad(requires_grad);
}

void Transformer::add_scalar_head() {
  if (score_.defined()) return;
  score_ = param({1, config_.hidden_size}, device_, dtype_);
  config_.num_labels = 1;
}

void Transformer::init_weights(uint64_t seed) {
  Backend& backend = backend_for(device_);
  const float residual_std = 0.02f / std::sqrt(2.0f * static_cast<float>(config_.num_layers));
  // Each parameter draws from its own region of the Philox stream (offset = its index · 2^40),
  // so adding a parameter never changes the others' values.
  uint64_t index = 0;
  for (auto& [name, v] : parameters()) {
    const Tensor& t = v.data();
    uint64_t offset = (index++) << 40;
    bool is_bias = name.ends_with(".bias");
    bool is_norm = t.dim() == 1 && !is_bias;
    if (is_norm) {
      backend.fill(t, config_.gemma ? 0.0 : 1.0);  // a gain of 1: Gemma stores w of (1 + w)
    } else if (is_bias) {
      backend.fill(t, 0.0);
    } else if (name == "score.weight") {
      backend.random_normal(t, seed, offset, 0.0f,
                            1.0f / std::sqrt(static_cast<float>(config_.hidden_size + 1)));
    } else {
      bool residual = name.find("o_proj.weight") != std::string::npos ||
                      name.find("fc_out.weight") != std::string::npos ||
                      name.find("down_proj.weight") != std::string::npos;
      backend.random_normal(t, seed, offset, 0.0f, residual ? residual_std : 0.02f);
    }
  }
}

Variable Transformer::attention_block(const TransformerLayer& l, const LoraLayerRun& lora,
                                      int64_t index, const Variable& x, const Variable& h,
                                      const TransformerInput& input, KVCache* cache,
                                      bool checkpointed) const {
  const ModelConfig& c = config_;
  const int64_t B = input.ids.size(0), T = input.ids.size(1);
  std::vector<Variable> qkv;
  if (checkpointed) {
    // The closure holds copies (config, layer and adapter handles, positions), not `this`: it
    // runs again in the backward pass.
    qkv = checkpoint_multi(
        [c, l, lora, positions = input.positions](const std::vector<Variable>& in) {
          return project_qkv(c, l, lora, block_norm(c, in[0], in[1], in[2]), positions);
        },
        concat_inputs({x, l.attn_norm_weight, l.attn_norm_bias, l.q_weight, l.q_bias, l.k_weight,
                       l.k_bias, l.v_weight, l.v_bias, l.q_norm_weight, l.k_norm_weight},
                      lora.attention_inputs()));
  } else {
    qkv = project_qkv(c, l, lora, h, input.positions);
  }
  const Variable &q = qkv[0], &k = qkv[1], &v = qkv[2];
  const float scale = c.attention_scale > 0 ? static_cast<float>(c.attention_scale)
                                            : 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  const int64_t window = l.sliding ? c.sliding_window : 0;
  Variable attended;
  if (cache == nullptr) {
    attended = attention(q, k, v, input.segment_ids, window, scale);
  } else {
    // Inference: append this step's keys and values, then attend over the whole cache.
    RLAIF_CHECK(!grad_mode_enabled() || !x.requires_grad(),
                "Transformer: a KV cache is for inference; run it under NoGradGuard");
    cache->write(index, k.data(), v.data());
    Tensor out = Tensor::empty(q.shape(), q.dtype(), device_);
    Tensor lse = Tensor::empty({B, c.num_heads, T}, DType::f32, device_);
    backend_for(device_).attention(q.data(), cache->keys(index), cache->values(index),
                                   cache->segment_ids(), cache->length() + T, window, scale, out,
                                   lse);
    attended = Variable(out);
  }
  Variable merged = reshape(attended, {B * T, c.num_heads * c.head_dim});
  Variable out = lora.linear(merged, l.o_weight, l.o_bias, lora.adapters.o, LoraSlot::o);
  return reshape(out, {B, T, c.hidden_size});
}

Variable Transformer::mlp_block(const TransformerLayer& l, const LoraLayerRun& lora,
                                const Variable& x, const Variable& h, bool checkpointed) const {
  if (!checkpointed) return mlp(config_, l, lora, h);
  return checkpoint(
      [c = config_, l, lora](const std::vector<Variable>& in) {
        return mlp(c, l, lora, block_norm(c, in[0], in[1], in[2]));
      },
      concat_inputs({x, l.mlp_norm_weight, l.mlp_norm_bias, l.fc_in_weight, l.fc_in_bias,
                     l.up_weight, l.up_bias, l.fc_out_weight, l.fc_out_bias},
                    lora.mlp_inputs()));
}

Variable Transformer::hidden_states(const TransformerInput& input, KVCache* cache) const {
  const ModelConfig& c = config_;
  RLAIF_CHECK(input.ids.dim() == 2 && input.ids.dtype() == DType::i32,
              "Transformer: ids must be [B, T] i32, got ", input.ids);
  RLAIF_CHECK(input.positions.shape() == input.ids.shape() && input.positions.dtype() == DType::i32,
              "Transformer: positions must be i32 with the shape of ids ", input.ids, ", got ",
              input.positions);
  RLAIF_CHECK(!input.segment_ids.defined() || input.segment_ids.shape() == input.ids.shape(),
              "Transformer: segment ids ", input.segment_ids, " must have the shape of ids ",
              input.ids);
  const int64_t B = input.ids.size(0), T = input.ids.size(1);
  const int64_t context = cache ? cache->length() + T : T;
  RLAIF_CHECK(context <= c.max_position_embeddings, "Transformer: ", context,
              " tokens exceed the model's context of ", c.max_position_embeddings);
  if (cache != nullptr) {
    RLAIF_CHECK(cache->batch() == B, "Transformer: cache batch ", cache->batch(),
                " differs from the input batch ", B);
    cache->write_segments(T, input.segment_ids);
  }

  if (c.gemma) return gemma_hidden_states(input, cache);

  // x is the residual stream and h the norm of x that the next block reads. Each residual add
  // that a norm follows is fused with it (add_layernorm / add_rmsnorm: one kernel writes x and h,
  // and the backward pass adds the norm's gradient into x's in place), with the numbers of add
  // then norm. Under activation recomputation the pre-norms run inside the blocks' checkpoints
  // instead, from x: their outputs are what recomputation avoids storing, and a fused norm's
  // output would be stored as the checkpoint's input. There the adds stay plain (h undefined),
  // except the last one, whose final norm is outside any checkpoint.
  const bool checkpointed = recompute_ && cache == nullptr && grad_mode_enabled();
  Variable x, h;
  // x ← x + r; with fuse, also h ← the norm (weight, bias) of the new x.
  auto residual_add = [&](const Variable& r, const Variable& weight, const Variable& bias,
                          bool fuse) {
    if (!fuse) {
      x = add(x, r);
      return;
    }
    AddNorm s = add_block_norm(c, x, r, weight, bias);
    x = std::move(s.sum);
    h = std::move(s.out);
  };
  const TransformerLayer& first = layers_.front();  // config validation: at least one layer
  x = embedding(tok_emb_, input.ids);               // [B, T, D]
  if (c.is_gpt2()) {
    residual_add(embedding(pos_emb_, input.positions), first.attn_norm_weight, first.attn_norm_bias,
                 !checkpointed);
  } else if (!checkpointed) {
    h = block_norm(c, x, first.attn_norm_weight, first.attn_norm_bias);
  }
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const TransformerLayer& l = layers_[static_cast<size_t>(i)];
    const LoraLayerRun lora = lora_run(i);
    Variable attended = attention_block(l, lora, i, x, h, input, cache, checkpointed);
    residual_add(attended, l.mlp_norm_weight, l.mlp_norm_bias, !checkpointed);
    Variable mlp_out = reshape(mlp_block(l, lora, x, h, checkpointed), {B, T, c.hidden_size});
    if (i + 1 < c.num_layers) {
      const TransformerLayer& next = layers_[static_cast<size_t>(i + 1)];
      residual_add(mlp_out, next.attn_norm_weight, next.attn_norm_bias, !checkpointed);
    } else {
      residual_add(mlp_out, final_norm_weight_, final_norm_bias_, true);
    }
  }
  if (cache != nullptr) cache->advance(T);
  return h;
}

Variable Transformer::gemma_hidden_states(const TransformerInput& input, KVCache* cache) const {
  const ModelConfig& c = config_;
  const int64_t B = input.ids.size(0), T = input.ids.size(1);
  // Under recomputation the pre-norms run inside the blocks' checkpoints (h undefined); the
  // post-norms and residual adds stay outside.
  const bool checkpointed = recompute_ && cache == nullptr && grad_mode_enabled();
  Variable x = scale(embedding(tok_emb_, input.ids), static_cast<float>(c.embedding_scale));
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const TransformerLayer& l = layers_[static_cast<size_t>(i)];
    const LoraLayerRun lora = lora_run(i);
    const Variable none;
    Variable h = checkpointed ? none : block_norm(c, x, l.attn_norm_weight, none);
    Variable attended = attention_block(l, lora, i, x, h, input, cache, checkpointed);
    x = add(x, block_norm(c, attended, l.post_attn_norm_weight, none));
    h = checkpointed ? none : block_norm(c, x, l.mlp_norm_weight, none);
    Variable mlp_out = reshape(mlp_block(l, lora, x, h, checkpointed), {B, T, c.hidden_size});
    x = add(x, block_norm(c, mlp_out, l.post_mlp_norm_weight, none));
  }
  if (cache != nullptr) cache->advance(T);
  return block_norm(c, x, final_norm_weight_, Variable());
}

Variable Transformer::logits(const Variable& hidden) const {
  Variable flat = reshape(hidden, {-1, config_.hidden_size});
  return matmul(flat, lm_head_.defined() ? lm_head_ : tok_emb_, false, true);
}

int64_t Transformer::padded_vocab() const {
  return (config_.vocab_size + kVocabMultiple - 1) / kVocabMultiple * kVocabMultiple;
}

Variable Transformer::masked_logits(const Variable& hidden) const {
  const Variable& head = lm_head_.defined() ? lm_head_ : tok_emb_;
  // A head whose data is another tensor than the buffer's first rows takes the plain path.
  if (!pad_vocab_ || !head_buffer_.defined() || head.data().raw_data() != head_buffer_.raw_data()) {
    return logits(hidden);
  }
  Variable flat = reshape(hidden, {-1, config_.hidden_size});
  return linear(flat, padded_view(head, head_buffer_), Variable(head_mask_));
}

Variable Transformer::scalar_head(const Variable& hidden) const {
  RLAIF_CHECK(score_.defined(), "Transformer: this model has no scalar head (score.weight)");
  Variable flat = reshape(hidden, {-1, config_.hidden_size});
  return reshape(matmul(flat, active_score(), false, true), {-1});
}

Variable Transformer::token_logprobs(const TransformerInput& input, const Tensor& targets) const {
  RLAIF_CHECK(targets.shape() == input.ids.shape(), "Transformer::token_logprobs: targets ",
              targets, " must have the shape of ids ", input.ids);
  Variable lp = gather_logprobs(masked_logits(hidden_states(input)), targets.reshape({-1}));
  return reshape(lp, input.ids.shape());
}

Variable Transformer::token_losses(const TransformerInput& input, const Tensor& targets,
                                   int ignore_index) const {
  RLAIF_CHECK(targets.shape() == input.ids.shape(), "Transformer::token_losses: targets ", targets,
              " must have the shape of ids ", input.ids);
  return cross_entropy(masked_logits(hidden_states(input)), targets.reshape({-1}), ignore_index);
}

}  // namespace rlaif
