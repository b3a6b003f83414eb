// The model shapes the `rlaif bench` commands build by name, so that a
// throughput figure always refers to a known model and runs are comparable across machines.
#pragma once

#include <cstdint>
#include <string>

#include "model/config.h"

namespace rlaif::cli {

// "tiny" (about 1M parameters, for quick CPU runs), "124M", "350M" or "1B" of arch "gpt2" or
// "llama"; UsageError naming the flag for an unknown arch or preset.
ModelConfig bench_preset(const std::string& arch, const std::string& preset);

// Training FLOPs per token, llm.c's estimate (after the PaLM paper's appendix B): 6 per
// parameter (2 forward, 4 backward) for the matmuls, plus 6·L·C·T for the attention scores and
// their weighted sums, with N the total parameter count (the tied head counted once). A forward
// pass alone is a third of it.
double train_flops_per_token(const ModelConfig& config, int64_t seq);

// One line for --help: the shapes of every preset.
std::string bench_preset_help();

}  // namespace rlaif::cli
