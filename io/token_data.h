// Token streams for language-model training and evaluation: plain text tokenized with the
// model's tokenizer, or a pre-tokenized shard in llm.c's format:
//   header: 256 little-endian int32 — [0] magic 20240520, [1] version 1, [2] token count
//   body:   `count` uint16 token ids
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/tokenizer.h"

namespace rlaif {

inline constexpr int32_t kTokenShardMagic = 20240520;
inline constexpr int32_t kTokenShardVersion = 1;

// Whether `path` starts with the llm.c shard magic.
bool is_token_shard(const std::string& path);
// Reads a shard; Error naming the file on a bad magic, version or size.
std::vector<int32_t> read_token_shard(const std::string& path);
// Writes a shard atomically; every id must fit in uint16 (Error naming the first that does not).
void write_token_shard(const std::string& path, const std::vector<int32_t>& tokens);

// The tokens of `path`: a shard as stored, or text as BOS (when the tokenizer has one) followed
// by the tokenizer's encoding of the whole file.
std::vector<int32_t> load_tokens(const std::string& path, const Tokenizer* tokenizer);

// load_tokens with a cache for text: the tokens are stored once as a shard beside the text,
// named after the tokenizer's contents and the text's size and modification time, so a changed
// tokenizer or file is re-tokenized and an unchanged one never is. When the folder is not
// writable the tokens are simply not cached.
std::vector<int32_t> load_tokens_cached(const std::string& path, const Tokenizer& tokenizer);

}  // namespace rlaif
