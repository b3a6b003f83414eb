// Helpers shared by the ops_*.cpp files (not part of the interface).
#pragma once

#include <vector>

#include "autograd/node.h"
#include "autograd/variable.h"
#include "kernels/backend.h"

namespace rlaif::ops_detail {

// The backend that runs an op on x's device.
inline Backend& backend_of(const Variable& x) {
  return backend_for(x.device());
}
inline Backend& backend_of(const Tensor& x) {
  return backend_for(x.device());
}

// Uninitialised tensor on like's device with like's dtype.
inline Tensor empty_like(const Tensor& like) {
  return Tensor::empty(like.shape(), like.dtype(), like.device());
}
inline Tensor empty_as(const Shape& shape, const Tensor& like) {
  return Tensor::empty(shape, like.dtype(), like.device());
}

// Whether v is present and needs a gradient (captured at record time, so a backward rule skips
// the work for inputs that need none).
inline bool wants_grad(const Variable& v) {
  return v.defined() && v.requires_grad();
}

// Throws Error("op: argument `arg` is undefined") for a missing required input.
inline void require(const char* op, const char* arg, const Variable& v) {
  RLAIF_CHECK(v.defined(), op, ": argument '", arg, "' is undefined");
}

// x's shape without dimension d (d already normalised).
inline Shape drop_dim(const Shape& shape, size_t d) {
  Shape out = shape;
  out.erase(out.begin() + static_cast<std::ptrdiff_t>(d));
  return out;
}

}  // namespace rlaif::ops_detail
