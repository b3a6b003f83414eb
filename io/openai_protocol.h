// The OpenAI API's JSON bodies as `rlaif serve` (io/openai_server.h) reads and writes them:
// request parsing and validation, rendering chat messages into one prompt, cutting a generation at
// stop strings, and the response, stream-chunk and error bodies.
//
// Chat messages become a prompt through the chat template (io/chat_template.h), turn by turn:
//   - system (and "developer") contents are joined with "\n\n" and put before the first user turn;
//   - consecutive user messages are joined with "\n\n" into one turn (likewise assistant ones);
//   - each user turn U answered by an assistant turn A renders as template(U) + A + "\n\n";
//   - the last user turn renders as template(U): the model writes the answer;
//   - a last assistant turn (no user turn after it) is a prefill: template(U) + A, which the
//     model continues.
// With the default template that is Anthropic's dialogue format:
//   "Human: U1\n\nAssistant: A1\n\nHuman: U2\n\nAssistant: "
// and a single user message renders exactly as `rlaif generate --chat` renders a prompt.
// /v1/completions prompts are used as given (no template), like OpenAI's legacy endpoint.
//
// Accepted request fields: model (any string: the served model answers), messages | prompt,
// temperature [0, 2] (default 1), top_p (0, 1] (default 1), max_tokens (chat also
// max_completion_tokens), seed, n (1 only), best_of (1 only), stop (string or up to 16 strings),
// stream, stream_options.include_usage. Refused: logprobs and echo (not implemented). Anything else
// (presence_penalty, user, ...) is ignored, as OpenAI-compatible servers commonly do.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "io/chat_template.h"
#include "io/llm_client.h"
#include "io/tokenizer.h"
#include "model/generate.h"

namespace rlaif {

// A request the server refuses, answered as OpenAI does: the HTTP status and the body
// {"error": {"message", "type", "param", "code"}}.
class ApiError : public std::runtime_error {
 public:
  // `param`: the request field at fault ("" = none); `code`: OpenAI's machine-readable code
  // ("" = none), e.g. "context_length_exceeded".
  ApiError(int status, const std::string& message, std::string param = "", std::string code = "");
  int status() const { return status_; }
  const std::string& param() const { return param_; }
  const std::string& code() const { return code_; }

 private:
  int status_;
  std::string param_, code_;
};

// The OpenAI error body; "type" follows the status: invalid_request_error (4xx),
// rate_limit_error (429), server_error (5xx). Empty param/code are written as null.
std::string error_body(int status, const std::string& message, const std::string& param = "",
                       const std::string& code = "");
std::string error_body(const ApiError& error);

enum class Endpoint { chat, completion };  // /v1/chat/completions, /v1/completions

struct ApiRequest {
  std::string prompt;  // the text to continue: the rendered messages, or the completion prompt
  std::string model;   // as sent; "" when omitted
  float temperature = 1.0f;
  float top_p = 1.0f;
  std::optional<int64_t> max_tokens;  // >= 1 when set
  std::optional<uint64_t> seed;       // negative JSON seeds wrap to uint64
  std::vector<std::string> stop;      // non-empty strings
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage: a last chunk with usage
};

// Parses and validates the JSON body of a request to `endpoint`; ApiError (400) naming the field
// at fault, e.g. param "messages[2].content".
ApiRequest parse_api_request(std::string_view body, Endpoint endpoint, const ChatTemplate& chat);

// The prompt for chat messages: with a model's Jinja template, its rendering with the generation
// prompt (a last assistant message is a prefill, appended after it); with a single-slot template
// as the top of this file says. ApiError (400, param "messages") when there is no user message,
// the first non-system message is not the user's, a role is unknown, or the Jinja template
// refuses the conversation.
std::string render_chat(const std::vector<ChatMessage>& messages, const ChatTemplate& chat);

// A finished completion.
struct ApiCompletion {
  std::string text;                 // cut before the first stop string; no EOS
  std::vector<std::string> deltas;  // for streams: pieces whose concatenation is `text`
  std::string finish_reason;        // "stop" (EOS or a stop string) or "length"
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;  // generated tokens (EOS included), up to the stop string's end
};

// Decodes a generation of `prompt` (its ids, BOS included): cuts the text at the earliest
// occurrence of any stop string and, with `want_deltas`, splits the text into one piece per token
// (a token whose bytes do not yet form whole UTF-8 characters contributes with a later piece).
// With `continue_prompt` (/v1/completions) the text is what follows decode(prompt) in
// decode(prompt + generation), so that prompt + text reads as the model wrote it (SentencePiece
// drops a text's leading space: "Once upon" continues " a time", not "a time"). Without it (chat)
// the answer is decoded on its own, as `rlaif generate` decodes it.
ApiCompletion finish_completion(const Tokenizer& tokenizer, const Generation& generation,
                                const std::vector<int32_t>& prompt, bool continue_prompt,
                                const std::vector<std::string>& stop, bool want_deltas);

struct ResponseMeta {
  std::string id;       // "chatcmpl-..." or "cmpl-..."
  int64_t created = 0;  // Unix seconds
  std::string model;
};

// The non-streamed response body: object "chat.completion" or "text_completion".
std::string completion_body(Endpoint endpoint, const ResponseMeta& meta,
                            const ApiCompletion& completion);
// The server-sent events of a streamed response, each "data: {chunk}\n\n": (chat: a first chunk
// with the role), one chunk per delta, a chunk with the finish_reason, a usage chunk when asked
// for, and "data: [DONE]\n\n".
std::vector<std::string> stream_events(Endpoint endpoint, const ResponseMeta& meta,
                                       const ApiCompletion& completion, bool include_usage);
// The same events as they are sent while the text is generated: the opening (chat: the role
// chunk; nothing for completions), one chunk per piece of text, and the closing (finish_reason,
// usage when asked for, [DONE]).
std::vector<std::string> stream_opening(Endpoint endpoint, const ResponseMeta& meta);
std::string stream_piece(Endpoint endpoint, const ResponseMeta& meta, const std::string& text);
std::vector<std::string> stream_closing(Endpoint endpoint, const ResponseMeta& meta,
                                        const ApiCompletion& completion, bool include_usage);
// An error after a stream has begun (its status line is sent): "data: {error body}\n\n".
std::string stream_error(int status, const std::string& message, const std::string& code);
// GET /v1/models (list) and /v1/models/{id} (one model object).
std::string models_body(const std::string& model, int64_t created);
std::string model_body(const std::string& model, int64_t created);

}  // namespace rlaif
