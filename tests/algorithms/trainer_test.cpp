// The trainer loop's guarantees that the pretraining tests do not reach: a non-finite loss
// stops training naming the step and keeps the last good checkpoint; metrics are written per
// step; checkpoints are pruned to --keep.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "algorithms/trainer.h"
#include "autograd/ops.h"
#include "io/checkpoint.h"
#include "kernels/cpu/cpu_info.h"
#include "tests/algorithms/in_flight_communicator.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tiny_models.h"

namespace rlaif {
namespace {

namespace fs = std::filesystem;

using test::micro_llama;

// Next-token loss on a fixed batch; returns NaN from step `nan_at` on.
class ScriptedTask : public TrainingTask {
 public:
  ScriptedTask(const Transformer& model, int64_t nan_at, test::InFlightCommunicator* comm = nullptr)
      : model_(model), nan_at_(nan_at), comm_(comm) {}
  MicroBatchResult micro_batch(int64_t step, int64_t micro, double scale) override {
    TransformerInput in{Tensor::from_vector<int32_t>({1, 2, 3, 4, 5, 6}, {1, 6}),
                        Tensor::from_vector<int32_t>({0, 1, 2, 3, 4, 5}, {1, 6}), Tensor()};
    Tensor targets = Tensor::from_vector<int32_t>({2, 3, 4, 5, 6, 7}, {1, 6});
    Variable loss = mean_all(model_.token_losses(in, targets));
    if (step >= nan_at_) loss = mul(loss, Variable(Tensor::scalar(NAN)));
    if (comm_) comm_->in_backward = static_cast<int>(micro);  // tags the collectives
    rlaif::scale(loss, static_cast<float>(scale)).backward();
    if (comm_) comm_->in_backward = -1;
    return {loss.data().item(), 6, {{"twice_loss", 2.0 * loss.data().item()}}};
  }

 private:
  const Transformer& model_;
  int64_t nan_at_;
  test::InFlightCommunicator* comm_;
};

using test::temp_dir;

TEST(Trainer, NonFiniteLossStopsNamingTheStepAndKeepsTheLastCheckpoint) {
  Transformer model(micro_llama());
  model.init_weights(1);
  model.set_requires_grad(true);
  ScriptedTask task(model, /*nan_at=*/5);  // the 6th step (1-based) goes bad
  TrainerOptions o;
  o.out_dir = temp_dir("nan");
  o.steps = 10;
  o.save_every = 2;
  o.keep = 0;
  o.schedule.lr = 1e-3;
  try {
    train(model, task, o);
    FAIL() << "training should have stopped";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("step 6"), std::string::npos) << msg;
    EXPECT_NE(msg.find("nan"), std::string::npos) << msg;
    EXPECT_NE(msg.find("step_00000004"), std::string::npos) << msg;
  }
  EXPECT_EQ(list_checkpoints(o.out_dir).size(), 2u);  // steps 2 and 4, nothing after the NaN
  EXPECT_FALSE(fs::exists(o.out_dir + "/model.safetensors"));  // no final model from bad weights
  fs::remove_all(o.out_dir);
}

TEST(Trainer, LogsEveryStepAndKeepsTheNewestCheckpoints) {
  Transformer model(micro_llama());
  model.init_weights(1);
  model.set_requires_grad(true);
  ScriptedTask task(model, /*nan_at=*/1000);
  TrainerOptions o;
  o.out_dir = temp_dir("log");
  o.steps = 7;
  o.save_every = 2;
  o.keep = 2;
  o.grad_accum = 2;
  o.schedule.lr = 1e-3;
  o.schedule.warmup = 2;
  TrainResult r = train(model, task, o);
  EXPECT_EQ(r.steps_done, 7);
  std::vector<std::string> ckpts = list_checkpoints(o.out_dir);
  ASSERT_EQ(ckpts.size(), 2u);
  EXPECT_EQ(fs::path(ckpts[0]).filename(), "step_00000004");
  EXPECT_EQ(fs::path(ckpts[1]).filename(), "step_00000006");
  std::ifstream in(o.out_dir + "/metrics.jsonl");
  std::string line;
  int lines = 0;
  while (std::getline(in, line)) {
    ++lines;
    for (const char* key : {"\"step\":", "\"loss\":", "\"lr\":", "\"grad_norm\":",
                            "\"tokens_per_s\":", "\"elapsed_s\":", "\"twice_loss\":"}) {
      EXPECT_NE(line.find(key), std::string::npos) << key << " missing in " << line;
    }
  }
  EXPECT_EQ(lines, 7);
  // The first step runs at lr·1/warmup.
  in.clear();
  in.seekg(0);
  std::getline(in, line);
  EXPECT_NE(line.find("\"lr\":0.0005"), std::string::npos) << line;
  EXPECT_TRUE(fs::exists(o.out_dir + "/model.safetensors"));
  fs::remove_all(o.out_dir);
}

// A checkpoint records OpenBLAS's kernel set; resuming a CPU run under another one says that the
// run continues in other last bits (docs/DESIGN.md, Determinism), and only then.
TEST(Trainer, ResumeUnderAnotherCpuKernelSetSaysSo) {
  Transformer model(micro_llama());
  model.init_weights(1);
  model.set_requires_grad(true);
  ScriptedTask task(model, /*nan_at=*/1000);
  TrainerOptions o;
  o.out_dir = temp_dir("kernels");
  o.steps = 2;
  o.save_every = 2;
  o.schedule.lr = 1e-3;
  train(model, task, o);
  TrainerCheckpoint ckpt = read_trainer_state(checkpoint_dir(o.out_dir, 2));
  const std::string here = cpu::blas_core_name();
  EXPECT_NE(ckpt.state_json.find("\"cpu_kernels\":\"" + here + "\""), std::string::npos)
      << ckpt.state_json;
  EXPECT_EQ(resume_kernels_note(ckpt, Device::cpu()), "");

  const size_t at = ckpt.state_json.find(here);
  ckpt.state_json.replace(at, here.size(), "Elsewhere");
  const std::string note = resume_kernels_note(ckpt, Device::cpu());
  EXPECT_NE(note.find("OpenBLAS's Elsewhere kernels and this run uses " + here), std::string::npos)
      << note;
  EXPECT_NE(note.find(ckpt.dir), std::string::npos) << note;
  EXPECT_EQ(resume_kernels_note(ckpt, Device::cuda(0)), "") << "a GPU run uses no CPU kernels";
  ckpt.state_json = "{\"format\": 1, \"step\": 2}";
  EXPECT_EQ(resume_kernels_note(ckpt, Device::cpu()), "") << "a checkpoint without the record";
  fs::remove_all(o.out_dir);
}

// Under data parallelism the last micro-batch's backward pass sends the gradients (and only the
// last: the earlier ones' gradients are not complete); --no-overlap sends them after it. Both
// give the same model.
TEST(Trainer, SendsGradientsDuringTheLastMicroBatchsBackward) {
  std::vector<float> weights[2];
  for (bool overlap : {true, false}) {
    Transformer model(micro_llama());
    model.init_weights(1);
    model.set_requires_grad(true);
    test::InFlightCommunicator comm;
    ScriptedTask task(model, /*nan_at=*/1000, &comm);
    TrainerOptions o;
    o.out_dir = temp_dir(overlap ? "overlap" : "no_overlap");
    o.steps = 3;
    o.save_every = 0;
    o.grad_accum = 3;
    o.schedule.lr = 1e-2;
    o.device_comm = &comm;
    o.overlap_reduction = overlap;
    train(model, task, o);
    EXPECT_TRUE(comm.problems.empty()) << comm.problems.front();
    int during_last = 0;
    for (const auto& s : comm.log) {
      EXPECT_TRUE(s.during_backward == -1 || (overlap && s.during_backward == 2))
          << "a collective started in micro-batch " << s.during_backward;
      during_last += s.during_backward == 2;
    }
    if (overlap) {
      EXPECT_GT(during_last, 0) << "nothing was sent during the backward pass";
    }
    for (const auto& [name, p] : model.parameters()) {
      std::vector<float> v = p.data().to_vector<float>();
      weights[overlap].insert(weights[overlap].end(), v.begin(), v.end());
    }
    fs::remove_all(o.out_dir);
  }
  EXPECT_EQ(weights[0], weights[1]);
}

}  // namespace
}  // namespace rlaif
