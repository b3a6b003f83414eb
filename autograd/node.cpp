#include "autograd/node.h"

#include <utility>

#include "autograd/grad_mode.h"
#include "autograd/internal.h"

namespace rlaif {

namespace {
// Moves out the grad_fn of every input that dies with its node (no other handle to the variable),
// so the caller can drop those nodes one at a time instead of recursively.
void harvest(std::vector<Variable>& inputs, std::vector<std::shared_ptr<Node>>& stack) {
  for (Variable& v : inputs) {
    if (!v.defined() || VariableInternals::use_count(v) != 1) continue;
    std::shared_ptr<Node>& fn = VariableInternals::grad_fn(v);
    if (fn) stack.push_back(std::move(fn));
  }
  inputs.clear();
}
}  // namespace

Node::~Node() {
  // Without this, destroying the root of a chain destroys its input, whose destructor destroys
  // its input, ... one set of stack frames per op. Here each node this one alone kept alive is
  // emptied (its own inputs harvested) before it dies, so its destructor has nothing to recurse
  // into.
  std::vector<std::shared_ptr<Node>> stack;
  harvest(inputs, stack);
  while (!stack.empty()) {
    std::shared_ptr<Node> node = std::move(stack.back());
    stack.pop_back();
    if (node.use_count() == 1) harvest(node->inputs, stack);
  }
}

void Node::release() {
  backward = nullptr;
  backward_into_leaves = nullptr;
  inputs.clear();
  released = true;
}

bool should_record(const std::vector<Variable>& inputs) {
  if (!grad_mode_enabled()) return false;
  for (const Variable& v : inputs) {
    if (v.defined() && v.requires_grad()) return true;
  }
  return false;
}

namespace {

// The output of an op, with a node holding `backward` when any input requires a gradient (and
// recording is on); a plain value otherwise.
template <typename Rule>
Variable record(std::string op, Tensor output, std::vector<Variable> inputs, Rule backward) {
  if (!should_record(inputs)) return Variable(std::move(output));
  Variable result(std::move(output));
  VariableInternals::set_requires_grad(result, true);
  VariableInternals::grad_fn(result) =
      std::make_shared<Node>(std::move(op), std::move(inputs), std::move(backward));
  return result;
}

}  // namespace

Variable record_op(std::string op, Tensor output, std::vector<Variable> inputs,
                   BackwardFn backward) {
  return record(std::move(op), std::move(output), std::move(inputs), std::move(backward));
}

Variable record_op_into_leaves(std::string op, Tensor output, std::vector<Variable> inputs,
                               LeafAccumulatingBackwardFn backward) {
  return record(std::move(op), std::move(output), std::move(inputs), std::move(backward));
}

}  // namespace rlaif
