// MpiCommunicator over real ranks. CTest starts this program with
//   mpirun --oversubscribe --allow-run-as-root -np N communicator_mpi_test   (N = 2 and 3)
// Every rank runs every test; each test makes the same collective calls on every rank (also when
// an expectation fails), so a failure is reported instead of hanging. Rank 0 prints GoogleTest's
// usual output, the other ranks only their failures.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "runtime/communicator.h"
#include "runtime/half.h"
#include "runtime/mpi_communicator.h"
#include "tests/error_of.h"
#include "tests/mpi/mpi_test_main.h"

namespace rlaif {
namespace {

using test::error_of;

Communicator& world() {
  return world_communicator();
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Rank r's "messy" contribution: values whose sum depends on the order they are added in.
float messy(int r, int64_t i) {
  uint32_t x = static_cast<uint32_t>(r * 7919 + i * 104729 + 12345) * 2654435761u;
  x ^= x >> 13;
  return (static_cast<float>(x % 2000003u) / 1000.f - 1000.f) * (r % 2 ? 1e-3f : 1.f);
}

std::vector<float> messy_values(int r, int64_t n) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[i] = messy(r, i);
  return v;
}

// The documented result: added in rank order 0, 1, ..., size-1, in f32.
std::vector<float> rank_order_sum(int size, int64_t n) {
  std::vector<float> sum = messy_values(0, n);
  for (int r = 1; r < size; ++r) {
    std::vector<float> v = messy_values(r, n);
    for (int64_t i = 0; i < n; ++i) sum[i] += v[i];
  }
  return sum;
}

// Every rank's copy of `t` is byte for byte rank 0's: gathered with all_gather and compared here,
// so every rank checks every other.
void expect_identical_on_every_rank(Communicator& comm, const Tensor& t) {
  Tensor all = Tensor::zeros({comm.size(), t.numel()}, t.dtype());
  comm.all_gather(t, all);
  for (int r = 1; r < comm.size(); ++r) {
    EXPECT_EQ(std::memcmp(all.select(r).raw_data(), all.select(0).raw_data(), t.nbytes()), 0)
        << "rank " << r << " holds another result than rank 0";
  }
}

// The communicators under test: the job's, and one cutting every tensor into segments of 7
// elements so that the segment loops (and odd segment ends) run on small tensors.
std::vector<Communicator*> communicators() {
  static MpiCommunicator segmented(7);
  return {&world(), &segmented};
}

const std::vector<int64_t> kSizes = {0, 1, 2, 5, 16, 1001};

TEST(MpiCommunicator, IsTheWorldOfTheLaunch) {
  Communicator& comm = world();
  EXPECT_STREQ(comm.name(), "MpiCommunicator");
  EXPECT_EQ(comm.size(), launcher_world_size());
  // Ranks are distinct and cover [0, size).
  Tensor mine = Tensor::from_vector<int32_t>({comm.rank()}, {1});
  Tensor ranks = Tensor::zeros({comm.size()}, DType::i32);
  comm.all_gather(mine, ranks);
  std::vector<int32_t> got = ranks.to_vector<int32_t>();
  for (int r = 0; r < comm.size(); ++r) EXPECT_EQ(got[r], r);
  comm.barrier();
}

TEST(MpiCommunicator, AllReduceSumMatchesTheClosedForm) {
  for (Communicator* comm : communicators()) {
    const int p = comm->size(), r = comm->rank();
    for (int64_t n : kSizes) {
      // Integer-valued floats: every order of addition gives the exact sum.
      std::vector<float> v(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) v[i] = static_cast<float>(1000 * r + i);
      Tensor t = Tensor::from_vector(v, {n});
      comm->all_reduce_sum(t);
      std::vector<float> got = t.to_vector<float>();
      for (int64_t i = 0; i < n; ++i) {
        EXPECT_EQ(got[i], static_cast<float>(1000 * p * (p - 1) / 2 + p * i)) << "n " << n;
      }
    }
  }
}

TEST(MpiCommunicator, AllReduceSumAddsInRankOrderAndAgreesBitwise) {
  for (Communicator* comm : communicators()) {
    for (int64_t n : kSizes) {
      Tensor t = Tensor::from_vector(messy_values(comm->rank(), n), {n});
      comm->all_reduce_sum(t);
      EXPECT_EQ(t.to_vector<float>(), rank_order_sum(comm->size(), n)) << "n " << n;
      expect_identical_on_every_rank(*comm, t);
    }
  }
}

TEST(MpiCommunicator, AllReduceMeanDividesTheRankOrderSum) {
  for (Communicator* comm : communicators()) {
    const int p = comm->size();
    const int64_t n = 37;
    Tensor t = Tensor::from_vector(messy_values(comm->rank(), n), {n});
    comm->all_reduce_mean(t);
    std::vector<float> want = rank_order_sum(p, n);
    for (float& w : want) w /= static_cast<float>(p);
    EXPECT_EQ(t.to_vector<float>(), want);
    expect_identical_on_every_rank(*comm, t);

    // bf16: widened, added in f32, divided, rounded once.
    std::vector<bf16_t> h(n);
    for (int64_t i = 0; i < n; ++i) h[i] = narrow<bf16_t>(messy(comm->rank(), i));
    Tensor b = Tensor::from_vector(h, {n});
    comm->all_reduce_mean(b);
    std::vector<bf16_t> got = b.to_vector<bf16_t>();
    for (int64_t i = 0; i < n; ++i) {
      float sum = widen(narrow<bf16_t>(messy(0, i)));
      for (int s = 1; s < p; ++s) sum += widen(narrow<bf16_t>(messy(s, i)));
      EXPECT_EQ(got[i].bits, narrow<bf16_t>(sum / static_cast<float>(p)).bits) << i;
    }
  }
}

TEST(MpiCommunicator, AllReduceSumOfIntegers) {
  for (Communicator* comm : communicators()) {
    const int p = comm->size(), r = comm->rank();
    Tensor a = Tensor::from_vector<int32_t>({r, -r, 1, 2000000000}, {2, 2});
    comm->all_reduce_sum(a);
    const int32_t ranks = p * (p - 1) / 2;
    // 2e9 · p wraps modulo 2^32, as two's complement addition does.
    const int32_t wrapped = static_cast<int32_t>(static_cast<int64_t>(2000000000) * p);
    EXPECT_EQ(a.to_vector<int32_t>(), (std::vector<int32_t>{ranks, -ranks, p, wrapped}));
    Tensor b = Tensor::from_vector<int64_t>({int64_t{1} << 40, r}, {2});
    comm->all_reduce_sum(b);
    EXPECT_EQ(b.to_vector<int64_t>(), (std::vector<int64_t>{p * (int64_t{1} << 40), ranks}));
  }
}

TEST(MpiCommunicator, ReduceScatterGivesRankRItsChunkSummed) {
  for (Communicator* comm : communicators()) {
    const int p = comm->size(), r = comm->rank();
    for (int64_t m : {0, 1, 3, 10}) {
      // Rank s contributes 100·s + k at element k of the whole input.
      std::vector<float> v(static_cast<size_t>(p * m));
      for (int64_t k = 0; k < p * m; ++k) v[k] = static_cast<float>(100 * r + k);
      Tensor input = Tensor::from_vector(v, {p, m});
      Tensor output = Tensor::zeros({m}, DType::f32);
      comm->reduce_scatter_sum(input, output);
      EXPECT_EQ(output.shape(), (Shape{m}));
      std::vector<float> got = output.to_vector<float>();
      for (int64_t i = 0; i < m; ++i) {
        EXPECT_EQ(got[i], static_cast<float>(100 * p * (p - 1) / 2 + p * (r * m + i))) << i;
      }
      // In place: output is input's own chunk.
      comm->reduce_scatter_sum(input, input.select(r));
      EXPECT_EQ(input.select(r).to_vector<float>(), got) << "in place, m " << m;
    }
    // Messy values: rank order, so reduce_scatter + all_gather is exactly all_reduce.
    const int64_t m = 23;
    Tensor input = Tensor::from_vector(messy_values(r, p * m), {p * m});
    Tensor chunk = Tensor::zeros({m}, DType::f32);
    comm->reduce_scatter_sum(input, chunk);
    Tensor whole = Tensor::zeros({p * m}, DType::f32);
    comm->all_gather(chunk, whole);
    EXPECT_EQ(whole.to_vector<float>(), rank_order_sum(p, p * m));
  }
}

TEST(MpiCommunicator, AllGatherPlacesRankRsTensorInChunkR) {
  for (Communicator* comm : communicators()) {
    const int p = comm->size(), r = comm->rank();
    for (int64_t m : {0, 1, 4, 9}) {
      std::vector<int64_t> v(static_cast<size_t>(m));
      for (int64_t i = 0; i < m; ++i) v[i] = 1000 * r + i;
      Tensor input = Tensor::from_vector(v, {m});
      Tensor output = Tensor::zeros({p, m}, DType::i64);
      comm->all_gather(input, output);
      EXPECT_EQ(output.shape(), (Shape{p, m}));
      std::vector<int64_t> got = output.to_vector<int64_t>();
      for (int s = 0; s < p; ++s) {
        for (int64_t i = 0; i < m; ++i) EXPECT_EQ(got[s * m + i], 1000 * s + i);
      }
      // In place: input is output's own chunk.
      Tensor in_place = Tensor::zeros({p, m}, DType::i64);
      in_place.select(r).copy_from(input);
      comm->all_gather(in_place.select(r), in_place);
      EXPECT_EQ(in_place.to_vector<int64_t>(), got) << "in place, m " << m;
    }
  }
}

TEST(MpiCommunicator, BroadcastCopiesTheRootsBytes) {
  for (Communicator* comm : communicators()) {
    const int p = comm->size(), r = comm->rank();
    for (int root = 0; root < p; ++root) {
      Tensor f = Tensor::from_vector(messy_values(r, 20), {4, 5});
      comm->broadcast(f, root);
      EXPECT_EQ(f.to_vector<float>(), messy_values(root, 20));
      Tensor i = Tensor::from_vector<int64_t>({r, -r, int64_t{1} << (40 + r)}, {3});
      comm->broadcast(i, root);
      EXPECT_EQ(i.to_vector<int64_t>(),
                (std::vector<int64_t>{root, -root, int64_t{1} << (40 + root)}));
      Tensor j = Tensor::from_vector<int32_t>({r + 1}, {1});
      comm->broadcast(j, root);
      EXPECT_EQ(j.to_vector<int32_t>(), std::vector<int32_t>{root + 1});
    }
  }
}

TEST(MpiCommunicator, InvalidArgumentsThrowOnEveryRank) {
  Communicator& comm = world();
  const int p = comm.size(), r = comm.rank();
  const std::string where = "MpiCommunicator::reduce_scatter_sum on rank " + std::to_string(r) +
                            " of " + std::to_string(p);
  std::string e = error_of([&] {
    comm.reduce_scatter_sum(Tensor::zeros({p * 4 + 1}, DType::f32), Tensor::zeros({4}, DType::f32));
  });
  EXPECT_TRUE(e.starts_with(where + ": input f32[" + std::to_string(p * 4 + 1) + "] cpu holds"))
      << e;
  EXPECT_TRUE(contains(e, "(output f32[4] cpu)")) << e;

  e = error_of([&] { comm.broadcast(Tensor::zeros({2}, DType::f32), p); });
  EXPECT_TRUE(contains(e, "root " + std::to_string(p) + " is not a rank")) << e;

  // CUDA tensors belong to NcclCommunicator (the memory is never touched).
  float fake[2];
  Tensor cuda = Tensor::wrap(fake, {2}, DType::f32, Device::cuda(0), std::make_shared<int>(0));
  e = error_of([&] { comm.all_reduce_sum(cuda); });
  EXPECT_TRUE(contains(e, "tensor is f32[2] cuda:0 but MpiCommunicator works on cpu tensors")) << e;
}

TEST(MpiCommunicator, OneRanksInvalidArgumentsStopEveryRank) {
  Communicator& comm = world();
  // The last rank passes a dtype reductions do not take; the others would wait for it forever.
  const int bad = comm.size() - 1;
  Tensor t = Tensor::zeros({3}, comm.rank() == bad ? DType::u8 : DType::f32);
  std::string e = error_of([&] { comm.all_reduce_sum(t); });
  if (comm.rank() == bad) {
    EXPECT_TRUE(contains(e, "tensor is u8[3] cpu but reductions take")) << e;
  } else {
    EXPECT_TRUE(contains(e, "rank " + std::to_string(bad) + " rejected its arguments")) << e;
    EXPECT_TRUE(contains(e, "u8[3] cpu")) << e;
  }
}

TEST(MpiCommunicator, RanksThatDisagreeThrowOnEveryRank) {
  Communicator& comm = world();
  const int r = comm.rank();
  // Shapes differ by rank.
  std::string e = error_of([&] { comm.all_reduce_sum(Tensor::zeros({4 + r}, DType::f32)); });
  EXPECT_TRUE(contains(e, "ranks must make the same call")) << e;
  EXPECT_TRUE(contains(e, "rank 0: all_reduce_sum(f32[4] cpu); rank 1: all_reduce_sum(f32[5] cpu)"))
      << e;
  // Operations differ by rank.
  Tensor t = Tensor::zeros({2}, DType::f32);
  e = error_of([&] {
    if (r == 0) {
      comm.broadcast(t, 0);
    } else {
      comm.all_reduce_mean(t);
    }
  });
  EXPECT_TRUE(contains(e,
                       "rank 0: broadcast(f32[2] cpu, root 0); rank 1: all_reduce_mean(f32[2] "
                       "cpu)"))
      << e;
  // Roots differ by rank.
  e = error_of([&] { comm.broadcast(t, r == 0 ? 0 : 1); });
  EXPECT_TRUE(contains(e, "root 0); rank 1: broadcast(f32[2] cpu, root 1)")) << e;

  // The communicator is still usable.
  Tensor ones = Tensor::from_vector<float>({1, 1}, {2});
  comm.all_reduce_sum(ones);
  EXPECT_EQ(ones.to_vector<float>(), std::vector<float>(2, static_cast<float>(comm.size())));
}

}  // namespace
}  // namespace rlaif

int main(int argc, char** argv) {
  return rlaif::run_mpi_tests(argc, argv, "communicator_mpi_test");
}
