// Decoders of Hugging Face tokenizers: turn the pieces of a sequence of ids back into text. Each
// decoder maps a list of token strings to a new list (Rust's decode_chain), and the text is their
// concatenation. Supported: ByteLevel (GPT-2's characters back to bytes, invalid UTF-8 replaced
// by U+FFFD), Metaspace, ByteFallback ("<0x41>" pieces back to bytes), Fuse, Strip, Replace,
// Sequence.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "io/hf_json.h"

namespace rlaif::hf {

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual std::vector<std::string> decode_chain(std::vector<std::string> tokens) const = 0;
};

std::unique_ptr<Decoder> make_decoder(const Json& json, const std::string& file);

// GPT-2's byte-level decoding alone (the decoder of vocab.json + merges.txt directories).
std::unique_ptr<Decoder> make_byte_level_decoder();

// Bytes as text, each maximal invalid UTF-8 sequence replaced by U+FFFD (Rust's
// String::from_utf8_lossy).
std::string utf8_lossy(std::string_view bytes);

}  // namespace rlaif::hf
