// A test communicator of one rank that behaves like NCCL's started collectives (shared by the
// overlap tests of DataParallelOptimizer and of the trainer).
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "kernels/backend.h"
#include "runtime/communicator.h"

namespace rlaif::test {

// One rank whose started collectives complete only at wait(): until then their outputs hold NaN
// (what a reader that forgot to wait would see on a GPU), and the input must not change.
class InFlightCommunicator final : public Communicator {
 public:
  struct Started {
    Ticket ticket;
    Tensor input, output, sent;  // sent: the input's values at the start
    int during_backward;         // the test's `in_backward` tag at the start
  };
  int in_backward = -1;  // set by the test around backward() (say, to the micro-batch); -1 outside
  std::vector<Started> log;  // every started collective, in order
  std::vector<std::string> problems;

  int rank() const override { return 0; }
  int size() const override { return 1; }
  const char* name() const override { return "InFlightCommunicator"; }
  void all_reduce_sum(const Tensor& t) override { one_.all_reduce_sum(t); }
  void all_reduce_mean(const Tensor& t) override { one_.all_reduce_mean(t); }
  void reduce_scatter_sum(const Tensor& in, const Tensor& out) override {
    one_.reduce_scatter_sum(in, out);
  }
  void all_gather(const Tensor& in, const Tensor& out) override { one_.all_gather(in, out); }
  void broadcast(const Tensor& t, int root) override { one_.broadcast(t, root); }
  void barrier() override {}
  [[noreturn]] void abort_job(int code) override { one_.abort_job(code); }

  bool runs_alongside_compute() const override { return true; }
  Ticket start_all_reduce_mean(const Tensor& t) override { return start(t, t); }
  Ticket start_reduce_scatter_sum(const Tensor& in, const Tensor& out) override {
    EXPECT_EQ(in.numel(), out.numel());
    return start(in, out);
  }
  void wait(Ticket ticket) override {
    for (Started& s : log) {
      if (s.ticket > ticket || !s.sent.defined()) continue;
      if (s.input.raw_data() != s.output.raw_data() && !same(s.input, s.sent))
        problems.push_back("collective " + std::to_string(s.ticket) + "'s input was written");
      s.output.copy_from(s.sent);  // the mean and the sum over one rank
      s.sent = Tensor();           // done
    }
  }
  bool all_done() const {
    for (const Started& s : log)
      if (s.sent.defined()) return false;
    return true;
  }

 private:
  SingleProcessCommunicator one_;
  Ticket last_ = 0;

  static bool same(const Tensor& a, const Tensor& b) {
    return std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
  }
  Ticket start(const Tensor& in, const Tensor& out) {
    for (const Started& s : log) {  // no tensor of a collective in flight may be reused
      if (s.sent.defined() &&
          (s.input.raw_data() == in.raw_data() || s.output.raw_data() == out.raw_data()))
        problems.push_back("a buffer in flight was started again");
    }
    log.push_back({++last_, in, out, in.clone(), in_backward});
    backend_for(out.device()).fill(out, std::numeric_limits<double>::quiet_NaN());
    return last_;
  }
};

}  // namespace rlaif::test
