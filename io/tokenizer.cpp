#include "io/tokenizer.h"

#include <sentencepiece_processor.h>

#include <filesystem>

#include "io/compressed_text.h"
#include "io/hf_tokenizer.h"
#include "runtime/error.h"

namespace rlaif {

namespace {

namespace fs = std::filesystem;

class SentencePieceBackend : public TokenizerBackend {
 public:
  explicit SentencePieceBackend(const std::string& model_path) : path_(model_path) {
    std::error_code ec;
    RLAIF_CHECK(fs::is_regular_file(model_path, ec), "tokenizer '", model_path, "': no such file");
    sentencepiece::util::Status status = sp_.Load(model_path);
    RLAIF_CHECK(status.ok(), "tokenizer '", model_path,
                "': not a loadable SentencePiece model: ", status.ToString());
    RLAIF_CHECK(sp_.GetPieceSize() > 0, "tokenizer '", model_path, "': empty vocabulary");
    specials_.bos = sp_.bos_id();
    specials_.eos = sp_.eos_id();
    specials_.pad = sp_.pad_id();
    specials_.unk = sp_.unk_id();
    if (specials_.eos >= 0) specials_.eos_ids.push_back(specials_.eos);
    specials_.add_bos = specials_.bos >= 0;
  }

  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const override {
    std::vector<int> ids;
    sentencepiece::util::Status status = sp_.Encode(text, &ids);
    RLAIF_CHECK(status.ok(), "tokenizer '", path_, "': encode failed: ", status.ToString());
    std::vector<int32_t> out;
    out.reserve(ids.size() + 1);
    if (add_special_tokens && specials_.bos >= 0) out.push_back(specials_.bos);
    out.insert(out.end(), ids.begin(), ids.end());
    return out;
  }

  std::string decode(const std::vector<int32_t>& ids, bool) const override {
    const int n = vocab_size();
    for (size_t i = 0; i < ids.size(); ++i) {
      RLAIF_CHECK(ids[i] >= 0 && ids[i] < n, "tokenizer '", path_, "': decode: id ", ids[i],
                  " at position ", i, " is outside the vocabulary [0, ", n, ")");
    }
    std::string text;
    sentencepiece::util::Status status =
        sp_.Decode(std::vector<int>(ids.begin(), ids.end()), &text);
    RLAIF_CHECK(status.ok(), "tokenizer '", path_, "': decode failed: ", status.ToString());
    return text;
  }

  std::optional<std::string> id_to_token(int32_t id) const override {
    if (id < 0 || id >= vocab_size()) return std::nullopt;
    return sp_.IdToPiece(id);
  }
  std::optional<int32_t> token_to_id(std::string_view token) const override {
    const int id = sp_.PieceToId(token);
    if (id == sp_.unk_id() && sp_.IdToPiece(id) != token) return std::nullopt;
    return id;
  }
  int vocab_size() const override { return sp_.GetPieceSize(); }
  const SpecialTokens& special_tokens() const override { return specials_; }
  const std::string& path() const override { return path_; }
  const char* format() const override { return "sentencepiece"; }

 private:
  sentencepiece::SentencePieceProcessor sp_;
  SpecialTokens specials_;
  std::string path_;
};

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

Tokenizer Tokenizer::load(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) return load_dir(path);
  Tokenizer tok;
  const std::string name = fs::path(path).filename().string();
  if (name == "tokenizer.json" || name == "tokenizer.json.xz") {
    const std::string json = ends_with(path, ".xz") ? path.substr(0, path.size() - 3) : path;
    const fs::path dir = fs::path(json).parent_path();
    tok.impl_ = hf::HfTokenizer::from_tokenizer_json(json, (dir / "tokenizer_config.json").string(),
                                                     (dir / "generation_config.json").string());
  } else {
    tok.impl_ = std::make_shared<SentencePieceBackend>(path);
  }
  return tok;
}

Tokenizer Tokenizer::load_dir(const std::string& dir) {
  const fs::path d(dir);
  const std::string config = (d / "tokenizer_config.json").string();
  const std::string generation = (d / "generation_config.json").string();
  Tokenizer tok;
  if (exists_maybe_compressed((d / "tokenizer.json").string())) {
    tok.impl_ =
        hf::HfTokenizer::from_tokenizer_json((d / "tokenizer.json").string(), config, generation);
  } else if (exists_maybe_compressed((d / "vocab.json").string()) &&
             exists_maybe_compressed((d / "merges.txt").string())) {
    tok.impl_ = hf::HfTokenizer::from_vocab_and_merges(
        (d / "vocab.json").string(), (d / "merges.txt").string(), config, generation);
  } else {
    std::error_code ec;
    RLAIF_CHECK(fs::is_regular_file(d / "tokenizer.model", ec), "model directory '", dir,
                "': no tokenizer (looked for tokenizer.json, vocab.json + merges.txt, "
                "tokenizer.model)");
    tok.impl_ = std::make_shared<SentencePieceBackend>((d / "tokenizer.model").string());
  }
  return tok;
}

bool Tokenizer::exists_in_dir(const std::string& dir) {
  const fs::path d(dir);
  std::error_code ec;
  return exists_maybe_compressed((d / "tokenizer.json").string()) ||
         (exists_maybe_compressed((d / "vocab.json").string()) &&
          exists_maybe_compressed((d / "merges.txt").string())) ||
         fs::is_regular_file(d / "tokenizer.model", ec);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  return impl_->encode(text, false);
}
std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  return impl_->encode(text, add_special_tokens);
}
std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  return impl_->decode(ids, true);
}
std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
  return impl_->decode(ids, skip_special_tokens);
}

std::string Tokenizer::piece(int id) const {
  std::optional<std::string> p = impl_->id_to_token(id);
  RLAIF_CHECK(p.has_value(), "tokenizer '", path(), "': id ", id, " is outside the vocabulary [0, ",
              vocab_size(), ")");
  return *p;
}

int Tokenizer::piece_to_id(std::string_view piece) const {
  return impl_->token_to_id(piece).value_or(unk_id());
}

std::optional<int32_t> Tokenizer::token_id(std::string_view token) const {
  return impl_->token_to_id(token);
}

int Tokenizer::vocab_size() const {
  return impl_->vocab_size();
}
int Tokenizer::bos_id() const {
  return impl_->special_tokens().bos;
}
int Tokenizer::eos_id() const {
  return impl_->special_tokens().eos;
}
int Tokenizer::pad_id() const {
  return impl_->special_tokens().pad;
}
int Tokenizer::unk_id() const {
  return impl_->special_tokens().unk;
}
const std::vector<int32_t>& Tokenizer::eos_ids() const {
  return impl_->special_tokens().eos_ids;
}
bool Tokenizer::adds_bos() const {
  return impl_->special_tokens().add_bos;
}
bool Tokenizer::adds_eos() const {
  return impl_->special_tokens().add_eos;
}
int64_t Tokenizer::model_max_length() const {
  return impl_->special_tokens().model_max_length;
}
const std::string& Tokenizer::path() const {
  return impl_->path();
}
const char* Tokenizer::format() const {
  return impl_->format();
}

}  // namespace rlaif
