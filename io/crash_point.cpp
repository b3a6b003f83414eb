#include "io/crash_point.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace rlaif {
namespace {

std::atomic<int64_t> calls{0};

void print_count() {
  std::fprintf(stderr, "rlaif: crash points: %lld\n", static_cast<long long>(calls.load()));
}

// The N of RLAIF_CRASH_AT (0: never), read once; registers the count's printer when asked.
int64_t crash_at() {
  static const int64_t at = [] {
    if (const char* count = std::getenv("RLAIF_CRASH_COUNT"); count && *count && *count != '0') {
      std::atexit(print_count);
    }
    const char* text = std::getenv("RLAIF_CRASH_AT");
    return text != nullptr ? std::strtoll(text, nullptr, 10) : int64_t{0};
  }();
  return at;
}

}  // namespace

void crash_point() {
  const int64_t n = calls.fetch_add(1, std::memory_order_relaxed) + 1;
  if (n == crash_at()) ::kill(::getpid(), SIGKILL);
}

}  // namespace rlaif
