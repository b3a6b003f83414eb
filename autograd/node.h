// Node: one recorded operation of the autograd graph, and record_op, the way ops create them.
//
// A Node is made by a differentiable op and owned by the Variable it produced (its grad_fn). It
// holds the op's inputs (so the graph can be walked from the output towards the leaves) and a
// backward closure: given dL/doutput, it returns dL/dinput for every input, in input order.
// Tensors the backward rule needs (saved activations, statistics) are captured by the closure;
// the closure must never capture the output Variable, which owns the node (a reference cycle
// would leak the whole graph).
//
// Accumulating into a leaf's gradient. The engine adds an input's gradient to what is already
// there: for a leaf that holds a .grad (an earlier backward call's, or another op's in this pass,
// such as a tied LM head's), grad += g by binary(add). An op whose gradient is sparse can skip the
// dense g: recorded with record_op_into_leaves, its rule is also handed those destinations and
// adds into them in place, which costs neither a temporary of the leaf's size nor a pass over it
// (embedding's gradient touches only the rows its ids name, out of 50257 for GPT-2). Any op may
// record its rule this way; the engine decides which inputs have a destination, the rule only
// which of them it takes.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "autograd/variable.h"

namespace rlaif {

// Returns one gradient per input, each of that input's shape and dtype; an undefined Tensor
// means "no gradient" (the input does not require one, or it is identically zero).
using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output)>;

// A BackwardFn that is also handed the destinations the engine would add its gradients to, one
// per input: leaf_grads[i] is input i's .grad where input i is a leaf that requires a gradient
// and already holds one of its shape, dtype and device; it is undefined elsewhere. For an input
// whose destination is defined, the rule may add its gradient into it in place, with the bits
// binary(add, leaf_grads[i], g, leaf_grads[i]) would give (a zero the gradient does not touch
// may keep its sign), and return an undefined Tensor for that input; otherwise it returns the
// gradient as a BackwardFn does and the engine adds it.
using LeafAccumulatingBackwardFn = std::function<std::vector<Tensor>(
    const Tensor& grad_output, const std::vector<Tensor>& leaf_grads)>;

struct Node {
  std::string op;                // "mul", "attention", ...: names the op in error messages
  std::vector<Variable> inputs;  // every Variable argument in order (undefined = absent optional)
  BackwardFn backward;           // emptied (with inputs) once backward has run: graph freed
  // Set instead of backward by record_op_into_leaves; emptied with it.
  LeafAccumulatingBackwardFn backward_into_leaves;
  bool released = false;  // true after a backward pass consumed this node

  Node(std::string op_name, std::vector<Variable> op_inputs, BackwardFn fn)
      : op(std::move(op_name)), inputs(std::move(op_inputs)), backward(std::move(fn)) {}
  Node(std::string op_name, std::vector<Variable> op_inputs, LeafAccumulatingBackwardFn fn)
      : op(std::move(op_name)), inputs(std::move(op_inputs)), backward_into_leaves(std::move(fn)) {}
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
  // Destroys the chain of nodes only this node keeps alive iteratively, so dropping a graph of
  // many thousand ops does not recurse once per op and overflow the stack.
  ~Node();

  // Frees the saved tensors and the references to the inputs.
  void release();
};

// Whether an op on these inputs must be recorded: grad mode is on and some input requires a
// gradient. Undefined (absent optional) inputs are skipped.
bool should_record(const std::vector<Variable>& inputs);

// Wraps an op's forward result. When should_record(inputs), the result requires a gradient and
// gets a Node running `backward`; otherwise it is a plain leaf with requires_grad = false and
// `backward` is dropped. Gradients line up with `inputs`, absent (undefined) optional inputs
// included; the engine ignores gradients of inputs that are absent or require none.
Variable record_op(std::string op, Tensor output, std::vector<Variable> inputs,
                   BackwardFn backward);

// record_op for a rule that may add its gradients into its leaf inputs' .grad in place (see
// "Accumulating into a leaf's gradient" above).
Variable record_op_into_leaves(std::string op, Tensor output, std::vector<Variable> inputs,
                               LeafAccumulatingBackwardFn backward);

}  // namespace rlaif
