// The main() of a GoogleTest program that mpirun starts on N ranks (tests/mpi/*_mpi_test.cpp):
// every rank runs every test; rank 0 prints GoogleTest's usual output, the other ranks only their
// failures, prefixed with the rank; every rank exits with the job's verdict, so mpirun's status is
// the same whichever rank failed. Define a program's main() as
//   int main(int argc, char** argv) { return rlaif::run_mpi_tests(argc, argv, "name"); }
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <iostream>

#include "runtime/communicator.h"

namespace rlaif {

// Rank > 0: only failures, prefixed with the rank, so the log stays readable.
class RankFailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit RankFailurePrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const ::testing::TestPartResult& result) override {
    if (!result.failed()) return;
    std::cerr << "[rank " << rank_ << "] " << (result.file_name() ? result.file_name() : "?") << ":"
              << result.line_number() << ": Failure\n"
              << result.summary() << std::endl;
  }

 private:
  int rank_;
};

inline int run_mpi_tests(int argc, char** argv, const char* program) {
  ::testing::InitGoogleTest(&argc, argv);
  if (launcher_world_size() == 0) {
    std::cerr << program << ": start it with mpirun -np N (N >= 2)\n";
    return 2;
  }
  Communicator& world = world_communicator();
  if (world.rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new RankFailurePrinter(world.rank()));
  }
  const int32_t failed = RUN_ALL_TESTS() != 0;
  Tensor verdict = Tensor::from_vector<int32_t>({failed}, {1});
  world.all_reduce_sum(verdict);
  return verdict.to_vector<int32_t>()[0] != 0 ? 1 : 0;
}

}  // namespace rlaif
