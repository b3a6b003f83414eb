// The backward engine: runs the recorded graph in reverse and accumulates leaf gradients.
//
// run_backward(root, seed):
// - orders the nodes reachable from root topologically by an iterative depth-first search (no
//   recursion: a graph of many thousand ops cannot overflow the stack);
// - runs every node's backward rule once, after all the nodes that consume its output, so the
//   gradient of a variable used several times is complete (its contributions are summed in the
//   fixed order of that traversal: the result is deterministic);
// - checks that each gradient has its input's shape and dtype (Error naming the op otherwise);
// - adds leaf gradients into Variable::grad() (in place when one exists: gradients accumulate
//   across backward calls until zero_grad()), or hands that .grad to a rule recorded with
//   record_op_into_leaves, which adds into it itself (autograd/node.h);
// - when a GradientReadyScope is open (autograd/gradient_ready.h), tells it each leaf whose
//   gradient is final, as soon as the last node that feeds it has run;
// - frees every intermediate gradient once consumed, and each node's saved tensors and input
//   references once it has run, so the graph is gone when backward returns (a second backward
//   through it throws).
// It keeps no state outside a call, so a backward rule may itself run a backward pass over a
// separate graph (checkpoint() back-propagates through its recomputation that way).
#pragma once

#include "autograd/variable.h"

namespace rlaif {

// seed = dL/droot; it must have root's shape (converted to root's dtype and device if needed).
// root must require a gradient.
void run_backward(const Variable& root, const Tensor& seed);

}  // namespace rlaif
