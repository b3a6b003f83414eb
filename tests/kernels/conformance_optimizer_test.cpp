// Conformance of the optimizer primitives: adamw_step (with and without an f32 master copy),
// squared_norm, and their multi-tensor forms adamw_steps and squared_norms.
//
// The AdamW test runs three consecutive updates with fresh gradients on the backend under test
// and on the CPU reference, and compares the parameter, both moments and the master copy, so an
// error in the moment bookkeeping shows up in later steps too.
//
// The multi-tensor forms promise the bits of their one-tensor counterparts on the same backend,
// so their tests check that exactly, on lists long enough to span several of the CUDA backend's
// launches (48 parameters of one dtype, 64 norms per launch), with empty tensors, tensors of
// several 16K-element blocks, mixed dtypes with and without master copies, and slices at odd
// offsets, all of a parameter's tensors or just one of them (any one rules out vector accesses).
// They also compare with the CPU reference within the dtype's tolerance.
#include <cstring>
#include <string>
#include <vector>

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

namespace {

// Sizes that cover: empty, one element, odd sizes, one of more than one 16K block, and one
// crossing several 8192-element norm chunks. 16384 + 3 leaves a last AdamW block (and norm chunk)
// of 3 elements: no full group of four, all tail.
const int64_t kSizes[] = {0, 1, 7, 768, 16384 + 3, 40009, 8193};

// g·scale rounded to f32, then to g's dtype: the gradient adamw_steps is to read. Computed on
// the host, one f32 multiply per element, so every backend's result is checked against it.
Tensor scaled_grad(const Tensor& host_f32_grad, float scale, DType dtype) {
  Tensor s = host_f32_grad.clone();
  float* p = s.data<float>();
  for (int64_t i = 0; i < s.numel(); ++i) p[i] = p[i] * scale;
  return host_as(s, dtype);
}

// One parameter's state on the host (the reference) and the initial values it starts from.
struct ParamCase {
  DType dtype;  // the parameter's (and gradient's) dtype
  bool master;
  int64_t size;
  // Elements before each tensor in its buffer: an odd one misaligns it. The offsets differ so
  // that a misaligned gradient, moment pair or master alone is tried too (every pointer must be
  // checked before the CUDA backend takes vector accesses).
  int64_t offset;         // param
  int64_t grad_offset;    // grad
  int64_t moment_offset;  // m and v
  int64_t master_offset;  // master
  double weight_decay;
};

class MultiTensor : public Conformance {
 protected:
  // A backend tensor of `n` elements that starts `offset` elements into a larger buffer.
  Tensor at_offset(const Tensor& host, int64_t offset, DType dtype) {
    const int64_t n = host.numel();
    Tensor buffer = empty_on_backend({n + offset}, dtype);
    Tensor view = buffer.slice(offset, offset + n);
    view.copy_from(on_backend(host, dtype));
    return view;
  }

  std::vector<ParamCase> cases() {
    std::vector<ParamCase> out;
    const DType dtypes[] = {DType::f32, float_dtype(), DType::bf16};
    // 180: more than 48 non-empty parameters of each dtype for every backend (the CUDA backend
    // launches per dtype, 48 parameters each, and skips empty ones); checked below.
    for (int i = 0; i < 180; ++i) {
      ParamCase c;
      c.master = i % 3 != 0;
      c.dtype = c.master ? dtypes[1 + i % 2] : DType::f32;
      c.size = kSizes[i % 7];
      // i % 5: 0 all aligned; 1 master, 2 m and v, 3 grad alone misaligned; 4 everything.
      c.offset = i % 5 == 4 ? 1 : 0;
      c.grad_offset = i % 5 == 3 || i % 5 == 4 ? 1 : 0;
      c.moment_offset = i % 5 == 2 || i % 5 == 4 ? 1 : 0;
      c.master_offset = i % 5 == 1 || i % 5 == 4 ? 1 : 0;
      c.weight_decay = i % 2 ? 0.1 : 0.0;
      out.push_back(c);
    }
    int64_t f32 = 0, bf16 = 0;
    for (const ParamCase& c : out) {
      if (c.size == 0) continue;
      (c.dtype == DType::f32 ? f32 : bf16) += 1;
    }
    EXPECT_GT(f32, 48) << "too few f32 parameters for a second CUDA launch";
    EXPECT_GT(bf16, 48) << "too few bf16 parameters for a second CUDA launch";
    return out;
  }
};

}  // namespace

TEST_P(MultiTensor, AdamwStepsIsAdamwStepOnScaledGradients) {
  const std::vector<ParamCase> cs = cases();
  // Two identical states on the backend: one updated by adamw_steps, one by adamw_step per
  // parameter from pre-scaled gradients; and the reference's on the host.
  struct State {
    Tensor p, m, v, w;
  };
  std::vector<State> multi, single, ref;
  for (size_t i = 0; i < cs.size(); ++i) {
    const ParamCase& c = cs[i];
    const Tensor init = host_as(random_tensor({c.size}, 100 + i, -2.0f, 2.0f), c.dtype);
    const Tensor zeros = Tensor::zeros({c.size}, DType::f32);
    const Tensor master = c.master ? to_host_f32(init) : Tensor();
    for (std::vector<State>* s : {&multi, &single}) {
      s->push_back({at_offset(init, c.offset, c.dtype),
                    at_offset(zeros, c.moment_offset, DType::f32),
                    at_offset(zeros, c.moment_offset, DType::f32),
                    c.master ? at_offset(master, c.master_offset, DType::f32) : Tensor()});
    }
    ref.push_back(
        {init.clone(), zeros.clone(), zeros.clone(), c.master ? master.clone() : Tensor()});
  }
  // Step 1 clips (scale 0.37); step 2 does not (scale 1: the gradients as they are).
  const float scales[] = {0.37f, 1.0f};
  for (int64_t t = 1; t <= 2; ++t) {
    const float scale = scales[t - 1];
    std::vector<AdamWTensors> entries;
    std::vector<Tensor> grads_before;
    for (size_t i = 0; i < cs.size(); ++i) {
      const ParamCase& c = cs[i];
      // The gradient in its dtype, and its scaled copy rounded back to that dtype.
      const Tensor g = host_as(random_tensor({c.size}, 1000 * t + i, -1.0f, 1.0f), c.dtype);
      const Tensor g_scaled = scaled_grad(to_host_f32(g), scale, c.dtype);
      const Tensor g_backend = at_offset(g, c.grad_offset, c.dtype);
      grads_before.push_back(g_backend.to(Device::cpu()));
      // The promise is bitwise affine(g, scale, 0) followed by adamw_step: the host's scaling
      // above must be the backend's affine (no FMA, the same rounding to bf16), where the backend
      // takes that dtype (the CPU reference's affine takes f32 only).
      if (backend_accepts(c.dtype)) {
        Tensor g_affine = empty_on_backend({c.size}, c.dtype);
        backend().affine(g_backend, scale, 0.0f, g_affine);
        EXPECT_TRUE(same_bits(g_affine, g_scaled))
            << "step " << t << ", entry " << i << ": affine's scaling differs from the host's";
      }
      entries.push_back(
          {multi[i].p, g_backend, multi[i].m, multi[i].v, multi[i].w, c.weight_decay});
      AdamWHyper h = hyper_for_step(t);
      h.weight_decay = c.weight_decay;
      backend().adamw_step(single[i].p, at_offset(g_scaled, c.grad_offset, c.dtype), single[i].m,
                           single[i].v, single[i].w, h);
      reference().adamw_step(ref[i].p, g_scaled, ref[i].m, ref[i].v, ref[i].w, h);
    }
    backend().adamw_steps(entries, hyper_for_step(t), scale);
    for (size_t i = 0; i < cs.size(); ++i) {
      const std::string what =
          "step " + std::to_string(t) + ", entry " + std::to_string(i) + " (" +
          dtype_name(cs[i].dtype) + (cs[i].master ? " with master" : "") + ", " +
          std::to_string(cs[i].size) + " elements, offsets param/grad/m,v/master " +
          std::to_string(cs[i].offset) + "/" + std::to_string(cs[i].grad_offset) + "/" +
          std::to_string(cs[i].moment_offset) + "/" + std::to_string(cs[i].master_offset) + ")";
      EXPECT_TRUE(same_bits(entries[i].grad, grads_before[i])) << what << ": grad was changed";
      EXPECT_TRUE(same_bits(multi[i].p, single[i].p)) << what << ": param";
      EXPECT_TRUE(same_bits(multi[i].m, single[i].m)) << what << ": m";
      EXPECT_TRUE(same_bits(multi[i].v, single[i].v)) << what << ": v";
      if (cs[i].master) {
        EXPECT_TRUE(same_bits(multi[i].w, single[i].w)) << what << ": master";
      }
      expect_matches(multi[i].p, ref[i].p, what + ": param vs the reference");
      expect_matches(multi[i].m, ref[i].m, what + ": m vs the reference");
    }
  }
}

TEST_P(MultiTensor, AdamwStepsChecksEveryEntryBeforeUpdatingAny) {
  const Tensor p0 = on_backend(random_tensor({5}, 1), DType::f32);
  const Tensor before = p0.to(Device::cpu());
  auto f32 = [&](int64_t n) { return on_backend(Tensor::zeros({n}, DType::f32), DType::f32); };
  std::vector<AdamWTensors> entries = {{p0, f32(5), f32(5), f32(5), Tensor(), 0.1},
                                       {f32(3), f32(3), f32(3), f32(3), Tensor(), 0.0},
                                       {f32(4), f32(4), f32(3), f32(4), Tensor(), 0.0}};
  entries[0].grad.copy_from(on_backend(random_tensor({5}, 2), DType::f32));
  try {
    backend().adamw_steps(entries, hyper_for_step(1), 1.0f);
    ADD_FAILURE() << "a bad m in entry 2 was accepted";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("entry 2"), std::string::npos) << msg;
    EXPECT_NE(msg.find("m"), std::string::npos) << msg;
  }
  EXPECT_TRUE(same_bits(p0, before)) << "entry 0 was updated before entry 2 was checked";
  EXPECT_THROW(backend().adamw_steps({entries.data(), 1}, hyper_for_step(0), 1.0f), Error);
}

TEST_P(MultiTensor, SquaredNormsIsSquaredNormPerTensor) {
  std::vector<Tensor> xs;
  std::vector<Tensor> hosts;
  // More than one CUDA launch's 64; f16 too (gradients may be kept in it); the last has more
  // than 1024 chunks of 8192, so each thread of the CUDA backend's totals adds several partials.
  for (int i = 0; i < 71; ++i) {
    const int64_t n = i == 70 ? 1024 * 8192 + 8193 : kSizes[i % 7];
    const DType dtype = i % 5 == 1 ? DType::f16 : i % 2 ? float_dtype() : DType::f32;
    hosts.push_back(host_as(random_tensor({n}, 500 + i, -3.0f, 3.0f), dtype));
    xs.push_back(at_offset(hosts.back(), i % 3 == 2 ? 1 : 0, dtype));
  }
  Tensor got = empty_on_backend({static_cast<int64_t>(xs.size())}, DType::f32);
  backend().squared_norms(xs, got);
  const std::vector<float> values = got.to(Device::cpu()).to_vector<float>();
  for (size_t i = 0; i < xs.size(); ++i) {
    const std::string what = "squared_norms entry " + std::to_string(i) + " (" +
                             std::to_string(xs[i].numel()) + " elements, " +
                             dtype_name(xs[i].dtype()) + ")";
    Tensor one = empty_on_backend({}, DType::f32);
    backend().squared_norm(xs[i], one);
    const float single = one.to(Device::cpu()).to_vector<float>()[0];
    EXPECT_EQ(std::memcmp(&values[i], &single, sizeof(float)), 0)
        << what << ": " << values[i] << " vs squared_norm's " << single;
    Tensor want = Tensor::empty({}, DType::f32);
    reference().squared_norm(to_host_f32(hosts[i]), want);
    const Tensor got_i = Tensor::from_vector(std::vector<float>{values[i]}, {});
    expect_matches(got_i, want, what + " vs the reference");
  }
  // No tensors: nothing to write, and no error.
  backend().squared_norms({}, empty_on_backend({0}, DType::f32));
  EXPECT_THROW(backend().squared_norms(xs, empty_on_backend({3}, DType::f32)), Error);
}

INSTANTIATE_TEST_SUITE_P(Backends, MultiTensor, ::testing::ValuesIn(conformance_backends()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace rlaif::testing
