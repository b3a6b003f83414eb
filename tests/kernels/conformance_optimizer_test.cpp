// Conformance of the optimizer primitives: adamw_step (with and without an f32 master copy) and
// squared_norm.
//
// The AdamW test runs three consecutive updates with fresh gradients on the backend under test
// and on the CPU reference, and compares the parameter, both moments and the master copy, so an
// error in the moment bookkeeping shows up in later steps too.
#include <string>

#include "tests/kernels/conformance.h"

namespace rlaif::testing {
namespace {

// Odd sizes, one element, an empty tensor, 3-D, and one long enough to be split over threads.
const Shape kShapes[] = {{7, 13}, {1}, {0, 5}, {3, 5, 33}, {40009}};

std::string label(const std::string& what, const Shape& shape) {
  return what + " " + shape_str(shape);
}

AdamWHyper hyper_for_step(int64_t step) {
  AdamWHyper h;
  h.lr = 0.01;
  h.beta1 = 0.9;
  h.beta2 = 0.95;
  h.eps = 1e-8;
  h.weight_decay = 0.1;
  h.step = step;
  return h;
}

// A host tensor of `dtype` (a float dtype) holding host f32 `t` rounded to it.
Tensor host_as(const Tensor& t, DType dtype) {
  if (dtype == DType::f32) return t.clone();
  Tensor out = Tensor::empty(t.shape(), dtype);
  backend_for(Device::cpu()).cast(t, out);
  return out;
}

}  // namespace

TEST_P(Conformance, AdamwStep) {
  // Without a master the parameter is f32 on every backend; with one it is the backend's float
  // dtype or bf16 (the GPU layout: bf16 weights, f32 master).
  struct Case {
    bool master;
    DType param_dtype;
  };
  const Case cases[] = {{false, DType::f32}, {true, float_dtype()}, {true, DType::bf16}};
  for (const Case& c : cases) {
    for (const Shape& shape : kShapes) {
      const std::string what = label(
          std::string("adamw_step ") + dtype_name(c.param_dtype) + (c.master ? " with master" : ""),
          shape);
      const Tensor init = random_tensor(shape, 1, -2.0f, 2.0f);
      // Reference state on the host, the state under test on the backend.
      Tensor want_p = host_as(init, c.param_dtype);
      // The master starts as the parameter's value, as AdamW sets it up.
      Tensor want_w = c.master ? to_host_f32(want_p).clone() : Tensor();
      Tensor want_m = Tensor::zeros(shape, DType::f32), want_v = Tensor::zeros(shape, DType::f32);
      Tensor got_p = on_backend(want_p, c.param_dtype);
      Tensor got_w = c.master ? on_backend(want_w, DType::f32) : Tensor();
      Tensor got_m = on_backend(want_m, DType::f32), got_v = on_backend(want_v, DType::f32);
      for (int64_t t = 1; t <= 3; ++t) {
        // Gradients of changing scale: the third one is small, so √v̂ is near eps's range.
        const float scale = t == 3 ? 1e-4f : 1.0f;
        Tensor g = host_as(random_tensor(shape, 10 + t, -scale, scale), c.param_dtype);
        backend().adamw_step(got_p, on_backend(g, c.param_dtype), got_m, got_v, got_w,
                             hyper_for_step(t));
        reference().adamw_step(want_p, g, want_m, want_v, want_w, hyper_for_step(t));
      }
      expect_matches(got_p, want_p, what + ": param");
      expect_matches(got_m, want_m, what + ": m");
      expect_matches(got_v, want_v, what + ": v");
      if (c.master) expect_matches(got_w, want_w, what + ": master");
    }
  }
}

TEST_P(Conformance, SquaredNorm) {
  for (const Shape& shape : kShapes) {
    const Tensor x = random_tensor(shape, 3, -3.0f, 3.0f);
    Tensor got = empty_on_backend({}, DType::f32), want = Tensor::empty({}, DType::f32);
    const Tensor x_backend = on_backend(x);
    // The reference sees the values the backend holds (rounded to its float dtype).
    backend().squared_norm(x_backend, got);
    reference().squared_norm(to_host_f32(x_backend), want);
    expect_matches(got, want, label("squared_norm", shape));
  }
}

}  // namespace rlaif::testing
