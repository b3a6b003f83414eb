// Conformance of the fused residual-add + norm primitives (add_layernorm, add_rmsnorm) and of the
// accumulating norm backward (accumulate_dx). Two comparisons each:
// - against the unfused sequence on the CPU reference (binary add, then the norm; the norm
//   backward into a fresh tensor, then binary add), with the backend's tolerance, and exactly when
//   the backend under test is the reference itself;
// - against the unfused sequence on the backend under test, bit for bit, as backend.h promises
//   (a transformer switches between the two forms under activation recomputation).
// Shapes cover every row path of the CUDA kernels: a warp per row with and without 16-byte
// vectors (D = 13, 64, 1000), a block per row (D = 4096) and streamed rows (D = 2051, 8192).
// The suite derives from Conformance (same backends, inputs and tolerances) to share the helpers
// below; its tests run as Backends/AddNorm.*/{cpu,cuda,cuda_bf16}.
#include <string>
#include <vector>

#include "tests/kernels/conformance.h"

namespace rlaif::testing {
namespace {

const std::vector<Shape> kForwardShapes = {{7, 13},   {2, 5, 64}, {3, 1000},
                                           {4, 4096}, {2, 2051},  {2, 8192}};
const std::vector<Shape> kBackwardShapes = {{7, 13},   {3, 4, 64}, {300, 5},
                                            {4, 4096}, {2, 2051},  {2, 8192}};

Tensor host_f32(const Shape& shape) {
  return Tensor::empty(shape, DType::f32);
}

class AddNorm : public Conformance {
 protected:
  bool is_reference() { return &backend() == &reference(); }

  // `host` as the backend under test stores it: rounded through its float dtype (so the
  // reference normalises the very sum the backend normalises).
  Tensor as_stored(const Tensor& host) { return to_host_f32(on_backend(host)); }

  // Against the reference's unfused result: exact on the reference itself, else within the
  // backend's tolerance times `scale`.
  void expect_reference(const Tensor& got, const Tensor& want, const std::string& what,
                        double scale) {
    if (is_reference()) {
      EXPECT_TRUE(same_bits(got, want)) << what << ": the reference's fused result differs from "
                                        << "its unfused one";
    } else {
      expect_matches(got, want, what, scale);
    }
  }

  // One fused forward on the backend under test, checked both ways. layer: LayerNorm (else
  // RMSNorm); with_beta: LayerNorm's shift; in_place: sum written over x.
  void check_forward(const Shape& shape, bool layer, bool with_beta, bool in_place) {
    const int64_t d = shape.back(), n = shape_numel(shape) / d;
    const std::string what = std::string(layer ? "add_layernorm " : "add_rmsnorm ") +
                             shape_str(shape) + (with_beta ? " beta" : "") +
                             (in_place ? " in place" : "");
    const float eps = layer ? 1e-5f : 1e-6f;
    Tensor x = random_tensor(shape, 30, -2.0f, 2.0f), r = random_tensor(shape, 31, -1.0f, 2.0f);
    Tensor gamma = random_tensor({d}, 32, 0.5f, 1.5f), beta = random_tensor({d}, 33);
    Tensor b = layer && with_beta ? on_backend(beta) : Tensor();

    // Fused, on the backend under test.
    Tensor bx = on_backend(x);
    Tensor sum = in_place ? bx : empty_on_backend(shape, float_dtype());
    Tensor out = empty_on_backend(shape, float_dtype());
    Tensor mean = layer ? empty_on_backend({n}, DType::f32) : Tensor();
    Tensor rstd = empty_on_backend({n}, DType::f32);
    if (layer) {
      backend().add_layernorm(bx, on_backend(r), on_backend(gamma), b, eps, sum, out, mean, rstd);
    } else {
      backend().add_rmsnorm(bx, on_backend(r), on_backend(gamma), eps, sum, out, rstd);
    }

    // Unfused, on the backend under test: must give the same bits.
    Tensor usum = empty_on_backend(shape, float_dtype()),
           uout = empty_on_backend(shape, out.dtype());
    Tensor umean = layer ? empty_on_backend({n}, DType::f32) : Tensor();
    Tensor urstd = empty_on_backend({n}, DType::f32);
    backend().binary(BinaryOp::add, on_backend(x), on_backend(r), usum);
    if (layer) {
      backend().layernorm(usum, on_backend(gamma), b, eps, uout, umean, urstd);
    } else {
      backend().rmsnorm(usum, on_backend(gamma), eps, uout, urstd);
    }

    // Unfused, on the reference, from the sum as the backend stores it.
    Tensor want_sum = host_f32(shape), want_out = host_f32(shape), want_rstd = host_f32({n});
    Tensor want_mean = layer ? host_f32({n}) : Tensor();
    reference().binary(BinaryOp::add, x, r, want_sum);
    Tensor stored_sum = as_stored(want_sum);
    if (layer) {
      reference().layernorm(stored_sum, gamma, with_beta ? beta : Tensor(), eps, want_out,
                            want_mean, want_rstd);
    } else {
      reference().rmsnorm(stored_sum, gamma, eps, want_out, want_rstd);
    }
    backend().synchronize();

    EXPECT_TRUE(same_bits(sum, usum)) << GetParam() << ": " << what << ": sum differs from add's";
    EXPECT_TRUE(same_bits(out, uout)) << GetParam() << ": " << what << ": out differs from the "
                                      << "unfused norm's";
    EXPECT_TRUE(same_bits(rstd, urstd)) << GetParam() << ": " << what << ": rstd differs";
    if (layer) {
      EXPECT_TRUE(same_bits(mean, umean)) << GetParam() << ": " << what << ": mean";
    }

    expect_reference(sum, want_sum, what + " sum", 1.0);
    expect_reference(out, want_out, what + " out", 2.0);
    expect_reference(rstd, want_rstd, what + " rstd", 2.0);
    if (layer) expect_reference(mean, want_mean, what + " mean", 2.0);
  }

  // The accumulating backward on the backend under test against the plain backward then an add.
  // With misaligned_dx the accumulated dx is a view one element into its buffer (no 16-byte
  // vectors for it alone), which must not change the bits either.
  void check_backward(const Shape& shape, bool layer, bool misaligned_dx = false) {
    const int64_t d = shape.back(), n = shape_numel(shape) / d;
    const std::string what = std::string(layer ? "layernorm_backward" : "rmsnorm_backward") +
                             " += " + shape_str(shape) + (misaligned_dx ? " (misaligned dx)" : "");
    Tensor x = random_tensor(shape, 40, -2.0f, 2.0f), dout = random_tensor(shape, 41);
    Tensor gamma = random_tensor({d}, 42, 0.5f, 1.5f), dx_old = random_tensor(shape, 43);
    Tensor out = host_f32(shape), mean = host_f32({n}), rstd = host_f32({n});
    if (layer) {
      reference().layernorm(x, gamma, Tensor(), 1e-5f, out, mean, rstd);
    } else {
      reference().rmsnorm(x, gamma, 1e-6f, out, rstd);
    }
    Tensor bx = on_backend(x), bgamma = on_backend(gamma), bdout = on_backend(dout);
    Tensor bmean = on_backend(mean, DType::f32), brstd = on_backend(rstd, DType::f32);
    // dx ← dx + the norm's dx on the backend under test: accumulated (fused), or written to a
    // fresh tensor and then added.
    auto run = [&](const Tensor& dx, bool fused, const Tensor& dgamma, const Tensor& dbeta) {
      Tensor target = fused ? dx : empty_on_backend(shape, float_dtype());
      if (layer) {
        backend().layernorm_backward(bx, bgamma, bmean, brstd, bdout, target, dgamma, dbeta, fused);
      } else {
        backend().rmsnorm_backward(bx, bgamma, brstd, bdout, target, dgamma, fused);
      }
      if (!fused) backend().binary(BinaryOp::add, dx, target, dx);
    };
    Tensor dx = on_backend(dx_old), dgamma = empty_on_backend({d}, float_dtype());
    if (misaligned_dx) {
      const int64_t numel = dx_old.numel();
      Tensor buffer = empty_on_backend({numel + 1}, float_dtype());
      dx = buffer.slice(1, numel + 1).reshape(shape);
      dx.copy_from(on_backend(dx_old));
    }
    Tensor dbeta = layer ? empty_on_backend({d}, float_dtype()) : Tensor();
    run(dx, true, dgamma, dbeta);
    Tensor udx = on_backend(dx_old), udgamma = empty_on_backend({d}, float_dtype());
    Tensor udbeta = layer ? empty_on_backend({d}, float_dtype()) : Tensor();
    run(udx, false, udgamma, udbeta);

    // The reference: its own dx rounded as the backend stores it, added to dx_old.
    Tensor want_dx = host_f32(shape), want_dgamma = host_f32({d});
    Tensor want_dbeta = layer ? host_f32({d}) : Tensor();
    Tensor fresh = host_f32(shape);
    if (layer) {
      reference().layernorm_backward(x, gamma, mean, rstd, dout, fresh, want_dgamma, want_dbeta);
    } else {
      reference().rmsnorm_backward(x, gamma, rstd, dout, fresh, want_dgamma);
    }
    reference().binary(BinaryOp::add, dx_old, as_stored(fresh), want_dx);
    backend().synchronize();

    EXPECT_TRUE(same_bits(dx, udx))
        << GetParam() << ": " << what << ": dx differs from backward-then-add";
    EXPECT_TRUE(same_bits(dgamma, udgamma)) << GetParam() << ": " << what << ": dgamma differs";
    if (layer) {
      EXPECT_TRUE(same_bits(dbeta, udbeta)) << GetParam() << ": " << what << ": dbeta";
    }
    expect_reference(dx, want_dx, what + " dx", 4.0);
    expect_reference(dgamma, want_dgamma, what + " dgamma", 4.0 + static_cast<double>(n) / 16);
    if (layer) {
      expect_reference(dbeta, want_dbeta, what + " dbeta", 4.0 + static_cast<double>(n) / 16);
    }
  }
};

TEST_P(AddNorm, AddLayerNorm) {
  for (const Shape& shape : kForwardShapes) {
    for (bool with_beta : {true, false}) check_forward(shape, true, with_beta, false);
  }
}

TEST_P(AddNorm, AddRmsNorm) {
  for (const Shape& shape : kForwardShapes) check_forward(shape, false, false, false);
}

TEST_P(AddNorm, SumMayOverwriteX) {
  for (const Shape& shape : {Shape{7, 13}, Shape{4, 4096}, Shape{2, 2051}}) {
    check_forward(shape, true, true, true);
    check_forward(shape, false, false, true);
  }
}

TEST_P(AddNorm, LayerNormBackwardAccumulates) {
  for (const Shape& shape : kBackwardShapes) check_backward(shape, true);
}

TEST_P(AddNorm, RmsNormBackwardAccumulates) {
  for (const Shape& shape : kBackwardShapes) check_backward(shape, false);
}

TEST_P(AddNorm, BackwardAccumulatesIntoAMisalignedDx) {
  // Widths whose aligned rows take 16-byte vectors on the GPU (warp and block paths).
  for (const Shape& shape : {Shape{9, 768}, Shape{3, 4096}}) {
    check_backward(shape, true, true);
    check_backward(shape, false, true);
  }
}

TEST_P(AddNorm, BadArgumentsThrow) {
  const DType f = float_dtype();
  Tensor x = empty_on_backend({4, 6}, f), gamma = empty_on_backend({6}, f);
  Tensor out = empty_on_backend({4, 6}, f), sum = empty_on_backend({4, 6}, f);
  Tensor mean = empty_on_backend({4}, DType::f32), rstd = empty_on_backend({4}, DType::f32);
  // residual must have x's shape (no broadcasting, unlike binary).
  EXPECT_THROW(backend().add_layernorm(x, empty_on_backend({6}, f), gamma, Tensor(), 1e-5f, sum,
                                       out, mean, rstd),
               Error);
  EXPECT_THROW(backend().add_rmsnorm(x, empty_on_backend({4, 5}, f), gamma, 1e-6f, sum, out, rstd),
               Error);
  // sum of the wrong shape or missing.
  EXPECT_THROW(backend().add_rmsnorm(x, x, gamma, 1e-6f, empty_on_backend({4, 5}, f), out, rstd),
               Error);
  EXPECT_THROW(backend().add_layernorm(x, x, gamma, Tensor(), 1e-5f, Tensor(), out, mean, rstd),
               Error);
  // The norm's own checks still apply.
  EXPECT_THROW(backend().add_layernorm(x, x, empty_on_backend({5}, f), Tensor(), 1e-5f, sum, out,
                                       mean, rstd),
               Error);
  EXPECT_THROW(
      backend().add_rmsnorm(x, x, gamma, 1e-6f, sum, out, empty_on_backend({3}, DType::f32)),
      Error);
}

INSTANTIATE_TEST_SUITE_P(Backends, AddNorm, ::testing::ValuesIn(conformance_backends()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
}  // namespace rlaif::testing
