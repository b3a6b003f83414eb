// Reading what an OpenAI-compatible server answers: the completion fields of a successful
// response, checked strictly (a server that answers 200 with the wrong shape is a server bug the
// user must hear about, not an empty completion), and the message of an error response.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace rlaif {

// What the client keeps of a completion (and what its cache stores).
struct ParsedCompletion {
  std::string text;
  std::string finish_reason;  // "" when the server sent null
  int64_t prompt_tokens = 0;  // 0 when the server sent no usage
  int64_t completion_tokens = 0;
  // Whether the server sent `usage` (the spending meter estimates the tokens otherwise). Not
  // kept in the request cache: cached answers are not spent again.
  bool usage_reported = false;
};

// Parses a 2xx body of POST /chat/completions (chat = true: choices[0].message.content) or
// /completions (choices[0].text). Returns "" and fills `out`, or says what is wrong: invalid
// JSON, `choices` missing, not an array or empty, the text missing or not a string,
// `finish_reason` missing or neither a string nor null, `usage` or its counts of the wrong type.
std::string parse_completion_response(std::string_view body, bool chat, ParsedCompletion& out);

// The message of an error response, for the user: OpenAI's {"error": {"message": ...}}, or
// {"error": "..."} / {"message": ...} as some servers send, else the body's first 200
// characters; control characters become spaces so the message stays on one line.
std::string api_error_message(std::string_view body);

}  // namespace rlaif
