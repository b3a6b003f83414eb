// Gradient-ready notifications (autograd/gradient_ready.h): every leaf reported once, when its
// gradient is final (checked against the gradient backward() leaves), early where the graph
// allows it, through checkpointed functions, and only inside a scope.
#include "autograd/gradient_ready.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "autograd/checkpoint.h"
#include "autograd/ops.h"
#include "tests/autograd/test_util.h"

namespace rlaif {
namespace {

using test::uniform;

// What a scope saw: each report's leaf name and a copy of its gradient at that moment.
struct Reports {
  std::vector<std::string> names;
  std::vector<std::vector<float>> grads;
  GradientReadyFn recorder() {
    return [this](const Variable& leaf) {
      names.push_back(leaf.name());
      grads.push_back(leaf.grad().defined() ? leaf.grad().to_vector<float>()
                                            : std::vector<float>{});
    };
  }
  int count(const std::string& name) const {
    int n = 0;
    for (const std::string& s : names) n += s == name;
    return n;
  }
  size_t position(const std::string& name) const {
    for (size_t i = 0; i < names.size(); ++i)
      if (names[i] == name) return i;
    return names.size();
  }
};

Variable leaf(const Shape& shape, uint64_t seed, const std::string& name) {
  return Variable(uniform(shape, seed), true, name);
}

// A two-layer net whose first weight is tied to its output projection (as GPT-2's embedding is
// to its LM head): w1 has two consumers far apart in the graph.
struct TiedNet {
  Variable x = Variable(uniform({3, 4}, 1), false, "x");  // data: never reported
  Variable w1 = leaf({4, 4}, 2, "w1");
  Variable b1 = leaf({4}, 3, "b1");
  Variable w2 = leaf({4, 4}, 4, "w2");
  Variable unused = leaf({2}, 5, "unused");  // not in the graph: never reported
  Variable loss() const {
    Variable h = tanh(linear(x, w1, b1));
    Variable y = linear(h, w2);
    return sum_all(square(matmul(y, w1)));  // w1 again
  }
};

TEST(GradientReady, EveryLeafOnceWithItsFinalGradient) {
  TiedNet net;
  Reports reports;
  {
    GradientReadyScope scope(reports.recorder());
    net.loss().backward();
  }
  EXPECT_EQ(reports.names.size(), 3u);
  for (const Variable& v : {net.w1, net.b1, net.w2}) {
    ASSERT_EQ(reports.count(v.name()), 1) << v.name();
    EXPECT_EQ(reports.grads[reports.position(v.name())], v.grad().to_vector<float>())
        << v.name() << " was reported before its gradient was complete";
  }
  EXPECT_EQ(reports.count("x"), 0);
  EXPECT_EQ(reports.count("unused"), 0);
}

TEST(GradientReady, LeavesNearTheOutputAreReportedFirst) {
  // A chain x → w1 → w2 → w3 → loss: w3's gradient is final after the first node back, w1's
  // only at the end; an overlapped reduction can start on w3 while w1's is still computed.
  Variable x(uniform({2, 3}, 7), false, "x");
  Variable w1 = leaf({3, 3}, 8, "w1"), w2 = leaf({3, 3}, 9, "w2"), w3 = leaf({3, 3}, 10, "w3");
  Reports reports;
  GradientReadyScope scope(reports.recorder());
  sum_all(matmul(tanh(matmul(tanh(matmul(x, w1)), w2)), w3)).backward();
  EXPECT_EQ(reports.names, (std::vector<std::string>{"w3", "w2", "w1"}));
}

TEST(GradientReady, AccumulatedGradientIsReportedWhole) {
  // With an earlier backward's gradient already in .grad, the report comes after the sum.
  TiedNet net;
  net.loss().backward();
  Reports reports;
  {
    GradientReadyScope scope(reports.recorder());
    net.loss().backward();
  }
  ASSERT_EQ(reports.count("w1"), 1);
  EXPECT_EQ(reports.grads[reports.position("w1")], net.w1.grad().to_vector<float>());
}

TEST(GradientReady, CheckpointedParametersAreReportedOnceAfterTheNestedPass) {
  Variable x(uniform({3, 4}, 11), true, "x");  // a leaf input that requires a gradient
  Variable w = leaf({4, 4}, 12, "w"), v = leaf({4, 4}, 13, "v");
  Reports reports;
  {
    GradientReadyScope scope(reports.recorder());
    // w is used inside the checkpointed function (listed in its inputs) and once outside.
    Variable h = checkpoint(
        [](const std::vector<Variable>& in) {
          return tanh(matmul(tanh(matmul(in[0], in[1])), in[2]));
        },
        {x, w, v});
    sum_all(square(matmul(h, w))).backward();
  }
  EXPECT_EQ(reports.names.size(), 3u);
  for (const Variable& p : {x, w, v}) {
    ASSERT_EQ(reports.count(p.name()), 1) << p.name() << ": the nested pass must not report";
    EXPECT_EQ(reports.grads[reports.position(p.name())], p.grad().to_vector<float>()) << p.name();
  }
}

TEST(GradientReady, OnlyInsideAScopeAndScopesNest) {
  TiedNet net;
  Reports outer, inner;
  net.loss().backward();  // no scope: nothing to report to
  {
    GradientReadyScope a(outer.recorder());
    {
      GradientReadyScope b(inner.recorder());
      net.loss().backward();
    }
    net.loss().backward();  // the outer scope again
    {
      GradientReadyScope off{GradientReadyFn()};  // an empty function turns reporting off
      net.loss().backward();
    }
  }
  net.loss().backward();
  EXPECT_EQ(inner.names.size(), 3u);
  EXPECT_EQ(outer.names.size(), 3u);
}

TEST(GradientReady, LeafRootAndErrors) {
  Variable w = leaf({1}, 14, "w");
  Reports reports;
  {
    GradientReadyScope scope(reports.recorder());
    w.backward();  // the root itself is the leaf
  }
  EXPECT_EQ(reports.names, (std::vector<std::string>{"w"}));

  TiedNet net;
  GradientReadyScope scope(
      [](const Variable& v) { throw std::runtime_error("refused " + v.name()); });
  EXPECT_THROW(net.loss().backward(), std::runtime_error);
}

}  // namespace
}  // namespace rlaif
