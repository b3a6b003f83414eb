// LoRA: the adapter math of model/lora.h, and the Transformer's adapter methods (declared in
// model/transformer.h), which place, name, freeze and merge the adapters of each layer.
#include "model/lora.h"

#include <algorithm>
#include <cmath>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "kernels/backend.h"
#include "model/transformer.h"

namespace rlaif {
namespace {

constexpr double kUniformGrid = 16777216.0;  // 2^24: Philox uniforms are multiples of 2^-24
constexpr int kSlots = static_cast<int>(LoraSlot::count);

// One module of a layer that can carry an adapter: its slot, its path below the layer in the
// Hugging Face model, and the adapter's in and out sizes.
struct LoraSite {
  LoraSlot slot;
  const char* suffix;
  int64_t in, out;
};

std::vector<LoraSite> lora_sites(const ModelConfig& c) {
  const int64_t d = c.hidden_size, q = c.num_heads * c.head_dim, kv = c.num_kv_heads * c.head_dim;
  const int64_t f = c.intermediate_size;
  if (c.is_gpt2()) {
    return {{LoraSlot::qkv, "attn.c_attn", d, q + 2 * kv},
            {LoraSlot::o, "attn.c_proj", q, d},
            {LoraSlot::fc_in, "mlp.c_fc", d, f},
            {LoraSlot::fc_out, "mlp.c_proj", f, d}};
  }
  return {{LoraSlot::q, "self_attn.q_proj", d, q},  {LoraSlot::k, "self_attn.k_proj", d, kv},
          {LoraSlot::v, "self_attn.v_proj", d, kv}, {LoraSlot::o, "self_attn.o_proj", q, d},
          {LoraSlot::fc_in, "mlp.gate_proj", d, f}, {LoraSlot::up, "mlp.up_proj", d, f},
          {LoraSlot::fc_out, "mlp.down_proj", f, d}};
}

std::string module_path(const ModelConfig& c, int64_t layer, const LoraSite& site) {
  return (c.is_gpt2() ? "transformer.h." : "model.layers.") + std::to_string(layer) + "." +
         site.suffix;
}

LoraPair& pair_of(LayerAdapters& a, LoraSlot slot) {
  switch (slot) {
    case LoraSlot::q:
      return a.q;
    case LoraSlot::k:
      return a.k;
    case LoraSlot::v:
      return a.v;
    case LoraSlot::o:
      return a.o;
    case LoraSlot::fc_in:
      return a.fc_in;
    case LoraSlot::up:
      return a.up;
    case LoraSlot::fc_out:
      return a.fc_out;
    default:
      return a.qkv;
  }
}

// The base weights an adapter's update lands on: one, or GPT-2's q, k and v for c_attn.
std::vector<Variable> base_weights(const TransformerLayer& l, LoraSlot slot) {
  switch (slot) {
    case LoraSlot::q:
      return {l.q_weight};
    case LoraSlot::k:
      return {l.k_weight};
    case LoraSlot::v:
      return {l.v_weight};
    case LoraSlot::o:
      return {l.o_weight};
    case LoraSlot::fc_in:
      return {l.fc_in_weight};
    case LoraSlot::up:
      return {l.up_weight};
    case LoraSlot::fc_out:
      return {l.fc_out_weight};
    default:
      return {l.q_weight, l.k_weight, l.v_weight};
  }
}

bool contains(const std::vector<std::string>& list, const std::string& name) {
  return std::find(list.begin(), list.end(), name) != list.end();
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

// ---- Configuration ----------------------------------------------------------------------------

double LoraConfig::scale() const {
  const double rank = static_cast<double>(r);
  return use_rslora ? alpha / std::sqrt(rank) : alpha / rank;
}

void LoraConfig::validate(const std::string& source) const {
  RLAIF_CHECK(r >= 1, source, ": LoRA rank r must be at least 1, got ", r);
  RLAIF_CHECK(std::isfinite(alpha), source, ": lora_alpha must be finite, got ", alpha);
  RLAIF_CHECK(dropout >= 0.0 && dropout < 1.0, source, ": lora_dropout must be in [0, 1), got ",
              dropout);
  for (const std::string& t : targets) {
    RLAIF_CHECK(!t.empty(), source, ": a LoRA target module name is empty");
  }
  for (const std::string& m : modules_to_save) {
    RLAIF_CHECK(m == "score" || m == "classifier", source, ": modules_to_save '", m,
                "' is not supported: rlaif trains only the scalar head ('score') in full next "
                "to LoRA adapters");
  }
}

std::vector<std::string> lora_module_names(const ModelConfig& config) {
  if (config.is_gpt2()) return {"c_attn", "c_proj", "c_fc"};
  return {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
}

std::vector<std::string> default_lora_targets(const ModelConfig& config) {
  if (config.is_gpt2()) return {"c_attn"};
  return {"q_proj", "v_proj"};
}

bool lora_target_matches(const std::string& module_path, const std::vector<std::string>& targets) {
  for (const std::string& t : targets) {
    if (module_path == t) return true;
    if (module_path.size() > t.size() && module_path.ends_with(t) &&
        module_path[module_path.size() - t.size() - 1] == '.') {
      return true;
    }
  }
  return false;
}

// ---- The adapted linear layer -----------------------------------------------------------------

Variable lora_dropout(const Variable& x, const LoraDropout& dropout) {
  const float p = dropout.p;
  RLAIF_CHECK(p >= 0.0f && p < 1.0f, "lora_dropout: p must be in [0, 1), got ", p);
  if (p == 0.0f) return x;
  Backend& backend = backend_for(x.device());
  // p' on the uniforms' grid; 1 - p' is exact in f32.
  const float p_grid =
      static_cast<float>(std::ceil(static_cast<double>(p) * kUniformGrid) / kUniformGrid);
  Tensor u = Tensor::empty(x.shape(), DType::f32, x.device());
  backend.random_uniform(u, dropout.seed, dropout.offset, 0.0f, 1.0f);  // u exactly
  // u + (1 - p') is a multiple of 2^-24: exact below 1 (where u < p'), and ≥ 1 but below 2 after
  // rounding where u ≥ p'. Truncating it to an integer gives the keep bit.
  backend.affine(u, 1.0f, 1.0f - p_grid, u);
  Tensor keep = Tensor::empty(x.shape(), DType::u8, x.device());
  backend.cast(u, keep);
  Tensor mask = Tensor::empty(x.shape(), x.dtype(), x.device());
  backend.cast(keep, mask);
  backend.affine(mask, static_cast<float>(1.0 / (1.0 - static_cast<double>(p))), 0.0f, mask);
  return mul(x, Variable(mask));
}

Variable lora_linear(const Variable& x, const Variable& weight, const Variable& bias,
                     const LoraPair& adapter, float s, const LoraDropout& dropout) {
  if (!adapter.defined()) return linear(x, weight, bias);
  // One node for W x + b + s · B a: the [..., out] intermediates are never kept.
  return linear_low_rank(x, weight, bias, linear(lora_dropout(x, dropout), adapter.A), adapter.B,
                         s);
}

LoraDropout LoraLayerRun::dropout_of(LoraSlot slot) const {
  const uint64_t stream = static_cast<uint64_t>(layer) * kSlots + static_cast<uint64_t>(slot);
  return {dropout, seed, stream << 40};
}

Variable LoraLayerRun::linear(const Variable& x, const Variable& weight, const Variable& bias,
                              const LoraPair& pair, LoraSlot slot) const {
  if (!pair.defined()) return rlaif::linear(x, weight, bias);
  return lora_linear(x, weight, bias, pair, scale, dropout_of(slot));
}

std::vector<Variable> LoraLayerRun::qkv_linear(const Variable& x,
                                               const std::array<Variable, 3>& weights,
                                               const std::array<Variable, 3>& biases) const {
  const LoraPair& fused = adapters.qkv;
  if (!fused.defined()) {
    return {linear(x, weights[0], biases[0], adapters.q, LoraSlot::q),
            linear(x, weights[1], biases[1], adapters.k, LoraSlot::k),
            linear(x, weights[2], biases[2], adapters.v, LoraSlot::v)};
  }
  Variable a = rlaif::linear(lora_dropout(x, dropout_of(LoraSlot::qkv)), fused.A);  // [..., r]
  std::vector<Variable> out;
  int64_t row = 0;
  for (size_t j = 0; j < 3; ++j) {
    const int64_t rows = weights[j].size(0);
    out.push_back(
        linear_low_rank(x, weights[j], biases[j], a, slice(fused.B, row, row + rows), scale));
    row += rows;
  }
  RLAIF_CHECK(row == fused.B.size(0), "LoRA: c_attn's B ", fused.B.str(), " does not have the ",
              row, " rows of q, k and v");
  return out;
}

std::vector<Variable> LoraLayerRun::attention_inputs() const {
  const LayerAdapters& a = adapters;
  return {a.q.A, a.q.B, a.k.A, a.k.B, a.v.A, a.v.B, a.qkv.A, a.qkv.B};
}

std::vector<Variable> LoraLayerRun::mlp_inputs() const {
  const LayerAdapters& a = adapters;
  return {a.fc_in.A, a.fc_in.B, a.up.A, a.up.B, a.fc_out.A, a.fc_out.B};
}

// ---- Transformer's adapters ---------------------------------------------------------------------

void Transformer::add_lora(const LoraConfig& requested, uint64_t seed) {
  RLAIF_CHECK(!has_adapters(),
              "add_lora: the model already has adapters (merge_adapters or remove_adapters first)");
  const ModelConfig& c = config_;
  LoraConfig lc = requested;
  lc.validate("add_lora");
  if (lc.targets.empty()) lc.targets = default_lora_targets(c);
  if (lc.targets.size() == 1 && lc.targets[0] == "all-linear") {
    lc.targets = lora_module_names(c);
  }
  RLAIF_CHECK(!contains(lc.targets, "all-linear"),
              "add_lora: 'all-linear' must be the only target");
  // PEFT's SEQ_CLS models always train their head; "classifier" names no rlaif module.
  std::erase(lc.modules_to_save, "classifier");
  RLAIF_CHECK(!contains(lc.modules_to_save, "score") || has_scalar_head(),
              "add_lora: modules_to_save names 'score' but the model has no scalar head");
  if (has_scalar_head() && !contains(lc.modules_to_save, "score")) {
    lc.modules_to_save.push_back("score");
  }

  Backend& backend = backend_for(device_);
  const std::vector<LoraSite> sites = lora_sites(c);
  std::vector<bool> used(lc.targets.size(), false);
  LoraState state;
  state.layers.resize(static_cast<size_t>(c.num_layers));
  for (int64_t i = 0; i < c.num_layers; ++i) {
    for (const LoraSite& site : sites) {
      const std::string path = module_path(c, i, site);
      bool hit = false;
      for (size_t t = 0; t < lc.targets.size(); ++t) {
        if (lora_target_matches(path, {lc.targets[t]})) used[t] = hit = true;
      }
      if (!hit) continue;
      // A ~ U(-1/√in, 1/√in) from its own region of the stream, so that the values of one
      // adapter do not depend on which others exist; B = 0.
      Tensor a = Tensor::empty({lc.r, site.in}, dtype_, device_);
      const uint64_t stream = static_cast<uint64_t>(i) * kSlots + static_cast<uint64_t>(site.slot);
      const float bound = static_cast<float>(1.0 / std::sqrt(static_cast<double>(site.in)));
      backend.random_uniform(a, seed, stream << 40, -bound, bound);
      const std::string name = "base_model.model." + path;
      LoraPair& pair = pair_of(state.layers[static_cast<size_t>(i)], site.slot);
      pair.A = Variable(a, true, name + ".lora_A.weight");
      pair.B =
          Variable(Tensor::zeros({site.out, lc.r}, dtype_, device_), true, name + ".lora_B.weight");
    }
  }
  for (size_t t = 0; t < lc.targets.size(); ++t) {
    RLAIF_CHECK(used[t], "add_lora: target module '", lc.targets[t],
                "' matches no module rlaif can adapt in this ", c.model_type,
                " model (its layers offer ", joined(lora_module_names(c)),
                "; a target is a module name or a dotted suffix of a module's path, as in PEFT)");
  }
  if (contains(lc.modules_to_save, "score")) {
    state.score = Variable(score_.data().clone(), true, "base_model.model.score.weight");
  }
  state.config = std::move(lc);
  *lora_ = std::move(state);
}

bool Transformer::has_adapters() const {
  return !lora_->layers.empty();
}

const LoraConfig& Transformer::lora_config() const {
  RLAIF_CHECK(has_adapters(), "Transformer: the model has no LoRA adapters");
  return lora_->config;
}

std::vector<std::pair<std::string, Variable>> Transformer::adapter_parameters() const {
  std::vector<std::pair<std::string, Variable>> out;
  if (!has_adapters()) return out;
  const std::vector<LoraSite> sites = lora_sites(config_);
  for (int64_t i = 0; i < config_.num_layers; ++i) {
    LayerAdapters& adapters = lora_->layers[static_cast<size_t>(i)];
    for (const LoraSite& site : sites) {
      const LoraPair& pair = pair_of(adapters, site.slot);
      if (!pair.defined()) continue;
      const std::string name = "base_model.model." + module_path(config_, i, site);
      out.emplace_back(name + ".lora_A.weight", pair.A);
      out.emplace_back(name + ".lora_B.weight", pair.B);
    }
  }
  if (lora_->score.defined()) out.emplace_back("base_model.model.score.weight", lora_->score);
  return out;
}

void Transformer::freeze_base() {
  RLAIF_CHECK(has_adapters(), "freeze_base: the model has no LoRA adapters to train");
  set_requires_grad(false);
  for (auto& [name, v] : adapter_parameters()) v.set_requires_grad(true);
}

void Transformer::merge_adapters() {
  RLAIF_CHECK(has_adapters(), "merge_adapters: the model has no LoRA adapters");
  Backend& backend = backend_for(device_);
  const float s = static_cast<float>(lora_->config.scale());
  const std::vector<LoraSite> sites = lora_sites(config_);
  for (size_t i = 0; i < layers_.size(); ++i) {
    for (const LoraSite& site : sites) {
      const LoraPair& pair = pair_of(lora_->layers[i], site.slot);
      if (!pair.defined()) continue;
      int64_t row = 0;
      for (const Variable& w : base_weights(layers_[i], site.slot)) {
        // W ← s · B_rows A + W: one product accumulated into the weight.
        const Tensor b = pair.B.data().slice(row, row + w.size(0));
        backend.matmul(b, pair.A.data(), w.data(), false, false, Tensor(), s, 1.0f);
        row += w.size(0);
      }
    }
  }
  if (lora_->score.defined()) score_.data().copy_from(lora_->score.data());
  *lora_ = LoraState();
}

void Transformer::remove_adapters() {
  *lora_ = LoraState();
}

LoraLayerRun Transformer::lora_run(int64_t layer) const {
  LoraLayerRun run;
  run.layer = layer;
  if (!adapters_enabled_ || !has_adapters()) return run;
  run.adapters = lora_->layers[static_cast<size_t>(layer)];
  run.scale = static_cast<float>(lora_->config.scale());
  run.dropout = grad_mode_enabled() ? static_cast<float>(lora_->config.dropout) : 0.0f;
  run.seed = lora_dropout_seed_;
  return run;
}

const Variable& Transformer::active_score() const {
  return adapters_enabled_ && lora_->score.defined() ? lora_->score : score_;
}

}  // namespace rlaif
