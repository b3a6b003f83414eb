// Learning-rate schedules against hand-computed values, and their errors.
#include <gtest/gtest.h>

#include <string>

#include "algorithms/lr_schedule.h"
#include "runtime/error.h"

namespace rlaif {
namespace {

LrSchedule schedule(const std::string& kind) {
  LrSchedule s;
  s.kind = kind;
  s.lr = 1.0;
  s.min_lr = 0.1;
  s.warmup = 3;
  s.total_steps = 10;
  return s;
}

template <typename F>
void expect_error(F fn, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "expected an Error mentioning '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

// lr = 1, min_lr = 0.1, warmup = 3, total_steps = 10.
// Warmup (every kind): at(s) = (s + 1)/3 → 1/3, 2/3, 1 at steps 0, 1, 2.
// Decay over steps 3..9, progress p = (s − 3)/6 → 0, 1/6, 1/3, 1/2, 2/3, 5/6, 1.
// cosine: 0.1 + 0.45·(1 + cos πp):
//   s=3: 1;  s=4: 0.1 + 0.45·(1 + 0.8660254) = 0.9397114;  s=5: 0.1 + 0.45·1.5 = 0.775;
//   s=6: 0.55;  s=7: 0.1 + 0.45·0.5 = 0.325;  s=8: 0.1 + 0.45·(1 − 0.8660254) = 0.1602886;
//   s=9: 0.1
// linear: 1 − 0.9·p → 1, 0.85, 0.7, 0.55, 0.4, 0.25, 0.1
// constant: 1 from step 2 on.
TEST(LrSchedule, Warmup) {
  for (const char* kind : {"constant", "cosine", "linear"}) {
    const LrSchedule s = schedule(kind);
    EXPECT_NEAR(s.at(0), 1.0 / 3.0, 1e-12) << kind;
    EXPECT_NEAR(s.at(1), 2.0 / 3.0, 1e-12) << kind;
    EXPECT_EQ(s.at(2), 1.0) << kind;
  }
}

TEST(LrSchedule, Cosine) {
  const LrSchedule s = schedule("cosine");
  const double want[] = {1.0, 0.9397114, 0.775, 0.55, 0.325, 0.1602886, 0.1};
  for (int i = 0; i < 7; ++i) EXPECT_NEAR(s.at(3 + i), want[i], 1e-7) << "step " << 3 + i;
  EXPECT_EQ(s.at(3), 1.0);
  EXPECT_EQ(s.at(9), 0.1);   // exactly min_lr at the last step
  EXPECT_EQ(s.at(10), 0.1);  // and after it
  EXPECT_EQ(s.at(1000), 0.1);
}

TEST(LrSchedule, Linear) {
  const LrSchedule s = schedule("linear");
  const double want[] = {1.0, 0.85, 0.7, 0.55, 0.4, 0.25, 0.1};
  for (int i = 0; i < 7; ++i) EXPECT_NEAR(s.at(3 + i), want[i], 1e-12) << "step " << 3 + i;
  EXPECT_EQ(s.at(3), 1.0);
  EXPECT_EQ(s.at(9), 0.1);
  EXPECT_EQ(s.at(50), 0.1);
}

TEST(LrSchedule, Constant) {
  LrSchedule s = schedule("constant");
  for (int step : {2, 3, 9, 10, 100}) EXPECT_EQ(s.at(step), 1.0) << step;
  // Without warmup the first step trains at lr; total_steps does not matter.
  s.warmup = 0;
  s.total_steps = 0;
  EXPECT_EQ(s.at(0), 1.0);
}

TEST(LrSchedule, EdgeCases) {
  LrSchedule s = schedule("cosine");
  s.warmup = 0;
  EXPECT_EQ(s.at(0), 1.0);  // no warmup: decay starts at lr
  s.min_lr = 0.0;
  EXPECT_EQ(s.at(9), 0.0);
  // One decay step: it keeps lr (a one-step run trains).
  s.total_steps = 1;
  EXPECT_EQ(s.at(0), 1.0);
  EXPECT_EQ(s.at(1), 0.0);
  s = schedule("linear");
  s.total_steps = 4;  // warmup 0..2, a single decay step 3
  EXPECT_EQ(s.at(3), 1.0);
  // Warmup of one step is no warmup.
  s = schedule("cosine");
  s.warmup = 1;
  EXPECT_EQ(s.at(0), 1.0);
}

TEST(LrSchedule, Errors) {
  LrSchedule s = schedule("exponential");
  expect_error([&] { s.at(0); }, "'exponential'");
  s = schedule("cosine");
  s.lr = -1.0;
  expect_error([&] { s.validate(); }, "lr is -1");
  s = schedule("cosine");
  s.min_lr = 2.0;
  expect_error([&] { s.at(0); }, "min_lr is 2");
  s = schedule("linear");
  s.min_lr = -0.5;
  expect_error([&] { s.at(0); }, "min_lr");
  s = schedule("cosine");
  s.warmup = -1;
  expect_error([&] { s.at(0); }, "warmup is -1");
  s = schedule("cosine");
  s.total_steps = 3;  // = warmup: nothing left to decay over
  expect_error([&] { s.at(0); }, "total_steps (3)");
  s = schedule("linear");
  s.total_steps = 0;
  expect_error([&] { s.validate(); }, "total_steps");
  s = schedule("cosine");
  expect_error([&] { s.at(-1); }, "step is -1");
}

}  // namespace
}  // namespace rlaif
