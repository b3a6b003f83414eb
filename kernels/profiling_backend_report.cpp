// ProfilingBackend::report: the profile as a table (`rlaif bench train --profile`).
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "kernels/profiling_backend.h"

namespace rlaif {
namespace {

std::string fmt(const char* format, double value) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, value);
  return buf;
}

}  // namespace

void ProfilingBackend::report(std::ostream& os, int top, double wall_seconds) const {
  const std::vector<ProfileEntry> all = entries();
  double total = 0.0;
  int64_t calls = 0;
  for (const ProfileEntry& e : all) {
    total += e.seconds;
    calls += e.calls;
  }
  const double base = wall_seconds > 0 ? wall_seconds : total;
  const size_t shown = top > 0 ? std::min(all.size(), static_cast<size_t>(top)) : all.size();

  std::vector<std::vector<std::string>> rows;
  rows.push_back({"primitive", "calls", "total ms", "%", "us/call", "TFLOP/s", "GB/s"});
  auto pct = [&](double s) { return base > 0 ? fmt("%.1f", 100.0 * s / base) : "-"; };
  for (size_t i = 0; i < shown; ++i) {
    const ProfileEntry& e = all[i];
    const bool timed = e.seconds > 0;
    rows.push_back(
        {e.name, std::to_string(e.calls), fmt("%.3f", e.seconds * 1e3), pct(e.seconds),
         fmt("%.1f", e.seconds * 1e6 / static_cast<double>(std::max<int64_t>(1, e.calls))),
         e.flops > 0 && timed ? fmt("%.2f", e.flops / e.seconds / 1e12) : "",
         e.bytes > 0 && timed ? fmt("%.1f", e.bytes / e.seconds / 1e9) : ""});
  }
  if (shown < all.size()) {
    double rest = 0.0;
    int64_t rest_calls = 0;
    for (size_t i = shown; i < all.size(); ++i) {
      rest += all[i].seconds;
      rest_calls += all[i].calls;
    }
    // Appended piece by piece: GCC 12 warns (-Wrestrict, falsely) on "(" + std::to_string(n).
    std::string more = "(";
    more += std::to_string(all.size() - shown);
    more += " more labels)";
    rows.push_back(
        {more, std::to_string(rest_calls), fmt("%.3f", rest * 1e3), pct(rest), "", "", ""});
  }
  rows.push_back({"(all primitives)", std::to_string(calls), fmt("%.3f", total * 1e3), pct(total),
                  "", "", ""});
  if (wall_seconds > 0) {
    const double outside = wall_seconds - total;
    rows.push_back(
        {"(outside primitives)", "", fmt("%.3f", outside * 1e3), pct(outside), "", "", ""});
  }

  std::vector<size_t> width(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  }
  os << "profile: " << calls << " primitive calls under " << all.size()
     << " labels; each call is timed between two marks in the device's queue (an empty "
        "interval: "
     << fmt("%.1f", mark_floor_s_ * 1e6) << " us)\n";
  for (const auto& row : rows) {
    std::string line = row[0] + std::string(width[0] - row[0].size(), ' ');
    for (size_t c = 1; c < row.size(); ++c) {
      line += "  " + std::string(width[c] - row[c].size(), ' ') + row[c];
    }
    line.erase(line.find_last_not_of(' ') + 1);
    os << line << "\n";
  }
}

}  // namespace rlaif
