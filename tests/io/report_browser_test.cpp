// A report rendered by a real browser: headless Chromium takes a screenshot of the HTML page, and
// the picture must show the charts, with each run's curve in its colour and enough drawn pixels
// that no chart came out blank. Chromium is a test dependency (tools/install_deps.sh); where it
// is missing the test skips, unless RLAIF_REQUIRE_BROWSER=1 (tools/test.sh sets it) makes that a
// failure.
#include <gtest/gtest.h>
#include <png.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "io/run_report.h"
#include "io/svg_chart.h"

namespace rlaif {
namespace {

namespace fs = std::filesystem;

std::string find_browser() {
  for (const char* name : {"chromium", "chromium-browser", "google-chrome"}) {
    const std::string probe = std::string("command -v ") + name + " >/dev/null 2>&1";
    if (std::system(probe.c_str()) == 0) return name;
  }
  return "";
}

struct Image {
  int width = 0, height = 0;
  std::vector<unsigned char> rgba;  // row-major, 4 bytes a pixel
};

Image read_png(const std::string& path) {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  Image out;
  if (!png_image_begin_read_from_file(&image, path.c_str())) return out;
  image.format = PNG_FORMAT_RGBA;
  out.width = static_cast<int>(image.width);
  out.height = static_cast<int>(image.height);
  out.rgba.resize(PNG_IMAGE_SIZE(image));
  if (!png_image_finish_read(&image, nullptr, out.rgba.data(), 0, nullptr)) out.width = 0;
  return out;
}

// Pixels within `tolerance` (per channel) of the colour #RRGGBB.
int64_t pixels_near(const Image& img, const std::string& hex, int tolerance) {
  const int r = std::stoi(hex.substr(1, 2), nullptr, 16),
            g = std::stoi(hex.substr(3, 2), nullptr, 16),
            b = std::stoi(hex.substr(5, 2), nullptr, 16);
  int64_t n = 0;
  for (size_t i = 0; i + 3 < img.rgba.size(); i += 4) {
    if (std::abs(img.rgba[i] - r) <= tolerance && std::abs(img.rgba[i + 1] - g) <= tolerance &&
        std::abs(img.rgba[i + 2] - b) <= tolerance) {
      ++n;
    }
  }
  return n;
}

// Two runs with a falling loss, an eval metric and a learning rate: three charts.
std::vector<RunMetrics> sample_runs() {
  std::vector<RunMetrics> runs = {{"baseline", "runs/baseline", {}}, {"dpo", "runs/dpo", {}}};
  for (int step = 1; step <= 200; ++step) {
    const double s = step;
    runs[0].curves["train/loss"].emplace_back(s, 3.0 * std::exp(-s / 60) + 0.5 + 0.1 * std::sin(s));
    runs[1].curves["train/loss"].emplace_back(s, 2.5 * std::exp(-s / 40) + 0.4 + 0.1 * std::cos(s));
    runs[0].curves["train/lr"].emplace_back(s, 1e-3 * std::min(1.0, s / 20));
    runs[1].curves["train/lr"].emplace_back(s, 5e-4 * std::min(1.0, s / 20));
    if (step % 50 == 0) {
      runs[0].curves["eval/val_loss"].emplace_back(s, 3.0 * std::exp(-s / 60) + 0.6);
      runs[1].curves["eval/val_loss"].emplace_back(s, 2.5 * std::exp(-s / 40) + 0.5);
    }
  }
  return runs;
}

TEST(ReportInBrowser, ChromiumDrawsEveryChart) {
  const std::string browser = find_browser();
  if (browser.empty()) {
    if (const char* require = std::getenv("RLAIF_REQUIRE_BROWSER"); require && *require == '1') {
      FAIL()
          << "RLAIF_REQUIRE_BROWSER=1 but no chromium on PATH (tools/install_deps.sh installs it)";
    }
    GTEST_SKIP() << "no chromium on PATH: the report is not rendered";
  }
  const fs::path dir = fs::temp_directory_path() / ("rlaif_report_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string html_path = (dir / "report.html").string(), png = (dir / "shot.png").string();
  const std::vector<RunMetrics> runs = sample_runs();
  {
    std::ofstream out(html_path);
    out << html_page("browser test", training_curves_html(runs, 0.6));
  }
  // A private profile directory, so the test neither reads nor leaves a user's browser state.
  const std::string command = browser + " --headless --no-sandbox --disable-gpu --hide-scrollbars" +
                              " --user-data-dir=" + (dir / "profile").string() +
                              " --window-size=1280,1200 --screenshot=" + png + " file://" +
                              html_path + " >" + (dir / "browser.log").string() + " 2>&1";
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  const Image img = read_png(png);
  ASSERT_EQ(img.width, 1280) << "no readable screenshot at " << png;
  ASSERT_EQ(img.height, 1200);

  // The page is not blank: the charts' white panels and strokes cover a good part of it.
  const int64_t total = static_cast<int64_t>(img.width) * img.height;
  const int64_t background = pixels_near(img, "#fafafa", 1);
  EXPECT_GT(total - background, total / 5) << "the page is mostly background";
  // Each run's curves are drawn in its colour (three charts per run, the raw curve faded): a
  // chart that failed to render would leave far fewer.
  const std::vector<std::string>& palette = chart_palette();
  for (size_t run = 0; run < runs.size(); ++run) {
    const int64_t n = pixels_near(img, palette[run], 24);
    EXPECT_GT(n, 1500) << "run " << runs[run].label << ": " << n << " pixels of " << palette[run];
  }
  // The axis text is drawn (dark grey tick labels).
  EXPECT_GT(pixels_near(img, "#444444", 40), 500);

  // The document as the browser parsed it holds every chart and curve: one <svg> per metric;
  // per run, a smoothed and a faded raw curve on the two train charts and one on the eval chart.
  const std::string dom_path = (dir / "dom.html").string();
  const std::string dump = browser + " --headless --no-sandbox --disable-gpu --user-data-dir=" +
                           (dir / "profile").string() + " --dump-dom file://" + html_path + " >" +
                           dom_path + " 2>/dev/null";
  ASSERT_EQ(std::system(dump.c_str()), 0) << dump;
  std::ifstream dom_file(dom_path);
  const std::string dom((std::istreambuf_iterator<char>(dom_file)),
                        std::istreambuf_iterator<char>());
  auto count = [&](const std::string& needle) {
    size_t n = 0;
    for (size_t at = dom.find(needle); at != std::string::npos; at = dom.find(needle, at + 1)) ++n;
    return n;
  };
  EXPECT_EQ(count("<svg"), 3u);
  EXPECT_EQ(count("<polyline"), 2u * (2 * 2 + 1));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace rlaif
