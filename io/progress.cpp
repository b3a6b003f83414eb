#include "io/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace rlaif {

Progress::Progress(std::string label, int64_t total, std::string unit)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      tty_(isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

Progress::~Progress() {
  if (tty_ && !finished_ && done_ > 0) std::fputc('\n', stderr);
}

double Progress::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

std::string Progress::format_duration(double seconds) {
  long s = static_cast<long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", s / 3600, (s / 60) % 60);
  } else if (s >= 60) {
    std::snprintf(buf, sizeof buf, "%ldm%02lds", s / 60, s % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%lds", s);
  }
  return buf;
}

void Progress::update(int64_t done, int64_t tokens, const std::string& note) {
  done_ = done;
  tokens_ = tokens;
  note_ = note;
  auto now = std::chrono::steady_clock::now();
  double since = std::chrono::duration<double>(now - last_draw_).count();
  // Terminals redraw often; logs get a line every 10 s so a long run is followed without noise.
  // The final state is drawn by finish().
  if (since < (tty_ ? 0.1 : 10.0) || (total_ > 0 && done >= total_)) return;
  last_draw_ = now;
  draw(false);
}

void Progress::finish(const std::string& note) {
  if (finished_) return;
  if (!note.empty()) note_ = note;
  finished_ = true;
  draw(true);
}

void Progress::draw(bool final) {
  double elapsed = elapsed_seconds();
  std::string line = label_ + " ";
  if (total_ > 0) {
    const int width = 24;
    int filled = static_cast<int>(width * static_cast<double>(done_) / static_cast<double>(total_));
    filled = std::clamp(filled, 0, width);
    if (tty_) {
      line.push_back('[');
      line.append(static_cast<size_t>(filled), '#');
      line.append(static_cast<size_t>(width - filled), '.');
      line.append("] ");
    }
    line += std::to_string(done_) + "/" + std::to_string(total_) + " " + unit_;
  } else {
    line += std::to_string(done_) + " " + unit_;
  }
  char buf[96];
  if (tokens_ > 0 && elapsed > 0) {
    std::snprintf(buf, sizeof buf, " | %.0f tok/s", static_cast<double>(tokens_) / elapsed);
    line += buf;
  }
  line += " | " + format_duration(elapsed);
  if (!final && total_ > 0 && done_ > 0 && done_ < total_) {
    double eta = elapsed * static_cast<double>(total_ - done_) / static_cast<double>(done_);
    line += " ETA " + format_duration(eta);
  }
  if (!note_.empty()) line += " | " + note_;
  if (tty_) {
    std::fprintf(stderr, "\r\033[K%s%s", line.c_str(), final ? "\n" : "");
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  std::fflush(stderr);
}

}  // namespace rlaif
