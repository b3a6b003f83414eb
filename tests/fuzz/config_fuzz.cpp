// Fuzzes config.json parsing (model/config.h): every family's keys, rope_scaling, sliding-window
// layers, token ids; then what is computed from an accepted config (parameter count, RoPE
// frequencies) and its round trip through to_json, which must parse back to the same shapes.
#include <string>

#include "model/config.h"
#include "runtime/error.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rlaif;
  const std::string json(fuzz::as_text(data, size));
  ModelConfig config;
  try {
    config = ModelConfig::from_json(json, "config.json");
  } catch (const Error&) {
    return 0;
  }
  fuzz::consume(static_cast<uint64_t>(config.parameter_count()));
  fuzz::consume(config.rope_inverse_frequencies().size());
  // An accepted config must survive its own serialisation.
  const std::string written = config.to_json();
  ModelConfig again = ModelConfig::from_json(written, "config.json written back");
  bool same = again.vocab_size == config.vocab_size && again.hidden_size == config.hidden_size &&
              again.num_layers == config.num_layers && again.num_heads == config.num_heads &&
              again.num_kv_heads == config.num_kv_heads && again.head_dim == config.head_dim &&
              again.intermediate_size == config.intermediate_size &&
              again.sliding_layers == config.sliding_layers &&
              again.sliding_window == config.sliding_window;
  if (!same) __builtin_trap();
  return 0;
}
