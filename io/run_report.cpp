#include "io/run_report.h"

#include <rapidjson/document.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "io/svg_chart.h"
#include "runtime/error.h"

namespace rlaif {
namespace {

namespace fs = std::filesystem;

std::string format_value(double v) {
  char buf[32];
  if (v != 0 && (std::fabs(v) >= 1e5 || std::fabs(v) < 1e-3)) {
    std::snprintf(buf, sizeof buf, "%.3g", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.4g", v);
  }
  return buf;
}

// "train/loss" → "loss"; "eval/val_loss" → "val_loss (eval)".
std::string metric_title(const std::string& key) {
  const size_t slash = key.find('/');
  const std::string kind = key.substr(0, slash), name = key.substr(slash + 1);
  return kind == "train" ? name : name + " (" + kind + ")";
}

const char* kStyle = R"(
body { font-family: sans-serif; margin: 24px; color: #222; background: #fafafa; }
h1 { font-size: 20px; margin: 0 0 4px 0; }
h2 { font-size: 16px; margin: 28px 0 8px 0; }
.meta { color: #666; font-size: 12px; margin-bottom: 16px; }
table { border-collapse: collapse; font-size: 13px; background: #fff; }
th, td { border: 1px solid #ddd; padding: 4px 10px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f0f0f0; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
.chart-box { background: #fff; border: 1px solid #ddd; }
.note { color: #666; font-size: 12px; }
)";

}  // namespace

RunMetrics read_run_metrics(const std::string& dir, const std::string& label) {
  const std::string path = (fs::path(dir) / "metrics.jsonl").string();
  std::ifstream in(path, std::ios::binary);
  RLAIF_CHECK(in.good(), "report: no metrics in '", dir, "': cannot open ", path);
  std::stringstream text;
  text << in.rdbuf();
  std::string content = text.str();
  // A run still going (or killed mid-write) may end with a torn line: read complete lines only.
  content.resize(content.rfind('\n') == std::string::npos ? 0 : content.rfind('\n') + 1);
  RunMetrics run{label, dir, {}};
  std::istringstream lines(content);
  std::string line;
  int64_t number = 0;
  while (std::getline(lines, line)) {
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    rapidjson::Document doc;
    doc.Parse<rapidjson::kParseIterativeFlag>(line.c_str());
    RLAIF_CHECK(!doc.HasParseError() && doc.IsObject(), path, ":", number, ": not a JSON object");
    if (!doc.HasMember("step") || !doc["step"].IsNumber()) continue;
    const double step = doc["step"].GetDouble();
    const std::string kind =
        doc.HasMember("kind") && doc["kind"].IsString() ? doc["kind"].GetString() : "train";
    for (auto it = doc.MemberBegin(); it != doc.MemberEnd(); ++it) {
      const std::string name = it->name.GetString();
      if (name == "step" || name == "kind" || name == "elapsed_s") continue;
      const double value = it->value.IsNumber() ? it->value.GetDouble() : std::nan("");
      if (!it->value.IsNumber() && !it->value.IsNull()) continue;
      run.curves[kind + "/" + name].emplace_back(step, value);
    }
  }
  RLAIF_CHECK(!run.curves.empty(), "report: ", path, " holds no metrics yet");
  return run;
}

std::vector<std::string> run_labels(const std::vector<std::string>& dirs) {
  std::vector<std::vector<std::string>> parts;
  size_t deepest = 1;
  for (const std::string& d : dirs) {
    std::vector<std::string> p;
    for (const fs::path& part : fs::path(d).lexically_normal()) {
      if (!part.empty() && part != ".") p.push_back(part.string());
    }
    if (p.empty()) p.push_back(d);
    deepest = std::max(deepest, p.size());
    parts.push_back(p);
  }
  // The same number of trailing components for every run, the fewest that tell them apart.
  std::vector<std::string> labels(dirs.size());
  for (size_t take = 1; take <= deepest; ++take) {
    for (size_t i = 0; i < dirs.size(); ++i) {
      const std::vector<std::string>& p = parts[i];
      std::string label;
      for (size_t k = p.size() - std::min(take, p.size()); k < p.size(); ++k) {
        label += (label.empty() ? "" : "/") + p[k];
      }
      labels[i] = label;
    }
    if (std::set<std::string>(labels.begin(), labels.end()).size() == labels.size()) break;
  }
  return labels;
}

std::vector<std::string> chart_order(const std::vector<RunMetrics>& runs) {
  std::set<std::string> keys;
  for (const RunMetrics& r : runs) {
    for (const auto& [key, points] : r.curves) keys.insert(key);
  }
  // What the algorithm optimises and measures before the bookkeeping: rewards, margins, KL,
  // scores, entropy; then the optimiser's gradient norm and learning rate, then throughput.
  auto rank = [](const std::string& k) {
    if (k == "train/loss") return 0;
    if (k.rfind("eval/", 0) == 0) return 1;
    for (const char* word : {"reward", "accurac", "margin", "score", "kl", "entropy", "logp"}) {
      if (k.find(word) != std::string::npos) return 2;
    }
    if (k == "train/grad_norm" || k == "train/lr") return 3;
    if (k.find("per_s") != std::string::npos) return 4;
    return 5;
  };
  std::vector<std::string> order(keys.begin(), keys.end());
  std::stable_sort(order.begin(), order.end(),
                   [&](const std::string& a, const std::string& b) { return rank(a) < rank(b); });
  return order;
}

std::string training_curves_html(const std::vector<RunMetrics>& runs, double smoothing) {
  std::ostringstream html;
  const std::vector<std::string> order = chart_order(runs);
  // Summary: each run's last step and the last value of the first few metrics.
  const size_t columns = std::min<size_t>(order.size(), 4);
  html << "<h2>Runs</h2>\n<table>\n<tr><th>run</th><th>directory</th><th>last step</th>";
  for (size_t c = 0; c < columns; ++c)
    html << "<th>" << xml_escape(metric_title(order[c])) << "</th>";
  html << "</tr>\n";
  for (const RunMetrics& r : runs) {
    double last_step = 0;
    for (const auto& [key, points] : r.curves) {
      if (!points.empty()) last_step = std::max(last_step, points.back().first);
    }
    html << "<tr><td>" << xml_escape(r.label) << "</td><td>" << xml_escape(r.dir) << "</td><td>"
         << format_value(last_step) << "</td>";
    for (size_t c = 0; c < columns; ++c) {
      auto it = r.curves.find(order[c]);
      std::string cell = "–";
      if (it != r.curves.end()) {
        for (auto p = it->second.rbegin(); p != it->second.rend(); ++p) {
          if (std::isfinite(p->second)) {
            cell = format_value(p->second);
            break;
          }
        }
      }
      html << "<td>" << cell << "</td>";
    }
    html << "</tr>\n";
  }
  html << "</table>\n";
  html << "<h2>Training curves</h2>\n";
  if (smoothing > 0) {
    html << "<p class=\"note\">Train curves smoothed (exponential moving average, weight "
         << format_value(smoothing) << "); the raw values are drawn faded behind.</p>\n";
  }
  html << "<div class=\"charts\">\n";
  for (const std::string& key : order) {
    std::vector<ChartSeries> series;
    for (size_t i = 0; i < runs.size(); ++i) {
      auto it = runs[i].curves.find(key);
      if (it != runs[i].curves.end())
        series.push_back({runs[i].label, it->second, static_cast<int>(i)});
    }
    ChartOptions options;
    options.legend = runs.size() > 1;  // which run a lone curve belongs to
    options.title = metric_title(key);
    options.x_label = "step";
    options.y_label = key.substr(key.find('/') + 1);
    options.smoothing = key.rfind("train/", 0) == 0 ? smoothing : 0.0;
    html << "<div class=\"chart-box\">" << line_chart_svg(series, options) << "</div>\n";
  }
  html << "</div>\n";
  return html.str();
}

std::string html_page(const std::string& title, const std::string& body) {
  std::ostringstream html;
  html << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
       << kReportGeneratorMark << "\n<title>" << xml_escape(title) << "</title>\n<style>" << kStyle
       << "</style>\n</head>\n<body>\n<h1>" << xml_escape(title) << "</h1>\n"
       << body << "</body>\n</html>\n";
  return html.str();
}

}  // namespace rlaif
