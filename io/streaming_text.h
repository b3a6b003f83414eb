// The text a streamed completion may send while it is generated: each call gets the tokens so
// far and returns the new piece, so that the pieces of a whole stream add up to
// finish_completion's text (io/openai_protocol.h) of the final tokens.
//
// A piece never holds what a later token could still change:
//   - the bytes of a character not yet complete (a UTF-8 lead byte without all its continuation
//     bytes, or U+FFFD, which a decoder writes for such bytes);
//   - text that could be the start of a stop string ("Obs" while "Observation:" is a stop string):
//     held back until the stop string is ruled out or found;
// and the text stops before the first stop string, which ends the completion (stopped()).
// Known answer: stop "\n\n" and tokens whose text grows "Hi", "Hi\n", "Hi\n\nBye" give the pieces
// "Hi", "", "" and stopped() becomes true at the third call.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/tokenizer.h"
#include "model/generate.h"

namespace rlaif {

class StreamingText {
 public:
  // As finish_completion: `prompt` with BOS; `continue_prompt` for /v1/completions, whose text is
  // what follows decode(prompt) in decode(prompt + generation).
  StreamingText(const Tokenizer& tokenizer, std::vector<int32_t> prompt, bool continue_prompt,
                std::vector<std::string> stop);

  // The next piece for the tokens so far (empty when nothing new is certain). `final`: no token
  // will follow, so nothing is held back.
  std::string advance(const Generation& so_far, bool final);

  // A stop string has appeared: the completion is whole, and later tokens change nothing.
  bool stopped() const { return stopped_; }
  // Everything sent so far.
  const std::string& sent() const { return sent_; }

 private:
  const Tokenizer& tokenizer_;
  std::vector<int32_t> prompt_;
  std::string before_;  // decode(prompt) when continuing it
  bool continue_prompt_;
  std::vector<std::string> stop_;
  std::string sent_;
  bool stopped_ = false;
};

}  // namespace rlaif
