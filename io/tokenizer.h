// Text <-> token ids for every tokenizer format a model directory can hold, behind one class:
//   tokenizer.json            Hugging Face `tokenizers` (Llama 3, Qwen, Gemma, GPT-2, ...)
//   vocab.json + merges.txt   GPT-2's byte-level BPE files
//   tokenizer.model           SentencePiece (Llama 1/2 family; `rlaif tokenizer train` makes
//                             new ones, see io/tokenizer_train.h)
// load_dir() picks the first a directory holds, in that order; each file may also be stored
// xz-compressed (tokenizer.json.xz). The Hugging Face formats give exactly the ids and text of the
// Rust `tokenizers` library (io/hf_tokenizer.h).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "io/tokenizer_backend.h"

namespace rlaif {

// Immutable after load; copies share the model, and every method is safe to call from many
// threads at once.
class Tokenizer {
 public:
  // Loads a file named tokenizer.json or tokenizer.json.xz (with tokenizer_config.json and
  // generation_config.json from the same folder when present), a model directory as load_dir
  // does, or else a SentencePiece .model file. Throws Error naming the path when it is missing or
  // not a tokenizer.
  static Tokenizer load(const std::string& path);
  // The tokenizer of a model directory: tokenizer.json, else vocab.json + merges.txt, else
  // tokenizer.model. Error naming the directory and the files looked for when none is there.
  static Tokenizer load_dir(const std::string& dir);
  // Whether `dir` holds a tokenizer load_dir would load.
  static bool exists_in_dir(const std::string& dir);

  // Token ids of `text`, without BOS/EOS (the caller decides where sequences start and end).
  // Applies the model's own normaliser: Llama's and rlaif-trained models have none, so with byte
  // fallback decode(encode(x)) == x for any UTF-8 text; models trained with SentencePiece's
  // defaults (e.g. stories260K) trim and collapse runs of spaces.
  std::vector<int32_t> encode(std::string_view text) const;
  // As Hugging Face's encode(text, add_special_tokens): with true, the model's own markers are
  // added (Llama 3 and Gemma prepend BOS; Qwen and GPT-2 add nothing; SentencePiece models
  // prepend BOS when they have one). Special tokens written in the text ("<|im_start|>") are
  // always recognised by the Hugging Face formats.
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const;
  // Text of `ids`; special ids (BOS, EOS, PAD, chat markers) decode to nothing. Throws Error
  // naming an id outside the vocabulary.
  std::string decode(const std::vector<int32_t>& ids) const;
  // With skip_special_tokens false the Hugging Face formats write special tokens as their text
  // ("<|im_end|>"); SentencePiece control ids decode to nothing either way.
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const;
  // The piece of one id as stored ("▁the", "Ġthe", "<0x0A>", "<s>"); Error for an unknown id.
  std::string piece(int id) const;
  // The id of a piece, or unk_id() when the vocabulary lacks it.
  int piece_to_id(std::string_view piece) const;
  // The id of a token (special or not) by its text, e.g. "<|eot_id|>"; nullopt when absent.
  std::optional<int32_t> token_id(std::string_view token) const;

  // One past the largest id (for Hugging Face formats added tokens included).
  int vocab_size() const;
  // Special ids as the model defines them; -1 when the model has none.
  int bos_id() const;
  int eos_id() const;
  int pad_id() const;
  int unk_id() const;
  // Every id that ends generation (eos_id() first; generation_config.json may add more, as
  // Llama 3.1's <|eom_id|> and <|eot_id|>).
  const std::vector<int32_t>& eos_ids() const;
  // Whether encode(text, true) prepends BOS / appends EOS.
  bool adds_bos() const;
  bool adds_eos() const;
  // tokenizer_config.json's model_max_length; 0 when unknown.
  int64_t model_max_length() const;

  const std::string& path() const;
  // "sentencepiece", "tokenizer.json" or "vocab.json+merges.txt".
  const char* format() const;

 private:
  Tokenizer() = default;  // only load() makes one, so every Tokenizer holds a model

  std::shared_ptr<const TokenizerBackend> impl_;
};

}  // namespace rlaif
