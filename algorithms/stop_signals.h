// Clean stops on SIGINT/SIGTERM for the training loops: while a StopSignals is alive, the first
// signal only records itself (the loop finishes its step, writes a checkpoint and returns); a
// second one is the user insisting, and gets the default action.
#pragma once

#include <csignal>

namespace rlaif {

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

}  // namespace rlaif
