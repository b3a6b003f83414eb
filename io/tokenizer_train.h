// Training a SentencePiece tokenizer on a plain text file (`rlaif tokenizer train`).
//
// The defaults follow Llama's tokenizer, so the result drops into a Llama-style model directory:
//   ids: unk = 0 ("<unk>"), bos = 1 ("<s>"), eos = 2 ("</s>"), no pad id (pad_id() is -1; batch
//        padding uses a mask, never a token);
//   byte_fallback: characters outside the vocabulary become <0xNN> byte pieces, so any UTF-8 text
//        encodes without <unk> and decodes back exactly (costs 256 ids: vocab_size must exceed
//        3 + 256 + the number of distinct characters kept);
//   no normalisation (identity), whitespace kept as is, a dummy "▁" prefix, digits split one
//        per token, character_coverage 1.0 (every character of the corpus is kept).
// Each line of the input is one training sentence (SentencePiece never sees the newlines; they
// encode through byte fallback).
#pragma once

#include <cstdint>
#include <string>

namespace rlaif {

struct TokenizerTrainOptions {
  // "bpe" (Llama's choice) or "unigram".
  std::string model_type = "bpe";
  double character_coverage = 1.0;
  bool byte_fallback = true;
  bool split_digits = true;
  // 0 trains on every line; N > 0 on a uniform random sample of N lines (large corpora).
  int64_t max_sentences = 0;
  // Lines longer than this many bytes are skipped by SentencePiece.
  int max_sentence_bytes = 1 << 16;
  // Threads SentencePiece splits the sentences over. Its result depends on this number, so the
  // default is fixed rather than the machine's core count: every machine trains the same
  // tokenizer from the same text.
  int num_threads = 16;
  // SentencePiece's progress log on stderr.
  bool verbose = false;
};

struct TokenizerTrainSummary {
  int vocab_size = 0;
  int64_t lines = 0;   // lines read from the input (empty ones included)
  double seconds = 0;  // wall time of the training
};

// Trains on `input_path` and writes the .model file atomically to `out_model_path` (nothing else
// is written: no .vocab file, no partial model on failure). Throws Error naming the input, the
// output or SentencePiece's complaint (e.g. a vocab_size too small for the characters kept).
TokenizerTrainSummary train_tokenizer(const std::string& input_path, int vocab_size,
                                      const std::string& out_model_path,
                                      const TokenizerTrainOptions& options = {});

}  // namespace rlaif
