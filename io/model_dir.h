// Hugging Face model directories: config.json + model.safetensors (or shards) + tokenizer.model.
//
// Loading maps Hugging Face tensor names onto a Transformer (see model/transformer.h for rlaif's
// names) and converts layouts and dtypes: GPT-2's Conv1D weights are stored [in, out] and its
// q/k/v fused into one c_attn, so they are transposed and split on the way in and fused back on
// the way out; BF16/F16 weights are widened to f32. A tensor that is missing, left over or
// misshapen is an Error naming it. Saving writes a directory that transformers'
// from_pretrained loads (format "pt" metadata, HF names and layouts).
#pragma once

#include <string>

#include "model/transformer.h"

namespace rlaif {

// Loads config.json and the weights of `dir` onto `device`, as `dtype` parameters (f32, or bf16
// for mixed-precision work on a GPU; a bf16 model is saved widened to f32). With
// `allow_missing_scalar_head`, a model whose config has no scalar head gets none; a score.weight in
// the file is always loaded (the config then says num_labels = 1).
Transformer load_model(const std::string& dir, Device device = Device::cpu(),
                       DType dtype = DType::f32);

// Writes config.json and model.safetensors (sharded past 5 GB) into `dir`, creating it; copies
// `tokenizer_model` (a path; may be empty) to dir/tokenizer.model. Every file is written
// atomically.
void save_model(const std::string& dir, const Transformer& model,
                const std::string& tokenizer_model = "");

// dir/tokenizer.model when it exists, else "".
std::string tokenizer_path(const std::string& dir);

}  // namespace rlaif
