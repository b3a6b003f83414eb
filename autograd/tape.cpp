#include "autograd/tape.h"

#include <memory>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "autograd/gradient_ready.h"
#include "autograd/internal.h"
#include "autograd/node.h"
#include "kernels/backend.h"

namespace rlaif {

namespace {

// Nodes reachable from root, ordered so that every node comes after all the nodes that consume
// its output (root first). Iterative post-order DFS; the order depends only on the graph's
// structure (inputs are visited in argument order), never on addresses, so summation orders and
// results are reproducible.
std::vector<std::shared_ptr<Node>> reverse_topological_order(const std::shared_ptr<Node>& root) {
  struct Frame {
    std::shared_ptr<Node> node;
    size_t next_input;
  };
  std::vector<std::shared_ptr<Node>> post_order;
  std::unordered_set<const Node*> visited;
  std::vector<Frame> stack;
  auto visit = [&](const std::shared_ptr<Node>& node) {
    RLAIF_CHECK(!node->released, "backward: the graph through '", node->op,
                "' was already freed by an earlier backward(); recompute the forward pass to "
                "back-propagate again");
    visited.insert(node.get());
    stack.push_back({node, 0});
  };
  visit(root);
  while (!stack.empty()) {
    Frame& frame = stack.back();
    if (frame.next_input == frame.node->inputs.size()) {  // all inputs done: the node finishes
      post_order.push_back(std::move(frame.node));
      stack.pop_back();
      continue;
    }
    const Variable& input = frame.node->inputs[frame.next_input++];
    if (!input.defined() || !input.requires_grad()) continue;
    const std::shared_ptr<Node>& child = input.grad_fn();
    if (child && !visited.count(child.get())) visit(child);  // may invalidate `frame`
  }
  return {post_order.rbegin(), post_order.rend()};
}

// slot += g. Adds in place only when slot's storage has no other owner (a gradient a backward
// rule passed through, e.g. add's dout, may be shared with another slot or the caller's seed).
void accumulate(Tensor& slot, Tensor g) {
  if (!slot.defined()) {
    slot = std::move(g);
    return;
  }
  Backend& backend = backend_for(slot.device());
  if (slot.use_count() == 1) {
    backend.binary(BinaryOp::add, slot, g, slot);
  } else {
    Tensor sum = Tensor::empty(slot.shape(), slot.dtype(), slot.device());
    backend.binary(BinaryOp::add, slot, g, sum);
    slot = std::move(sum);
  }
}

// Adds g into a leaf's .grad. The leaf owns its .grad (it is updated in place by later backward
// calls), so a g shared with anything else is copied first.
void accumulate_leaf(const Variable& leaf, Tensor g) {
  Tensor& grad = VariableInternals::grad(leaf);
  if (grad.defined()) {
    backend_for(grad.device()).binary(BinaryOp::add, grad, g, grad);
  } else {
    grad = g.use_count() == 1 ? std::move(g) : g.clone();
  }
}

// The destinations a record_op_into_leaves rule may add into (node.h): input i's .grad where
// input i is a leaf that requires a gradient and already holds one of its shape, dtype and
// device, which accumulate_leaf would add input i's gradient to in place.
std::vector<Tensor> leaf_destinations(const Node& node) {
  std::vector<Tensor> into(node.inputs.size());
  for (size_t i = 0; i < node.inputs.size(); ++i) {
    const Variable& input = node.inputs[i];
    if (!input.defined() || !input.requires_grad() || !input.is_leaf()) continue;
    const Tensor& grad = VariableInternals::grad(input);
    if (grad.defined() && grad.shape() == input.shape() && grad.dtype() == input.dtype() &&
        grad.device() == input.device()) {
      into[i] = grad;
    }
  }
  return into;
}

// Runs the node's backward rule: dL/dinput for every input, undefined where there is none or
// where the rule added it into the leaf's .grad itself.
std::vector<Tensor> run_rule(const Node& node, const Tensor& grad_output) {
  if (node.backward_into_leaves) {
    return node.backward_into_leaves(grad_output, leaf_destinations(node));
  }
  return node.backward(grad_output);
}

// Leaves that require a gradient, counted once per node input that is one: the number of nodes
// (with multiplicity) still to run before each leaf's gradient is final (gradient_ready.h).
class LeafReadiness {
 public:
  LeafReadiness(const GradientReadyFn* fn, const std::vector<std::shared_ptr<Node>>& order)
      : fn_(fn) {
    if (fn_ == nullptr) return;
    for (const std::shared_ptr<Node>& node : order) {
      for (const Variable& input : node->inputs) {
        if (counts(input)) ++pending_[input.identity()];
      }
    }
  }
  // `node` has run (or been skipped): its leaves that no other node still feeds are ready.
  void node_done(const Node& node) {
    if (fn_ == nullptr) return;
    for (const Variable& input : node.inputs) {
      if (counts(input) && --pending_[input.identity()] == 0) (*fn_)(input);
    }
  }

 private:
  static bool counts(const Variable& v) { return v.defined() && v.is_leaf() && v.requires_grad(); }
  const GradientReadyFn* fn_;
  std::unordered_map<const void*, int> pending_;
};

void check_gradient(const Node& node, size_t index, const Variable& input, const Tensor& g) {
  RLAIF_CHECK(
      g.shape() == input.shape() && g.dtype() == input.dtype() && g.device() == input.device(),
      "backward of '", node.op, "': gradient for input ", index, " is ", g, " but the input is ",
      input.str());
}

}  // namespace

void run_backward(const Variable& root, const Tensor& seed_in) {
  RLAIF_CHECK(root.defined(), "backward: undefined variable");
  RLAIF_CHECK(root.requires_grad(), "backward: ", root.str(),
              " does not require a gradient (no input of the ops that made it requires one, or "
              "it was computed under NoGradGuard)");
  RLAIF_CHECK(seed_in.defined() && seed_in.shape() == root.shape(), "backward: output gradient ",
              seed_in, " does not match the output ", root.str());
  Tensor seed = seed_in;
  if (seed.device() != root.device()) seed = seed.to(root.device());
  if (seed.dtype() != root.dtype()) {
    Tensor cast = Tensor::empty(seed.shape(), root.dtype(), root.device());
    backend_for(root.device()).cast(seed, cast);
    seed = std::move(cast);
  }

  BackwardDepthGuard depth;  // a pass nested in this one reports no gradient as ready
  const GradientReadyFn* ready = gradient_ready_fn();
  if (root.is_leaf()) {
    accumulate_leaf(root, std::move(seed));
    if (ready != nullptr) (*ready)(root);
    return;
  }

  std::vector<std::shared_ptr<Node>> order = reverse_topological_order(root.grad_fn());
  LeafReadiness readiness(ready, order);
  // dL/d(output of node), filled by the node's consumers, consumed (and freed) when it runs.
  std::unordered_map<const Node*, Tensor> pending;
  pending.emplace(order.front().get(), std::move(seed));

  for (std::shared_ptr<Node>& node : order) {
    auto it = pending.find(node.get());
    if (it == pending.end()) {  // every consumer returned "no gradient": nothing flows on
      readiness.node_done(*node);
      node->release();
      node.reset();
      continue;
    }
    Tensor grad_output = std::move(it->second);
    pending.erase(it);

    std::vector<Tensor> grads;
    try {
      grads = run_rule(*node, grad_output);
    } catch (const Error& e) {
      throw Error("backward of '", node->op, "': ", e.what());
    }
    grad_output = Tensor();
    RLAIF_CHECK(grads.size() == node->inputs.size(), "backward of '", node->op, "' returned ",
                grads.size(), " gradients for ", node->inputs.size(), " inputs");

    for (size_t i = 0; i < grads.size(); ++i) {
      const Variable& input = node->inputs[i];
      if (!grads[i].defined() || !input.defined() || !input.requires_grad()) continue;
      check_gradient(*node, i, input, grads[i]);
      if (input.is_leaf()) {
        accumulate_leaf(input, std::move(grads[i]));
      } else {
        accumulate(pending[input.grad_fn().get()], std::move(grads[i]));
      }
    }
    readiness.node_done(*node);
    // Saved tensors and input references go now; the node object itself lives on (as a husk
    // marked released) while some Variable still points at it.
    node->release();
    node.reset();
  }
}

}  // namespace rlaif
