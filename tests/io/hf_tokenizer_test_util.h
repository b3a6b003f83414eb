// Small tokenizer.json files written from parts, for the Hugging Face tokenizer component tests.
#pragma once

#include <string>
#include <vector>

#include "io/tokenizer.h"
#include "tests/io/io_test_util.h"

namespace rlaif::test {

struct TokenizerParts {
  std::string normalizer = "null";
  std::string pre_tokenizer = "null";
  std::string decoder = "null";
  std::string post_processor = "null";
  std::vector<std::string> vocab;   // ids in order
  std::string merges = "[]";        // JSON list
  std::string added_tokens = "[]";  // JSON list
  std::string model_options;        // extra members of "model", e.g. "\"byte_fallback\": true,"
};

inline std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out + "\"";
}

inline std::string tokenizer_json(const TokenizerParts& p) {
  std::string vocab = "{";
  for (size_t i = 0; i < p.vocab.size(); ++i) {
    vocab += (i ? ", " : "") + json_string(p.vocab[i]) + ": " + std::to_string(i);
  }
  vocab += "}";
  return "{\"version\": \"1.0\", \"truncation\": null, \"padding\": null, \"added_tokens\": " +
         p.added_tokens + ", \"normalizer\": " + p.normalizer +
         ", \"pre_tokenizer\": " + p.pre_tokenizer + ", \"post_processor\": " + p.post_processor +
         ", \"decoder\": " + p.decoder + ", \"model\": {\"type\": \"BPE\", \"dropout\": null, " +
         p.model_options + "\"vocab\": " + vocab + ", \"merges\": " + p.merges + "}}";
}

// Writes dir/tokenizer.json (and tokenizer_config.json when given) and loads the directory.
inline Tokenizer load_parts(const TempDir& dir, const TokenizerParts& parts,
                            const std::string& config = "") {
  write_bytes(dir.file("tokenizer.json"), tokenizer_json(parts));
  if (!config.empty()) write_bytes(dir.file("tokenizer_config.json"), config);
  return Tokenizer::load_dir(dir.str());
}

// The pieces of encode(text), for readable expectations.
inline std::vector<std::string> pieces(const Tokenizer& tok, const std::string& text,
                                       bool add_special_tokens = false) {
  std::vector<std::string> out;
  for (int32_t id : tok.encode(text, add_special_tokens)) out.push_back(tok.piece(id));
  return out;
}

}  // namespace rlaif::test
