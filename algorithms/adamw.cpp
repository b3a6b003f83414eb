// AdamW (Loshchilov & Hutter, 2019): the state management around Backend::adamw_step. The update
// equations are in adamw.h and, with the precision argument, in kernels/cpu/cpu_optimizer.cpp.
#include "algorithms/adamw.h"

#include <cmath>
#include <map>
#include <vector>

#include "kernels/backend.h"

namespace rlaif {
namespace {

void check_option(const char* field, double value, bool ok, const char* rule) {
  RLAIF_CHECK(std::isfinite(value) && ok, "AdamW: ", field, " is ", value, " but must be ", rule);
}

}  // namespace

AdamW::AdamW(std::vector<std::pair<std::string, Variable>> params, AdamWOptions options)
    : params_(std::move(params)), options_(options) {
  check(params_, options_);
  slots_.reserve(params_.size());
  for (const auto& [name, p] : params_) {
    Slot slot;
    const Device device = p.device();
    slot.m = Tensor::zeros(p.shape(), DType::f32, device);
    slot.v = Tensor::zeros(p.shape(), DType::f32, device);
    if (p.dtype() != DType::f32) {
      slot.master = Tensor::empty(p.shape(), DType::f32, device);
      backend_for(device).cast(p.data(), slot.master);
    }
    slot.weight_decay = weight_decay_for(p, options_);
    slots_.push_back(std::move(slot));
  }
}

void AdamW::check(const std::vector<std::pair<std::string, Variable>>& params,
                  const AdamWOptions& options) {
  check_option("beta1", options.beta1, options.beta1 >= 0.0 && options.beta1 < 1.0, "in [0, 1)");
  check_option("beta2", options.beta2, options.beta2 >= 0.0 && options.beta2 < 1.0, "in [0, 1)");
  check_option("eps", options.eps, options.eps >= 0.0, "≥ 0");
  check_option("weight_decay", options.weight_decay, options.weight_decay >= 0.0, "≥ 0");
  std::map<std::string, size_t> seen;
  for (size_t i = 0; i < params.size(); ++i) {
    const auto& [name, p] = params[i];
    RLAIF_CHECK(p.defined(), "AdamW: parameter '", name, "' is an undefined variable");
    RLAIF_CHECK(is_floating(p.dtype()), "AdamW: parameter '", name, "' is ", p.data(),
                " but must be a float tensor");
    auto [it, fresh] = seen.emplace(name, i);
    RLAIF_CHECK(fresh, "AdamW: two parameters are named '", name, "'");
    for (size_t j = 0; j < i; ++j) {
      RLAIF_CHECK(!params[j].second.is_same(p), "AdamW: parameters '", params[j].first, "' and '",
                  name, "' are one variable, which would be updated twice");
    }
  }
}

AdamWHyper adamw_hyper(const AdamWOptions& options, double lr, int64_t step) {
  AdamWHyper h;
  h.lr = lr;
  h.beta1 = options.beta1;
  h.beta2 = options.beta2;
  h.eps = options.eps;
  h.weight_decay = 0.0;
  h.step = step;
  return h;
}

void AdamW::step(double lr, float grad_scale) {
  RLAIF_CHECK(std::isfinite(lr) && lr >= 0.0, "AdamW::step: lr is ", lr,
              " but must be a finite number ≥ 0");
  RLAIF_CHECK(std::isfinite(grad_scale) && grad_scale >= 0.0f, "AdamW::step: grad_scale is ",
              grad_scale, " but must be a finite number ≥ 0");
  ++step_count_;
  updated_last_step_ = 0;
  const AdamWHyper h = adamw_hyper(options_, lr, step_count_);
  // One adamw_steps call per device, in the order the devices first appear.
  std::vector<size_t> with_grad;
  std::vector<Device> devices;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!params_[i].second.grad().defined()) continue;
    with_grad.push_back(i);
    devices.push_back(params_[i].second.device());
  }
  for (const std::vector<size_t>& group : group_by_device(devices)) {
    std::vector<AdamWTensors> entries;
    for (size_t k : group) {
      const size_t i = with_grad[k];
      const Variable& p = params_[i].second;
      const Slot& slot = slots_[i];
      entries.push_back({p.data(), p.grad(), slot.m, slot.v, slot.master, slot.weight_decay});
    }
    backend_for(devices[group.front()]).adamw_steps(entries, h, grad_scale);
    updated_last_step_ += static_cast<int64_t>(entries.size());
  }
}

void AdamW::zero_grad() {
  for (auto& [name, p] : params_) p.zero_grad();
}

std::vector<std::pair<std::string, Tensor>> AdamW::named_state() const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (size_t i = 0; i < params_.size(); ++i) {
    const std::string& name = params_[i].first;
    out.emplace_back("exp_avg." + name, slots_[i].m);
    out.emplace_back("exp_avg_sq." + name, slots_[i].v);
    if (slots_[i].master.defined()) out.emplace_back("master." + name, slots_[i].master);
  }
  return out;
}

std::vector<std::pair<std::string, Tensor>> AdamW::state() const {
  std::vector<std::pair<std::string, Tensor>> out = named_state();
  // Copies, so later steps do not change a snapshot being written out.
  for (auto& [name, t] : out) t = t.to(Device::cpu());
  return out;
}

void AdamW::load_state(const std::vector<std::pair<std::string, Tensor>>& state,
                       int64_t step_count) {
  RLAIF_CHECK(step_count >= 0, "AdamW::load_state: step count is ", step_count, " but must be ≥ 0");
  const std::vector<std::pair<std::string, Tensor>> expected = named_state();
  std::vector<std::pair<std::string, Shape>> want;
  for (const auto& [name, t] : expected) want.emplace_back(name, t.shape());
  // Check everything before copying anything, so a bad checkpoint leaves the optimizer as it was.
  const std::vector<const Tensor*> source = match_optimizer_state("AdamW::load_state", want, state);
  for (size_t i = 0; i < expected.size(); ++i) expected[i].second.copy_from(*source[i]);
  step_count_ = step_count;
  updated_last_step_ = 0;
}

std::vector<const Tensor*> match_optimizer_state(
    const char* who, const std::vector<std::pair<std::string, Shape>>& expected,
    const std::vector<std::pair<std::string, Tensor>>& state) {
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < expected.size(); ++i) index.emplace(expected[i].first, i);
  std::vector<const Tensor*> source(expected.size(), nullptr);
  for (const auto& [name, t] : state) {
    auto it = index.find(name);
    RLAIF_CHECK(it != index.end(), who, ": unexpected tensor '", name,
                "' (no parameter of this optimizer matches it)");
    RLAIF_CHECK(source[it->second] == nullptr, who, ": tensor '", name, "' appears twice");
    const Shape& shape = expected[it->second].second;
    RLAIF_CHECK(t.defined(), who, ": tensor '", name, "' is undefined");
    RLAIF_CHECK(t.dtype() == DType::f32 && t.shape() == shape, who, ": tensor '", name, "' is ", t,
                " but must be f32", shape_str(shape));
    source[it->second] = &t;
  }
  for (size_t i = 0; i < expected.size(); ++i) {
    RLAIF_CHECK(source[i] != nullptr, who, ": tensor '", expected[i].first, "' is missing");
  }
  return source;
}

}  // namespace rlaif
