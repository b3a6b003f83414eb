// Node: one recorded operation of the autograd graph, and record_op, the way ops create them.
//
// A Node is made by a differentiable op and owned by the Variable it produced (its grad_fn). It
// holds the op's inputs (so the graph can be walked from the output towards the leaves) and a
// backward closure: given dL/doutput, it returns dL/dinput for every input, in input order.
// Tensors the backward rule needs (saved activations, statistics) are captured by the closure;
// the closure must never capture the output Variable, which owns the node (a reference cycle
// would leak the whole graph).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "autograd/variable.h"

namespace rlaif {

// Returns one gradient per input, each of that input's shape and dtype; an undefined Tensor
// means "no gradient" (the input does not require one, or it is identically zero).
using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output)>;

struct Node {
  std::string op;                // "mul", "attention", ...: names the op in error messages
  std::vector<Variable> inputs;  // every Variable argument in order (undefined = absent optional)
  BackwardFn backward;           // emptied (with inputs) once backward has run: graph freed
  bool released = false;         // true after a backward pass consumed this node

  Node(std::string op_name, std::vector<Variable> op_inputs, BackwardFn fn)
      : op(std::move(op_name)), inputs(std::move(op_inputs)), backward(std::move(fn)) {}
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

}  // namespace rlaif
