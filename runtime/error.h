// Errors. Every failure in rlaif is an rlaif::Error whose message names the operation and the
// shapes, dtypes, files or flags involved, so the user can act on it without a debugger.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace rlaif {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
  // Streams every argument into the message: Error("add: shapes differ: ", a, " vs ", b).
  template <typename A, typename B, typename... Rest>
  Error(const A& a, const B& b, const Rest&... rest) : std::runtime_error(concat(a, b, rest...)) {}

  template <typename... Args>
  static std::string concat(const Args&... args) {
    std::ostringstream os;
    (os << ... << args);
    return os.str();
  }
};

}  // namespace rlaif

// Throws rlaif::Error built from the remaining arguments when `cond` is false.
#define RLAIF_CHECK(cond, ...)                                              \
  do {                                                                      \
    if (!(cond)) throw ::rlaif::Error(::rlaif::Error::concat(__VA_ARGS__)); \
  } while (0)
