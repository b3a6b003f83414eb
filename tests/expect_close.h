// expect_all_close: element-wise comparison of a result with a reference (a golden file's
// values), reporting the worst element. One definition for every suite.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

namespace rlaif::test {

// |got - want| ≤ atol + rtol·|want| for every element; reports the worst one.
inline void expect_all_close(const std::vector<float>& got, const std::vector<float>& want,
                             double atol, double rtol, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double excess = std::fabs(got[i] - want[i]) - (atol + rtol * std::fabs(want[i]));
    if (i == 0 || excess > worst) worst = excess, at = i;
  }
  EXPECT_LE(worst, 0.0) << what << ": element " << at << " is " << got[at] << ", want " << want[at];
}

}  // namespace rlaif::test
