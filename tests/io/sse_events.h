// Server-sent events as `rlaif serve` streams them, read back for the server tests.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace rlaif::test {

// The JSON objects of an SSE body's "data:" lines; `done` tells whether it ended with [DONE].
inline std::vector<std::string> sse_data(const std::string& body, bool& done) {
  std::vector<std::string> out;
  done = false;
  size_t at = 0;
  while (at < body.size()) {
    size_t end = body.find("\n\n", at);
    EXPECT_NE(end, std::string::npos) << "unterminated event in " << body;
    if (end == std::string::npos) break;
    std::string event = body.substr(at, end - at);
    EXPECT_EQ(event.rfind("data: ", 0), 0u) << event;
    EXPECT_FALSE(done) << "an event after [DONE]";
    std::string data = event.substr(6);
    if (data == "[DONE]")
      done = true;
    else
      out.push_back(data);
    at = end + 2;
  }
  return out;
}

}  // namespace rlaif::test
