// Clean stops on SIGINT/SIGTERM for the training loops: while a StopSignals is alive, the first
// signal only records itself (the loop finishes its step, writes a checkpoint and returns); a
// second one is the user insisting, and gets the default action.
#pragma once

#include <csignal>
#include <cstdint>
#include <string>

namespace rlaif {

class Communicator;

class StopSignals {
 public:
  // Installs the handlers (and clears any earlier pending signal).
  StopSignals();
  // Restores the handlers that were there before.
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  // The signal received so far, or 0.
  int pending() const;

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

// What the ranks of a data-parallel run agree on after each step: `tokens` becomes the sum of
// every rank's, and the result is the signal any rank received (0 if none). They must agree on
// stopping: a rank that stopped alone would leave the others waiting in the next collective.
// One all-reduce; with one rank it returns `signal` and leaves `tokens` as it is.
int agree_on_stop(Communicator& comm, int64_t& tokens, int signal);

// Tells the user (on stderr) that `signal` stopped the run labelled `label` after step `done`,
// where its checkpoint is, and how to continue from `out_dir`.
void print_signal_stop(const std::string& label, int signal, int64_t done,
                       const std::string& checkpoint, const std::string& out_dir);

}  // namespace rlaif
