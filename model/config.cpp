#include "model/config.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

#include <cmath>
#include <fstream>
#include <functional>
#include <sstream>

#include "runtime/error.h"

namespace rlaif {
namespace {

using Json = rapidjson::Value;

// Upper bounds on the sizes a config may declare: far above any published model, and low enough
// that no size computed from them overflows 64 bits, so a corrupt or hostile config.json is
// refused before anything is allocated for it. Token ids are int32.
constexpr int64_t kMaxVocabSize = INT32_MAX;
constexpr int64_t kMaxWidth = int64_t{1} << 20;  // hidden_size, head_dim
constexpr int64_t kMaxLayers = int64_t{1} << 16;
constexpr int64_t kMaxHeads = int64_t{1} << 16;
constexpr int64_t kMaxIntermediateSize = int64_t{1} << 24;
constexpr int64_t kMaxPositions = int64_t{1} << 30;
constexpr int64_t kMaxParameters = int64_t{1} << 42;  // 4.4 trillion

// Typed readers that name the file and key on every mistake.
class Reader {
 public:
  Reader(const Json& obj, const std::string& source) : obj_(obj), source_(source) {}

  bool has(const char* key) const { return obj_.HasMember(key) && !obj_[key].IsNull(); }

  int64_t integer(const char* key) const {
    require(key);
    const Json& v = obj_[key];
    if (v.IsInt64()) return v.GetInt64();
    // A whole number written as a double (2048.0); outside int64's range it is no integer here
    // (and converting it would be undefined).
    const double d = v.IsDouble() ? v.GetDouble() : 0.5;
    if (d >= -0x1p63 && d < 0x1p63 && d == static_cast<double>(static_cast<int64_t>(d))) {
      return static_cast<int64_t>(d);
    }
    throw Error(source_, ": \"", key, "\" must be an integer");
  }
  int64_t integer(const char* key, int64_t fallback) const {
    return has(key) ? integer(key) : fallback;
  }
  // A size, refused above `max` (validate() checks that it is positive).
  int64_t size(const char* key, int64_t max) const { return bounded(key, integer(key), max); }
  int64_t size(const char* key, int64_t fallback, int64_t max) const {
    return has(key) ? size(key, max) : fallback;
  }
  int64_t bounded(const char* key, int64_t value, int64_t max) const {
    RLAIF_CHECK(value <= max, source_, ": \"", key, "\" is ", value, ", more than the ", max,
                " rlaif accepts (a corrupt config?)");
    return value;
  }

  double number(const char* key, double fallback) const {
    if (!has(key)) return fallback;
    const Json& v = obj_[key];
    RLAIF_CHECK(v.IsNumber(), source_, ": \"", key, "\" must be a number");
    // RapidJSON reads a number past double's range (1e309) as infinity.
    RLAIF_CHECK(std::isfinite(v.GetDouble()), source_, ": \"", key, "\" is not a finite number");
    return v.GetDouble();
  }

  bool boolean(const char* key, bool fallback) const {
    if (!has(key)) return fallback;
    RLAIF_CHECK(obj_[key].IsBool(), source_, ": \"", key, "\" must be true or false");
    return obj_[key].GetBool();
  }

  std::string string(const char* key, const std::string& fallback) const {
    if (!has(key)) return fallback;
    RLAIF_CHECK(obj_[key].IsString(), source_, ": \"", key, "\" must be a string");
    return obj_[key].GetString();
  }

  // Token ids may be an int or a list (HF allows eos_token_id: [2, 32000]); the first is used.
  int32_t token_id(const char* key) const {
    if (!has(key)) return -1;
    const Json& v = obj_[key];
    if (v.IsArray() && !v.Empty() && v[0].IsInt()) return v[0].GetInt();
    RLAIF_CHECK(v.IsInt(), source_, ": \"", key, "\" must be an integer token id");
    return v.GetInt();
  }

  // Every id of a key that may be an int or a list of ints; empty when absent or a single id.
  std::vector<int32_t> token_id_list(const char* key) const {
    std::vector<int32_t> out;
    if (!has(key) || !obj_[key].IsArray()) return out;
    for (const Json& v : obj_[key].GetArray()) {
      RLAIF_CHECK(v.IsInt(), source_, ": \"", key, "\" must list integer token ids");
      out.push_back(v.GetInt());
    }
    return out;
  }

  const Json& array(const char* key) const {
    require(key);
    RLAIF_CHECK(obj_[key].IsArray(), source_, ": \"", key, "\" must be a list");
    return obj_[key];
  }
  // A nested object; Error naming the key when it is not one.
  const Json& object(const char* key) const {
    require(key);
    RLAIF_CHECK(obj_[key].IsObject(), source_, ": \"", key, "\" must be an object");
    return obj_[key];
  }
  const std::string& source() const { return source_; }

  void require(const char* key) const {
    RLAIF_CHECK(has(key), source_, ": missing key \"", key, "\"");
  }

 private:
  const Json& obj_;
  const std::string& source_;
};

void parse_gpt2(const Reader& r, ModelConfig& c) {
  c.arch = Arch::gpt2;
  c.vocab_size = r.size("vocab_size", kMaxVocabSize);
  c.hidden_size = r.size("n_embd", kMaxWidth);
  c.num_layers = r.size("n_layer", kMaxLayers);
  c.num_heads = r.size("n_head", kMaxHeads);
  c.num_kv_heads = c.num_heads;
  c.max_position_embeddings = r.size("n_positions", kMaxPositions);
  c.intermediate_size = r.size("n_inner", 4 * c.hidden_size, kMaxIntermediateSize);
  c.norm_eps = r.number("layer_norm_epsilon", 1e-5);
  c.tie_word_embeddings = r.boolean("tie_word_embeddings", true);
  c.qkv_bias = c.o_bias = c.mlp_bias = true;
  std::string act = r.string("activation_function", "gelu_new");
  RLAIF_CHECK(act == "gelu_new" || act == "gelu_pytorch_tanh", "\"activation_function\" is \"", act,
              "\": rlaif's GPT-2 uses the tanh GELU (gelu_new)");
}

RopeScaling parse_rope_scaling(const Reader& r) {
  const Json& v = r.object("rope_scaling");
  Reader s(v, r.source());
  RopeScaling out;
  out.type = s.string("rope_type", s.string("type", ""));
  if (out.type == "default") out.type.clear();
  if (out.type.empty()) return out;
  RLAIF_CHECK(out.type == "linear" || out.type == "llama3", "\"rope_scaling\" has type \"",
              out.type, "\": rlaif implements \"linear\" and \"llama3\" RoPE scaling only");
  out.factor = s.number("factor", 0.0);
  RLAIF_CHECK(out.factor >= 1.0, "\"rope_scaling\".\"factor\" is ", out.factor,
              ": it must be at least 1");
  if (out.type == "llama3") {
    out.low_freq_factor = s.number("low_freq_factor", 0.0);
    out.high_freq_factor = s.number("high_freq_factor", 0.0);
    out.original_max_position_embeddings = s.integer("original_max_position_embeddings");
    RLAIF_CHECK(out.low_freq_factor > 0 && out.high_freq_factor > out.low_freq_factor &&
                    out.original_max_position_embeddings > 0,
                "\"rope_scaling\" (llama3) needs 0 < low_freq_factor < high_freq_factor and a "
                "positive original_max_position_embeddings");
  }
  return out;
}

// Which layers attend within a sliding window of `window` keys: "layer_types" where the config
// lists them, else default_sliding(i). A model with no sliding layer keeps no window.
void read_sliding_layers(const Reader& r, ModelConfig& c, int64_t window,
                         const std::function<bool(int64_t)>& default_sliding) {
  // The flags are allocated per layer: the count must be sane first (validate() comes later).
  RLAIF_CHECK(c.num_layers > 0, "\"num_hidden_layers\" must be positive, got ", c.num_layers);
  c.sliding_layers.assign(static_cast<size_t>(c.num_layers), false);
  if (r.has("layer_types")) {
    const Json& types = r.array("layer_types");
    RLAIF_CHECK(types.Size() == static_cast<rapidjson::SizeType>(c.num_layers),
                "\"layer_types\" lists ", types.Size(), " layers, not ", c.num_layers);
    for (rapidjson::SizeType i = 0; i < types.Size(); ++i) {
      const std::string t = types[i].IsString() ? types[i].GetString() : "";
      RLAIF_CHECK(t == "sliding_attention" || t == "full_attention", "\"layer_types\"[", i,
                  "] is \"", t, "\": expected sliding_attention or full_attention");
      c.sliding_layers[i] = t == "sliding_attention";
    }
  } else {
    for (int64_t i = 0; i < c.num_layers; ++i) c.sliding_layers[i] = default_sliding(i);
  }
  bool any_sliding = false;
  for (bool s : c.sliding_layers) any_sliding = any_sliding || s;
  if (!any_sliding) {
    c.sliding_layers.clear();
    return;
  }
  RLAIF_CHECK(window > 0, "\"sliding_window\" is ", window, ": it must be positive");
  c.sliding_window = window;
}

void parse_llama(const Reader& r, ModelConfig& c) {
  c.arch = Arch::llama;
  c.vocab_size = r.size("vocab_size", kMaxVocabSize);
  c.hidden_size = r.size("hidden_size", kMaxWidth);
  c.num_layers = r.size("num_hidden_layers", kMaxLayers);
  c.num_heads = r.size("num_attention_heads", kMaxHeads);
  c.num_kv_heads = r.size("num_key_value_heads", c.num_heads, kMaxHeads);
  c.intermediate_size = r.size("intermediate_size", kMaxIntermediateSize);
  c.max_position_embeddings = r.size("max_position_embeddings", 2048, kMaxPositions);
  c.norm_eps = r.number("rms_norm_eps", 1e-6);
  c.rope_theta = r.number("rope_theta", 10000.0);
  RLAIF_CHECK(c.rope_theta > 0, "\"rope_theta\" must be positive");
  c.tie_word_embeddings =
      r.boolean("tie_word_embeddings", false);  // HF Llama/Mistral/Qwen2 default
  bool attention_bias = r.boolean("attention_bias", false);
  c.qkv_bias = attention_bias || c.model_type == "qwen2";  // Qwen2 always biases q/k/v
  c.qk_norm = c.model_type == "qwen3";
  c.o_bias = attention_bias;
  c.mlp_bias = r.boolean("mlp_bias", false);
  if (r.has("head_dim")) c.head_dim = r.size("head_dim", kMaxWidth);
  std::string act = r.string("hidden_act", "silu");
  RLAIF_CHECK(act == "silu", "\"hidden_act\" is \"", act, "\": rlaif's Llama MLP is SwiGLU (silu)");
  if (r.has("rope_scaling")) c.rope_scaling = parse_rope_scaling(r);
  // Mistral slides every layer when sliding_window is set; Qwen2 and Qwen3 only with
  // use_sliding_window, and then (without layer_types) the layers from max_window_layers on.
  if (!r.has("sliding_window")) return;
  if (c.model_type == "mistral") {
    read_sliding_layers(r, c, r.integer("sliding_window"), [](int64_t) { return true; });
  } else if ((c.model_type == "qwen2" || c.model_type == "qwen3") &&
             r.boolean("use_sliding_window", false)) {
    const int64_t full_layers = r.integer("max_window_layers", 28);
    read_sliding_layers(r, c, r.integer("sliding_window"),
                        [full_layers](int64_t i) { return i >= full_layers; });
  }
}

// Gemma 3's text model (Gemma3ForCausalLM). Soft-capping (Gemma 2) is refused.
void parse_gemma3(const Reader& r, ModelConfig& c) {
  c.arch = Arch::llama;
  c.gemma = true;
  c.vocab_size = r.size("vocab_size", kMaxVocabSize);
  c.hidden_size = r.size("hidden_size", kMaxWidth);
  c.num_layers = r.size("num_hidden_layers", kMaxLayers);
  c.num_heads = r.size("num_attention_heads", kMaxHeads);
  c.num_kv_heads = r.size("num_key_value_heads", c.num_heads, kMaxHeads);
  c.head_dim = r.size("head_dim", 256, kMaxWidth);
  c.intermediate_size = r.size("intermediate_size", kMaxIntermediateSize);
  c.max_position_embeddings = r.size("max_position_embeddings", 131072, kMaxPositions);
  c.norm_eps = r.number("rms_norm_eps", 1e-6);
  c.rope_theta = r.number("rope_theta", 1000000.0);
  c.rope_local_theta = r.number("rope_local_base_freq", 10000.0);
  RLAIF_CHECK(c.rope_theta > 0 && c.rope_local_theta > 0,
              "\"rope_theta\" and \"rope_local_base_freq\" must be positive");
  c.tie_word_embeddings = r.boolean("tie_word_embeddings", true);
  c.qkv_bias = c.o_bias = r.boolean("attention_bias", false);
  c.qk_norm = true;
  c.embedding_scale = std::sqrt(static_cast<double>(c.hidden_size));
  const double query_scalar = r.number("query_pre_attn_scalar", 256.0);
  RLAIF_CHECK(query_scalar > 0, "\"query_pre_attn_scalar\" must be positive");
  c.attention_scale = 1.0 / std::sqrt(query_scalar);
  std::string act = r.string("hidden_activation", "gelu_pytorch_tanh");
  RLAIF_CHECK(act == "gelu_pytorch_tanh", "\"hidden_activation\" is \"", act,
              "\": rlaif's Gemma MLP gates with the tanh GELU (gelu_pytorch_tanh)");
  for (const char* cap : {"final_logit_softcapping", "attn_logit_softcapping"}) {
    RLAIF_CHECK(!r.has(cap), "\"", cap, "\" is set: rlaif does not implement soft-capping");
  }
  if (r.has("rope_scaling")) c.rope_scaling = parse_rope_scaling(r);
  // Which layers slide: "layer_types", else every layer but each sliding_window_pattern-th.
  const int64_t pattern = r.integer("sliding_window_pattern", 6);
  RLAIF_CHECK(pattern > 0, "\"sliding_window_pattern\" must be positive");
  read_sliding_layers(r, c, r.integer("sliding_window", 4096),
                      [pattern](int64_t i) { return (i + 1) % pattern != 0; });
}

// The parameter count in 128 bits: sizes within the bounds above cannot overflow it, so
// validate() can compare the total with kMaxParameters before anything relies on it.
__int128 parameter_count_wide(const ModelConfig& c) {
  using Wide = __int128;
  const bool g = c.is_gpt2();
  Wide d = c.hidden_size, kv = Wide{c.num_kv_heads} * c.head_dim,
       q = Wide{c.num_heads} * c.head_dim;
  Wide attn = d * q + 2 * d * kv + q * d;
  if (c.qkv_bias) attn += q + 2 * kv;
  if (c.o_bias) attn += d;
  Wide mlp = g ? 2 * d * c.intermediate_size : 3 * d * c.intermediate_size;
  if (c.mlp_bias) mlp += g ? c.intermediate_size + d : 2 * Wide{c.intermediate_size} + d;
  Wide norms = g ? 2 * 2 * d : 2 * d;
  if (c.qk_norm) norms += 2 * Wide{c.head_dim};
  if (c.gemma) norms += 2 * d;  // the post-norms of both blocks
  Wide per_layer = attn + mlp + norms;
  Wide total = c.num_layers * per_layer + c.vocab_size * d + (g ? 2 * d : d);
  if (g) total += c.max_position_embeddings * d;
  if (!c.tie_word_embeddings) total += c.vocab_size * d;
  return total;
}

}  // namespace

ModelConfig ModelConfig::from_json(const std::string& json, const std::string& source) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(json.c_str());
  RLAIF_CHECK(!doc.HasParseError(), source, ": invalid JSON at byte ", doc.GetErrorOffset(), ": ",
              rapidjson::GetParseError_En(doc.GetParseError()));
  RLAIF_CHECK(doc.IsObject(), source, ": must hold a JSON object");
  Reader r(doc, source);
  ModelConfig c;
  c.model_type = r.string("model_type", "");
  RLAIF_CHECK(!c.model_type.empty(), source, ": missing key \"model_type\"");
  try {
    if (c.model_type == "gpt2") {
      parse_gpt2(r, c);
    } else if (c.model_type == "llama" || c.model_type == "mistral" || c.model_type == "qwen2" ||
               c.model_type == "qwen3") {
      parse_llama(r, c);
    } else if (c.model_type == "gemma3_text") {
      parse_gemma3(r, c);
    } else if (c.model_type == "gemma3") {
      throw Error(
          "\"model_type\" is \"gemma3\", Gemma 3's multimodal model: rlaif loads its "
          "text model (\"gemma3_text\", Gemma3ForCausalLM) only");
    } else {
      throw Error("\"model_type\" is \"", c.model_type,
                  "\": rlaif supports gpt2, llama, mistral, qwen2, qwen3 and gemma3_text");
    }
  } catch (const Error& e) {
    std::string msg = e.what();
    if (msg.rfind(source, 0) == 0) throw;
    throw Error(source, ": ", msg);
  }
  if (c.head_dim == 0 && c.num_heads > 0) c.head_dim = c.hidden_size / c.num_heads;
  c.bos_token_id = r.token_id("bos_token_id");
  c.eos_token_id = r.token_id("eos_token_id");
  c.eos_token_ids = r.token_id_list("eos_token_id");
  c.pad_token_id = r.token_id("pad_token_id");
  // A scalar head exists only for *ForSequenceClassification architectures; language-model
  // configs may carry HF's default num_labels (2) without meaning anything by it.
  if (r.has("architectures") && doc["architectures"].IsArray()) {
    for (const auto& a : doc["architectures"].GetArray()) {
      std::string name = a.IsString() ? a.GetString() : "";
      if (name.find("ForSequenceClassification") != std::string::npos) {
        c.num_labels = r.integer("num_labels", 1);
      }
    }
  }
  c.validate(source);
  return c;
}

ModelConfig ModelConfig::load(const std::string& path) {
  std::ifstream in(path);
  RLAIF_CHECK(in.good(), "cannot open model config ", path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return from_json(buffer.str(), path);
}

void ModelConfig::validate(const std::string& source) const {
  auto positive = [&](int64_t v, const char* key) {
    RLAIF_CHECK(v > 0, source, ": \"", key, "\" must be positive, got ", v);
  };
  const bool g = is_gpt2();
  positive(vocab_size, "vocab_size");
  positive(hidden_size, g ? "n_embd" : "hidden_size");
  positive(num_layers, g ? "n_layer" : "num_hidden_layers");
  positive(num_heads, g ? "n_head" : "num_attention_heads");
  positive(num_kv_heads, "num_key_value_heads");
  positive(intermediate_size, g ? "n_inner" : "intermediate_size");
  positive(max_position_embeddings, g ? "n_positions" : "max_position_embeddings");
  auto at_most = [&](int64_t v, int64_t max, const char* key) {
    RLAIF_CHECK(v <= max, source, ": \"", key, "\" is ", v, ", more than the ", max,
                " rlaif accepts");
  };
  at_most(vocab_size, kMaxVocabSize, "vocab_size");
  at_most(hidden_size, kMaxWidth, g ? "n_embd" : "hidden_size");
  at_most(num_layers, kMaxLayers, g ? "n_layer" : "num_hidden_layers");
  at_most(num_heads, kMaxHeads, g ? "n_head" : "num_attention_heads");
  at_most(head_dim, kMaxWidth, "head_dim");
  at_most(intermediate_size, kMaxIntermediateSize, g ? "n_inner" : "intermediate_size");
  at_most(max_position_embeddings, kMaxPositions, g ? "n_positions" : "max_position_embeddings");
  RLAIF_CHECK(num_heads % num_kv_heads == 0, source, ": \"num_attention_heads\" (", num_heads,
              ") must be a multiple of \"num_key_value_heads\" (", num_kv_heads, ")");
  RLAIF_CHECK(head_dim > 0 && head_dim % 2 == 0, source, ": head size ", head_dim,
              " must be even and positive (hidden size / heads, or \"head_dim\")");
  if (g) {
    RLAIF_CHECK(hidden_size % num_heads == 0, source, ": \"n_embd\" (", hidden_size,
                ") must be a multiple of \"n_head\" (", num_heads, ")");
  }
  RLAIF_CHECK(norm_eps > 0, source, ": the norm epsilon must be positive");
  RLAIF_CHECK(num_labels == 0 || num_labels == 1, source, ": \"num_labels\" is ", num_labels,
              ": rlaif's scalar heads have exactly one label");
  const __int128 parameters = parameter_count_wide(*this);
  RLAIF_CHECK(parameters <= kMaxParameters, source, ": the sizes declare ",
              static_cast<double>(parameters), " parameters, more than the ",
              static_cast<double>(kMaxParameters), " rlaif accepts (a corrupt config?)");
}

int64_t ModelConfig::parameter_count() const {
  return static_cast<int64_t>(parameter_count_wide(*this));
}

std::vector<double> ModelConfig::rope_inverse_frequencies() const {
  const int64_t half = head_dim / 2;
  std::vector<double> out(static_cast<size_t>(half));
  const RopeScaling& s = rope_scaling;
  const double pi = 3.14159265358979323846;
  for (int64_t i = 0; i < half; ++i) {
    double f = std::pow(rope_theta, -2.0 * static_cast<double>(i) / static_cast<double>(head_dim));
    if (s.type == "linear") {
      f /= s.factor;
    } else if (s.type == "llama3") {
      // transformers' _compute_llama3_parameters.
      const double context = static_cast<double>(s.original_max_position_embeddings);
      const double low_wavelength = context / s.low_freq_factor;
      const double high_wavelength = context / s.high_freq_factor;
      const double wavelength = 2 * pi / f;
      if (wavelength > low_wavelength) {
        f /= s.factor;
      } else if (wavelength >= high_wavelength) {
        const double smooth =
            (context / wavelength - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        f = (1 - smooth) * f / s.factor + smooth * f;
      }
    }
    out[static_cast<size_t>(i)] = f;
  }
  return out;
}

std::string ModelConfig::to_json() const {
  rapidjson::StringBuffer buffer;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buffer);
  w.SetIndent(' ', 2);
  w.StartObject();
  auto key_int = [&](const char* k, int64_t v) { w.Key(k), w.Int64(v); };
  auto key_str = [&](const char* k, const std::string& v) { w.Key(k), w.String(v.c_str()); };
  w.Key("architectures");
  w.StartArray();
  std::string family = is_gpt2()                 ? "GPT2"
                       : model_type == "mistral" ? "Mistral"
                       : model_type == "qwen2"   ? "Qwen2"
                       : model_type == "qwen3"   ? "Qwen3"
                       : gemma                   ? "Gemma3"
                                                 : "Llama";
  std::string head =
      num_labels == 1 ? "ForSequenceClassification" : (is_gpt2() ? "LMHeadModel" : "ForCausalLM");
  w.String((family + head).c_str());
  w.EndArray();
  key_str("model_type", model_type);
  key_int("vocab_size", vocab_size);
  if (is_gpt2()) {
    key_int("n_embd", hidden_size);
    key_int("n_layer", num_layers);
    key_int("n_head", num_heads);
    key_int("n_positions", max_position_embeddings);
    key_int("n_ctx", max_position_embeddings);
    key_int("n_inner", intermediate_size);
    w.Key("layer_norm_epsilon"), w.Double(norm_eps);
    key_str("activation_function", "gelu_new");
  } else {
    key_int("hidden_size", hidden_size);
    key_int("intermediate_size", intermediate_size);
    key_int("num_hidden_layers", num_layers);
    key_int("num_attention_heads", num_heads);
    key_int("num_key_value_heads", num_kv_heads);
    key_int("head_dim", head_dim);
    key_int("max_position_embeddings", max_position_embeddings);
    w.Key("rms_norm_eps"), w.Double(norm_eps);
    w.Key("rope_theta"), w.Double(rope_theta);
    if (!rope_scaling.type.empty()) {
      w.Key("rope_scaling");
      w.StartObject();
      key_str("rope_type", rope_scaling.type);
      w.Key("factor"), w.Double(rope_scaling.factor);
      if (rope_scaling.type == "llama3") {
        w.Key("low_freq_factor"), w.Double(rope_scaling.low_freq_factor);
        w.Key("high_freq_factor"), w.Double(rope_scaling.high_freq_factor);
        key_int("original_max_position_embeddings", rope_scaling.original_max_position_embeddings);
      }
      w.EndObject();
    }
    if (gemma) {
      key_str("hidden_activation", "gelu_pytorch_tanh");
      w.Key("rope_local_base_freq"), w.Double(rope_local_theta);
      w.Key("query_pre_attn_scalar"), w.Double(1.0 / (attention_scale * attention_scale));
      w.Key("attention_bias"), w.Bool(qkv_bias);
      w.Key("layer_types");
      w.StartArray();
      for (size_t i = 0; i < static_cast<size_t>(num_layers); ++i) {
        const bool s = !sliding_layers.empty() && sliding_layers[i];
        w.String(s ? "sliding_attention" : "full_attention");
      }
      w.EndArray();
    } else {
      key_str("hidden_act", "silu");
      if (model_type != "qwen2") w.Key("attention_bias"), w.Bool(qkv_bias);
      w.Key("mlp_bias"), w.Bool(mlp_bias);
      if (sliding_window > 0 && model_type != "mistral") {  // Qwen2, Qwen3
        int64_t first_sliding = 0;
        while (!sliding_layers[static_cast<size_t>(first_sliding)]) ++first_sliding;
        w.Key("use_sliding_window"), w.Bool(true);
        key_int("max_window_layers", first_sliding);
        w.Key("layer_types");
        w.StartArray();
        for (bool s : sliding_layers) w.String(s ? "sliding_attention" : "full_attention");
        w.EndArray();
      }
    }
    if (sliding_window > 0) key_int("sliding_window", sliding_window);
  }
  w.Key("tie_word_embeddings"), w.Bool(tie_word_embeddings);
  if (bos_token_id >= 0) key_int("bos_token_id", bos_token_id);
  if (eos_token_ids.size() > 1) {
    w.Key("eos_token_id");
    w.StartArray();
    for (int32_t id : eos_token_ids) w.Int(id);
    w.EndArray();
  } else if (eos_token_id >= 0) {
    key_int("eos_token_id", eos_token_id);
  }
  if (pad_token_id >= 0) key_int("pad_token_id", pad_token_id);
  if (num_labels == 1) key_int("num_labels", 1);
  key_str("torch_dtype", "float32");
  w.EndObject();
  return std::string(buffer.GetString()) + "\n";
}

}  // namespace rlaif
