// The model shapes `rlaif bench train` and `rlaif bench generate` build by name, so that a
// throughput figure always refers to a known model and runs are comparable across machines.
#pragma once

#include <string>

#include "model/config.h"

namespace rlaif::cli {

// "tiny" (about 1M parameters, for quick CPU runs), "124M", "350M" or "1B" of arch "gpt2" or
// "llama"; UsageError naming the flag for an unknown arch or preset.
ModelConfig bench_preset(const std::string& arch, const std::string& preset);

// One line for --help: the shapes of every preset.
std::string bench_preset_help();

}  // namespace rlaif::cli
