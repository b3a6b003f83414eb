#include "kernels/backend.h"

#include <array>
#include <atomic>
#include <cmath>
#include <map>
#include <memory>
#include <mutex>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/profiling_backend.h"
#include "kernels/shape_checks.h"
#ifdef RLAIF_HAVE_CUDA
#include "kernels/cuda/cuda_backend.h"
#include "runtime/allocator.h"
#endif

namespace rlaif {

const char* unary_op_name(UnaryOp op) {
  switch (op) {
    case UnaryOp::neg:
      return "neg";
    case UnaryOp::exp:
      return "exp";
    case UnaryOp::log:
      return "log";
    case UnaryOp::sqrt:
      return "sqrt";
    case UnaryOp::square:
      return "square";
    case UnaryOp::abs:
      return "abs";
    case UnaryOp::relu:
      return "relu";
    case UnaryOp::sigmoid:
      return "sigmoid";
    case UnaryOp::log_sigmoid:
      return "log_sigmoid";
    case UnaryOp::tanh:
      return "tanh";
    case UnaryOp::gelu_tanh:
      return "gelu_tanh";
    case UnaryOp::silu:
      return "silu";
  }
  return "?";
}

const char* binary_op_name(BinaryOp op) {
  switch (op) {
    case BinaryOp::add:
      return "add";
    case BinaryOp::sub:
      return "sub";
    case BinaryOp::mul:
      return "mul";
    case BinaryOp::div:
      return "div";
    case BinaryOp::minimum:
      return "minimum";
    case BinaryOp::maximum:
      return "maximum";
  }
  return "?";
}

const char* reduce_op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::sum:
      return "sum";
    case ReduceOp::mean:
      return "mean";
    case ReduceOp::max:
      return "max";
  }
  return "?";
}

namespace {

struct Registry {
  std::mutex mutex;
#ifdef RLAIF_HAVE_CUDA
  // Compiled in: the CUDA backend and its memory manager are installed here, explicitly (a static
  // initialiser inside the static CUDA library would be dropped by the linker).
  Registry() {
    register_device_memory(DeviceType::cuda, cuda::cuda_device_memory());
  }
  Backend* (*cuda_factory)(int) = &cuda::make_cuda_backend;
#else
  Backend* (*cuda_factory)(int) = nullptr;
#endif
  std::map<int, std::unique_ptr<Backend>> cuda_backends;
};

Registry& registry() {
  static Registry r;
  return r;
}

// Installs the CUDA memory manager at start-up, so CUDA tensors can be made before the first
// backend_for(cuda) call.
[[maybe_unused]] const bool g_registered = (registry(), true);

}  // namespace

void Backend::linear_gelu(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& pre,
                          const Tensor& out) {
  RLAIF_CHECK(x.dim() == 2 && w.dim() == 2 && pre.dim() == 2, "linear_gelu: x ", x, ", w ", w,
              " and pre ", pre, " must be 2-D");
  RLAIF_CHECK(out.shape() == pre.shape() && out.dtype() == pre.dtype(), "linear_gelu: out ", out,
              " must match pre ", pre);
  matmul(x, w, pre, false, true, bias);
  unary(UnaryOp::gelu_tanh, pre, out);
}

void check_adamw_entry(const std::string& op, const AdamWTensors& e) {
  RLAIF_CHECK(e.param.defined() && e.grad.defined() && e.m.defined() && e.v.defined(), op,
              ": param, grad, m and v must all be defined");
  expect_shape(op.c_str(), "grad", e.grad, e.param.shape());
  expect_shape(op.c_str(), "m", e.m, e.param.shape());
  expect_shape(op.c_str(), "v", e.v, e.param.shape());
  if (e.master.defined()) expect_shape(op.c_str(), "master", e.master, e.param.shape());
  RLAIF_CHECK(e.grad.dtype() == e.param.dtype(), op, ": grad ", e.grad, " must have param ",
              e.param, "'s dtype");
  RLAIF_CHECK(e.m.dtype() == DType::f32 && e.v.dtype() == DType::f32 &&
                  (!e.master.defined() || e.master.dtype() == DType::f32),
              op, ": m, v and master must be f32");
  RLAIF_CHECK(e.master.defined() || e.param.dtype() == DType::f32, op, ": param ", e.param,
              " must be f32 when there is no master copy");
  RLAIF_CHECK(std::isfinite(e.weight_decay), op, ": weight_decay is ", e.weight_decay);
}

void Backend::adamw_steps(std::span<const AdamWTensors> params, const AdamWHyper& h,
                          float grad_scale) {
  for (size_t i = 0; i < params.size(); ++i) {
    check_adamw_entry("adamw_steps (entry " + std::to_string(i) + ")", params[i]);
  }
  RLAIF_CHECK(h.step >= 1, "adamw_steps: step is ", h.step, " but must be ≥ 1 (it is 1-based)");
  for (const AdamWTensors& e : params) {
    AdamWHyper hi = h;
    hi.weight_decay = e.weight_decay;
    Tensor grad = e.grad;
    if (grad_scale != 1.0f) {
      grad = Tensor::empty(e.grad.shape(), e.grad.dtype(), e.grad.device());
      affine(e.grad, grad_scale, 0.0f, grad);
    }
    adamw_step(e.param, grad, e.m, e.v, e.master, hi);
  }
}

void Backend::squared_norms(std::span<const Tensor> xs, const Tensor& out) {
  expect_shape("squared_norms", "out", out, Shape{static_cast<int64_t>(xs.size())});
  for (size_t i = 0; i < xs.size(); ++i) {
    const int64_t k = static_cast<int64_t>(i);
    squared_norm(xs[i], out.slice(k, k + 1).reshape({}));
  }
}

void register_backend(DeviceType type, Backend* (*factory)(int index)) {
  RLAIF_CHECK(type == DeviceType::cuda, "register_backend: the cpu backend is built in");
  std::lock_guard<std::mutex> lock(registry().mutex);
  registry().cuda_factory = factory;
}

bool backend_available(DeviceType type) {
  if (type == DeviceType::cpu) return true;
  std::lock_guard<std::mutex> lock(registry().mutex);
  return registry().cuda_factory != nullptr;
}

namespace {

// Profiling (kernels/profiling_backend.h). One slot per device, holding the wrapper that
// backend_for returns while profiling is on; wrappers are never destroyed, since code may still
// hold a Backend& it got while profiling was on. g_profiling counts the active slots, so
// backend_for pays one relaxed atomic load when nothing is profiled.
constexpr int kMaxProfiledCuda = 64;
std::atomic<int> g_profiling{0};
std::array<std::atomic<ProfilingBackend*>, 1 + kMaxProfiledCuda> g_active{};

struct Profilers {
  std::mutex mutex;  // serialises enable/disable and the creation of wrappers
  std::array<std::unique_ptr<ProfilingBackend>, 1 + kMaxProfiledCuda> wrappers;
};

// Never destroyed: a static destructor running backend_for at exit must not find a dead wrapper.
Profilers& profilers() {
  static Profilers* p = new Profilers;
  return *p;
}

// The slot of a device: 0 for the CPU, 1 + index for cuda:index.
size_t profile_slot(Device device) {
  if (device.is_cpu()) return 0;
  RLAIF_CHECK(device.index >= 0 && device.index < kMaxProfiledCuda, "profiling ", device,
              ": only cuda:0 to cuda:", kMaxProfiledCuda - 1, " can be profiled");
  return 1 + static_cast<size_t>(device.index);
}

// The real backend: what backend_for returns when the device is not profiled.
Backend& plain_backend_for(Device device) {
  if (device.is_cpu()) {
    static CpuBackend cpu;
    return cpu;
  }
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  RLAIF_CHECK(r.cuda_factory != nullptr, "backend_for(", device,
              "): this binary was built without the CUDA backend (configure with "
              "-DRLAIF_CUDA=ON on a machine with the CUDA Toolkit)");
  auto& slot = r.cuda_backends[device.index];
  if (!slot) slot.reset(r.cuda_factory(device.index));
  return *slot;
}

}  // namespace

Backend& backend_for(Device device) {
  if (g_profiling.load(std::memory_order_relaxed) > 0) [[unlikely]] {
    if (device.is_cpu() || (device.index >= 0 && device.index < kMaxProfiledCuda)) {
      const size_t slot = device.is_cpu() ? 0 : 1 + static_cast<size_t>(device.index);
      if (ProfilingBackend* p = g_active[slot].load(std::memory_order_acquire)) return *p;
    }
  }
  return plain_backend_for(device);
}

ProfilingBackend* enable_profiling(Device device) {
  const size_t slot = profile_slot(device);
  Profilers& p = profilers();
  std::lock_guard<std::mutex> lock(p.mutex);
  auto& wrapper = p.wrappers[slot];
  if (!wrapper) wrapper = std::make_unique<ProfilingBackend>(plain_backend_for(device));
  wrapper->enable();
  if (g_active[slot].exchange(wrapper.get(), std::memory_order_acq_rel) == nullptr) {
    g_profiling.fetch_add(1, std::memory_order_relaxed);
  }
  return wrapper.get();
}

void disable_profiling(Device device) {
  const size_t slot = profile_slot(device);
  Profilers& p = profilers();
  std::lock_guard<std::mutex> lock(p.mutex);
  if (g_active[slot].exchange(nullptr, std::memory_order_acq_rel) != nullptr) {
    g_profiling.fetch_sub(1, std::memory_order_relaxed);
  }
  if (p.wrappers[slot]) p.wrappers[slot]->disable();
}

}  // namespace rlaif
