// Conformance of the basic primitives: memory, matmul, elementwise, reductions and softmax.
//
// Each test runs a primitive on the backend under test with inputs copied there by on_backend()
// and on the CPU reference with the host inputs, over several shapes (odd sizes, one element,
// no rows), and compares the results with the backend's tolerance.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "tests/kernels/conformance.h"

namespace rlaif::testing {
namespace {

const DType kAllDtypes[] = {DType::f32, DType::bf16, DType::f16, DType::i32, DType::i64, DType::u8};

const UnaryOp kUnaryOps[] = {UnaryOp::neg,  UnaryOp::exp,       UnaryOp::log,
                             UnaryOp::sqrt, UnaryOp::square,    UnaryOp::abs,
                             UnaryOp::relu, UnaryOp::sigmoid,   UnaryOp::log_sigmoid,
                             UnaryOp::tanh, UnaryOp::gelu_tanh, UnaryOp::silu};
const BinaryOp kBinaryOps[] = {BinaryOp::add, BinaryOp::sub,     BinaryOp::mul,
                               BinaryOp::div, BinaryOp::minimum, BinaryOp::maximum};
const ReduceOp kReduceOps[] = {ReduceOp::sum, ReduceOp::mean, ReduceOp::max};

// Shapes for elementwise and row-wise primitives: odd sizes, one element, no rows, 3-D.
const Shape kShapes[] = {{7, 13}, {1, 1}, {0, 5}, {3, 5, 33}, {4, 1000}};

std::string label(const std::string& what, const Shape& shape) {
  return what + " " + shape_str(shape);
}

// Positive inputs for log and sqrt; the others see both signs.
Tensor unary_input(UnaryOp op, const Shape& shape, uint64_t seed) {
  bool positive = op == UnaryOp::log || op == UnaryOp::sqrt;
  return random_tensor(shape, seed, positive ? 0.1f : -5.0f, 5.0f);
}

// A host tensor of dtype `dtype` holding random values in [lo, hi) (cast from f32).
Tensor random_of_dtype(const Shape& shape, DType dtype, uint64_t seed, float lo, float hi) {
  Tensor f = random_tensor(shape, seed, lo, hi);
  if (dtype == DType::f32) return f;
  Tensor t = Tensor::empty(shape, dtype);
  backend_for(Device::cpu()).cast(f, t);
  return t;
}

}  // namespace

// ---- Memory ----------------------------------------------------------------------------------

TEST_P(Conformance, Fill) {
  for (DType dtype : kAllDtypes) {
    for (const Shape& shape : {Shape{7, 13}, Shape{1}, Shape{0, 3}}) {
      for (double value : {2.75, -3.5, 0.0}) {
        Tensor got = empty_on_backend(shape, dtype);
        Tensor want = Tensor::empty(shape, dtype);
        backend().fill(got, value);
        reference().fill(want, value);
        expect_matches(got, want, label(std::string("fill ") + dtype_name(dtype), shape));
      }
    }
  }
}

TEST_P(Conformance, Copy) {
  for (DType dtype : kAllDtypes) {
    Tensor host = random_of_dtype({7, 13}, dtype, 1, 0.0f, 100.0f);
    Tensor got = empty_on_backend({91}, dtype);
    backend().copy(on_backend(host, dtype), got);
    expect_matches(got, host.reshape({91}), std::string("copy ") + dtype_name(dtype));
  }
}

TEST_P(Conformance, Cast) {
  for (DType from : kAllDtypes) {
    // Negative values too, which unsigned targets saturate at 0.
    Tensor host = random_of_dtype({7, 13}, from, 2, from == DType::u8 ? 0.0f : -300.0f, 300.0f);
    for (DType to : kAllDtypes) {
      Tensor got = empty_on_backend({7, 13}, to);
      Tensor want = Tensor::empty({7, 13}, to);
      backend().cast(on_backend(host, from), got);
      reference().cast(host, want);
      expect_matches(got, want, std::string("cast ") + dtype_name(from) + " -> " + dtype_name(to));
    }
  }
}

TEST_P(Conformance, RandomUniformAndNormal) {
  for (const Shape& shape : {Shape{7, 13}, Shape{1}, Shape{3, 1001}}) {
    for (uint64_t offset : {0ull, 5ull, (1ull << 33) + 3}) {
      Tensor got = empty_on_backend(shape, DType::f32), want = Tensor::empty(shape, DType::f32);
      backend().random_uniform(got, 1234, offset, -0.5f, 2.0f);
      reference().random_uniform(want, 1234, offset, -0.5f, 2.0f);
      expect_matches(got, want, label("random_uniform", shape));
      backend().random_normal(got, 0xfeedfacecafeull, offset, 0.25f, 0.02f);
      reference().random_normal(want, 0xfeedfacecafeull, offset, 0.25f, 0.02f);
      expect_matches(got, want, label("random_normal", shape));
    }
  }
}

TEST_P(Conformance, Concat) {
  for (DType dtype : {float_dtype(), DType::i32}) {
    std::vector<Tensor> host, dev;
    int64_t rows = 0;
    for (int64_t n : {3, 0, 1, 7}) {
      host.push_back(random_of_dtype({n, 5, 3}, dtype, 10 + n, 0.0f, 50.0f));
      dev.push_back(on_backend(host.back(), dtype));
      rows += n;
    }
    Tensor got = empty_on_backend({rows, 5, 3}, dtype), want = Tensor::empty({rows, 5, 3}, dtype);
    backend().concat(dev, got);
    reference().concat(host, want);
    expect_matches(got, want, std::string("concat ") + dtype_name(dtype));
  }
}

// ---- Matmul ----------------------------------------------------------------------------------

TEST_P(Conformance, Matmul) {
  struct Case {
    Shape a, b;
    bool ta, tb, bias;
    float alpha, beta;
  };
  const Case cases[] = {
      {{7, 13}, {13, 5}, false, false, false, 1.0f, 0.0f},
      {{13, 7}, {13, 5}, true, false, false, 1.0f, 0.0f},
      {{7, 13}, {5, 13}, false, true, true, 1.0f, 0.0f},  // Linear
      {{13, 7}, {5, 13}, true, true, false, 0.5f, 1.0f},
      {{1, 1}, {1, 1}, false, false, true, 1.0f, 0.0f},
      {{3, 7, 13}, {3, 13, 5}, false, false, false, 1.0f, 0.0f},
      {{2, 3, 7, 13}, {5, 13}, false, true, true, 1.0f, 0.0f},  // shared b
      {{3, 13, 7}, {13, 5}, true, false, false, 2.0f, 0.5f},
      {{64, 257}, {129, 257}, false, true, true, 1.0f, 1.0f},
      {{0, 13}, {13, 5}, false, false, true, 1.0f, 0.0f},
      {{7, 0}, {0, 5}, false, false, true, 1.0f, 1.0f},
  };
  for (const Case& c : cases) {
    const int64_t M = c.ta ? c.a.back() : c.a[c.a.size() - 2];
    const int64_t K = c.ta ? c.a[c.a.size() - 2] : c.a.back();
    const int64_t N = c.tb ? c.b[c.b.size() - 2] : c.b.back();
    Shape out_shape(c.a.begin(), c.a.end() - 2);
    out_shape.push_back(M);
    out_shape.push_back(N);
    Tensor a = random_tensor(c.a, 1), b = random_tensor(c.b, 2);
    Tensor bias = c.bias ? random_tensor({N}, 3) : Tensor();
    Tensor init = random_tensor(out_shape, 4);
    Tensor got = on_backend(init), want = init.clone();
    backend().matmul(on_backend(a), on_backend(b), got, c.ta, c.tb,
                     c.bias ? on_backend(bias) : Tensor(), c.alpha, c.beta);
    reference().matmul(a, b, want, c.ta, c.tb, bias, c.alpha, c.beta);
    // Rounding differences grow with the length K of each dot product.
    expect_matches(got, want,
                   "matmul a " + shape_str(c.a) + (c.ta ? "T" : "") + " b " + shape_str(c.b) +
                       (c.tb ? "T" : ""),
                   1.0 + static_cast<double>(K) / 16.0);
  }
}

TEST_P(Conformance, LinearGelu) {
  // GPT-2's MLP shape (scaled down) fuses on the GPU; odd sizes exercise the composition.
  struct Case {
    int64_t n, k, m;
    bool bias;
  };
  const Case cases[] = {{16, 64, 256, true}, {16, 64, 256, false}, {7, 13, 5, true},
                        {33, 96, 40, true},  {0, 64, 256, true},   {5, 0, 8, true},
                        {4, 16, 0, true}};
  for (const Case& c : cases) {
    Tensor x = random_tensor({c.n, c.k}, 11, -2.0f, 2.0f), w = random_tensor({c.m, c.k}, 12);
    Tensor bias = c.bias ? random_tensor({c.m}, 13) : Tensor();
    Tensor pre = empty_on_backend({c.n, c.m}, float_dtype());
    Tensor out = empty_on_backend({c.n, c.m}, float_dtype());
    backend().linear_gelu(on_backend(x), on_backend(w), c.bias ? on_backend(bias) : Tensor(), pre,
                          out);
    Tensor want_pre = Tensor::empty({c.n, c.m}, DType::f32);
    Tensor want_out = Tensor::empty({c.n, c.m}, DType::f32);
    reference().matmul(x, w, want_pre, false, true, bias);
    reference().unary(UnaryOp::gelu_tanh, want_pre, want_out);
    const std::string what = "linear_gelu x [" + std::to_string(c.n) + ", " + std::to_string(c.k) +
                             "] w [" + std::to_string(c.m) + ", " + std::to_string(c.k) + "]" +
                             (c.bias ? " +bias" : "");
    const double scale = 1.0 + static_cast<double>(c.k) / 16.0;
    expect_matches(pre, want_pre, what + " pre", scale);
    expect_matches(out, want_out, what + " out", scale);
  }
}

// ---- Elementwise -----------------------------------------------------------------------------

TEST_P(Conformance, Unary) {
  for (UnaryOp op : kUnaryOps) {
    for (const Shape& shape : kShapes) {
      Tensor x = unary_input(op, shape, 5);
      Tensor got = empty_on_backend(shape, float_dtype()), want = Tensor::empty(shape, DType::f32);
      backend().unary(op, on_backend(x), got);
      reference().unary(op, x, want);
      expect_matches(got, want, label(unary_op_name(op), shape));
    }
  }
}

TEST_P(Conformance, UnaryBackward) {
  for (UnaryOp op : kUnaryOps) {
    for (const Shape& shape : kShapes) {
      Tensor x = unary_input(op, shape, 6), dy = random_tensor(shape, 7);
      Tensor y = Tensor::empty(shape, DType::f32);
      reference().unary(op, x, y);
      Tensor got = empty_on_backend(shape, float_dtype()), want = Tensor::empty(shape, DType::f32);
      backend().unary_backward(op, on_backend(x), on_backend(y), on_backend(dy), got);
      reference().unary_backward(op, x, y, dy, want);
      expect_matches(got, want, label(std::string(unary_op_name(op)) + " backward", shape));
    }
  }
}

namespace {
// (a shape, b shape): equal, suffixes, one-element b.
const std::pair<Shape, Shape> kBroadcasts[] = {
    {{7, 13}, {7, 13}}, {{7, 13}, {13}}, {{3, 5, 33}, {5, 33}}, {{7, 13}, {1}},
    {{7, 13}, {}},      {{1}, {1}},      {{0, 5}, {5}},         {{64, 300}, {300}},
};
}  // namespace

TEST_P(Conformance, Binary) {
  for (BinaryOp op : kBinaryOps) {
    for (const auto& [sa, sb] : kBroadcasts) {
      Tensor a = random_tensor(sa, 8), b = random_tensor(sb, 9, 0.5f, 2.0f);
      Tensor got = empty_on_backend(sa, float_dtype()), want = Tensor::empty(sa, DType::f32);
      backend().binary(op, on_backend(a), on_backend(b), got);
      reference().binary(op, a, b, want);
      expect_matches(got, want, label(binary_op_name(op), sa) + " with b " + shape_str(sb));
    }
  }
}

TEST_P(Conformance, BinaryBackward) {
  for (BinaryOp op : kBinaryOps) {
    for (const auto& [sa, sb] : kBroadcasts) {
      Tensor a = random_tensor(sa, 10), b = random_tensor(sb, 11, 0.5f, 2.0f);
      Tensor dout = random_tensor(sa, 12);
      Tensor da = empty_on_backend(sa, float_dtype()), db = empty_on_backend(sb, float_dtype());
      Tensor da_want = Tensor::empty(sa, DType::f32), db_want = Tensor::empty(sb, DType::f32);
      backend().binary_backward(op, on_backend(a), on_backend(b), on_backend(dout), da, db);
      reference().binary_backward(op, a, b, dout, da_want, db_want);
      const std::string what = label(binary_op_name(op), sa) + " with b " + shape_str(sb);
      expect_matches(da, da_want, what + ": da");
      // db sums over the broadcast rows.
      const double rows =
          sb.empty() ? 1.0
                     : static_cast<double>(shape_numel(sa)) / std::max<int64_t>(shape_numel(sb), 1);
      expect_matches(db, db_want, what + ": db", 1.0 + rows / 16.0);
    }
  }
}

TEST_P(Conformance, AffineClampWhere) {
  for (const Shape& shape : kShapes) {
    Tensor x = random_tensor(shape, 13, -2.0f, 2.0f), other = random_tensor(shape, 14);
    Tensor cond = Tensor::empty(shape, DType::u8);
    Tensor coin = random_tensor(shape, 15, 0.0f, 2.0f);
    reference().cast(coin, cond);  // 0 or 1
    Tensor dy = random_tensor(shape, 16);
    Tensor got = empty_on_backend(shape, float_dtype()), want = Tensor::empty(shape, DType::f32);

    backend().affine(on_backend(x), -1.5f, 0.25f, got);
    reference().affine(x, -1.5f, 0.25f, want);
    expect_matches(got, want, label("affine", shape));
    backend().clamp(on_backend(x), -0.5f, 1.0f, got);
    reference().clamp(x, -0.5f, 1.0f, want);
    expect_matches(got, want, label("clamp", shape));
    backend().clamp_backward(on_backend(x), -0.5f, 1.0f, on_backend(dy), got);
    reference().clamp_backward(x, -0.5f, 1.0f, dy, want);
    expect_matches(got, want, label("clamp_backward", shape));
    backend().where(on_backend(cond), on_backend(x), on_backend(other), got);
    reference().where(cond, x, other, want);
    expect_matches(got, want, label("where", shape));
  }
}

// ---- Reductions ------------------------------------------------------------------------------

TEST_P(Conformance, ReduceAndBackward) {
  // {1031, 77} and {3, 600, 40} have long sums over few columns (dim 0, dim 1), which the CUDA
  // backend splits over the rows as for bias gradients.
  for (const Shape& shape : {Shape{7, 13}, Shape{3, 5, 33}, Shape{1}, Shape{64, 300}, Shape{0, 5},
                             Shape{1031, 77}, Shape{3, 600, 40}}) {
    const int rank = static_cast<int>(shape.size());
    for (int dim = -1; dim < rank; ++dim) {
      const int d = dim < 0 ? dim + rank : dim;
      Shape out_shape = shape;
      out_shape.erase(out_shape.begin() + d);
      Tensor x = random_tensor(shape, 17), dy = random_tensor(out_shape, 18);
      for (ReduceOp op : kReduceOps) {
        if (op == ReduceOp::max && shape[d] == 0 && shape_numel(out_shape) > 0) continue;
        const std::string what = label(reduce_op_name(op), shape) + " dim " + std::to_string(dim);
        const double n = static_cast<double>(shape[d]);
        Tensor got = empty_on_backend(out_shape, float_dtype());
        Tensor y = Tensor::empty(out_shape, DType::f32);
        backend().reduce(op, on_backend(x), dim, got);
        reference().reduce(op, x, dim, y);
        expect_matches(got, y, what, 1.0 + n / 16.0);

        Tensor dx = empty_on_backend(shape, float_dtype());
        Tensor dx_want = Tensor::empty(shape, DType::f32);
        backend().reduce_backward(op, on_backend(x), on_backend(y), on_backend(dy), dim, dx);
        reference().reduce_backward(op, x, y, dy, dim, dx_want);
        expect_matches(dx, dx_want, what + " backward");
      }
    }
  }
}

TEST_P(Conformance, Argmax) {
  for (const Shape& shape :
       {Shape{7, 13}, Shape{1, 1}, Shape{0, 5}, Shape{3, 5, 33}, Shape{4, 50257}}) {
    Tensor x = random_tensor(shape, 19);
    Shape out_shape(shape.begin(), shape.end() - 1);
    Tensor got = empty_on_backend(out_shape, DType::i32);
    Tensor want = Tensor::empty(out_shape, DType::i32);
    backend().argmax(on_backend(x), got);
    reference().argmax(x, want);
    expect_matches(got, want, label("argmax", shape));
  }
}

TEST_P(Conformance, MaskedReduceAndBackward) {
  for (const Shape& shape :
       {Shape{7, 13}, Shape{1, 1}, Shape{0, 5}, Shape{3, 0}, Shape{16, 1000}}) {
    Shape rows(shape.begin(), shape.end() - 1);
    Tensor x = random_tensor(shape, 20), dy = random_tensor(rows, 21);
    // A 0/1 mask with some fully masked rows (the mean is 0 there).
    Tensor mask = random_tensor(shape, 22, 0.0f, 1.0f);
    float* m = mask.data<float>();
    const int64_t T = shape.back();
    for (int64_t i = 0; i < mask.numel(); ++i) {
      m[i] = (m[i] < 0.3f || (i / T) % 4 == 1) ? 0.0f : 1.0f;
    }
    for (bool mean : {false, true}) {
      const std::string what = label(mean ? "masked mean" : "masked sum", shape);
      Tensor got = empty_on_backend(rows, float_dtype()), want = Tensor::empty(rows, DType::f32);
      backend().masked_reduce(on_backend(x), on_backend(mask), mean, got);
      reference().masked_reduce(x, mask, mean, want);
      expect_matches(got, want, what, 1.0 + static_cast<double>(T) / 16.0);
      Tensor dx = empty_on_backend(shape, float_dtype());
      Tensor dx_want = Tensor::empty(shape, DType::f32);
      backend().masked_reduce_backward(on_backend(mask), on_backend(dy), mean, dx);
      reference().masked_reduce_backward(mask, dy, mean, dx_want);
      expect_matches(dx, dx_want, what + " backward");
    }
  }
}

// ---- Softmax ---------------------------------------------------------------------------------

TEST_P(Conformance, SoftmaxAndLogSoftmax) {
  for (const Shape& shape : kShapes) {
    Tensor x = random_tensor(shape, 23, -20.0f, 20.0f);
    Tensor got = empty_on_backend(shape, float_dtype()), want = Tensor::empty(shape, DType::f32);
    backend().softmax(on_backend(x), got);
    reference().softmax(x, want);
    expect_matches(got, want, label("softmax", shape));
    backend().log_softmax(on_backend(x), got);
    reference().log_softmax(x, want);
    expect_matches(got, want, label("log_softmax", shape), 1.0 + shape.back() / 64.0);
  }
}

TEST_P(Conformance, SoftmaxBackwardAndLogSoftmaxBackward) {
  for (const Shape& shape : kShapes) {
    Tensor x = random_tensor(shape, 24, -3.0f, 3.0f), dy = random_tensor(shape, 25);
    Tensor y = Tensor::empty(shape, DType::f32), ly = Tensor::empty(shape, DType::f32);
    reference().softmax(x, y);
    reference().log_softmax(x, ly);
    const double scale = 1.0 + shape.back() / 16.0;  // the backward passes sum over a row
    Tensor got = empty_on_backend(shape, float_dtype()), want = Tensor::empty(shape, DType::f32);
    backend().softmax_backward(on_backend(y), on_backend(dy), got);
    reference().softmax_backward(y, dy, want);
    expect_matches(got, want, label("softmax_backward", shape), scale);
    backend().log_softmax_backward(on_backend(ly), on_backend(dy), got);
    reference().log_softmax_backward(ly, dy, want);
    expect_matches(got, want, label("log_softmax_backward", shape), scale);
  }
}

}  // namespace rlaif::testing
