// Variable: a Tensor that remembers how it was computed, so gradients can flow back through it.
//
// A Variable is a handle (like Tensor): copies share one underlying variable, so a parameter held
// by a model and by an optimizer is one object with one .grad. A variable made by a
// differentiable op (autograd/ops.h) while grad mode is on and some input requires a gradient
// points at the Node that made it (grad_fn); a variable made by the user is a leaf. backward()
// walks the graph from here and accumulates gradients into the leaves that require them.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "runtime/tensor.h"

namespace rlaif {

struct Node;

class Variable {
 public:
  Variable() = default;  // undefined: defined() is false (an absent optional input)
  explicit Variable(Tensor data, bool requires_grad = false, std::string name = "");

  bool defined() const { return impl_ != nullptr; }
  const Tensor& data() const;
  // The accumulated gradient; undefined until a backward pass reaches this variable. Only leaves
  // keep one: gradients of interior variables are freed as soon as they are consumed.
  const Tensor& grad() const;
  // Replaces the gradient (undefined drops it). A defined gradient must have data()'s shape and
  // dtype; the next backward() adds into it in place.
  void set_grad(Tensor grad);
  // Drops the gradient (the next backward() starts from zero).
  void zero_grad();

  bool requires_grad() const;
  // Leaves only: an interior variable's requirement follows from its inputs (use detach()).
  void set_requires_grad(bool requires_grad);
  // True when no op recorded this variable (grad_fn is null).
  bool is_leaf() const;
  // The node that computed this variable; null for leaves.
  const std::shared_ptr<Node>& grad_fn() const;

  const Shape& shape() const { return data().shape(); }
  int64_t dim() const { return data().dim(); }
  int64_t size(int64_t d) const { return data().size(d); }
  int64_t numel() const { return data().numel(); }
  DType dtype() const { return data().dtype(); }
  Device device() const { return data().device(); }
  const std::string& name() const;
  // "'wte' f32[4, 8] cpu" (or without the name when unnamed): what error messages print.
  std::string str() const;

  // Back-propagates from this variable, which must hold one element: seeds dL/dself = 1.
  // Throws Error naming the shape otherwise. The graph is freed afterwards (a second backward
  // through it throws).
  void backward() const;
  // Back-propagates with dL/dself = grad_output (same shape as this variable).
  void backward(const Tensor& grad_output) const;

  // A new leaf sharing this variable's data, with no history and requires_grad = false.
  Variable detach() const;

  // Whether two handles refer to one variable.
  bool is_same(const Variable& other) const { return impl_ == other.impl_; }
  // The same for every handle of one variable, distinct between live variables (null when
  // undefined): a key for maps from variables to what a caller keeps about them.
  const void* identity() const { return impl_.get(); }

 private:
  struct Impl {
    Tensor data;
    Tensor grad;
    bool requires_grad = false;
    std::shared_ptr<Node> grad_fn;
    std::string name;
  };
  std::shared_ptr<Impl> impl_;

  const Impl& impl(const char* what) const;
  // The engine and op recording reach the fields directly (autograd/internal.h).
  friend struct VariableInternals;
};

}  // namespace rlaif
