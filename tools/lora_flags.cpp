#include "tools/lora_flags.h"

#include <cstdio>

#include "algorithms/reward.h"
#include "io/peft_adapter.h"

namespace rlaif::cli {
namespace {

constexpr const char* kAdapterHelp =
    "a PEFT LoRA adapter directory (adapter_config.json + adapter_model.safetensors, e.g. the "
    "--out of a run with --lora-r) to apply to --model";

// The non-empty items of a comma-separated list.
std::vector<std::string> names_in(const std::string& text) {
  std::vector<std::string> out;
  for (std::string& item : split_list(text)) {
    if (!item.empty()) out.push_back(std::move(item));
  }
  return out;
}

}  // namespace

void declare_lora_flags(Flags& flags) {
  flags
      .option("lora-r", "0",
              "train LoRA adapters of this rank instead of the weights (0 = train every weight): "
              "the base is frozen, only the adapters get gradients and AdamW state, and --out "
              "(and each checkpoint) is a PEFT adapter directory")
      .option("lora-alpha", "8", "LoRA alpha: the update is scaled by alpha / r")
      .option("lora-dropout", "0", "dropout on the adapters' inputs during training, in [0, 1)")
      .option("lora-targets", "",
              "modules to adapt, comma-separated as PEFT names them: q_proj,k_proj,v_proj,o_proj,"
              "gate_proj,up_proj,down_proj (GPT-2: c_attn,c_proj,c_fc), or all-linear (default: "
              "PEFT's, q_proj,v_proj; GPT-2 c_attn)")
      .option("lora-modules-to-save", "",
              "whole modules trained beside the adapters: score (a reward or value model's head, "
              "always trained when the model has one)")
      .flag("lora-rslora", "rank-stabilised LoRA: scale by alpha / sqrt(r)")
      .option("adapter", "",
              std::string(kAdapterHelp) + ", trained further (its own r, alpha and targets)");
}

std::vector<std::string> lora_flag_names() {
  return {"lora-r",      "lora-alpha", "lora-dropout", "lora-targets", "lora-modules-to-save",
          "lora-rslora", "adapter"};
}

LoraConfig lora_config_from_flags(const Flags& flags) {
  LoraConfig c;
  c.r = flags.integer("lora-r");
  if (c.r < 0)
    throw UsageError("--lora-r must be ≥ 0 (0: no adapters), got " + flags.str("lora-r"));
  c.alpha = flags.number("lora-alpha");
  c.dropout = flags.number("lora-dropout");
  c.targets = names_in(flags.str("lora-targets"));
  c.modules_to_save = names_in(flags.str("lora-modules-to-save"));
  c.use_rslora = flags.on("lora-rslora");
  if (c.r == 0) {
    for (const char* name :
         {"lora-alpha", "lora-dropout", "lora-targets", "lora-modules-to-save", "lora-rslora"}) {
      if (flags.given(name))
        throw UsageError(std::string("--") + name + " configures adapters: give --lora-r too");
    }
  } else {
    try {
      c.validate("--lora-*");
    } catch (const Error& e) {
      throw UsageError(e.what());
    }
  }
  return c;
}

bool prepare_for_training(Transformer& model, const Flags& flags, uint64_t seed,
                          const std::string& label, bool lead) {
  LoraConfig lora = lora_config_from_flags(flags);
  const std::string adapter = flags.str("adapter");
  if (!adapter.empty()) {
    for (const std::string& name : lora_flag_names()) {
      if (name != "adapter" && flags.given(name))
        throw UsageError("--" + name + " cannot be given with --adapter, whose " +
                         "adapter_config.json sets the adapters");
    }
    load_adapter(model, adapter);
  } else if (lora.r > 0) {
    bool head = false;
    for (const std::string& m : lora.modules_to_save) head = head || m == "score";
    if (model.has_scalar_head() && !head) lora.modules_to_save.emplace_back("score");
    model.add_lora(lora, seed);
  }
  model.set_recompute(flags.on("recompute"));
  if (!model.has_adapters()) {
    model.set_requires_grad(true);
    return false;
  }
  model.freeze_base();
  if (lead) {
    int64_t trained = 0, total = 0;
    for (const auto& [name, v] : model.adapter_parameters()) trained += v.data().numel();
    for (const auto& [name, v] : model.parameters()) total += v.data().numel();
    const LoraConfig& c = model.lora_config();
    std::string targets;
    for (const std::string& t : c.targets) targets += (targets.empty() ? "" : ",") + t;
    std::fprintf(stderr,
                 "%s: training LoRA adapters (r %lld, alpha %g, targets %s%s): %lld parameters, "
                 "%.3f%% of the base's %lld, which stay frozen\n",
                 label.c_str(), static_cast<long long>(c.r), c.alpha, targets.c_str(),
                 c.modules_to_save.empty() ? "" : ", and the head", static_cast<long long>(trained),
                 100.0 * static_cast<double>(trained) / static_cast<double>(total),
                 static_cast<long long>(total));
  }
  return true;
}

void declare_adapter_flag(Flags& flags) {
  flags.option("adapter", "", kAdapterHelp);
}

bool apply_adapter_flag(Transformer& model, const Flags& flags) {
  const std::string adapter = flags.str("adapter");
  if (adapter.empty()) return false;
  // A reward model's adapter carries its head (SEQ_CLS); a base trained from a language model has
  // none, and gets a placeholder that the adapter's copy of the head then stands in for.
  const PeftAdapterConfig config = read_adapter_config(adapter);
  bool head = config.task_type == "SEQ_CLS";
  for (const std::string& m : config.lora.modules_to_save) head = head || m == "score";
  if (head) ensure_scalar_head(model, 0);
  load_adapter(model, adapter);
  model.set_adapters_enabled(true);
  return true;
}

}  // namespace rlaif::cli
