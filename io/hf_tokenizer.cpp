#include "io/hf_tokenizer.h"

#include <rapidjson/document.h>

#include <algorithm>

#include "io/compressed_text.h"
#include "runtime/error.h"

namespace rlaif::hf {

namespace {

rapidjson::Document parse_json(const std::string& text, const std::string& path) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(text.data(), text.size());
  RLAIF_CHECK(!doc.HasParseError(), path, ": not valid JSON (offset ", doc.GetErrorOffset(), ")");
  RLAIF_CHECK(doc.IsObject(), path, ": expected a JSON object");
  return doc;
}

std::vector<AddedToken> added_tokens_of(const Json& doc, const std::string& file) {
  std::vector<AddedToken> tokens;
  const Json* list = member(doc, "added_tokens");
  if (list == nullptr) return tokens;
  const std::string origin = file + ": added_tokens";
  RLAIF_CHECK(list->IsArray(), origin, " must be a list");
  for (const Json& t : list->GetArray()) {
    AddedToken token;
    token.content = string_member(t, "content", origin);
    const Json* id = member(t, "id");
    RLAIF_CHECK(id != nullptr && id->IsInt() && id->GetInt() >= 0, origin, ": token '",
                token.content, "' needs a non-negative integer \"id\"");
    token.id = id->GetInt();
    token.special = bool_member(t, "special", origin, false);
    token.single_word = bool_member(t, "single_word", origin, false);
    token.lstrip = bool_member(t, "lstrip", origin, false);
    token.rstrip = bool_member(t, "rstrip", origin, false);
    token.normalized = bool_member(t, "normalized", origin, !token.special);
    tokens.push_back(std::move(token));
  }
  return tokens;
}

// Appends the templates one post-processor applies, in order.
void post_processor_templates(const Json& json, const std::string& file,
                              std::vector<SingleTemplate>& out) {
  const std::string origin = component_origin(file, "post_processor", json);
  const std::string type = type_of(json, origin);
  if (type == "ByteLevel") return;  // changes offsets only
  if (type == "Sequence") {
    const Json* list = member(json, "processors");
    RLAIF_CHECK(list != nullptr && list->IsArray(), origin, ": \"processors\" must be a list");
    for (const Json& p : list->GetArray()) post_processor_templates(p, file, out);
    return;
  }
  SingleTemplate t;
  if (type == "TemplateProcessing") {
    const Json* single = member(json, "single");
    const Json* specials = member(json, "special_tokens");
    RLAIF_CHECK(single != nullptr && single->IsArray(), origin, ": \"single\" must be a list");
    for (const Json& piece : single->GetArray()) {
      if (const Json* seq = member(piece, "Sequence")) {
        const std::string id = string_member(*seq, "id", origin);
        RLAIF_CHECK(id == "A", origin, ": the single template may only hold sequence A, not ", id);
        t.pieces.emplace_back();
        t.has_sequence = true;
      } else if (const Json* sp = member(piece, "SpecialToken")) {
        const std::string name = string_member(*sp, "id", origin);
        const Json* entry = specials ? member(*specials, name.c_str()) : nullptr;
        RLAIF_CHECK(entry != nullptr, origin, ": special token '", name,
                    "' is missing from \"special_tokens\"");
        const Json* ids = member(*entry, "ids");
        RLAIF_CHECK(ids != nullptr && ids->IsArray() && !ids->Empty(), origin, ": special token '",
                    name, "' needs a non-empty \"ids\" list");
        std::vector<int32_t> v;
        for (const Json& i : ids->GetArray()) {
          RLAIF_CHECK(i.IsInt(), origin, ": special token '", name, "' has a non-integer id");
          v.push_back(i.GetInt());
        }
        t.pieces.push_back(std::move(v));
      } else {
        throw Error(origin, ": a template piece must be {\"Sequence\"} or {\"SpecialToken\"}");
      }
    }
  } else if (type == "BertProcessing" || type == "RobertaProcessing") {
    for (const char* name : {"cls", "sep"}) {
      const Json* v = member(json, name);
      RLAIF_CHECK(v != nullptr && v->IsArray() && v->Size() == 2 && (*v)[1].IsInt(), origin, ": \"",
                  name, "\" must be [token, id]");
      t.pieces.push_back({(*v)[1].GetInt()});
      if (std::string(name) == "cls") {
        t.pieces.emplace_back();
        t.has_sequence = true;
      }
    }
  } else {
    throw Error(origin, ": unsupported post_processor type \"", type, "\"");
  }
  out.push_back(std::move(t));
}

// Several templates applied in turn, folded into one.
SingleTemplate compose(const std::vector<SingleTemplate>& templates) {
  SingleTemplate result;
  result.pieces.emplace_back();
  result.has_sequence = true;
  for (const SingleTemplate& t : templates) {
    SingleTemplate next;
    for (const auto& outer : t.pieces) {
      if (!outer.empty()) {
        next.pieces.push_back(outer);
        continue;
      }
      next.has_sequence = true;
      for (const auto& inner : result.pieces) next.pieces.push_back(inner);
    }
    result = std::move(next);
  }
  return result;
}

// A special token named in tokenizer_config.json: a string or {"content": ...}; "" when absent.
std::string config_token(const Json& config, const char* name, const std::string& origin) {
  const Json* v = member(config, name);
  if (v == nullptr) return "";
  if (v->IsString()) return std::string(v->GetString(), v->GetStringLength());
  RLAIF_CHECK(v->IsObject(), origin, ": \"", name, "\" must be a string or {\"content\": ...}");
  return string_member(*v, "content", origin);
}

// transformers' clean_up_tokenization: drops the space before punctuation and contractions.
std::string clean_up_tokenization(std::string text) {
  static const std::pair<const char*, const char*> kRules[] = {
      {" .", "."},     {" ?", "?"},   {" !", "!"},   {" ,", ","},     {" ' ", "'"},
      {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  for (const auto& [from, to] : kRules) {
    const std::string_view f(from), t(to);
    std::string out;
    size_t prev = 0, pos;
    while ((pos = text.find(f, prev)) != std::string::npos) {
      out.append(text, prev, pos - prev);
      out.append(t);
      prev = pos + f.size();
    }
    out.append(text, prev);
    text = std::move(out);
  }
  return text;
}

}  // namespace

std::unique_ptr<HfTokenizer> HfTokenizer::from_tokenizer_json(
    const std::string& json_path, const std::string& config_path,
    const std::string& generation_config_path) {
  const rapidjson::Document doc = parse_json(read_maybe_compressed(json_path), json_path);
  std::unique_ptr<HfTokenizer> tok(new HfTokenizer());
  tok->path_ = json_path;
  const std::string& file = json_path;
  for (const char* unsupported : {"truncation", "padding"}) {
    RLAIF_CHECK(member(doc, unsupported) == nullptr, file, ": \"", unsupported,
                "\" is set; rlaif tokenizers do not truncate or pad (set it to null)");
  }
  if (const Json* n = member(doc, "normalizer")) tok->normalizer_ = make_normalizer(*n, file);
  if (const Json* p = member(doc, "pre_tokenizer"))
    tok->pre_tokenizer_ = make_pre_tokenizer(*p, file);
  const Json* model = member(doc, "model");
  RLAIF_CHECK(model != nullptr, file, ": missing \"model\"");
  tok->model_ = BpeModel::from_json(*model, file);
  if (const Json* d = member(doc, "decoder")) tok->decoder_ = make_decoder(*d, file);
  tok->added_ = AddedVocabulary(added_tokens_of(doc, file), tok->normalizer_.get());
  std::vector<SingleTemplate> templates;
  if (const Json* p = member(doc, "post_processor")) post_processor_templates(*p, file, templates);
  tok->template_ = compose(templates);
  tok->check_ids(file);
  tok->read_configs(config_path, generation_config_path);
  return tok;
}

std::unique_ptr<HfTokenizer> HfTokenizer::from_vocab_and_merges(
    const std::string& vocab_path, const std::string& merges_path, const std::string& config_path,
    const std::string& generation_config_path) {
  std::unique_ptr<HfTokenizer> tok(new HfTokenizer());
  tok->path_ = vocab_path;
  tok->format_ = "vocab.json+merges.txt";
  tok->model_ = BpeModel::from_files(vocab_path, merges_path);
  rapidjson::Document pre;
  pre.Parse<rapidjson::kParseIterativeFlag>(
      R"({"type": "ByteLevel", "add_prefix_space": false, "use_regex": true})");
  tok->pre_tokenizer_ = make_pre_tokenizer(pre, vocab_path);
  tok->decoder_ = make_byte_level_decoder();
  std::vector<AddedToken> added;
  if (auto id = tok->model_->token_to_id("<|endoftext|>")) {
    added.push_back({"<|endoftext|>", *id, true, false, false, false, false});
    tok->specials_.bos = tok->specials_.eos = tok->specials_.unk = *id;
  }
  tok->added_ = AddedVocabulary(std::move(added), nullptr);
  tok->template_ = compose({});
  tok->read_configs(config_path, generation_config_path);
  return tok;
}

void HfTokenizer::check_ids(const std::string& file) const {
  const int64_t limit =
      int64_t{model_->max_id()} + 1 + static_cast<int64_t>(added_.tokens().size()) + kMaxUnusedIds;
  for (const AddedToken& a : added_.tokens()) {
    RLAIF_CHECK(a.id < limit, file, ": added token '", a.content, "' has id ", a.id,
                ", far past the vocabulary's ", model_->max_id() + 1, " ids (more than ",
                kMaxUnusedIds, " unused ids is refused)");
  }
  const int vocab = vocab_size();
  for (const std::vector<int32_t>& piece : template_.pieces) {
    for (int32_t id : piece) {
      RLAIF_CHECK(id >= 0 && id < vocab, file, ": the post_processor adds id ", id,
                  ", outside the vocabulary of ", vocab, " ids");
    }
  }
}

void HfTokenizer::read_configs(const std::string& config_path,
                               const std::string& generation_config_path) {
  if (!config_path.empty() && exists_maybe_compressed(config_path)) {
    const rapidjson::Document config = parse_json(read_maybe_compressed(config_path), config_path);
    auto id_of = [&](const char* name, int32_t fallback) {
      const std::string token = config_token(config, name, config_path);
      if (token.empty()) return fallback;
      const auto id = token_to_id(token);
      RLAIF_CHECK(id.has_value(), config_path, ": ", name, " '", token,
                  "' is not in the vocabulary");
      return *id;
    };
    specials_.bos = id_of("bos_token", specials_.bos);
    specials_.eos = id_of("eos_token", specials_.eos);
    specials_.pad = id_of("pad_token", specials_.pad);
    specials_.unk = id_of("unk_token", specials_.unk);
    clean_up_tokenization_spaces_ =
        bool_member(config, "clean_up_tokenization_spaces", config_path, false);
    // Options with which transformers would encode differently from tokenizer.json alone.
    RLAIF_CHECK(!bool_member(config, "split_special_tokens", config_path, false), config_path,
                ": split_special_tokens true is not supported (special tokens in text are always "
                "recognised)");
    RLAIF_CHECK(!bool_member(config, "add_prefix_space", config_path, false), config_path,
                ": add_prefix_space true is not supported (set it in tokenizer.json's "
                "pre-tokenizer instead)");
    if (const Json* m = member(config, "model_max_length")) {
      RLAIF_CHECK(m->IsNumber(), config_path, ": \"model_max_length\" must be a number");
      const double v = m->GetDouble();
      specials_.model_max_length = v >= 9e18 ? INT64_MAX : v > 0 ? static_cast<int64_t>(v) : 0;
    }
    // transformers' Llama and Gemma tokenizer classes rebuild the post-processor from
    // add_bos_token / add_eos_token; the other classes keep tokenizer.json's.
    const std::string cls = string_member(config, "tokenizer_class", config_path);
    const bool rebuilds =
        cls.starts_with("Llama") || cls.starts_with("Gemma") || cls.starts_with("CodeLlama");
    const bool add_bos = bool_member(config, "add_bos_token", config_path, true);
    const bool add_eos = bool_member(config, "add_eos_token", config_path, false);
    if (rebuilds) {
      SingleTemplate t;
      if (add_bos && specials_.bos >= 0) t.pieces.push_back({specials_.bos});
      t.pieces.emplace_back();
      t.has_sequence = true;
      if (add_eos && specials_.eos >= 0) t.pieces.push_back({specials_.eos});
      template_ = std::move(t);
    }
  }
  for (const auto& piece : template_.pieces) {
    if (piece.size() == 1 && piece[0] == specials_.bos) specials_.add_bos = true;
    if (piece.size() == 1 && piece[0] == specials_.eos) specials_.add_eos = true;
  }
  if (specials_.eos >= 0) specials_.eos_ids.push_back(specials_.eos);
  if (!generation_config_path.empty() && exists_maybe_compressed(generation_config_path)) {
    const rapidjson::Document gen =
        parse_json(read_maybe_compressed(generation_config_path), generation_config_path);
    if (const Json* e = member(gen, "eos_token_id")) {
      auto add = [&](const Json& v) {
        RLAIF_CHECK(v.IsInt(), generation_config_path, ": eos_token_id must hold integers");
        if (std::find(specials_.eos_ids.begin(), specials_.eos_ids.end(), v.GetInt()) ==
            specials_.eos_ids.end()) {
          specials_.eos_ids.push_back(v.GetInt());
        }
      };
      if (e->IsArray()) {
        for (const Json& v : e->GetArray()) add(v);
      } else {
        add(*e);
      }
      if (specials_.eos < 0 && !specials_.eos_ids.empty()) specials_.eos = specials_.eos_ids[0];
    }
  }
}

std::vector<int32_t> HfTokenizer::encode(std::string_view text, bool add_special_tokens) const {
  RLAIF_CHECK(is_valid_utf8(text), path_, ": encode: the text is not valid UTF-8");
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  std::vector<Word> words;
  for (Segment& seg : added_.split(text, normalizer_.get())) {
    if (seg.added_id >= 0) {
      ids.push_back(seg.added_id);
      continue;
    }
    if (seg.text.empty()) continue;
    words.clear();
    words.push_back({std::move(seg.text), seg.at_start});
    if (pre_tokenizer_) pre_tokenizer_->pre_tokenize(words);
    for (const Word& w : words) model_->encode_word(w.text, ids);
  }
  if (!add_special_tokens || template_.pieces.size() == 1) return ids;
  std::vector<int32_t> with;
  with.reserve(ids.size() + 4);
  for (const auto& piece : template_.pieces) {
    if (piece.empty()) {
      with.insert(with.end(), ids.begin(), ids.end());
    } else {
      with.insert(with.end(), piece.begin(), piece.end());
    }
  }
  return with;
}

std::string HfTokenizer::decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    if (const AddedToken* a = added_.by_id(ids[i])) {
      if (!(skip_special_tokens && a->special)) tokens.push_back(a->content);
      continue;
    }
    const std::string* t = model_->id_to_token(ids[i]);
    RLAIF_CHECK(t != nullptr, path_, ": decode: id ", ids[i], " at position ", i,
                " is outside the vocabulary");
    tokens.push_back(*t);
  }
  std::string text;
  if (decoder_) {
    for (const std::string& t : decoder_->decode_chain(std::move(tokens))) text += t;
  } else {
    for (size_t i = 0; i < tokens.size(); ++i) text += (i ? " " : "") + tokens[i];
  }
  return clean_up_tokenization_spaces_ ? clean_up_tokenization(std::move(text)) : text;
}

std::optional<std::string> HfTokenizer::id_to_token(int32_t id) const {
  if (const AddedToken* a = added_.by_id(id)) return a->content;
  if (const std::string* t = model_->id_to_token(id)) return *t;
  return std::nullopt;
}

std::optional<int32_t> HfTokenizer::token_to_id(std::string_view token) const {
  if (const AddedToken* a = added_.by_content(token)) return a->id;
  return model_->token_to_id(token);
}

int HfTokenizer::vocab_size() const {
  int32_t max_id = model_->max_id();
  for (const AddedToken& a : added_.tokens()) max_id = std::max(max_id, a.id);
  return max_id + 1;
}

}  // namespace rlaif::hf
