// checkpoint(): gradients bit for bit those of the plain graph (inputs and parameters, across
// accumulating backward calls), finite differences through it, nesting, several outputs, the
// memory it saves, and a backward pass under NoGradGuard.
#include "autograd/checkpoint.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "autograd/ops.h"
#include "runtime/allocator.h"
#include "tests/autograd/test_util.h"

namespace rlaif {
namespace {

using test::param;
using test::uniform;

// Whether two tensors hold the same bits (not merely equal values: -0 and +0 differ).
bool same_bits(const Tensor& a, const Tensor& b) {
  if (!a.defined() || !b.defined()) return a.defined() == b.defined();
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  std::vector<float> x = a.to_vector<float>(), y = b.to_vector<float>();
  return std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) == 0;
}

// The parameters of a small block: LayerNorm, an MLP whose first weight is used twice (so its
// gradient sums two contributions inside the block), and a residual scale outside it.
struct Params {
  Variable x0 = param(uniform({6, 8}, 1), "x0");
  Variable gamma = param(uniform({8}, 2, 0.5f, 1.5f), "gamma");
  Variable beta = param(uniform({8}, 3), "beta");
  Variable w1 = param(uniform({16, 8}, 4), "w1");
  Variable b1 = param(uniform({16}, 5), "b1");
  Variable w2 = param(uniform({8, 16}, 6), "w2");
  Variable s = param(uniform({8}, 7), "s");
  std::vector<Variable> all() const { return {x0, gamma, beta, w1, b1, w2, s}; }
};

std::vector<Variable> block_inputs(const Params& p, const Variable& x) {
  return {x, p.gamma, p.beta, p.w1, p.b1, p.w2};
}

// The block, of block_inputs(): norm → two uses of w1 → gelu ⊙ tanh → w2. It takes the
// parameters from its arguments, so a checkpoint that handed it copies of them would show.
Variable block(const std::vector<Variable>& in) {
  Variable h = layernorm(in[0], in[1], in[2]);
  Variable a = linear(h, in[3], in[4]);
  Variable b = linear(scale(h, 0.5f), in[3]);
  return linear(mul(gelu(a), tanh(b)), in[5]);
}
Variable block(const Params& p, const Variable& x) {
  return block(block_inputs(p, x));
}

Variable block_fn(const std::vector<Variable>& in) {
  return block(in);
}

// The loss around the block: x is an interior variable (x0 ⊙ s), used by the block and by the
// residual connection, as in a transformer layer.
Variable loss(const Params& p, bool use_checkpoint, int blocks = 1) {
  Variable x = mul(p.x0, p.s);
  for (int i = 0; i < blocks; ++i) {
    Variable y = use_checkpoint ? checkpoint(block_fn, block_inputs(p, x)) : block(p, x);
    x = add(x, y);
  }
  return sum_all(square(x));
}

// Gradients as left by earlier micro-batches, so every backward pass below accumulates.
void seed_grads(const Params& p) {
  uint64_t seed = 100;
  for (Variable v : p.all()) v.set_grad(uniform(v.shape(), seed++, -3.0f, 3.0f));
}

// Two backward passes accumulate into every .grad, then compares against the plain graph's.
// Accumulating exposes the order of summation: (G + g1) + g2 of the plain graph against
// G + (g1 + g2) of a design that summed a parameter's uses inside the checkpoint first.
void expect_same_gradients(const std::function<Variable(const Params&, bool)>& f) {
  Params p;
  std::vector<Tensor> plain, checked;
  Tensor plain_loss, checked_loss;
  for (bool use : {false, true}) {
    seed_grads(p);
    Variable l;
    for (int pass = 0; pass < 2; ++pass) {
      l = f(p, use);
      l.backward();
    }
    (use ? checked_loss : plain_loss) = l.data();
    for (const Variable& v : p.all()) (use ? checked : plain).push_back(v.grad());
  }
  EXPECT_TRUE(same_bits(plain_loss, checked_loss));
  for (size_t i = 0; i < plain.size(); ++i) {
    ASSERT_TRUE(plain[i].defined()) << p.all()[i].name();
    EXPECT_TRUE(same_bits(plain[i], checked[i])) << "gradient of " << p.all()[i].name();
  }
}

TEST(Checkpoint, GradientsAreBitwiseThoseOfThePlainGraph) {
  expect_same_gradients([](const Params& p, bool use) { return loss(p, use); });
}

TEST(Checkpoint, TwoInSequence) {
  expect_same_gradients([](const Params& p, bool use) { return loss(p, use, 2); });
}

TEST(Checkpoint, CheckpointInsideCheckpoint) {
  // The outer function checkpoints its inner block again: the forward pass runs both without
  // recording; the outer recomputation records an inner checkpoint node, whose own recomputation
  // runs in a backward pass nested two deep.
  expect_same_gradients([](const Params& p, bool use) {
    Variable x = mul(p.x0, p.s);
    auto outer = [](const std::vector<Variable>& in) {
      std::vector<Variable> inner_inputs = in;
      inner_inputs[0] = tanh(in[0]);
      return tanh(checkpoint(block_fn, inner_inputs));
    };
    Variable z = use ? checkpoint(outer, block_inputs(p, x)) : tanh(block(p, tanh(x)));
    return sum_all(square(add(z, x)));
  });
}

TEST(Checkpoint, SeveralOutputs) {
  // q, k, v of one norm, consumed by one op taking them in order (like attention), plus an output
  // nobody uses and one that depends on no input needing a gradient.
  auto qkv = [](const std::vector<Variable>& in) {
    Variable h = layernorm(in[0], in[1], in[2]);
    Variable constant(Tensor::zeros({2}, DType::f32));
    return std::vector<Variable>{linear(h, in[3]), linear(h, in[3], in[4]),
                                 linear(h, in[3].detach()), gelu(h), exp(constant)};
  };
  expect_same_gradients([qkv](const Params& p, bool use) {
    Variable x = mul(p.x0, p.s);
    std::vector<Variable> o =
        use ? checkpoint_multi(qkv, block_inputs(p, x)) : qkv(block_inputs(p, x));
    Variable a = mul(o[0], sigmoid(o[1]));
    Variable y = add(x, linear(a, p.w2));
    return add(sum_all(square(y)), add(sum_all(o[2]), sum_all(o[4])));
  });
}

TEST(Checkpoint, GradcheckThroughACheckpoint) {
  Params p;
  // The first input goes in as an interior variable (x0 ⊙ x0: a detached stand-in in the
  // recomputation); the others as leaves.
  test::expect_gradcheck(
      [&p](const std::vector<Variable>& in) {
        Variable x = mul(in[0], in[0]);
        return checkpoint(
            [&p](const std::vector<Variable>& c) {
              Variable h = layernorm(c[0], c[1], c[2]);
              return linear(tanh(linear(h, c[3], c[4])), p.w2);
            },
            {x, in[1], in[2], in[3], in[4], p.w2});
      },
      {p.x0, p.gamma, p.beta, p.w1, p.b1});
}

TEST(Checkpoint, KeepsOnlyInputsAndOutput) {
  Variable w = param(uniform({64, 64}, 9), "w");
  Variable in = mul(param(uniform({32, 64}, 10)), param(uniform({64}, 11)));
  auto chain = [w](const std::vector<Variable>& c) {
    Variable h = c[0];
    for (int i = 0; i < 8; ++i) h = tanh(linear(h, w));
    return h;
  };
  size_t before = cpu_bytes_in_use();
  Variable plain = chain({in});
  size_t plain_bytes = cpu_bytes_in_use() - before;
  before = cpu_bytes_in_use();
  Variable checked = checkpoint(chain, {in, w});
  size_t checked_bytes = cpu_bytes_in_use() - before;
  // Plain: 8 pre-activations and 8 outputs of 32·64 floats; checkpointed: the output only.
  EXPECT_EQ(checked_bytes, 32u * 64u * sizeof(float));
  EXPECT_GE(plain_bytes, 16u * 32u * 64u * sizeof(float));
  EXPECT_TRUE(same_bits(plain.data(), checked.data()));
}

TEST(Checkpoint, BackwardUnderNoGradStillRecomputes) {
  Params p;
  Variable l = loss(p, true);
  {
    NoGradGuard no_grad;
    l.backward();
  }
  EXPECT_TRUE(p.w1.grad().defined());
  EXPECT_TRUE(p.x0.grad().defined());
  EXPECT_TRUE(grad_mode_enabled());
}

TEST(Checkpoint, RunsPlainWhenNoInputNeedsAGradient) {
  // Only a captured parameter requires a gradient: nothing to checkpoint against, so fn runs as
  // is and the parameter still gets its gradient.
  Params p;
  Variable x(uniform({6, 8}, 12));
  Variable y = checkpoint([&p](const std::vector<Variable>& in) { return block(p, in[0]); }, {x});
  EXPECT_NE(y.grad_fn(), nullptr);
  EXPECT_NE(y.grad_fn()->op, "checkpoint");
  sum_all(y).backward();
  EXPECT_TRUE(p.w2.grad().defined());

  NoGradGuard no_grad;
  Variable z = checkpoint([&p](const std::vector<Variable>& in) { return block(p, in[0]); },
                          block_inputs(p, x));
  EXPECT_FALSE(z.requires_grad());
}

TEST(Checkpoint, NonDeterministicFunctionIsAnError) {
  Params p;
  Variable x = mul(p.x0, p.s);
  int calls = 0;
  Variable y = checkpoint(
      [&calls](const std::vector<Variable>& in) {
        return ++calls == 1 ? in[0] : reshape(in[0], {-1});
      },
      {x});
  try {
    sum_all(y).backward();
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("deterministic"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace rlaif
