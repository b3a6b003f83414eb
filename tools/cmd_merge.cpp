// `rlaif merge`: a LoRA adapter folded into its base, W' = W + s · B A, written as a plain model
// directory (model/lora.h, Transformer::merge_adapters).
#include <cstdio>
#include <filesystem>

#include "io/model_dir.h"
#include "io/peft_adapter.h"
#include "tools/cli_flags.h"
#include "tools/commands.h"
#include "tools/lora_flags.h"

namespace rlaif::cli {

int merge_main(const std::vector<std::string>& args) {
  Flags flags("merge",
              "Fold a PEFT LoRA adapter into its base model and write the result as a plain\n"
              "model directory (config.json, model.safetensors, the base's tokenizer), which\n"
              "every command, transformers and vLLM load without PEFT: each adapted weight\n"
              "becomes W + (alpha / r) B A (alpha / sqrt(r) with use_rslora), and a trained\n"
              "head copy (modules_to_save score) replaces the head. Outputs match the adapted\n"
              "model's up to float rounding.");
  flags.option("model", "", "the base model directory the adapter was trained on", true)
      .option("adapter", "",
              "the PEFT adapter directory (adapter_config.json, "
              "adapter_model.safetensors)",
              true)
      .option("out", "", "the merged model directory to write", true)
      .flag("force", "replace a model already in --out");
  if (!flags.parse(args)) return 0;
  namespace fs = std::filesystem;
  const std::string base = flags.str("model"), out = flags.str("out");
  std::error_code ec;
  if (fs::exists(out, ec) && fs::equivalent(out, base, ec))
    throw UsageError("--out is --model's directory: write the merged model elsewhere");
  for (const char* file : {"config.json", "model.safetensors", "model.safetensors.index.json"}) {
    if (fs::exists(fs::path(out) / file, ec) && !flags.on("force"))
      throw UsageError(out + " already holds a model (" + file + "): give --force to replace it");
  }
  Transformer model = load_model(base);
  apply_adapter_flag(model, flags);
  const LoraConfig lora = model.lora_config();
  model.merge_adapters();
  save_model(out, model, base);
  std::printf("wrote %s: %s with the adapter of %s merged (r %lld, scale %g)\n", out.c_str(),
              base.c_str(), flags.str("adapter").c_str(), static_cast<long long>(lora.r),
              lora.scale());
  return 0;
}

}  // namespace rlaif::cli
