// error_of: the message of the rlaif::Error a callable throws, for tests that check what an error
// says. One definition for every suite.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "runtime/error.h"

namespace rlaif::test {

// The message of the rlaif::Error that `fn` throws; fails the test (and returns "") when it
// throws none.
template <typename Fn>
std::string error_of(Fn fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected rlaif::Error";
  return "";
}

}  // namespace rlaif::test
