#include "io/tokenizer.h"

#include <sentencepiece_processor.h>

#include <filesystem>

#include "runtime/error.h"

namespace rlaif {

Tokenizer Tokenizer::load(const std::string& model_path) {
  std::error_code ec;
  RLAIF_CHECK(std::filesystem::is_regular_file(model_path, ec), "tokenizer '", model_path,
              "': no such file");
  auto sp = std::make_shared<sentencepiece::SentencePieceProcessor>();
  sentencepiece::util::Status status = sp->Load(model_path);
  RLAIF_CHECK(status.ok(), "tokenizer '", model_path,
              "': not a loadable SentencePiece model: ", status.ToString());
  RLAIF_CHECK(sp->GetPieceSize() > 0, "tokenizer '", model_path, "': empty vocabulary");
  Tokenizer tok;
  tok.sp_ = std::move(sp);
  tok.path_ = model_path;
  return tok;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  std::vector<int> ids;
  sentencepiece::util::Status status = sp_->Encode(text, &ids);
  RLAIF_CHECK(status.ok(), "tokenizer '", path_, "': encode failed: ", status.ToString());
  return std::vector<int32_t>(ids.begin(), ids.end());
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  const int n = vocab_size();
  for (size_t i = 0; i < ids.size(); ++i) {
    RLAIF_CHECK(ids[i] >= 0 && ids[i] < n, "tokenizer '", path_, "': decode: id ", ids[i],
                " at position ", i, " is outside the vocabulary [0, ", n, ")");
  }
  std::string text;
  sentencepiece::util::Status status = sp_->Decode(std::vector<int>(ids.begin(), ids.end()), &text);
  RLAIF_CHECK(status.ok(), "tokenizer '", path_, "': decode failed: ", status.ToString());
  return text;
}

std::string Tokenizer::piece(int id) const {
  RLAIF_CHECK(id >= 0 && id < vocab_size(), "tokenizer '", path_, "': id ", id,
              " is outside the vocabulary [0, ", vocab_size(), ")");
  return sp_->IdToPiece(id);
}

int Tokenizer::piece_to_id(std::string_view piece) const {
  return sp_->PieceToId(piece);
}

int Tokenizer::vocab_size() const {
  return sp_->GetPieceSize();
}
int Tokenizer::bos_id() const {
  return sp_->bos_id();
}
int Tokenizer::eos_id() const {
  return sp_->eos_id();
}
int Tokenizer::pad_id() const {
  return sp_->pad_id();
}
int Tokenizer::unk_id() const {
  return sp_->unk_id();
}

}  // namespace rlaif
