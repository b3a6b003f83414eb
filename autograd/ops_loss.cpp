// Per-token losses over a vocabulary: cross-entropy and the log-probabilities of given tokens.
// Both fuse log-softmax with the gather, so the [N, V] probabilities are never stored: the
// backward recomputes them from the logits and the saved log-sum-exp.
#include <utility>

#include "autograd/ops.h"
#include "autograd/ops_util.h"

namespace rlaif {

using namespace ops_detail;

namespace {

// logits [..., V] and targets [...] viewed as the primitives' [N, V] and [N].
struct TokenRows {
  Tensor logits;    // [N, V]
  Tensor targets;   // [N]
  Shape out_shape;  // logits' shape without V
};

TokenRows token_rows(const char* op, const Variable& logits, const Tensor& targets) {
  require(op, "logits", logits);
  RLAIF_CHECK(targets.defined(), op, ": targets are undefined");
  RLAIF_CHECK(logits.dim() >= 1, op, ": logits must be [..., V], got ", logits.str());
  Shape out_shape(logits.shape().begin(), logits.shape().end() - 1);
  RLAIF_CHECK(targets.shape() == out_shape, op, ": targets ", targets,
              " must have the logits' shape without the vocabulary dimension, ",
              shape_str(out_shape), " (logits ", logits.str(), ")");
  int64_t v = logits.size(-1);
  return {logits.data().reshape({-1, v}), targets.reshape({-1}), std::move(out_shape)};
}

}  // namespace

Variable cross_entropy(const Variable& logits, const Tensor& targets, int ignore_index) {
  TokenRows r = token_rows("cross_entropy", logits, targets);
  int64_t n = r.targets.numel();
  Tensor losses = Tensor::empty({n}, DType::f32, r.logits.device());
  Tensor lse = Tensor::empty({n}, DType::f32, r.logits.device());
  backend_of(r.logits).cross_entropy(r.logits, r.targets, ignore_index, losses, lse);
  Tensor x = r.logits, t = r.targets;
  Shape logits_shape = logits.shape();
  return record_op("cross_entropy", losses.reshape(r.out_shape), {logits},
                   [x, t, lse, ignore_index, logits_shape](const Tensor& g) -> std::vector<Tensor> {
                     Tensor dx = empty_like(x);
                     backend_of(g).cross_entropy_backward(x, t, lse, g.reshape({-1}), ignore_index,
                                                          dx);
                     return {dx.reshape(logits_shape)};
                   });
}

Variable gather_logprobs(const Variable& logits, const Tensor& targets) {
  TokenRows r = token_rows("gather_logprobs", logits, targets);
  int64_t n = r.targets.numel();
  Tensor logp = Tensor::empty({n}, DType::f32, r.logits.device());
  Tensor lse = Tensor::empty({n}, DType::f32, r.logits.device());
  backend_of(r.logits).gather_logprobs(r.logits, r.targets, logp, lse);
  Tensor x = r.logits, t = r.targets;
  Shape logits_shape = logits.shape();
  return record_op("gather_logprobs", logp.reshape(r.out_shape), {logits},
                   [x, t, lse, logits_shape](const Tensor& g) -> std::vector<Tensor> {
                     Tensor dx = empty_like(x);
                     backend_of(g).gather_logprobs_backward(x, t, lse, g.reshape({-1}), dx);
                     return {dx.reshape(logits_shape)};
                   });
}

}  // namespace rlaif
