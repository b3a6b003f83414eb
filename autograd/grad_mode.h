// Grad mode: whether differentiable ops record the graph, per thread.
//
// Evaluation, generation and the numerical side of gradcheck need no graph; turning grad mode
// off there saves the memory the saved tensors would hold. Ops record nothing while it is off.
#pragma once

namespace rlaif {

// On by default in every thread.
bool grad_mode_enabled();
void set_grad_mode(bool enabled);

// Turns grad mode off for its lifetime and restores the previous mode afterwards (so guards
// nest).
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// Turns grad mode on for its lifetime and restores the previous mode afterwards: for code that
// must record a graph whatever its caller's mode (checkpoint() recomputing inside backward()).
class EnableGradGuard {
 public:
  EnableGradGuard();
  ~EnableGradGuard();
  EnableGradGuard(const EnableGradGuard&) = delete;
  EnableGradGuard& operator=(const EnableGradGuard&) = delete;

 private:
  bool previous_;
};

}  // namespace rlaif
