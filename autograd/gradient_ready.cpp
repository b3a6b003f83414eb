#include "autograd/gradient_ready.h"

#include <utility>

namespace rlaif {
namespace {
// Thread-local, like grad mode: another thread's backward passes are not this scope's.
thread_local GradientReadyFn g_gradient_ready;
thread_local int g_backward_depth = 0;
}  // namespace

GradientReadyScope::GradientReadyScope(GradientReadyFn fn)
    : previous_(std::move(g_gradient_ready)) {
  g_gradient_ready = std::move(fn);
}

GradientReadyScope::~GradientReadyScope() {
  if (owner_) g_gradient_ready = std::move(previous_);
}

GradientReadyScope::GradientReadyScope(GradientReadyScope&& other) noexcept
    : previous_(std::move(other.previous_)) {
  other.owner_ = false;
}

const GradientReadyFn* gradient_ready_fn() {
  // Depth 1: the guard of the outermost pass is the only one alive.
  return g_gradient_ready && g_backward_depth == 1 ? &g_gradient_ready : nullptr;
}

BackwardDepthGuard::BackwardDepthGuard() {
  ++g_backward_depth;
}

BackwardDepthGuard::~BackwardDepthGuard() {
  --g_backward_depth;
}

}  // namespace rlaif
