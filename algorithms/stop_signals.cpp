#include "algorithms/stop_signals.h"

#include <atomic>

namespace rlaif {
namespace {

std::atomic<int> g_signal{0};

extern "C" void on_stop_signal(int sig) {
  // The first signal asks for a clean stop (checkpoint, then exit); a second one is the user
  // insisting: fall back to the default action.
  if (g_signal.exchange(sig) != 0) {
    std::signal(sig, SIG_DFL);
    std::raise(sig);
  }
}

}  // namespace

StopSignals::StopSignals() {
  g_signal = 0;
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, &old_int_);
  sigaction(SIGTERM, &action, &old_term_);
}

StopSignals::~StopSignals() {
  sigaction(SIGINT, &old_int_, nullptr);
  sigaction(SIGTERM, &old_term_, nullptr);
}

int StopSignals::pending() const {
  return g_signal.load();
}

}  // namespace rlaif
