// Hugging Face PEFT adapter directories: LoRA adapters (model/lora.h) written and read exactly as
// PEFT's save_pretrained and PeftModel.from_pretrained do.
//
//   DIR/adapter_config.json        {"peft_type": "LORA", "r": 8, "lora_alpha": 16,
//                                   "lora_dropout": 0.05, "target_modules": ["q_proj", "v_proj"],
//                                   "bias": "none", "fan_in_fan_out": false,
//                                   "task_type": "CAUSAL_LM", "modules_to_save": null, ...}
//   DIR/adapter_model.safetensors  base_model.model.<module path>.lora_A.weight [r, in] and
//                                  .lora_B.weight [out, r] (Transformer::adapter_parameters),
//                                  metadata {"format": "pt"}
//
// fan_in_fan_out is true for GPT-2 (its Conv1D layers store W as [in, out]; A and B keep their
// layout). A model with a scalar head is PEFT's SEQ_CLS task: its head is saved in full as
// base_model.model.score.weight, with modules_to_save ["score"].
//
// Reading refuses, naming the key, whatever would make rlaif compute a different model than
// PEFT: another peft_type, DoRA, bias other than "none", per-layer patterns or ranks, layer
// selection, a target given as a regular expression, targets rlaif does not adapt. A tensor that
// is missing, left over or misshapen is an Error naming the file and the tensor.
#pragma once

#include <string>

#include "model/lora.h"
#include "model/transformer.h"

namespace rlaif {

struct PeftAdapterConfig {
  LoraConfig lora;
  std::string task_type;                // "CAUSAL_LM", "SEQ_CLS", or "" (null)
  std::string base_model_name_or_path;  // "" when null
};

// Parses adapter_config.json text; `source` (a path) begins every error message.
PeftAdapterConfig parse_adapter_config(const std::string& json, const std::string& source);
// Reads DIR/adapter_config.json.
PeftAdapterConfig read_adapter_config(const std::string& dir);

// adapter_config.json for `model`'s adapters, keys sorted and indented by 2 as PEFT writes them;
// base_model_name_or_path null when empty. Error when the model has no adapters.
std::string adapter_config_json(const Transformer& model,
                                const std::string& base_model_name_or_path = "");

// Writes adapter_config.json and adapter_model.safetensors (f32; a bf16 model's adapters are
// widened) into `dir`, creating it; each file atomically.
void save_adapter(const std::string& dir, const Transformer& model,
                  const std::string& base_model_name_or_path = "");

// Adds the adapters of `dir` to `model` (which must have none), in the model's device and dtype:
// Transformer::add_lora with the file's configuration, then every tensor copied in (F32, BF16 or
// F16 in the file). On an error the model is left without adapters.
void load_adapter(Transformer& model, const std::string& dir);

// Copies the tensors of the adapter in `dir` into `model`'s adapters, which must be shaped alike:
// the same r, lora_alpha, use_rslora, targets and modules to save (Error naming each difference),
// and every tensor present with its shape (Error naming the file and the tensor). How a training
// run resumes its adapters from a checkpoint.
void load_adapter_weights(Transformer& model, const std::string& dir);

// What a training run writes as its model: with adapters, the PEFT adapter directory
// (save_adapter, base_model recorded as base_model_name_or_path) plus the tokenizer files of
// `tokenizer_source`, so that the directory and its base load together (--model BASE --adapter
// DIR) or through PEFT; without adapters, the whole model (save_model).
void save_trained_model(const std::string& dir, const Transformer& model,
                        const std::string& tokenizer_source, const std::string& base_model);

}  // namespace rlaif
