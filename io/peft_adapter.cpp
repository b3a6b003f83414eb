#include "io/peft_adapter.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "io/atomic_file.h"
#include "io/model_dir.h"
#include "io/safetensors.h"
#include "kernels/backend.h"

namespace rlaif {
namespace fs = std::filesystem;
namespace {

using Json = rapidjson::Value;

constexpr const char* kConfigFile = "adapter_config.json";
constexpr const char* kWeightsFile = "adapter_model.safetensors";

// A member that is absent or null reads as absent.
const Json* member(const Json& obj, const char* name) {
  auto it = obj.FindMember(name);
  return it == obj.MemberEnd() || it->value.IsNull() ? nullptr : &it->value;
}

std::vector<std::string> string_list(const Json& value, const char* key,
                                     const std::string& source) {
  RLAIF_CHECK(value.IsArray(), source, ": \"", key, "\" must be a list of strings");
  std::vector<std::string> out;
  for (const Json& v : value.GetArray()) {
    RLAIF_CHECK(v.IsString(), source, ": \"", key, "\" must be a list of strings");
    out.emplace_back(v.GetString());
  }
  return out;
}

bool contains(const std::vector<std::string>& list, const std::string& name) {
  return std::find(list.begin(), list.end(), name) != list.end();
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// Whether a member holds anything: not absent, null, false, an empty list or an empty object.
bool holds_something(const Json& obj, const char* name) {
  const Json* v = member(obj, name);
  if (v == nullptr) return false;
  if (v->IsBool()) return v->GetBool();
  if (v->IsArray()) return !v->Empty();
  if (v->IsObject()) return v->MemberCount() > 0;
  if (v->IsString()) return v->GetStringLength() > 0;
  return true;
}

// Settings with which PEFT computes something other than plain LoRA on the targeted modules.
void refuse_unsupported(const Json& doc, const std::string& source) {
  static const std::pair<const char*, const char*> kRefused[] = {
      {"use_dora", "DoRA (weight-decomposed LoRA)"},
      {"lora_bias", "a trainable bias on lora_B"},
      {"use_qalora", "QA-LoRA"},
      {"layers_to_transform", "adapters on a subset of the layers"},
      {"layers_pattern", "adapters on a subset of the layers"},
      {"rank_pattern", "per-module ranks"},
      {"alpha_pattern", "per-module alphas"},
      {"layer_replication", "replicated layers"},
      {"exclude_modules", "excluded modules"},
      {"target_parameters", "adapters on parameters rather than modules"},
      {"trainable_token_indices", "trainable token embeddings"},
      {"alora_invocation_tokens", "activated LoRA"},
  };
  for (const auto& [key, what] : kRefused) {
    RLAIF_CHECK(!holds_something(doc, key), source, ": \"", key, "\" asks for ", what,
                ", which rlaif does not apply (it applies plain LoRA adapters)");
  }
  if (const Json* bias = member(doc, "bias")) {
    RLAIF_CHECK(bias->IsString() && std::string(bias->GetString()) == "none", source,
                ": \"bias\" must be \"none\": rlaif trains no biases with LoRA adapters");
  }
}

double number(const Json& doc, const char* key, const std::string& source, double fallback,
              bool required) {
  const Json* v = member(doc, key);
  RLAIF_CHECK(v != nullptr || !required, source, ": missing key \"", key, "\"");
  if (v == nullptr) return fallback;
  RLAIF_CHECK(v->IsNumber(), source, ": \"", key, "\" must be a number");
  return v->GetDouble();
}

// Host f32 copy of a stored float tensor.
Tensor stored_f32(const Tensor& stored, const std::string& name, const std::string& file) {
  RLAIF_CHECK(is_floating(stored.dtype()), file, ": tensor '", name, "' is ", stored,
              ", a float dtype (F32, BF16, F16) is required");
  Tensor out = Tensor::empty(stored.shape(), DType::f32);
  backend_for(Device::cpu()).cast(stored, out);
  return out;
}

// Copies the tensors of an adapter file into `model`'s adapters, refusing (naming the file and
// the tensor) a missing, left-over or misshapen one.
void copy_adapter_tensors(Transformer& model, const SafetensorsFile& st, const std::string& file) {
  const LoraConfig& lc = model.lora_config();
  std::set<std::string> expected;
  for (const auto& [name, v] : model.adapter_parameters()) {
    expected.insert(name);
    RLAIF_CHECK(st.contains(name), file, ": missing tensor '", name, "' (", kConfigFile,
                " targets ", joined(lc.targets), " with r = ", lc.r, ")");
    const TensorInfo& info = st.info(name);
    RLAIF_CHECK(info.shape == v.shape(), file, ": tensor '", name, "' has shape ",
                shape_str(info.shape), " but r = ", lc.r, " and the model imply ",
                shape_str(v.shape()));
  }
  for (const std::string& name : st.names()) {
    RLAIF_CHECK(expected.count(name), file, ": unexpected tensor '", name,
                "' (not an adapter of the modules ", kConfigFile, " targets in this ",
                model.config().model_type, " model)");
  }
  for (const auto& [name, v] : model.adapter_parameters()) {
    Tensor host = stored_f32(st.tensor(name), name, file);
    backend_for(v.device()).cast(host.to(v.device()), v.data());
  }
}

}  // namespace

PeftAdapterConfig parse_adapter_config(const std::string& json, const std::string& source) {
  // JSON text holds no NUL byte; the parser would take one for the end of the file.
  RLAIF_CHECK(json.find('\0') == std::string::npos, source, ": a NUL byte at byte ",
              json.find('\0'), " (binary data, not JSON text)");
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(json.c_str(), json.size());
  RLAIF_CHECK(!doc.HasParseError(), source, ": invalid JSON at byte ", doc.GetErrorOffset(), ": ",
              rapidjson::GetParseError_En(doc.GetParseError()));
  RLAIF_CHECK(doc.IsObject(), source, ": must hold a JSON object");
  const Json* type = member(doc, "peft_type");
  RLAIF_CHECK(type != nullptr && type->IsString(), source, ": missing key \"peft_type\"");
  RLAIF_CHECK(std::string(type->GetString()) == "LORA", source, ": \"peft_type\" is \"",
              type->GetString(), "\": rlaif loads LoRA adapters only (\"LORA\")");
  refuse_unsupported(doc, source);

  PeftAdapterConfig out;
  LoraConfig& lc = out.lora;
  const double r = number(doc, "r", source, 8, true);
  RLAIF_CHECK(r == std::floor(r), source, ": \"r\" must be an integer, got ", r);
  lc.r = static_cast<int64_t>(r);
  lc.alpha = number(doc, "lora_alpha", source, 8, false);
  lc.dropout = number(doc, "lora_dropout", source, 0, false);
  if (const Json* t = member(doc, "target_modules")) {
    if (t->IsString()) {
      // PEFT reads a string as a regular expression over full module paths, except this one.
      RLAIF_CHECK(std::string(t->GetString()) == "all-linear", source, ": \"target_modules\" is ",
                  "the regular expression \"", t->GetString(),
                  "\", which rlaif does not apply: list the module names instead");
      lc.targets = {"all-linear"};
    } else {
      lc.targets = string_list(*t, "target_modules", source);
    }
  }
  if (const Json* v = member(doc, "use_rslora")) {
    RLAIF_CHECK(v->IsBool(), source, ": \"use_rslora\" must be true or false");
    lc.use_rslora = v->GetBool();
  }
  if (const Json* m = member(doc, "modules_to_save")) {
    lc.modules_to_save = string_list(*m, "modules_to_save", source);
  }
  if (const Json* t = member(doc, "task_type")) {
    RLAIF_CHECK(t->IsString(), source, ": \"task_type\" must be a string");
    out.task_type = t->GetString();
    RLAIF_CHECK(out.task_type == "CAUSAL_LM" || out.task_type == "SEQ_CLS", source,
                ": \"task_type\" is \"", out.task_type,
                "\": rlaif's models are CAUSAL_LM (language models) or SEQ_CLS (a scalar head)");
  }
  if (const Json* b = member(doc, "base_model_name_or_path")) {
    RLAIF_CHECK(b->IsString(), source, ": \"base_model_name_or_path\" must be a string");
    out.base_model_name_or_path = b->GetString();
  }
  lc.validate(source);
  return out;
}

PeftAdapterConfig read_adapter_config(const std::string& dir) {
  const std::string path = (fs::path(dir) / kConfigFile).string();
  std::ifstream in(path);
  RLAIF_CHECK(in.good(), "load_adapter: '", dir, "' has no ", kConfigFile,
              " (not a PEFT adapter directory)");
  std::stringstream buffer;
  buffer << in.rdbuf();
  return parse_adapter_config(buffer.str(), path);
}

std::string adapter_config_json(const Transformer& model, const std::string& base_model) {
  const LoraConfig& lc = model.lora_config();
  const bool seq_cls = contains(lc.modules_to_save, "score");
  rapidjson::StringBuffer buffer;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buffer);
  w.SetIndent(' ', 2);
  auto strings = [&](const std::vector<std::string>& list) {
    w.StartArray();
    for (const std::string& s : list) w.String(s.c_str());
    w.EndArray();
  };
  // Keys in sorted order, as PEFT's json.dumps(sort_keys=True) writes them.
  w.StartObject();
  w.Key("base_model_name_or_path");
  if (base_model.empty()) {
    w.Null();
  } else {
    w.String(base_model.c_str());
  }
  w.Key("bias"), w.String("none");
  w.Key("fan_in_fan_out"), w.Bool(model.config().is_gpt2());
  w.Key("inference_mode"), w.Bool(true);
  w.Key("init_lora_weights"), w.Bool(true);
  w.Key("lora_alpha");
  if (lc.alpha == std::floor(lc.alpha) && std::fabs(lc.alpha) < 1e15) {
    w.Int64(static_cast<int64_t>(lc.alpha));
  } else {
    w.Double(lc.alpha);
  }
  w.Key("lora_dropout"), w.Double(lc.dropout);
  w.Key("modules_to_save");
  if (lc.modules_to_save.empty()) {
    w.Null();
  } else {
    strings(lc.modules_to_save);
  }
  w.Key("peft_type"), w.String("LORA");
  w.Key("r"), w.Int64(lc.r);
  w.Key("target_modules"), strings(lc.targets);
  w.Key("task_type"), w.String(seq_cls ? "SEQ_CLS" : "CAUSAL_LM");
  w.Key("use_rslora"), w.Bool(lc.use_rslora);
  w.EndObject();
  return std::string(buffer.GetString()) + "\n";
}

void save_adapter(const std::string& dir, const Transformer& model, const std::string& base_model) {
  RLAIF_CHECK(model.has_adapters(), "save_adapter: the model has no LoRA adapters");
  const std::string config = adapter_config_json(model, base_model);
  fs::create_directories(dir);
  NamedTensors tensors;
  for (const auto& [name, v] : model.adapter_parameters()) {
    Tensor host = v.device().is_cpu() ? v.data() : v.data().to(Device::cpu());
    if (host.dtype() != DType::f32) {
      Tensor wide = Tensor::empty(host.shape(), DType::f32);
      backend_for(Device::cpu()).cast(host, wide);
      host = wide;
    }
    tensors.emplace_back(name, host);
  }
  write_safetensors((fs::path(dir) / kWeightsFile).string(), tensors, {{"format", "pt"}});
  write_file_atomically((fs::path(dir) / kConfigFile).string(), config);
}

void load_adapter(Transformer& model, const std::string& dir) {
  RLAIF_CHECK(!model.has_adapters(), "load_adapter: the model already has adapters");
  const PeftAdapterConfig pc = read_adapter_config(dir);
  const std::string config_path = (fs::path(dir) / kConfigFile).string();
  const std::string file = (fs::path(dir) / kWeightsFile).string();
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) {
    RLAIF_CHECK(!fs::is_regular_file(fs::path(dir) / "adapter_model.bin", ec), "load_adapter: '",
                dir, "' holds adapter_model.bin (a PyTorch pickle), which rlaif does not read: ",
                "save it again with safe_serialization=True");
    throw Error("load_adapter: '", dir, "' has no ", kWeightsFile);
  }
  const bool trains_head = contains(pc.lora.modules_to_save, "score") || pc.task_type == "SEQ_CLS";
  RLAIF_CHECK(!trains_head || model.has_scalar_head(), config_path,
              ": the adapter trains a scalar head (task_type SEQ_CLS, modules_to_save score) but "
              "the model has none: give it one first");
  RLAIF_CHECK(trains_head || !model.has_scalar_head(), config_path,
              ": the adapter trains no scalar head (task_type ",
              pc.task_type.empty() ? "null" : pc.task_type,
              ") but the model has one: load it onto the language model");
  SafetensorsFile st = SafetensorsFile::open(file);
  try {
    model.add_lora(pc.lora, 0);
  } catch (const Error& e) {
    throw Error(config_path, ": ", e.what());
  }
  try {
    copy_adapter_tensors(model, st, file);
  } catch (...) {
    model.remove_adapters();
    throw;
  }
}

void load_adapter_weights(Transformer& model, const std::string& dir) {
  RLAIF_CHECK(model.has_adapters(), "load_adapter_weights: the model has no adapters to fill");
  const std::string config_path = (fs::path(dir) / kConfigFile).string();
  const std::string file = (fs::path(dir) / kWeightsFile).string();
  std::error_code ec;
  RLAIF_CHECK(fs::is_regular_file(config_path, ec) && fs::is_regular_file(file, ec), "'", dir,
              "' holds no LoRA adapter (", kConfigFile, " and ", kWeightsFile,
              "), but this run trains adapters");
  const LoraConfig saved = read_adapter_config(dir).lora, &now = model.lora_config();
  std::string diffs;
  auto differs = [&](const char* key, const std::string& was, const std::string& is) {
    if (was != is) diffs += "\n  " + std::string(key) + ": '" + was + "' there, '" + is + "' here";
  };
  differs("r", std::to_string(saved.r), std::to_string(now.r));
  differs("lora_alpha", std::to_string(saved.alpha), std::to_string(now.alpha));
  differs("use_rslora", saved.use_rslora ? "true" : "false", now.use_rslora ? "true" : "false");
  auto sorted = [](std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return joined(v);
  };
  differs("target_modules", sorted(saved.targets), sorted(now.targets));
  differs("modules_to_save", sorted(saved.modules_to_save), sorted(now.modules_to_save));
  RLAIF_CHECK(diffs.empty(), config_path, ": the adapter is not shaped as this run's:", diffs);
  copy_adapter_tensors(model, SafetensorsFile::open(file), file);
}

void save_trained_model(const std::string& dir, const Transformer& model,
                        const std::string& tokenizer_source, const std::string& base_model) {
  if (!model.has_adapters()) {
    save_model(dir, model, tokenizer_source);
    return;
  }
  copy_tokenizer(tokenizer_source, dir);
  save_adapter(dir, model, base_model);
}

}  // namespace rlaif
