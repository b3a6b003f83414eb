#include "io/svg_chart.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>

namespace rlaif {
namespace {

// Space around the plot area for tick labels, axis titles, the title and the legend.
constexpr double kLeft = 64, kRight = 16, kTop = 30, kBottom = 46;

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

// A tick label with as many decimals as the tick step needs.
std::string tick_label(double v, double step) {
  char buf[32];
  if (std::fabs(v) < step * 1e-6) v = 0.0;
  if (step < 1e-3 || std::fabs(v) >= 1e6) {
    std::snprintf(buf, sizeof buf, "%.3g", v);
  } else {
    const int decimals = step >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(step) - 1e-9));
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  }
  return buf;
}

struct Range {
  double lo = std::numeric_limits<double>::infinity();
  double hi = -std::numeric_limits<double>::infinity();
  void add(double v) {
    if (!std::isfinite(v)) return;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  bool empty() const { return !(lo <= hi); }
};

// Maps data coordinates to the plot area of a chart.
struct Frame {
  double width, height;
  double x0, x1, y0, y1;  // axis ranges
  double px(double x) const { return kLeft + (x - x0) / (x1 - x0) * (width - kLeft - kRight); }
  double py(double y) const {
    return height - kBottom - (y - y0) / (y1 - y0) * (height - kTop - kBottom);
  }
};

// The ticks of an axis over [lo, hi], widened when the range is a single value.
std::vector<double> axis_ticks(double lo, double hi) {
  if (lo == hi) {
    const double pad = lo == 0 ? 1.0 : std::fabs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  return nice_ticks(lo, hi, 5);
}

void open_svg(std::ostringstream& svg, const ChartOptions& o, const Frame& f) {
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"" << o.width
      << "\" height=\"" << o.height << "\" viewBox=\"0 0 " << o.width << ' ' << o.height
      << "\" role=\"img\" aria-label=\"" << xml_escape(o.title) << "\" data-x-min=\"" << f.x0
      << "\" data-x-max=\"" << f.x1 << "\" data-y-min=\"" << f.y0 << "\" data-y-max=\"" << f.y1
      << "\" font-family=\"sans-serif\" font-size=\"11\">\n";
  svg << "<title>" << xml_escape(o.title) << "</title>\n";
  svg << "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n";
  svg << "<text x=\"" << kLeft << "\" y=\"18\" font-size=\"13\" font-weight=\"bold\">"
      << xml_escape(o.title) << "</text>\n";
}

// Grid lines, tick labels and axis titles; x ticks are drawn only when `x_ticks` is non-empty.
void draw_axes(std::ostringstream& svg, const ChartOptions& o, const Frame& f,
               const std::vector<double>& x_ticks, const std::vector<double>& y_ticks) {
  const double left = kLeft, right = f.width - kRight, top = kTop, bottom = f.height - kBottom;
  const double y_step = y_ticks.size() > 1 ? y_ticks[1] - y_ticks[0] : 1.0;
  for (double t : y_ticks) {
    const double y = f.py(t);
    svg << "<line x1=\"" << left << "\" y1=\"" << number(y) << "\" x2=\"" << right << "\" y2=\""
        << number(y) << "\" stroke=\"#e3e3e3\"/>\n";
    svg << "<text x=\"" << left - 6 << "\" y=\"" << number(y + 4)
        << "\" text-anchor=\"end\" fill=\"#444\">" << tick_label(t, y_step) << "</text>\n";
  }
  const double x_step = x_ticks.size() > 1 ? x_ticks[1] - x_ticks[0] : 1.0;
  for (double t : x_ticks) {
    const double x = f.px(t);
    svg << "<line x1=\"" << number(x) << "\" y1=\"" << top << "\" x2=\"" << number(x) << "\" y2=\""
        << bottom << "\" stroke=\"#f0f0f0\"/>\n";
    svg << "<text x=\"" << number(x) << "\" y=\"" << bottom + 15
        << "\" text-anchor=\"middle\" fill=\"#444\">" << tick_label(t, x_step) << "</text>\n";
  }
  svg << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << right - left << "\" height=\""
      << bottom - top << "\" fill=\"none\" stroke=\"#888\"/>\n";
  svg << "<text x=\"" << (left + right) / 2 << "\" y=\"" << f.height - 8
      << "\" text-anchor=\"middle\" fill=\"#222\">" << xml_escape(o.x_label) << "</text>\n";
  svg << "<text transform=\"translate(14," << (top + bottom) / 2
      << ") rotate(-90)\" text-anchor=\"middle\" fill=\"#222\">" << xml_escape(o.y_label)
      << "</text>\n";
}

void draw_legend(std::ostringstream& svg, const Frame& f, const std::vector<std::string>& labels,
                 const std::vector<std::string>& colours) {
  // A translucent panel keeps the names readable over the curves.
  svg << "<rect x=\"" << f.width - kRight - 154 << "\" y=\"" << kTop + 2
      << "\" width=\"150\" height=\"" << 14 * labels.size() + 6
      << "\" fill=\"#ffffff\" fill-opacity=\"0.8\"/>\n";
  double y = kTop + 8;
  for (size_t i = 0; i < labels.size(); ++i, y += 14) {
    const std::string& colour = colours[i];
    const double x = f.width - kRight - 150;
    svg << "<rect x=\"" << x << "\" y=\"" << y - 8 << "\" width=\"10\" height=\"10\" fill=\""
        << colour << "\"/>\n";
    svg << "<text x=\"" << x + 14 << "\" y=\"" << y + 1 << "\" fill=\"#222\">"
        << xml_escape(labels[i]) << "</text>\n";
  }
}

std::vector<std::pair<double, double>> finite_points(const ChartSeries& s) {
  std::vector<std::pair<double, double>> out;
  for (const auto& [x, y] : s.points) {
    if (std::isfinite(x) && std::isfinite(y)) out.emplace_back(x, y);
  }
  return out;
}

std::vector<std::pair<double, double>> smoothed(const std::vector<std::pair<double, double>>& in,
                                                double w) {
  std::vector<std::pair<double, double>> out;
  double m = 0.0, debias = 1.0;
  for (const auto& [x, y] : in) {
    m = w * m + (1.0 - w) * y;
    debias *= w;
    out.emplace_back(x, m / (1.0 - debias));
  }
  return out;
}

void polyline(std::ostringstream& svg, const Frame& f,
              const std::vector<std::pair<double, double>>& points, const std::string& label,
              const std::string& colour, double width, double opacity, const char* role) {
  svg << "<polyline class=\"" << role << "\" data-label=\"" << xml_escape(label)
      << "\" data-points=\"" << points.size() << "\" fill=\"none\" stroke=\"" << colour
      << "\" stroke-width=\"" << width << "\" stroke-opacity=\"" << opacity
      << "\" stroke-linejoin=\"round\" points=\"";
  for (size_t i = 0; i < points.size(); ++i) {
    svg << (i ? " " : "") << number(f.px(points[i].first)) << ',' << number(f.py(points[i].second));
  }
  svg << "\"/>\n";
  if (points.size() == 1) {  // a lone point would draw nothing as a line
    svg << "<circle cx=\"" << number(f.px(points[0].first)) << "\" cy=\""
        << number(f.py(points[0].second)) << "\" r=\"2.5\" fill=\"" << colour << "\"/>\n";
  }
}

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!(lo < hi) || !std::isfinite(lo) || !std::isfinite(hi)) return {lo};
  const double raw = (hi - lo) / std::max(1, target);
  const int exponent = static_cast<int>(std::floor(std::log10(raw)));
  // step = m·10^exponent. A tick n·step is formed as (n·m)·10^e or (n·m)/10^-e, both exact
  // in their last operation, so 3 × 0.2 prints as 0.6 and equals the literal 0.6.
  const double scale = std::pow(10.0, std::abs(exponent));
  auto value = [&](double multiple) { return exponent >= 0 ? multiple * scale : multiple / scale; };
  double m = 1.0;
  for (double candidate : {1.0, 2.0, 5.0, 10.0}) {
    m = candidate;
    if (value(m) >= raw) break;
  }
  const double step = value(m);
  const double first = std::floor(lo / step + 1e-9), last = std::ceil(hi / step - 1e-9);
  std::vector<double> ticks;
  for (double n = first; n <= last; n += 1.0) ticks.push_back(n == 0 ? 0.0 : value(n * m));
  return ticks;
}

std::string xml_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

const std::vector<std::string>& chart_palette() {
  // Okabe and Ito's palette for colour-blind readers, without its yellow and black.
  static const std::vector<std::string> palette = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                                   "#E69F00", "#56B4E9", "#000000"};
  return palette;
}

std::string line_chart_svg(const std::vector<ChartSeries>& series, const ChartOptions& o) {
  Range xr, yr;
  std::vector<std::vector<std::pair<double, double>>> clean;
  for (const ChartSeries& s : series) {
    clean.push_back(finite_points(s));
    for (const auto& [x, y] : clean.back()) xr.add(x), yr.add(y);
  }
  if (xr.empty()) xr.add(0), xr.add(1), yr.add(0), yr.add(1);
  const std::vector<double> x_ticks = axis_ticks(xr.lo, xr.hi);
  const std::vector<double> y_ticks = axis_ticks(yr.lo, yr.hi);
  const Frame f{static_cast<double>(o.width),
                static_cast<double>(o.height),
                x_ticks.front(),
                x_ticks.back(),
                y_ticks.front(),
                y_ticks.back()};
  std::ostringstream svg;
  open_svg(svg, o, f);
  draw_axes(svg, o, f, x_ticks, y_ticks);
  const bool smooth = o.smoothing > 0 && o.smoothing < 1;
  std::vector<std::string> colours;
  for (size_t i = 0; i < series.size(); ++i) {
    const size_t index = series[i].colour >= 0 ? static_cast<size_t>(series[i].colour) : i;
    colours.push_back(chart_palette()[index % chart_palette().size()]);
  }
  for (size_t i = 0; i < clean.size(); ++i) {
    const std::string& colour = colours[i];
    if (smooth) {
      polyline(svg, f, clean[i], series[i].label, colour, 1.0, 0.25, "raw");
      polyline(svg, f, smoothed(clean[i], o.smoothing), series[i].label, colour, 1.8, 1.0,
               "series");
    } else {
      polyline(svg, f, clean[i], series[i].label, colour, 1.6, 1.0, "series");
    }
  }
  if (series.size() > 1 || (o.legend && !series.empty())) {
    std::vector<std::string> labels;
    for (const ChartSeries& s : series) labels.push_back(s.label);
    draw_legend(svg, f, labels, colours);
  }
  svg << "</svg>\n";
  return svg.str();
}

std::string bar_chart_svg(const std::vector<ChartBar>& bars, const ChartOptions& o) {
  Range yr;
  yr.add(0.0);
  for (const ChartBar& b : bars) {
    yr.add(b.value + std::fabs(b.error));
    yr.add(b.value - std::fabs(b.error));
  }
  if (yr.hi <= 0 && yr.lo >= 0) yr.add(1.0);  // all zero: show the scale of a rate
  const std::vector<double> y_ticks = axis_ticks(yr.lo, yr.hi);
  const double n = static_cast<double>(std::max<size_t>(1, bars.size()));
  const Frame f{static_cast<double>(o.width),
                static_cast<double>(o.height),
                0.0,
                n,
                y_ticks.front(),
                y_ticks.back()};
  std::ostringstream svg;
  open_svg(svg, o, f);
  draw_axes(svg, o, f, {}, y_ticks);
  const double slot = f.px(1.0) - f.px(0.0);
  for (size_t i = 0; i < bars.size(); ++i) {
    const ChartBar& b = bars[i];
    const std::string& colour = chart_palette()[i % chart_palette().size()];
    const double centre = f.px(static_cast<double>(i) + 0.5);
    const double top = f.py(std::max(0.0, b.value)), base = f.py(std::min(0.0, b.value));
    svg << "<rect class=\"bar\" data-label=\"" << xml_escape(b.label) << "\" data-value=\""
        << b.value << "\" data-error=\"" << b.error << "\" x=\"" << number(centre - slot * 0.3)
        << "\" y=\"" << number(top) << "\" width=\"" << number(slot * 0.6) << "\" height=\""
        << number(base - top) << "\" fill=\"" << colour << "\"/>\n";
    if (b.error > 0) {
      const double hi = f.py(b.value + b.error), lo = f.py(b.value - b.error);
      svg << "<path class=\"error-bar\" d=\"M" << number(centre) << ',' << number(hi) << " V"
          << number(lo) << " M" << number(centre - 6) << ',' << number(hi) << " H"
          << number(centre + 6) << " M" << number(centre - 6) << ',' << number(lo) << " H"
          << number(centre + 6) << "\" stroke=\"#222\" stroke-width=\"1.2\" fill=\"none\"/>\n";
    }
    svg << "<text x=\"" << number(centre) << "\" y=\"" << f.height - kBottom + 15
        << "\" text-anchor=\"middle\" fill=\"#222\">" << xml_escape(b.label) << "</text>\n";
  }
  svg << "</svg>\n";
  return svg.str();
}

}  // namespace rlaif
