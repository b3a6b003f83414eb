// Fuzzes the loading of the LLM client's request cache (io/request_cache.h): a JSONL file of
// responses, a torn last line dropped. A cache that loads takes one more entry and must load
// again with it.
#include "io/request_cache.h"
#include "runtime/error.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rlaif;
  const fuzz::ScratchDir& dir = fuzz::scratch();
  dir.clear();
  const std::string path = dir.write("requests.jsonl", fuzz::as_text(data, size));
  size_t loaded = 0;
  try {
    RequestCache cache(path);
    (void)cache.find("key");
    cache.append("fuzz-key", ParsedCompletion{"text", "stop", 1, 2});
    loaded = cache.size();
  } catch (const Error&) {
    return 0;
  }
  // What loaded once (and what was appended to it) must load again, whole.
  RequestCache again(path);
  if (again.size() != loaded || again.find("fuzz-key") == nullptr) __builtin_trap();
  return 0;
}
