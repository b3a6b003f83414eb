// Gradient-norm clipping (see grad_clip.h for the rule and its source).
#include "algorithms/grad_clip.h"

#include <cmath>

#include "kernels/backend.h"

namespace rlaif {

double global_grad_norm(const std::vector<std::pair<std::string, Variable>>& params) {
  // Queue every squared norm before reading any back: on an asynchronous backend the reads then
  // wait once for all of them instead of once per parameter.
  std::vector<Tensor> sums;
  sums.reserve(params.size());
  for (const auto& [name, p] : params) {
    if (!p.defined() || !p.grad().defined()) continue;
    const Tensor& g = p.grad();
    Tensor out = Tensor::empty({}, DType::f32, g.device());
    backend_for(g.device()).squared_norm(g, out);
    sums.push_back(out);
  }
  double total = 0.0;
  for (const Tensor& s : sums) total += static_cast<double>(s.item());
  return std::sqrt(total);
}

double clip_grad_norm(const std::vector<std::pair<std::string, Variable>>& params,
                      double max_norm) {
  const double norm = global_grad_norm(params);
  const double coef = clip_factor(norm, max_norm);
  if (coef == 1.0) return norm;
  // PyTorch holds the coefficient as an f32 tensor and multiplies in the gradient's dtype.
  const float scale = static_cast<float>(coef);
  for (const auto& [name, p] : params) {
    if (!p.defined() || !p.grad().defined()) continue;
    const Tensor& g = p.grad();
    backend_for(g.device()).affine(g, scale, 0.0f, g);
  }
  return norm;
}

double clip_factor(double norm, double max_norm) {
  if (max_norm <= 0.0 || !std::isfinite(norm)) return 1.0;
  const double coef = max_norm / (norm + 1e-6);
  return coef < 1.0 ? coef : 1.0;
}

}  // namespace rlaif
