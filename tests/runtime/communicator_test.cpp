// The single-process communicator's semantics and the argument checks every communicator shares.
// Many-rank behaviour is tested over real ranks by tests/mpi/communicator_mpi_test.cpp.
#include "runtime/communicator.h"
#include "tests/error_of.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <optional>
#include <string>

namespace rlaif {
namespace {

using test::error_of;

// Sets an environment variable for one scope, restoring what was there.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      setenv(name, value, 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(SingleProcessCommunicator, IsRankZeroOfOne) {
  SingleProcessCommunicator comm;
  EXPECT_EQ(comm.rank(), 0);
  EXPECT_EQ(comm.size(), 1);
  comm.barrier();
}

TEST(SingleProcessCommunicator, ReductionsLeaveTheTensor) {
  SingleProcessCommunicator comm;
  Tensor f = Tensor::from_vector<float>({1.5f, -2.f, 3.25f}, {3});
  comm.all_reduce_sum(f);
  EXPECT_EQ(f.to_vector<float>(), (std::vector<float>{1.5f, -2.f, 3.25f}));
  comm.all_reduce_mean(f);
  EXPECT_EQ(f.to_vector<float>(), (std::vector<float>{1.5f, -2.f, 3.25f}));
  Tensor i = Tensor::from_vector<int64_t>({7, -9}, {2});
  comm.all_reduce_sum(i);
  EXPECT_EQ(i.to_vector<int64_t>(), (std::vector<int64_t>{7, -9}));
  comm.all_reduce_sum(Tensor::zeros({0}, DType::f32));  // empty tensors are fine
}

TEST(SingleProcessCommunicator, ReduceScatterAndAllGatherCopy) {
  SingleProcessCommunicator comm;
  Tensor input = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor output = Tensor::zeros({6}, DType::f32);  // only numel matters
  comm.reduce_scatter_sum(input, output);
  EXPECT_EQ(output.to_vector<float>(), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(output.shape(), (Shape{6}));

  Tensor gathered = Tensor::zeros({3, 2}, DType::f32);
  comm.all_gather(output, gathered);
  EXPECT_EQ(gathered.to_vector<float>(), (std::vector<float>{1, 2, 3, 4, 5, 6}));

  // In place: output is input's own chunk (the whole tensor on one rank).
  comm.reduce_scatter_sum(input, input);
  comm.all_gather(input, input);
  EXPECT_EQ(input.to_vector<float>(), (std::vector<float>{1, 2, 3, 4, 5, 6}));
}

TEST(SingleProcessCommunicator, StartedCollectivesAreDoneOnReturn) {
  SingleProcessCommunicator comm;
  EXPECT_FALSE(comm.runs_alongside_compute());
  Tensor input = Tensor::from_vector<float>({1, 2, 3, 4}, {4});
  Tensor output = Tensor::zeros({4}, DType::f32);
  EXPECT_EQ(comm.start_reduce_scatter_sum(input, output), 0u);
  EXPECT_EQ(output.to_vector<float>(), (std::vector<float>{1, 2, 3, 4}));
  EXPECT_EQ(comm.start_all_reduce_mean(output), 0u);
  comm.wait(0);
  EXPECT_EQ(output.to_vector<float>(), (std::vector<float>{1, 2, 3, 4}));
  // The started forms check their arguments as the plain ones do.
  EXPECT_THROW(comm.start_reduce_scatter_sum(input, Tensor::zeros({3}, DType::f32)), Error);
  EXPECT_THROW(comm.start_all_reduce_mean(Tensor::zeros({2}, DType::i32)), Error);
}

TEST(SingleProcessCommunicator, BroadcastFromRankZero) {
  SingleProcessCommunicator comm;
  Tensor t = Tensor::from_vector<int32_t>({4, 5}, {2});
  comm.broadcast(t, 0);
  EXPECT_EQ(t.to_vector<int32_t>(), (std::vector<int32_t>{4, 5}));
  comm.broadcast(Tensor::zeros({3}, DType::u8), 0);  // bytes: any dtype
}

TEST(SingleProcessCommunicator, ErrorsNameTheOperationTensorsAndRank) {
  SingleProcessCommunicator comm;
  Tensor input = Tensor::zeros({5}, DType::f32);
  Tensor output = Tensor::zeros({4}, DType::f32);
  EXPECT_EQ(error_of([&] { comm.reduce_scatter_sum(input, output); }),
            "SingleProcessCommunicator::reduce_scatter_sum on rank 0 of 1: input f32[5] cpu holds "
            "5 elements but must hold size·numel(output) = 1·4 = 4 (output f32[4] cpu)");
  EXPECT_EQ(error_of([&] { comm.all_gather(input, output); }),
            "SingleProcessCommunicator::all_gather on rank 0 of 1: output f32[4] cpu holds 4 "
            "elements but must hold size·numel(input) = 1·5 = 5 (input f32[5] cpu)");
  EXPECT_EQ(error_of([&] { comm.broadcast(input, 1); }),
            "SingleProcessCommunicator::broadcast on rank 0 of 1: root 1 is not a rank (tensor "
            "f32[5] cpu)");
  EXPECT_EQ(error_of([&] { comm.all_reduce_sum(Tensor::zeros({2}, DType::u8)); }),
            "SingleProcessCommunicator::all_reduce_sum on rank 0 of 1: tensor is u8[2] cpu but "
            "reductions take f32, bf16, i32 or i64 tensors");
  EXPECT_EQ(error_of([&] { comm.all_reduce_mean(Tensor::zeros({2}, DType::i32)); }),
            "SingleProcessCommunicator::all_reduce_mean on rank 0 of 1: tensor is i32[2] cpu but "
            "means take f32 or bf16 tensors");
  EXPECT_EQ(error_of([&] { comm.all_gather(input, Tensor::zeros({5}, DType::bf16)); }),
            "SingleProcessCommunicator::all_gather on rank 0 of 1: input f32[5] cpu and output "
            "bf16[5] cpu must have one dtype");
  EXPECT_EQ(error_of([&] { comm.all_reduce_sum(Tensor()); }),
            "SingleProcessCommunicator::all_reduce_sum on rank 0 of 1: tensor is undefined");
}

TEST(CollectiveProblem, ChecksTheDeviceAnImplementationNeeds) {
  SingleProcessCommunicator comm;
  Tensor cpu = Tensor::zeros({3}, DType::f32);
  // A CUDA tensor's description, without a GPU: the memory is never touched.
  float fake[3];
  Tensor cuda = Tensor::wrap(fake, {3}, DType::f32, Device::cuda(1), std::make_shared<int>(0));
  EXPECT_EQ(collective_problem(comm, Collective::all_reduce_sum, cpu, Tensor(), 0, Device::cpu()),
            "");
  EXPECT_EQ(collective_problem(comm, Collective::all_gather, cpu, cuda, 0, Device::cpu()),
            "SingleProcessCommunicator::all_gather on rank 0 of 1: output is f32[3] cuda:1 but "
            "SingleProcessCommunicator works on cpu tensors");
  EXPECT_EQ(collective_problem(comm, Collective::broadcast, cpu, Tensor(), 0, Device::cuda(1)),
            "SingleProcessCommunicator::broadcast on rank 0 of 1: tensor is f32[3] cpu but "
            "SingleProcessCommunicator works on cuda:1 tensors");
  EXPECT_EQ(collective_problem(comm, Collective::barrier, Tensor(), Tensor(), 0, Device::cpu()),
            "");
}

TEST(WorldCommunicator, LauncherWorldSizeReadsTheLaunchersVariables) {
  ScopedEnv ompi("OMPI_COMM_WORLD_SIZE", nullptr);
  ScopedEnv pmi("PMI_SIZE", nullptr);
  EXPECT_EQ(launcher_world_size(), 0);
  {
    ScopedEnv set("PMI_SIZE", "3");
    EXPECT_EQ(launcher_world_size(), 3);
  }
  {
    ScopedEnv set("OMPI_COMM_WORLD_SIZE", "4");
    EXPECT_EQ(launcher_world_size(), 4);
  }
  {
    ScopedEnv set("OMPI_COMM_WORLD_SIZE", "two");  // not a size: ignored
    EXPECT_EQ(launcher_world_size(), 0);
  }
}

TEST(WorldCommunicator, IsASingleProcessWithoutALauncher) {
  if (launcher_world_size() > 0) GTEST_SKIP() << "started by an MPI launcher";
  Communicator& world = world_communicator();
  EXPECT_STREQ(world.name(), "SingleProcessCommunicator");
  EXPECT_EQ(world.size(), 1);
  EXPECT_EQ(&world, &world_communicator());
}

}  // namespace
}  // namespace rlaif
