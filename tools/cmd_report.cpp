// `rlaif report`: one standalone HTML file with the training curves of one or more runs.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "io/atomic_file.h"
#include "io/run_report.h"
#include "io/svg_chart.h"
#include "runtime/error.h"
#include "tools/api_flags.h"
#include "tools/cli_flags.h"
#include "tools/commands.h"

namespace rlaif::cli {
namespace {

// An existing file is replaced only when rlaif wrote it: a report is regenerated freely, any
// other file is the user's.
void refuse_foreign_file(const std::string& path) {
  if (!std::filesystem::exists(path)) return;
  std::ifstream in(path);
  std::string head(4096, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<size_t>(in.gcount()));
  if (head.find(kReportGeneratorMark) == std::string::npos) {
    throw UsageError("--out: '" + path +
                     "' exists and is not a report rlaif wrote; choose another file or remove it");
  }
}

}  // namespace

int report_main(const std::vector<std::string>& args) {
  Flags flags("report",
              "Write one standalone HTML file (inline SVG and CSS; no scripts, fonts or network)\n"
              "with the training curves of the given runs: every metric each run logged to its\n"
              "metrics.jsonl (loss, held-out loss, lr, grad norm, tokens/s, DPO's rewards/* and\n"
              "logps/*, PPO's score, KL and entropy, ...) against steps, the runs overlaid, and a\n"
              "table of their final values. Works on a run that is still going.");
  flags.positional("RUN_DIR", "run directories (each with a metrics.jsonl)")
      .option("out", "", "HTML file to write (replaced if it is an earlier rlaif report)", true)
      .option("title", "", "page title (default: the run names)")
      .option("smoothing", "0.6",
              "weight of the exponential moving average drawn over train curves, in [0, 1) "
              "(0 = raw only); TensorBoard's smoothing");
  if (!flags.parse(args)) return 0;
  const double smoothing = flags.number("smoothing");
  if (!(smoothing >= 0 && smoothing < 1)) throw UsageError("--smoothing must be in [0, 1)");
  const std::vector<std::string>& dirs = flags.positionals();
  const std::vector<std::string> labels = run_labels(dirs);
  std::vector<RunMetrics> runs;
  for (size_t i = 0; i < dirs.size(); ++i) runs.push_back(read_run_metrics(dirs[i], labels[i]));
  std::string title = flags.str("title");
  if (title.empty()) {
    for (const std::string& l : labels) title += (title.empty() ? "" : ", ") + l;
  }
  const std::string out = flags.str("out");
  refuse_foreign_file(out);
  ensure_parent_dir(out);
  write_file_atomically(out, html_page(title, training_curves_html(runs, smoothing)));
  std::printf("{\"report\": \"%s\", \"runs\": %zu, \"charts\": %zu}\n", out.c_str(), runs.size(),
              chart_order(runs).size());
  return 0;
}

}  // namespace rlaif::cli
