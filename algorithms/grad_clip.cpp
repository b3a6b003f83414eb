// Gradient-norm clipping (see grad_clip.h for the rule and its source).
#include "algorithms/grad_clip.h"

#include <cmath>

#include "kernels/backend.h"

namespace rlaif {

double global_grad_norm(const std::vector<std::pair<std::string, Variable>>& params) {
  // The squared norms of each device's gradients in one call and one read back: on a GPU a read
  // is a wait for the device, and a model has a hundred or more parameters.
  std::vector<Tensor> grads;
  for (const auto& [name, p] : params) {
    if (p.defined() && p.grad().defined()) grads.push_back(p.grad());
  }
  std::vector<Device> devices;
  for (const Tensor& g : grads) devices.push_back(g.device());
  std::vector<double> sums(grads.size(), 0.0);
  for (const std::vector<size_t>& index : group_by_device(devices)) {
    std::vector<Tensor> group;
    for (size_t i : index) group.push_back(grads[i]);
    const Device device = devices[index.front()];
    Tensor out = Tensor::empty({static_cast<int64_t>(group.size())}, DType::f32, device);
    backend_for(device).squared_norms(group, out);
    const std::vector<float> values = out.to_vector<float>();
    for (size_t k = 0; k < index.size(); ++k) sums[index[k]] = values[k];
  }
  // Added in the order of the list, in double.
  double total = 0.0;
  for (double s : sums) total += s;
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
