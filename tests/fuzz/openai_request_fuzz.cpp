// Fuzzes `rlaif serve`'s reading of request bodies (io/openai_protocol.h), without the network:
// parse_api_request for both endpoints, the chat messages rendered through the default
// single-slot template or a model's Jinja template (the first byte picks endpoint and template),
// and the error body of a refusal. A bad body must be refused with an ApiError (400), nothing else.
#include <memory>

#include "io/chat_template.h"
#include "io/hf_chat_template.h"
#include "io/openai_protocol.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

// A Jinja template in the style of ChatML (Qwen, SmolLM2), which raises on unknown roles.
constexpr std::string_view kChatMl =
    "{% for message in messages %}"
    "{% if message['role'] not in ['system', 'user', 'assistant'] %}"
    "{{ raise_exception('unknown role ' + message['role']) }}{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

const rlaif::ChatTemplate& jinja_template() {
  static const rlaif::ChatTemplate chat = [] {
    auto hf = std::make_shared<rlaif::HfChatTemplate>(kChatMl, "{}");
    rlaif::jinja::RenderLimits limits;
    limits.max_iterations = 20'000;
    limits.max_output_bytes = 1 << 20;
    hf->set_render_limits(limits);
    return rlaif::ChatTemplate(hf, "ChatML");
  }();
  return chat;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rlaif;
  if (size == 0) return 0;
  static const ChatTemplate single_slot;
  const Endpoint endpoint = data[0] % 2 == 0 ? Endpoint::chat : Endpoint::completion;
  const ChatTemplate& chat = (data[0] / 2) % 2 == 0 ? single_slot : jinja_template();
  const std::string_view body = fuzz::as_text(data + 1, size - 1);
  try {
    ApiRequest request = parse_api_request(body, endpoint, chat);
    if (!(request.temperature >= 0 && request.temperature <= 2)) __builtin_trap();
    if (!(request.top_p > 0 && request.top_p <= 1)) __builtin_trap();
    if (request.max_tokens && *request.max_tokens < 1) __builtin_trap();
    for (const std::string& s : request.stop) {
      if (s.empty()) __builtin_trap();
    }
  } catch (const ApiError& e) {
    if (e.status() < 400 || e.status() > 599) __builtin_trap();
    (void)error_body(e);
  }
  // Any other exception escapes on purpose: the server answers it with a 500, and a bad request
  // must get its 400 naming the field.
  return 0;
}
