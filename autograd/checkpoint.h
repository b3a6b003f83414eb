// Activation checkpointing (Chen et al., 2016, "Training Deep Nets with Sublinear Memory Cost"):
// trade compute for memory by recomputing a function's intermediates in the backward pass
// instead of keeping them from the forward pass.
//
// checkpoint(fn, inputs) runs fn with grad mode off, so the graph keeps only fn's inputs and its
// output, none of what fn computed in between. When backward() reaches the output, fn runs again
// with grad mode on and the incoming gradient is back-propagated through that fresh graph (a
// backward pass nested inside the outer one; the engine keeps no state outside a call, so it is
// re-entrant). The gradients are bit for bit those of calling fn directly, provided fn is
// deterministic (the same kernels on the same data give the same bits) and the summation orders
// agree. They do in a transformer layer, where fn's activation input has one use inside fn and one
// outside (the residual connection) and each parameter is used only inside fn; where a gradient
// sums more uses, checkpointing may reassociate the sum (equal up to rounding).
//
// How each input is treated in the recomputation:
// - an interior variable (computed by a recorded op: an activation) is replaced by a detached
//   leaf holding the same data, which requires a gradient where the original does. The recomputed
//   graph therefore stops there; the gradient it collects is handed back to the outer pass, which
//   carries it on into the original's history.
// - a leaf (a parameter, or any user-made variable) is passed as itself, so the recomputed graph
//   reaches it directly and the nested pass accumulates into its .grad exactly as the plain graph
//   would. Detaching parameters instead would sum a parameter's gradient inside fn first and add
//   it to the existing .grad afterwards: (G + g1) + g2 becomes G + (g1 + g2), and under gradient
//   accumulation the bits would differ.
// Parameters fn uses should be listed in `inputs` (fn may take them from there or capture them:
// they are the same variables). What decides whether anything is checkpointed is `inputs`: when
// grad mode is off or no input requires a gradient, fn simply runs as is, recording whatever it
// records (so a captured parameter still gets its gradient, with no memory saved). fn must not
// capture interior variables: the nested pass would run into the outer graph.
//
// fn is kept (with the inputs' data) until the backward pass runs or the graph is dropped, and is
// called once more there; whatever it captures must stay valid that long.
#pragma once

#include <functional>
#include <vector>

#include "autograd/variable.h"

namespace rlaif {

using CheckpointFn = std::function<Variable(const std::vector<Variable>&)>;
using CheckpointMultiFn = std::function<std::vector<Variable>(const std::vector<Variable>&)>;

// fn(inputs) with its intermediates recomputed in the backward pass. inputs may hold undefined
// (absent optional) variables.
Variable checkpoint(const CheckpointFn& fn, const std::vector<Variable>& inputs);

// The same for a function of several outputs (say the q, k and v projections of one norm's
// output): one recomputation serves all of them, once every output's gradient is in. Every output
// requires a gradient; an output that turns out not to depend on any input that requires one
// simply passes none on.
std::vector<Variable> checkpoint_multi(const CheckpointMultiFn& fn,
                                       const std::vector<Variable>& inputs);

}  // namespace rlaif
