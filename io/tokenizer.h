// Text <-> token ids through a SentencePiece model (the `tokenizer.model` of Llama-family model
// directories; `rlaif tokenizer train` makes new ones, see io/tokenizer_train.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace rlaif {

// Immutable after load; copies share the model, and every method is safe to call from many
// threads at once.
class Tokenizer {
 public:
  // Loads a SentencePiece .model file; throws Error naming the path when it is missing or not a
  // SentencePiece model.
  static Tokenizer load(const std::string& model_path);

  // Token ids of `text`, without BOS/EOS (the caller decides where sequences start and end).
  // Applies the model's own normaliser: Llama's and rlaif-trained models have none, so with byte
  // fallback decode(encode(x)) == x for any UTF-8 text; models trained with SentencePiece's
  // defaults (e.g. stories260K) trim and collapse runs of spaces.
  std::vector<int32_t> encode(std::string_view text) const;
  // Text of `ids`; control ids (BOS, EOS, PAD) decode to nothing. Throws Error naming an id outside
  // [0, vocab_size()).
  std::string decode(const std::vector<int32_t>& ids) const;
  // The piece of one id as stored ("▁the", "<0x0A>", "<s>"); Error for an id out of range.
  std::string piece(int id) const;
  // The id of a piece, or unk_id() when the vocabulary lacks it.
  int piece_to_id(std::string_view piece) const;

  int vocab_size() const;
  // Special ids as the model defines them; -1 when the model has none.
  int bos_id() const;
  int eos_id() const;
  int pad_id() const;
  int unk_id() const;

  const std::string& path() const { return path_; }

 private:
  Tokenizer() = default;  // only load() makes one, so every Tokenizer holds a model

  std::shared_ptr<const sentencepiece::SentencePieceProcessor> sp_;
  std::string path_;
};

}  // namespace rlaif
