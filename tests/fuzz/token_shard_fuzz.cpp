// Fuzzes the reader of llm.c token shards (io/token_data.h): magic, version, the declared token
// count against the file's size.
#include "io/token_data.h"
#include "runtime/error.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rlaif;
  const std::string path = fuzz::scratch().write("tokens.bin", fuzz::as_text(data, size));
  try {
    if (!is_token_shard(path)) return 0;
    std::vector<int32_t> tokens = read_token_shard(path);
    for (int32_t t : tokens) {
      if (t < 0 || t > 65535) __builtin_trap();
    }
    // load_tokens takes the shard path without a tokenizer.
    if (load_tokens(path, nullptr) != tokens) __builtin_trap();
  } catch (const Error&) {
  }
  return 0;
}
