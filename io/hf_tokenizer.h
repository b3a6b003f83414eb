// Hugging Face tokenizers, read from a model directory's tokenizer.json (the `tokenizers`
// library's format) or GPT-2's vocab.json + merges.txt, with tokenizer_config.json and
// generation_config.json for the special tokens. Encoding runs the same pipeline as the Rust
// crate, and gives the same ids:
//
//   added tokens found in the raw text  ->  normalizer  ->  pre-tokenizer  ->  BPE per word
//   ->  post-processor (only when special tokens are asked for: e.g. Llama 3's BOS)
//
// and decoding maps ids to token strings (added tokens by content; special ones dropped when
// asked), runs the decoder and then, as transformers does when tokenizer_config.json sets
// clean_up_tokenization_spaces (Llama 3.1 does), removes the space before punctuation and
// contractions (" ." -> ".", " n't" -> "n't"). Components live in io/hf_normalizer.h,
// io/hf_pre_tokenizer.h, io/hf_bpe_model.h, io/hf_decoder.h and io/hf_added_vocabulary.h. Anything
// the file asks for that is not implemented is an Error naming the file and the component; nothing
// is skipped.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "io/hf_added_vocabulary.h"
#include "io/hf_bpe_model.h"
#include "io/hf_decoder.h"
#include "io/hf_normalizer.h"
#include "io/hf_pre_tokenizer.h"
#include "io/tokenizer_backend.h"

namespace rlaif::hf {

// Post-processing that adds special tokens around one sequence (TemplateProcessing's "single",
// BertProcessing, RobertaProcessing); ByteLevel's changes only offsets, so it adds nothing.
struct SingleTemplate {
  // Pieces in order: ids to insert, or an empty vector standing for the sequence itself.
  std::vector<std::vector<int32_t>> pieces;
  bool has_sequence = false;
};

class HfTokenizer : public TokenizerBackend {
 public:
  // `config_path` (tokenizer_config.json) and `generation_config_path` may be "" or missing
  // files. Each path may also exist only as path.xz.
  static std::unique_ptr<HfTokenizer> from_tokenizer_json(
      const std::string& json_path, const std::string& config_path,
      const std::string& generation_config_path);
  // GPT-2's files: byte-level BPE with GPT-2's regex, "<|endoftext|>" as the special token.
  static std::unique_ptr<HfTokenizer> from_vocab_and_merges(
      const std::string& vocab_path, const std::string& merges_path, const std::string& config_path,
      const std::string& generation_config_path);

  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const override;
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const override;
  std::optional<std::string> id_to_token(int32_t id) const override;
  std::optional<int32_t> token_to_id(std::string_view token) const override;
  int vocab_size() const override;
  const SpecialTokens& special_tokens() const override { return specials_; }
  const std::string& path() const override { return path_; }
  const char* format() const override { return format_; }

 private:
  HfTokenizer() = default;
  // Error naming `file` for an added token's id far past the vocabulary, or a post-processor id
  // outside it.
  void check_ids(const std::string& file) const;
  void read_configs(const std::string& config_path, const std::string& generation_config_path);

  std::unique_ptr<Normalizer> normalizer_;
  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  std::unique_ptr<BpeModel> model_;
  std::unique_ptr<Decoder> decoder_;
  AddedVocabulary added_;
  SingleTemplate template_;
  bool clean_up_tokenization_spaces_ = false;
  SpecialTokens specials_;
  std::string path_;
  const char* format_ = "tokenizer.json";
};

}  // namespace rlaif::hf
