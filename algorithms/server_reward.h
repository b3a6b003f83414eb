// A reward computed by the user's own HTTP server (io/reward_server.h has the protocol): each
// rollout's prompt, completion and the prompt's record in the prompts file (PromptColumns, every
// column) go to the server, whose scores become the rewards. Like the LLM critic it scores on
// rank 0 only under data parallelism: one request cache and one server load per run.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "algorithms/prompt_columns.h"
#include "algorithms/reward_function.h"
#include "io/reward_server.h"

namespace rlaif {

class ServerReward : public RewardFunction {
 public:
  ServerReward(RewardServerOptions options, PromptColumns columns);

  // Error naming the file for a prompt no record has; errors of the client as it gives them.
  std::vector<double> score(const std::vector<std::string>& prompts,
                            const std::vector<std::string>& completions) override;
  bool scores_on_lead_rank() const override { return true; }

  RewardServerClient& client() { return client_; }
  const RewardServerClient& client() const { return client_; }

 private:
  RewardServerClient client_;
  PromptColumns columns_;
  int64_t calls_ = 0;
};

// A record's columns as one compact JSON object, in the columns' name order.
std::string columns_object_json(const PromptRecord& record);

}  // namespace rlaif
