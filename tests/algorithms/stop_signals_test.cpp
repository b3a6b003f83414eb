// Clean stops of algorithms/stop_signals.h: while a StopSignals lives, SIGINT and SIGTERM are
// recorded instead of killing the process; a new one starts with nothing pending; its end
// restores the handlers it found.
#include "algorithms/stop_signals.h"

#include <gtest/gtest.h>

#include <atomic>
#include <csignal>

#include "runtime/communicator.h"

namespace rlaif {
namespace {

std::atomic<int> g_test_handler_calls{0};
extern "C" void count_test_signal(int) {
  ++g_test_handler_calls;
}

TEST(StopSignals, RecordsTheFirstSignalAndRestoresTheHandlersItFound) {
  struct sigaction mine {
  }, saved_int{}, saved_term{};
  mine.sa_handler = count_test_signal;
  sigemptyset(&mine.sa_mask);
  sigaction(SIGINT, &mine, &saved_int);
  sigaction(SIGTERM, &mine, &saved_term);
  {
    StopSignals stop;
    EXPECT_EQ(stop.pending(), 0);
    std::raise(SIGTERM);  // recorded, not delivered to the handler installed before
    EXPECT_EQ(stop.pending(), SIGTERM);
    EXPECT_EQ(g_test_handler_calls.load(), 0);
  }
  {
    StopSignals again;  // a new scope starts clean
    EXPECT_EQ(again.pending(), 0);
    std::raise(SIGINT);
    EXPECT_EQ(again.pending(), SIGINT);
  }
  // Both handlers are the test's own again.
  std::raise(SIGINT);
  std::raise(SIGTERM);
  EXPECT_EQ(g_test_handler_calls.load(), 2);
  sigaction(SIGINT, &saved_int, nullptr);
  sigaction(SIGTERM, &saved_term, nullptr);
}

TEST(StopSignals, OneRankAgreesWithItselfAndKeepsItsTokens) {
  SingleProcessCommunicator alone;
  int64_t tokens = 123;
  EXPECT_EQ(agree_on_stop(alone, tokens, SIGINT), SIGINT);
  EXPECT_EQ(agree_on_stop(alone, tokens, 0), 0);
  EXPECT_EQ(tokens, 123);
}

}  // namespace
}  // namespace rlaif
