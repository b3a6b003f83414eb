// Progress of long work on stderr: a redrawn bar with rate and ETA when stderr is a terminal, a
// plain line every few seconds otherwise (logs stay readable).
//
//   Progress bar("generate", prompts.size(), "prompts");
//   bar.update(done, tokens_so_far);   // any time; draws at most ~10 times a second
//   bar.finish();                      // final line with the totals
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace rlaif {

class Progress {
 public:
  // `total` units of work (0 when unknown); `unit` names them ("steps", "prompts").
  Progress(std::string label, int64_t total, std::string unit);
  ~Progress();

  // `done` units finished so far; `tokens` processed so far (0 to omit tokens/s); `note` extra
  // text such as the current loss.
  void update(int64_t done, int64_t tokens = 0, const std::string& note = "");
  void finish(const std::string& note = "");

  double elapsed_seconds() const;

  // Formats seconds as "1h02m", "3m05s" or "12s".
  static std::string format_duration(double seconds);

 private:
  void draw(bool final);

  std::string label_, unit_, note_;
  int64_t total_, done_ = 0, tokens_ = 0;
  bool tty_, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace rlaif
