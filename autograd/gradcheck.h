// Gradient checking: compares the gradients backward() computes with central finite differences.
//
// The function's output (any shape) is reduced to a scalar L = Σ w ⊙ f(x) with fixed random
// weights w, so one backward pass (seeded with w) checks every output element's contribution at
// once, and a wrong gradient cannot hide behind symmetric outputs the way it can under a plain
// sum. Each checked input element x_j is perturbed in place by ±eps and
//   numerical_j = (L(x_j⁺) - L(x_j⁻)) / (x_j⁺ - x_j⁻),  x_j± = f32(x_j ± eps)
// (dividing by the step f32 actually took, not by 2·eps), with L accumulated in double on the
// host. Inputs must be CPU f32 leaves; only those that
// require a gradient are checked.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "autograd/variable.h"

namespace rlaif {

struct GradcheckOptions {
  // Step of the central difference. Two errors pull in opposite directions: the f32 rounding of
  // f's outputs (relative ~6e-8 each, so L carries noise δ ≈ 1e-7..1e-6 from the outputs that
  // x_j moves) is divided by 2·eps, while the truncation error of the central difference grows
  // as eps²·|f'''|/6. 3e-3 balances them: noise up to ~2e-4, truncation ~1.5e-6·|f'''|. On this
  // project's op suite the worst error, as a fraction of the tolerance, is 0.48 at eps = 1e-3
  // (log_softmax, where every output of a row moves), 0.12 at 3e-3 and 0.10 at 1e-2. Inputs must
  // stay well over eps from kinks (relu, abs, clamp, max) and domain edges (log, sqrt, div).
  double eps = 3e-3;
  // Pass iff |numerical - analytical| ≤ atol + rtol·|numerical| for every checked element.
  double atol = 1e-3;
  double rtol = 1e-2;
  // Inputs with more elements are checked at this many positions drawn without replacement
  // (deterministically from `seed`); smaller inputs are checked everywhere.
  int64_t max_checks_per_input = 128;
  // Seeds the output weights w and the sampled positions.
  uint64_t seed = 1234;
};

struct GradcheckResult {
  bool ok = true;
  double max_abs_error = 0.0;  // largest |numerical - analytical| seen
  double max_rel_error = 0.0;  // largest |numerical - analytical| / max(|numerical|, 1e-12)
  int64_t checked = 0;         // elements compared, over all inputs
  // One line per failing element (the first few): input index and name, element index, both
  // values; then a summary line. Empty of failures when ok.
  std::string report;
};

// Checks the gradient of f at `inputs`. f must be deterministic and must not change its inputs'
// data; it may run many times (2 evaluations per checked element, under NoGradGuard, plus one
// recorded run). The inputs' existing .grad values are preserved.
GradcheckResult gradcheck(const std::function<Variable(const std::vector<Variable>&)>& f,
                          const std::vector<Variable>& inputs, const GradcheckOptions& opts = {});

}  // namespace rlaif
