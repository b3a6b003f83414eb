// Hugging Face model directories: config.json + model.safetensors (or shards) + the tokenizer's
// files (tokenizer.json, tokenizer_config.json, ... or tokenizer.model).
//
// Loading maps Hugging Face tensor names onto a Transformer (see model/transformer.h for rlaif's
// names) and converts layouts and dtypes: GPT-2's Conv1D weights are stored [in, out] and its
// q/k/v fused into one c_attn, so they are transposed and split on the way in and fused back on
// the way out; BF16/F16 weights are widened to f32. A tensor that is missing, left over or
// misshapen is an Error naming it. Saving writes a directory that transformers'
// from_pretrained loads (format "pt" metadata, HF names and layouts).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/tokenizer.h"
#include "model/transformer.h"

namespace rlaif {

// Loads config.json and the weights of `dir` onto `device`, as `dtype` parameters (f32, or bf16
// for mixed-precision work on a GPU; a bf16 model is saved widened to f32). With
// `allow_missing_scalar_head`, a model whose config has no scalar head gets none; a score.weight in
// the file is always loaded (the config then says num_labels = 1).
Transformer load_model(const std::string& dir, Device device = Device::cpu(),
                       DType dtype = DType::f32);

// Writes config.json and model.safetensors (sharded past 5 GB) into `dir`, creating it, and copies
// the tokenizer from `tokenizer_source` (may be empty): a model directory, whose
// tokenizer_files() are copied under their own names; a tokenizer.json(.xz) file, whose folder's
// tokenizer_files() are copied (the folder is what Tokenizer::load reads with it); or a
// SentencePiece file, copied to dir/tokenizer.model. Every file is written atomically.
void save_model(const std::string& dir, const Transformer& model,
                const std::string& tokenizer_source = "");

// Copies the tokenizer files of `tokenizer_source` (a model directory, a tokenizer.json(.xz) file
// or a SentencePiece file, as save_model takes it; empty copies none) into `dir`, each atomically.
// Every file is read before any is written, so a bad source fails first.
void copy_tokenizer(const std::string& tokenizer_source, const std::string& dir);

// The files of `dir` that transformers reads for a tokenizer and for generation settings, each
// plain or xz-compressed: tokenizer.json, tokenizer_config.json, generation_config.json,
// special_tokens_map.json, added_tokens.json, vocab.json, merges.txt, chat_template.jinja,
// tokenizer.model. Paths of those present, in that order.
std::vector<std::string> tokenizer_files(const std::string& dir);

// The ids that end generation for `config`'s model with `tokenizer`: every id config.json's
// eos_token_id lists, then the tokenizer's eos_ids() (its EOS and generation_config.json's list),
// without repeats. Empty when neither names one.
std::vector<int32_t> generation_stop_ids(const ModelConfig& config, const Tokenizer& tokenizer);

}  // namespace rlaif
