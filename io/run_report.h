// Reports of training runs as one standalone HTML file: inline SVG charts and CSS, no scripts,
// fonts or anything fetched from the network, so the file opens anywhere, offline, and can be
// attached to a message as it is.
//
// A run is a directory with metrics.jsonl (io/metrics_log.h). Each numeric metric of each kind
// ("train", "eval") becomes one chart of value against step, with every run that logged it
// overlaid; train curves are smoothed (io/svg_chart.h), eval points are few and drawn raw.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace rlaif {

struct RunMetrics {
  std::string label;  // the name shown in legends
  std::string dir;
  // "KIND/NAME" (e.g. "train/loss", "eval/val_loss") → (step, value) in step order.
  std::map<std::string, std::vector<std::pair<double, double>>> curves;
};

// Reads DIR/metrics.jsonl; Error naming the file when it is missing or holds no metrics.
RunMetrics read_run_metrics(const std::string& dir, const std::string& label);

// Labels for run directories: their last path component, or more of the path where two would
// otherwise look the same.
std::vector<std::string> run_labels(const std::vector<std::string>& dirs);

// The metrics to chart, in reading order: train loss first, then the eval metrics, then the
// other train metrics alphabetically.
std::vector<std::string> chart_order(const std::vector<RunMetrics>& runs);

// An HTML section: a table of each run's last step and final values, then one chart per metric.
std::string training_curves_html(const std::vector<RunMetrics>& runs, double smoothing);

// A complete page around `body`; `generator_mark` identifies files rlaif may overwrite.
std::string html_page(const std::string& title, const std::string& body);
constexpr const char* kReportGeneratorMark = "<meta name=\"generator\" content=\"rlaif report\">";

}  // namespace rlaif
