#include "autograd/variable.h"

#include <utility>

#include "autograd/node.h"
#include "autograd/tape.h"
#include "kernels/backend.h"

namespace rlaif {

Variable::Variable(Tensor data, bool requires_grad, std::string name)
    : impl_(std::make_shared<Impl>()) {
  RLAIF_CHECK(data.defined(), "Variable: cannot wrap an undefined tensor (name '", name, "')");
  RLAIF_CHECK(!requires_grad || is_floating(data.dtype()), "Variable: '", name,
              "' requires a gradient but holds ", data,
              "; only floating-point tensors can require gradients");
  impl_->data = std::move(data);
  impl_->requires_grad = requires_grad;
  impl_->name = std::move(name);
}

const Variable::Impl& Variable::impl(const char* what) const {
  RLAIF_CHECK(impl_ != nullptr, "Variable::", what, ": undefined variable");
  return *impl_;
}

const Tensor& Variable::data() const {
  return impl("data").data;
}
const Tensor& Variable::grad() const {
  return impl("grad").grad;
}
bool Variable::requires_grad() const {
  return impl("requires_grad").requires_grad;
}
bool Variable::is_leaf() const {
  return impl("is_leaf").grad_fn == nullptr;
}
const std::shared_ptr<Node>& Variable::grad_fn() const {
  return impl("grad_fn").grad_fn;
}
const std::string& Variable::name() const {
  return impl("name").name;
}

void Variable::set_grad(Tensor grad) {
  const Impl& self = impl("set_grad");
  if (grad.defined()) {
    RLAIF_CHECK(grad.shape() == self.data.shape() && grad.dtype() == self.data.dtype() &&
                    grad.device() == self.data.device(),
                "Variable::set_grad: gradient ", grad, " does not match variable ", str());
  }
  impl_->grad = std::move(grad);
}

void Variable::zero_grad() {
  impl("zero_grad");
  impl_->grad = Tensor();
}

void Variable::set_requires_grad(bool requires_grad) {
  const Impl& self = impl("set_requires_grad");
  RLAIF_CHECK(self.grad_fn == nullptr, "Variable::set_requires_grad: ", str(), " was computed by '",
              self.grad_fn->op, "'; only leaves can change it (use detach() to cut the history)");
  RLAIF_CHECK(!requires_grad || is_floating(self.data.dtype()),
              "Variable::set_requires_grad: ", str(),
              " is not floating-point and cannot require a gradient");
  impl_->requires_grad = requires_grad;
}

std::string Variable::str() const {
  if (!impl_) return "undefined variable";
  if (impl_->name.empty()) return impl_->data.str();
  return Error::concat("'", impl_->name, "' ", impl_->data.str());
}

void Variable::backward() const {
  const Impl& self = impl("backward");
  RLAIF_CHECK(self.data.numel() == 1, "Variable::backward: ", str(), " is not a scalar (shape ",
              shape_str(self.data.shape()),
              "); pass the output gradient explicitly: backward(grad_output)");
  Tensor seed = Tensor::empty(self.data.shape(), self.data.dtype(), self.data.device());
  backend_for(seed.device()).fill(seed, 1.0);
  run_backward(*this, seed);
}

void Variable::backward(const Tensor& grad_output) const {
  impl("backward");
  run_backward(*this, grad_output);
}

Variable Variable::detach() const {
  const Impl& self = impl("detach");
  return Variable(self.data, false, self.name);
}

}  // namespace rlaif
