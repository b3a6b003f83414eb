// Internals shared by the autograd sources (not part of the interface): direct access to a
// Variable's fields for the engine and op recording.
#pragma once

#include <memory>

#include "autograd/variable.h"

namespace rlaif {

struct VariableInternals {
  static Tensor& grad(const Variable& v) { return v.impl_->grad; }
  static std::shared_ptr<Node>& grad_fn(const Variable& v) { return v.impl_->grad_fn; }
  static void set_requires_grad(const Variable& v, bool value) { v.impl_->requires_grad = value; }
  // Handles sharing this variable (1: only `v` itself).
  static long use_count(const Variable& v) { return v.impl_.use_count(); }
};

}  // namespace rlaif
