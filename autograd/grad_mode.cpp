#include "autograd/grad_mode.h"

namespace rlaif {
namespace {
// Thread-local: a data-loading or generation thread turning recording off must not affect the
// training thread.
thread_local bool g_grad_mode = true;
}  // namespace

bool grad_mode_enabled() {
  return g_grad_mode;
}
void set_grad_mode(bool enabled) {
  g_grad_mode = enabled;
}

NoGradGuard::NoGradGuard() : previous_(g_grad_mode) {
  g_grad_mode = false;
}
NoGradGuard::~NoGradGuard() {
  g_grad_mode = previous_;
}

EnableGradGuard::EnableGradGuard() : previous_(g_grad_mode) {
  g_grad_mode = true;
}
EnableGradGuard::~EnableGradGuard() {
  g_grad_mode = previous_;
}

}  // namespace rlaif
