#include "io/model_dir.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "io/atomic_file.h"
#include "io/safetensors_checkpoint.h"
#include "kernels/backend.h"

namespace rlaif {
namespace fs = std::filesystem;
namespace {

// Host f32 copy of a stored tensor (widening BF16/F16).
Tensor to_f32(const Tensor& stored, const std::string& name, const std::string& dir) {
  RLAIF_CHECK(is_floating(stored.dtype()), dir, ": tensor '", name, "' is ", stored,
              ", a float dtype (F32, BF16, F16) is required");
  Tensor out = Tensor::empty(stored.shape(), DType::f32);
  backend_for(Device::cpu()).cast(stored, out);
  return out;
}

// Host transpose of a 2-D f32 tensor (load/save time only, so a plain loop).
Tensor transpose2d(const Tensor& t) {
  const int64_t r = t.size(0), c = t.size(1);
  Tensor out = Tensor::empty({c, r}, DType::f32);
  const float* src = t.data<float>();
  float* dst = out.data<float>();
  for (int64_t i = 0; i < r; ++i) {
    for (int64_t j = 0; j < c; ++j) dst[j * r + i] = src[i * c + j];
  }
  return out;
}

// GPT-2's HF name for a tensor that rlaif keeps under `name` with the same layout, or "" for the
// ones that need conversion.
struct Gpt2Fused {
  std::string hf_name;             // e.g. transformer.h.0.attn.c_attn.weight
  std::vector<std::string> parts;  // rlaif names concatenated (after transposing) into it
  bool transposed;                 // Conv1D weight stored [in, out]
};

std::vector<Gpt2Fused> gpt2_conversions(const ModelConfig& c) {
  std::vector<Gpt2Fused> out;
  for (int64_t i = 0; i < c.num_layers; ++i) {
    std::string p = "transformer.h." + std::to_string(i) + ".";
    out.push_back({p + "attn.c_attn.weight",
                   {p + "attn.q_proj.weight", p + "attn.k_proj.weight", p + "attn.v_proj.weight"},
                   true});
    out.push_back({p + "attn.c_attn.bias",
                   {p + "attn.q_proj.bias", p + "attn.k_proj.bias", p + "attn.v_proj.bias"},
                   false});
    out.push_back({p + "attn.c_proj.weight", {p + "attn.o_proj.weight"}, true});
    out.push_back({p + "attn.c_proj.bias", {p + "attn.o_proj.bias"}, false});
    out.push_back({p + "mlp.c_fc.weight", {p + "mlp.fc_in.weight"}, true});
    out.push_back({p + "mlp.c_fc.bias", {p + "mlp.fc_in.bias"}, false});
    out.push_back({p + "mlp.c_proj.weight", {p + "mlp.fc_out.weight"}, true});
    out.push_back({p + "mlp.c_proj.bias", {p + "mlp.fc_out.bias"}, false});
  }
  return out;
}

// Stored names may lack GPT-2's "transformer." prefix (GPT2Model checkpoints, e.g. the original
// openai-community/gpt2 upload) or carry a leading "model." twice-removed; normalise them.
std::string canonical_gpt2_name(const std::string& stored) {
  if (stored.rfind("transformer.", 0) == 0 || stored == "lm_head.weight" ||
      stored == "score.weight") {
    return stored;
  }
  return "transformer." + stored;
}

bool ignored_buffer(const std::string& name) {
  // Old GPT-2 checkpoints store the causal mask buffers; Llama ones sometimes store RoPE's
  // inv_freq. Both are recomputed, never learned.
  return name.ends_with(".attn.bias") || name.ends_with(".attn.masked_bias") ||
         name.ends_with("rotary_emb.inv_freq");
}

void copy_into(const Variable& param, const Tensor& value, const std::string& name,
               const std::string& dir) {
  RLAIF_CHECK(param.shape() == value.shape(), dir, ": tensor '", name, "' has shape ",
              shape_str(value.shape()), " but the config implies ", shape_str(param.shape()));
  param.data().copy_from(value);
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  RLAIF_CHECK(in.good(), "save_model: cannot read tokenizer file '", path, "'");
  std::stringstream buffer;
  buffer << in.rdbuf();
  RLAIF_CHECK(!in.bad(), "save_model: error reading tokenizer file '", path, "'");
  return buffer.str();
}

// The tokenizer files named by `source` (see save_model): (file name, bytes) pairs, read up front
// so that a bad source fails before anything is written and `source` may be the output itself.
std::vector<std::pair<std::string, std::string>> tokenizer_contents(const std::string& source) {
  std::vector<std::pair<std::string, std::string>> contents;
  if (source.empty()) return contents;
  std::error_code ec;
  const std::string name = fs::path(source).filename().string();
  std::vector<std::string> files;
  if (fs::is_directory(source, ec)) {
    files = tokenizer_files(source);
    RLAIF_CHECK(!files.empty(), "save_model: '", source,
                "' holds no tokenizer files (tokenizer.json, vocab.json + merges.txt, "
                "tokenizer.model)");
  } else if (name == "tokenizer.json" || name == "tokenizer.json.xz") {
    files = tokenizer_files(fs::path(source).parent_path().string());
    RLAIF_CHECK(!files.empty(), "save_model: cannot read tokenizer '", source, "'");
  } else {
    contents.emplace_back("tokenizer.model", read_bytes(source));
    return contents;
  }
  for (const std::string& f : files) contents.emplace_back(fs::path(f).filename(), read_bytes(f));
  return contents;
}

}  // namespace

std::vector<std::string> tokenizer_files(const std::string& dir) {
  static const char* const kNames[] = {"tokenizer.json",
                                       "tokenizer_config.json",
                                       "generation_config.json",
                                       "special_tokens_map.json",
                                       "added_tokens.json",
                                       "vocab.json",
                                       "merges.txt",
                                       "chat_template.jinja",
                                       "tokenizer.model"};
  std::vector<std::string> out;
  std::error_code ec;
  for (const char* name : kNames) {
    for (const std::string& file : {std::string(name), std::string(name) + ".xz"}) {
      const fs::path p = fs::path(dir) / file;
      if (fs::is_regular_file(p, ec)) out.push_back(p.string());
    }
  }
  return out;
}

std::vector<int32_t> generation_stop_ids(const ModelConfig& config, const Tokenizer& tokenizer) {
  std::vector<int32_t> out;
  auto add = [&](int32_t id) {
    if (id >= 0 && std::find(out.begin(), out.end(), id) == out.end()) out.push_back(id);
  };
  add(config.eos_token_id);
  for (int32_t id : config.eos_token_ids) add(id);
  for (int32_t id : tokenizer.eos_ids()) add(id);
  return out;
}

Transformer load_model(const std::string& dir, Device device, DType dtype) {
  RLAIF_CHECK(fs::is_directory(dir), "load_model: '", dir, "' is not a directory");
  RLAIF_CHECK(dtype == DType::f32 || !device.is_cpu(), "load_model: ", dtype_name(dtype),
              " parameters need a GPU (--device cuda): the cpu backend computes in f32");
  ModelConfig config = ModelConfig::load((fs::path(dir) / "config.json").string());
  SafetensorsCheckpoint ckpt = SafetensorsCheckpoint::open_dir(dir);
  // Collect stored tensors under rlaif's canonical HF names.
  std::map<std::string, std::string> stored;  // canonical → stored name
  for (const std::string& name : ckpt.names()) {
    if (ignored_buffer(name)) continue;
    std::string canonical = config.is_gpt2() ? canonical_gpt2_name(name) : name;
    RLAIF_CHECK(!stored.count(canonical), dir, ": tensor '", name, "' appears twice (as '",
                stored[canonical], "')");
    stored[canonical] = name;
  }
  if (stored.count("score.weight")) config.num_labels = 1;
  // A tied head may still be stored (some exporters write it); it must then be ignored.
  if (config.tie_word_embeddings) stored.erase("lm_head.weight");

  Transformer model(config, Device::cpu());
  std::set<std::string> used;
  auto take = [&](const std::string& canonical) -> Tensor {
    auto it = stored.find(canonical);
    RLAIF_CHECK(it != stored.end(), dir, ": missing tensor '", canonical, "' (a ",
                config.model_type, " model with ", config.num_layers, " layers needs it)");
    used.insert(canonical);
    return to_f32(ckpt.tensor(it->second), it->second, dir);
  };

  std::set<std::string> converted;
  if (config.is_gpt2()) {
    for (const Gpt2Fused& f : gpt2_conversions(config)) {
      Tensor value = take(f.hf_name);
      if (f.transposed) {
        RLAIF_CHECK(value.dim() == 2, dir, ": tensor '", f.hf_name, "' must be 2-D, got ",
                    shape_str(value.shape()));
        value = transpose2d(value);
      }
      int64_t row = 0;
      for (const std::string& part : f.parts) {
        Variable p = model.parameter(part);
        int64_t rows = p.size(0);
        RLAIF_CHECK(row + rows <= value.size(0), dir, ": tensor '", f.hf_name, "' has shape ",
                    shape_str(value.shape()), ", too small for the config");
        copy_into(p, value.slice(row, row + rows), f.hf_name, dir);
        row += rows;
        converted.insert(part);
      }
      RLAIF_CHECK(row == value.size(0), dir, ": tensor '", f.hf_name, "' has shape ",
                  shape_str(value.shape()), ", larger than the config implies");
    }
  }
  for (auto& [name, param] : model.parameters()) {
    if (converted.count(name)) continue;
    copy_into(param, take(name), name, dir);
  }
  for (auto& [canonical, name] : stored) {
    RLAIF_CHECK(used.count(canonical), dir, ": unexpected tensor '", name, "' (not part of a ",
                config.model_type, " model with this config)");
  }
  if (device.is_cpu()) return model;
  Transformer on_device(model.config(), device, dtype);
  auto src = model.parameters(), dst = on_device.parameters();
  for (size_t i = 0; i < src.size(); ++i) {
    const Tensor& to = dst[i].second.data();
    if (dtype == DType::f32) {
      to.copy_from(src[i].second.data());
    } else {  // round on the device: one f32 copy of one tensor at a time
      backend_for(device).cast(src[i].second.data().to(device), to);
    }
  }
  return on_device;
}

void save_model(const std::string& dir, const Transformer& model,
                const std::string& tokenizer_source) {
  const std::vector<std::pair<std::string, std::string>> tokenizer =
      tokenizer_contents(tokenizer_source);
  fs::create_directories(dir);
  const ModelConfig& config = model.config();
  NamedTensors tensors;
  auto host = [](const Variable& v) {  // f32 on the host (bf16 models are widened)
    Tensor t = v.device().is_cpu() ? v.data() : v.data().to(Device::cpu());
    if (t.dtype() == DType::f32) return t;
    Tensor wide = Tensor::empty(t.shape(), DType::f32);
    backend_for(Device::cpu()).cast(t, wide);
    return wide;
  };
  // GPT-2: each fused HF tensor is emitted where its first rlaif part would have gone.
  std::map<std::string, std::pair<std::string, Tensor>> fused_at;  // first part → (HF name, value)
  std::set<std::string> converted;
  if (config.is_gpt2()) {
    for (const Gpt2Fused& f : gpt2_conversions(config)) {
      std::vector<Tensor> parts;
      int64_t rows = 0;
      for (const std::string& part : f.parts) {
        parts.push_back(host(model.parameter(part)));
        rows += parts.back().size(0);
        converted.insert(part);
      }
      Shape shape = parts[0].shape();
      shape[0] = rows;
      Tensor joined = Tensor::empty(shape, DType::f32);
      backend_for(Device::cpu()).concat(parts, joined);
      fused_at[f.parts[0]] = {f.hf_name, f.transposed ? transpose2d(joined) : joined};
    }
  }
  for (auto& [name, param] : model.parameters()) {
    if (auto it = fused_at.find(name); it != fused_at.end()) {
      tensors.push_back(it->second);
    } else if (!converted.count(name)) {
      tensors.emplace_back(name, host(param));
    }
  }
  write_safetensors_dir(dir, tensors);
  write_file_atomically((fs::path(dir) / "config.json").string(), config.to_json());
  for (const auto& [file, bytes] : tokenizer) {
    write_file_atomically((fs::path(dir) / file).string(), bytes);
  }
}

void copy_tokenizer(const std::string& tokenizer_source, const std::string& dir) {
  const std::vector<std::pair<std::string, std::string>> tokenizer =
      tokenizer_contents(tokenizer_source);
  fs::create_directories(dir);
  for (const auto& [file, bytes] : tokenizer) {
    write_file_atomically((fs::path(dir) / file).string(), bytes);
  }
}

}  // namespace rlaif
