// One turn of a conversation, as chat APIs, datasets and chat templates hold it.
#pragma once

#include <string>
#include <vector>

namespace rlaif {

struct ChatMessage {
  std::string role;  // "system", "user", "assistant" (templates may accept others, e.g. "tool")
  std::string content;
};

using Conversation = std::vector<ChatMessage>;

}  // namespace rlaif
