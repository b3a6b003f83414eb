#include "autograd/gradcheck.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <utility>

#include "autograd/grad_mode.h"
#include "runtime/philox.h"
#include "runtime/rng.h"

namespace rlaif {

namespace {

constexpr int kMaxReportedFailures = 10;

// Restores grad mode on scope exit (gradcheck records one run even when called under no_grad).
class GradModeScope {
 public:
  explicit GradModeScope(bool enabled) : previous_(grad_mode_enabled()) { set_grad_mode(enabled); }
  ~GradModeScope() { set_grad_mode(previous_); }
  GradModeScope(const GradModeScope&) = delete;
  GradModeScope& operator=(const GradModeScope&) = delete;

 private:
  bool previous_;
};

std::vector<float> host_values(const Tensor& t, const char* what) {
  RLAIF_CHECK(t.dtype() == DType::f32, "gradcheck: ", what, " is ", t, "; only f32 is supported");
  return t.to_vector<float>();
}

// "[1, 4]": the multi-index of flat position `flat` in `shape`.
std::string unravel(int64_t flat, const Shape& shape) {
  Shape index(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    index[d] = shape[d] > 0 ? flat % shape[d] : 0;
    flat = shape[d] > 0 ? flat / shape[d] : 0;
  }
  return shape_str(index);
}

// Every position when n ≤ limit, else `limit` distinct positions (partial Fisher–Yates driven by
// Philox), sorted so reports read in memory order.
std::vector<int64_t> positions_to_check(int64_t n, int64_t limit, uint64_t seed) {
  std::vector<int64_t> all(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) all[static_cast<size_t>(i)] = i;
  if (n <= limit) return all;
  Generator gen(seed);
  for (int64_t k = 0; k < limit; ++k) {
    int64_t j = k + static_cast<int64_t>(gen.below(static_cast<uint64_t>(n - k)));
    std::swap(all[static_cast<size_t>(k)], all[static_cast<size_t>(j)]);
  }
  all.resize(static_cast<size_t>(limit));
  std::sort(all.begin(), all.end());
  return all;
}

// Sets *p = value for its lifetime and restores the original afterwards, even when f throws.
class Perturbation {
 public:
  explicit Perturbation(float* p) : p_(p), original_(*p) {}
  ~Perturbation() { *p_ = original_; }
  Perturbation(const Perturbation&) = delete;
  Perturbation& operator=(const Perturbation&) = delete;
  // Writes original ± step rounded to f32 and returns the value actually stored.
  double set(double step) {
    *p_ = static_cast<float>(original_ + step);
    return *p_;
  }

 private:
  float* p_;
  float original_;
};

// Restores the inputs' .grad values on scope exit (gradcheck's own backward pass overwrites
// them).
class SavedGrads {
 public:
  explicit SavedGrads(const std::vector<Variable>& inputs) : inputs_(inputs) {
    for (const Variable& v : inputs_) grads_.push_back(v.grad());
  }
  ~SavedGrads() {
    for (size_t i = 0; i < inputs_.size(); ++i) inputs_[i].set_grad(grads_[i]);
  }
  SavedGrads(const SavedGrads&) = delete;
  SavedGrads& operator=(const SavedGrads&) = delete;

 private:
  std::vector<Variable> inputs_;  // handles: setting their grad sets the caller's
  std::vector<Tensor> grads_;
};

// worst = max(worst, value), where a NaN sticks once seen.
void keep_worst(double& worst, double value) {
  if (std::isnan(value) || value > worst) worst = value;
}

}  // namespace

GradcheckResult gradcheck(const std::function<Variable(const std::vector<Variable>&)>& f,
                          const std::vector<Variable>& inputs, const GradcheckOptions& opts) {
  RLAIF_CHECK(opts.eps > 0 && opts.atol >= 0 && opts.rtol >= 0 && opts.max_checks_per_input > 0,
              "gradcheck: invalid options (eps ", opts.eps, ", atol ", opts.atol, ", rtol ",
              opts.rtol, ", max_checks_per_input ", opts.max_checks_per_input, ")");
  std::vector<size_t> checked_inputs;
  for (size_t i = 0; i < inputs.size(); ++i) {
    RLAIF_CHECK(inputs[i].defined(), "gradcheck: input ", i, " is undefined");
    if (!inputs[i].requires_grad()) continue;
    RLAIF_CHECK(
        inputs[i].is_leaf() && inputs[i].device().is_cpu() && inputs[i].dtype() == DType::f32,
        "gradcheck: input ", i, " ", inputs[i].str(),
        " must be a CPU f32 leaf (its data is perturbed in place)");
    checked_inputs.push_back(i);
  }

  // ---- Analytical: one recorded run, backward seeded with w --------------------------------
  Shape out_shape;
  std::vector<double> w;
  std::vector<std::vector<float>> analytical(inputs.size());
  {
    SavedGrads saved(inputs);
    GradModeScope recording(true);
    for (size_t i : checked_inputs) {
      Variable handle = inputs[i];  // a handle: clearing its grad clears the caller's
      handle.zero_grad();
    }
    Variable y = f(inputs);
    RLAIF_CHECK(y.defined(), "gradcheck: f returned an undefined variable");
    out_shape = y.shape();
    Tensor seed = Tensor::empty(out_shape, DType::f32);
    float* s = seed.data<float>();
    for (int64_t i = 0; i < seed.numel(); ++i) {
      s[i] = philox_normal(opts.seed, static_cast<uint64_t>(i));
      w.push_back(s[i]);
    }
    if (y.requires_grad()) y.backward(seed);
    for (size_t i : checked_inputs) {
      const Tensor& g = inputs[i].grad();
      analytical[i] = g.defined() ? host_values(g, "a gradient")
                                  : std::vector<float>(static_cast<size_t>(inputs[i].numel()));
    }
  }

  // ---- Numerical: central differences of L = Σ w·f(x), evaluated without a graph -----------
  auto loss = [&]() {
    NoGradGuard no_grad;
    Variable y = f(inputs);
    RLAIF_CHECK(y.defined() && y.shape() == out_shape,
                "gradcheck: f's output shape changed between evaluations");
    std::vector<float> values = host_values(y.data(), "f's output");
    double total = 0.0;
    for (size_t i = 0; i < values.size(); ++i) total += w[i] * static_cast<double>(values[i]);
    return total;
  };

  GradcheckResult result;
  std::ostringstream failures;
  int failed = 0;
  for (size_t i : checked_inputs) {
    const Variable& input = inputs[i];
    float* p = input.data().data<float>();
    std::vector<int64_t> positions =
        positions_to_check(input.numel(), opts.max_checks_per_input, opts.seed + 7919 * (i + 1));
    for (int64_t j : positions) {
      double x_plus, x_minus, l_plus, l_minus;
      {
        Perturbation perturb(p + j);
        x_plus = perturb.set(opts.eps);
        l_plus = loss();
        x_minus = perturb.set(-opts.eps);
        l_minus = loss();
      }
      double numerical = (l_plus - l_minus) / (x_plus - x_minus);
      double analytic = analytical[i][static_cast<size_t>(j)];
      double err = std::fabs(numerical - analytic);
      double rel = err / std::max(std::fabs(numerical), 1e-12);
      ++result.checked;
      keep_worst(result.max_abs_error, err);
      keep_worst(result.max_rel_error, rel);
      // Written so that a NaN on either side fails (NaN compares false).
      if (!(err <= opts.atol + opts.rtol * std::fabs(numerical))) {
        result.ok = false;
        if (failed++ < kMaxReportedFailures) {
          failures << "  input " << i << (input.name().empty() ? "" : " '") << input.name()
                   << (input.name().empty() ? "" : "'") << " element " << j << ' '
                   << unravel(j, input.shape()) << ": numerical " << numerical << ", analytical "
                   << analytic << " (|diff| " << err << ")\n";
        }
      }
    }
  }

  std::ostringstream report;
  if (!result.ok) {
    report << "gradcheck failed at " << failed << " of " << result.checked << " elements"
           << (failed > kMaxReportedFailures ? " (first ones listed)" : "") << ":\n"
           << failures.str();
  }
  report << "gradcheck " << (result.ok ? "passed" : "FAILED") << ": " << result.checked
         << " elements, max abs error " << result.max_abs_error << ", max rel error "
         << result.max_rel_error << " (atol " << opts.atol << ", rtol " << opts.rtol << ", eps "
         << opts.eps << ")";
  result.report = report.str();
  return result;
}

}  // namespace rlaif
