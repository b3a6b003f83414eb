// Fuzzes what the LLM client reads from a server (io/api_response.h): completion bodies of
// /chat/completions and /completions (the first byte picks which) and error bodies. What
// parses is stored as the request cache stores it and read back (io/request_cache.h).
#include "io/api_response.h"
#include "io/request_cache.h"
#include "runtime/error.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rlaif;
  if (size == 0) return 0;
  const bool chat = data[0] % 2 == 0;
  const std::string_view body = fuzz::as_text(data + 1, size - 1);
  try {
    const std::string message = api_error_message(body);
    for (char c : message) {
      // The message is for one line of a log.
      if (c == '\n' || c == '\r') __builtin_trap();
    }
    ParsedCompletion completion;
    if (!parse_completion_response(body, chat, completion).empty()) return 0;
    if (completion.prompt_tokens < 0 || completion.completion_tokens < 0) __builtin_trap();
    // An accepted response must survive the cache: written, then read back by a new cache.
    const fuzz::ScratchDir& dir = fuzz::scratch();
    dir.clear();
    const std::string path = dir.file("requests.jsonl");
    {
      RequestCache cache(path);
      cache.append("key", completion);
    }
    RequestCache again(path);
    const ParsedCompletion* back = again.find("key");
    if (back == nullptr || back->text != completion.text ||
        back->finish_reason != completion.finish_reason ||
        back->prompt_tokens != completion.prompt_tokens ||
        back->completion_tokens != completion.completion_tokens)
      __builtin_trap();
  } catch (const Error&) {
  }
  return 0;
}
