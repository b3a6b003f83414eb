#include "io/spend_meter.h"

#include "runtime/error.h"

namespace rlaif {

int64_t estimate_tokens(std::string_view text) {
  return static_cast<int64_t>((text.size() + 3) / 4);
}

std::string describe_spend(const Spend& spend) {
  std::string s = std::to_string(spend.requests) + " requests, " +
                  std::to_string(spend.prompt_tokens) + " prompt + " +
                  std::to_string(spend.completion_tokens) + " completion tokens (" +
                  std::to_string(spend.total_tokens()) + " in all)";
  if (spend.estimated_responses > 0) {
    s += ", " + std::to_string(spend.estimated_responses) +
         " responses without usage counted at 4 bytes a token";
  }
  return s;
}

SpendMeter::SpendMeter(SpendLimits limits) : limits_(limits) {
  RLAIF_CHECK(limits_.max_requests >= 0, "--max-requests must be >= 0 (0 = no limit; got ",
              limits_.max_requests, ")");
  RLAIF_CHECK(limits_.max_tokens >= 0, "--max-total-tokens must be >= 0 (0 = no limit; got ",
              limits_.max_tokens, ")");
}

bool SpendMeter::reached_locked() const {
  return (limits_.max_requests > 0 && spent_.requests >= limits_.max_requests) ||
         (limits_.max_tokens > 0 && spent_.total_tokens() >= limits_.max_tokens);
}

bool SpendMeter::try_start_request() {
  std::lock_guard lock(mutex_);
  if (reached_locked()) {
    refused_ = true;
    return false;
  }
  ++spent_.requests;
  return true;
}

void SpendMeter::record_tokens(int64_t prompt_tokens, int64_t completion_tokens, bool estimated) {
  std::lock_guard lock(mutex_);
  spent_.prompt_tokens += prompt_tokens;
  spent_.completion_tokens += completion_tokens;
  spent_.estimated_responses += estimated;
}

Spend SpendMeter::spent() const {
  std::lock_guard lock(mutex_);
  return spent_;
}

bool SpendMeter::limit_reached() const {
  std::lock_guard lock(mutex_);
  return reached_locked();
}

bool SpendMeter::stopped_by_limit() const {
  std::lock_guard lock(mutex_);
  return refused_;
}

std::string SpendMeter::reached_limit() const {
  std::lock_guard lock(mutex_);
  if (limits_.max_requests > 0 && spent_.requests >= limits_.max_requests) {
    return "--max-requests " + std::to_string(limits_.max_requests) + " (" +
           std::to_string(spent_.requests) + " sent)";
  }
  if (limits_.max_tokens > 0 && spent_.total_tokens() >= limits_.max_tokens) {
    return "--max-total-tokens " + std::to_string(limits_.max_tokens) + " (" +
           std::to_string(spent_.total_tokens()) + " counted)";
  }
  return "";
}

}  // namespace rlaif
