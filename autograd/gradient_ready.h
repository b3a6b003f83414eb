// Gradient-ready notifications: which leaf gradients a backward pass has finished, while it runs.
//
// Data-parallel training averages gradients over ranks. Waiting for backward() to return before
// starting leaves the network idle during the backward pass and the GPU idle during the
// collectives; starting each parameter's collective as soon as its gradient is final overlaps
// the two (PyTorch DDP's gradient-ready hooks; Li et al., 2020, "PyTorch Distributed:
// Experiences on Accelerating Data Parallel Training", §3.2.3). This is the hook that tells when.
//
// While a GradientReadyScope is alive on a thread, the outermost backward pass of that thread
// calls its function once for every leaf that requires a gradient and that some node of the
// graph takes as an input, right after the last such node has run: from then on this backward
// pass adds nothing more to the leaf's .grad. (It may hold no gradient at all, when every node
// that reached it passed none on.) Leaves are reported in the order their last consumers run,
// which depends only on the graph's structure, so ranks that run the same model agree on it.
//
// Nested passes (checkpoint() back-propagating through its recomputation inside the outer pass)
// report nothing: a parameter a checkpointed function uses is an input of the checkpoint node
// (checkpoint.h asks for that), so it is reported when the checkpoint node has run, once its
// nested pass has added every contribution. A parameter that a checkpointed function captures
// without listing it is never reported; a caller must treat leaves never reported as ready only
// once backward() has returned.
//
// Every backward pass inside the scope reports: a caller accumulating gradients over several
// backward passes opens the scope for the last one only.
#pragma once

#include <functional>

#include "autograd/variable.h"

namespace rlaif {

using GradientReadyFn = std::function<void(const Variable& leaf)>;

// Installs `fn` for its lifetime on this thread and restores the previous one afterwards (scopes
// nest; an empty fn turns reporting off). An exception fn throws ends the backward pass. A scope
// may be moved (returned, held in an optional); the moved-from one restores nothing.
class GradientReadyScope {
 public:
  explicit GradientReadyScope(GradientReadyFn fn);
  ~GradientReadyScope();
  GradientReadyScope(GradientReadyScope&& other) noexcept;
  GradientReadyScope(const GradientReadyScope&) = delete;
  GradientReadyScope& operator=(const GradientReadyScope&) = delete;
  GradientReadyScope& operator=(GradientReadyScope&&) = delete;

 private:
  GradientReadyFn previous_;
  bool owner_ = true;
};

// For the engine (autograd/tape.cpp): the function of the innermost scope, or null when none is
// installed or this thread is inside a nested backward pass. BackwardDepthGuard marks a pass.
const GradientReadyFn* gradient_ready_fn();
class BackwardDepthGuard {
 public:
  BackwardDepthGuard();
  ~BackwardDepthGuard();
  BackwardDepthGuard(const BackwardDepthGuard&) = delete;
  BackwardDepthGuard& operator=(const BackwardDepthGuard&) = delete;
};

}  // namespace rlaif
