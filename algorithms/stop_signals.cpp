#include "algorithms/stop_signals.h"

#include <atomic>
#include <cstdio>
#include <vector>

#include "runtime/communicator.h"
#include "runtime/tensor.h"

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

int agree_on_stop(Communicator& comm, int64_t& tokens, int signal) {
  if (comm.size() <= 1) return signal;
  Tensor counts = Tensor::from_vector(
      std::vector<int64_t>{tokens, signal != 0 ? 1 : 0, static_cast<int64_t>(signal)}, {3});
  comm.all_reduce_sum(counts);
  const std::vector<int64_t> c = counts.to_vector<int64_t>();
  tokens = c[0];
  // Launchers forward one signal to every rank, so the mean of the received ones is that signal.
  return c[1] > 0 ? static_cast<int>(c[2] / c[1]) : 0;
}

void print_signal_stop(const std::string& label, int signal, int64_t done,
                       const std::string& checkpoint, const std::string& out_dir) {
  std::fprintf(stderr,
               "%s: stopped by signal %d after step %lld; checkpoint %s\n"
               "continue with --resume %s\n",
               label.c_str(), signal, static_cast<long long>(done), checkpoint.c_str(),
               out_dir.c_str());
}

}  // namespace rlaif
