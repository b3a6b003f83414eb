#include "autograd/checkpoint.h"

#include <memory>
#include <utility>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "autograd/tape.h"

namespace rlaif {

namespace {

// What the backward pass needs of the inputs. Only data and flags are kept for interior
// variables, never the variables themselves: a handle in the closure would keep their grad_fn
// chains alive outside the node's `inputs`, which Node's iterative destructor cannot see.
struct SavedInputs {
  std::vector<Variable> leaves;     // the input itself where it is a leaf (or absent)
  std::vector<Tensor> data;         // interior inputs: their data
  std::vector<char> requires_grad;  // interior inputs: whether the original requires a gradient
  std::vector<Shape> out_shapes;    // the forward's outputs, to catch a non-deterministic fn
  std::vector<DType> out_dtypes;
};

SavedInputs save(const std::vector<Variable>& inputs, const std::vector<Variable>& outputs) {
  SavedInputs s;
  for (const Variable& v : inputs) {
    bool leaf = !v.defined() || v.is_leaf();
    s.leaves.push_back(leaf ? v : Variable());
    s.data.push_back(leaf ? Tensor() : v.data());
    s.requires_grad.push_back(!leaf && v.requires_grad());
  }
  for (const Variable& o : outputs) {
    s.out_shapes.push_back(o.shape());
    s.out_dtypes.push_back(o.dtype());
  }
  return s;
}

struct Recomputed {
  std::vector<Variable> inputs;  // what fn was given: leaves as themselves, detached stand-ins
  std::vector<Variable> outputs;
};

// Runs fn again, recording, on the saved inputs.
Recomputed recompute(const CheckpointMultiFn& fn, const SavedInputs& s) {
  Recomputed r;
  for (size_t i = 0; i < s.leaves.size(); ++i) {
    r.inputs.push_back(s.data[i].defined() ? Variable(s.data[i], s.requires_grad[i] != 0)
                                           : s.leaves[i]);
  }
  {
    // The caller's backward() may run under NoGradGuard; the recomputation must record anyway.
    EnableGradGuard grad;
    r.outputs = fn(r.inputs);
  }
  RLAIF_CHECK(r.outputs.size() == s.out_shapes.size(), "checkpoint: the recomputation returned ",
              r.outputs.size(), " outputs but the forward pass ", s.out_shapes.size(),
              "; the function must be deterministic");
  for (size_t k = 0; k < r.outputs.size(); ++k) {
    RLAIF_CHECK(r.outputs[k].defined() && r.outputs[k].shape() == s.out_shapes[k] &&
                    r.outputs[k].dtype() == s.out_dtypes[k],
                "checkpoint: recomputed output ", k, " is ", r.outputs[k].str(),
                " but the forward pass gave ", shape_str(s.out_shapes[k]), " ",
                dtype_name(s.out_dtypes[k]), "; the function must be deterministic");
  }
  return r;
}

// Back-propagates grads[k] from outputs[k] through the recomputed graph (outputs without a
// gradient, or that need none, are skipped). Several roots are joined by one sink node whose
// backward hands each its gradient, so one nested pass runs every node once, after all its
// consumers, exactly as the plain graph's consumer (taking the outputs in this order) would.
void backprop(const std::vector<Variable>& outputs, std::vector<Tensor> grads) {
  std::vector<Variable> roots;
  std::vector<Tensor> seeds;
  for (size_t k = 0; k < outputs.size(); ++k) {
    if (!grads[k].defined() || !outputs[k].requires_grad()) continue;
    roots.push_back(outputs[k]);
    seeds.push_back(std::move(grads[k]));
  }
  if (roots.empty()) return;
  Variable sink;
  {
    EnableGradGuard grad;
    sink =
        record_op("checkpoint_sink", Tensor::scalar(0.0f), std::move(roots),
                  [seeds = std::move(seeds)](const Tensor&) mutable { return std::move(seeds); });
  }
  run_backward(sink, Tensor::scalar(1.0f));
}

// The gradients the outer pass carries on: those of the detached stand-ins. Leaves got theirs
// from the nested pass directly.
std::vector<Tensor> input_grads(const Recomputed& r, const SavedInputs& s) {
  std::vector<Tensor> grads(s.leaves.size());
  for (size_t i = 0; i < grads.size(); ++i) {
    if (s.data[i].defined() && s.requires_grad[i]) grads[i] = r.inputs[i].grad();
  }
  return grads;
}

void check_outputs(const std::vector<Variable>& outputs) {
  for (size_t k = 0; k < outputs.size(); ++k) {
    RLAIF_CHECK(outputs[k].defined(), "checkpoint: output ", k, " of the function is undefined");
    RLAIF_CHECK(is_floating(outputs[k].dtype()), "checkpoint: output ", k, " ", outputs[k].str(),
                " is not floating-point and cannot carry a gradient");
  }
}

}  // namespace

Variable checkpoint(const CheckpointFn& fn, const std::vector<Variable>& inputs) {
  if (!should_record(inputs)) return fn(inputs);
  Variable out;
  {
    NoGradGuard no_grad;
    out = fn(inputs);
  }
  check_outputs({out});
  SavedInputs saved = save(inputs, {out});
  auto multi = [fn](const std::vector<Variable>& in) { return std::vector<Variable>{fn(in)}; };
  return record_op("checkpoint", out.data(), inputs,
                   [multi, saved = std::move(saved)](const Tensor& g) -> std::vector<Tensor> {
                     Recomputed r = recompute(multi, saved);
                     backprop(r.outputs, {g});
                     return input_grads(r, saved);
                   });
}

std::vector<Variable> checkpoint_multi(const CheckpointMultiFn& fn,
                                       const std::vector<Variable>& inputs) {
  if (!should_record(inputs)) return fn(inputs);
  std::vector<Variable> outs;
  {
    NoGradGuard no_grad;
    outs = fn(inputs);
  }
  check_outputs(outs);
  SavedInputs saved = save(inputs, outs);
  // A node has one output, so the outputs get one node each, all consuming a hidden scalar made
  // by the checkpoint node proper. The engine runs the checkpoint node after every output node
  // (its consumers); each output node parks its gradient here and passes a dummy one on.
  auto grads = std::make_shared<std::vector<Tensor>>(outs.size());
  Variable hidden =
      record_op("checkpoint", Tensor::scalar(0.0f), inputs,
                [fn, grads, saved = std::move(saved)](const Tensor&) -> std::vector<Tensor> {
                  std::vector<Tensor> g = std::move(*grads);
                  grads->assign(g.size(), Tensor());
                  Recomputed r = recompute(fn, saved);
                  backprop(r.outputs, std::move(g));
                  return input_grads(r, saved);
                });
  std::vector<Variable> result;
  for (size_t k = 0; k < outs.size(); ++k) {
    result.push_back(record_op("checkpoint_output", outs[k].data(), {hidden},
                               [grads, k](const Tensor& g) -> std::vector<Tensor> {
                                 (*grads)[k] = g;
                                 return {Tensor::scalar(0.0f)};
                               }));
  }
  return result;
}

}  // namespace rlaif
