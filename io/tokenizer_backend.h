// The interface every tokenizer format implements behind rlaif::Tokenizer (io/tokenizer.h):
// SentencePiece models (io/tokenizer.cpp) and Hugging Face tokenizers (io/hf_tokenizer.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rlaif {

// Special ids a format defines (-1 where it defines none) and what "add special tokens" means.
struct SpecialTokens {
  int32_t bos = -1, eos = -1, pad = -1, unk = -1;
  // Every id that ends generation: eos first, then any others the model directory lists
  // (generation_config.json's eos_token_id may be a list).
  std::vector<int32_t> eos_ids;
  bool add_bos = false, add_eos = false;  // what encode(text, true) adds, as far as known
  int64_t model_max_length = 0;           // 0 when unknown
};

class TokenizerBackend {
 public:
  virtual ~TokenizerBackend() = default;
  // With add_special_tokens, the format's own rule for sequence markers (e.g. BOS) applies.
  virtual std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const = 0;
  // Error naming an unknown id.
  virtual std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const = 0;
  virtual std::optional<std::string> id_to_token(int32_t id) const = 0;
  virtual std::optional<int32_t> token_to_id(std::string_view token) const = 0;
  virtual int vocab_size() const = 0;
  virtual const SpecialTokens& special_tokens() const = 0;
  virtual const std::string& path() const = 0;
  // "sentencepiece", "tokenizer.json" or "vocab.json+merges.txt".
  virtual const char* format() const = 0;
};

}  // namespace rlaif
