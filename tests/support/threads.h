// OpenMP thread counts for tests that check results bitwise across thread counts.
#pragma once

#include <omp.h>

namespace rlaif::test {

// Runs the enclosed code with n OpenMP threads, restoring the previous count at scope exit.
struct ScopedThreads {
  int saved = omp_get_max_threads();
  explicit ScopedThreads(int n) { omp_set_num_threads(n); }
  ~ScopedThreads() { omp_set_num_threads(saved); }
  ScopedThreads(const ScopedThreads&) = delete;
  ScopedThreads& operator=(const ScopedThreads&) = delete;
};

}  // namespace rlaif::test
