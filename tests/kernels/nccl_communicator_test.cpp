// NcclCommunicator on one rank (bootstrapped by a SingleProcessCommunicator): the NCCL start-up
// path, every collective on every dtype it takes, and argument errors. Skips with the reason
// when there is no NCCL build or no device; many ranks need mpirun and as many GPUs.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kernels/backend.h"
#include "runtime/communicator.h"
#include "runtime/half.h"

#ifdef RLAIF_HAVE_NCCL
#include "kernels/cuda/cuda_info.h"
#include "kernels/cuda/nccl_communicator.h"
#endif

namespace rlaif {
namespace {

TEST(NcclCommunicator, OneRankKeepsEveryValue) {
#ifndef RLAIF_HAVE_NCCL
  GTEST_SKIP() << "built without NCCL";
#else
  cuda::CudaInfo info = cuda::query_cuda();
  if (info.devices.empty()) GTEST_SKIP() << "no usable CUDA device: " << info.problem;
  SingleProcessCommunicator bootstrap;
  cuda::NcclCommunicator comm(bootstrap, 0);
  EXPECT_EQ(comm.rank(), 0);
  EXPECT_EQ(comm.size(), 1);
  const Device gpu = Device::cuda(0);

  const std::vector<float> values = {1.5f, -2.f, 3.25f, 0.1f, 7.f, -0.5f};
  Tensor f = Tensor::from_vector(values, {2, 3}).to(gpu);
  comm.all_reduce_sum(f);
  comm.all_reduce_mean(f);
  EXPECT_EQ(f.to_vector<float>(), values);

  std::vector<bf16_t> halves;
  for (float v : values) halves.push_back(narrow<bf16_t>(v));
  Tensor b = Tensor::from_vector(halves, {6}).to(gpu);
  comm.all_reduce_sum(b);
  comm.all_reduce_mean(b);
  std::vector<bf16_t> got = b.to_vector<bf16_t>();
  for (size_t i = 0; i < halves.size(); ++i) EXPECT_EQ(got[i].bits, halves[i].bits) << i;

  Tensor ints = Tensor::from_vector<int64_t>({int64_t{1} << 40, -3}, {2}).to(gpu);
  comm.all_reduce_sum(ints);
  EXPECT_EQ(ints.to_vector<int64_t>(), (std::vector<int64_t>{int64_t{1} << 40, -3}));

  Tensor out = Tensor::zeros({6}, DType::f32, gpu);
  comm.reduce_scatter_sum(f, out);
  EXPECT_EQ(out.to_vector<float>(), values);
  Tensor gathered = Tensor::zeros({3, 2}, DType::f32, gpu);
  comm.all_gather(out, gathered);
  EXPECT_EQ(gathered.to_vector<float>(), values);

  Tensor i32 = Tensor::from_vector<int32_t>({4, 5, 6}, {3}).to(gpu);
  comm.broadcast(i32, 0);
  EXPECT_EQ(i32.to_vector<int32_t>(), (std::vector<int32_t>{4, 5, 6}));
  comm.all_reduce_sum(Tensor::zeros({0}, DType::f32, gpu));  // empty: nothing to do
  comm.barrier();

  // Started on the communicator's stream: the collective must wait for the kernels queued before
  // it (the fill), and the kernels after wait() for it (the copy back to the host).
  EXPECT_TRUE(comm.runs_alongside_compute());
  Tensor big = Tensor::zeros({1 << 20}, DType::f32, gpu);
  Tensor big_out = Tensor::zeros({1 << 20}, DType::f32, gpu);
  for (int round = 0; round < 70; ++round) {  // more tickets than the ring of events holds
    backend_for(gpu).fill(big, static_cast<double>(round));
    const Communicator::Ticket a = comm.start_all_reduce_mean(big);
    const Communicator::Ticket b = comm.start_reduce_scatter_sum(big, big_out);
    EXPECT_EQ(b, a + 1);
    comm.wait(b);
    std::vector<float> host = big_out.to_vector<float>();
    EXPECT_EQ(host.front(), static_cast<float>(round)) << "round " << round;
    EXPECT_EQ(host.back(), static_cast<float>(round)) << "round " << round;
  }
  EXPECT_EQ(comm.start_all_reduce_mean(Tensor::zeros({0}, DType::f32, gpu)), 0u);
  EXPECT_THROW(comm.wait(1000000), Error);  // never issued
  comm.wait(1);  // long done, its event since re-recorded by later collectives: still a ticket

  try {
    comm.all_reduce_sum(Tensor::zeros({3}, DType::f32));
    ADD_FAILURE() << "a cpu tensor must be rejected";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "NcclCommunicator::all_reduce_sum on rank 0 of 1: tensor is f32[3] cpu but "
              "NcclCommunicator works on cuda:0 tensors");
  }
#endif
}

}  // namespace
}  // namespace rlaif
