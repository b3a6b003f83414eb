// Charts as standalone SVG text, for reports people look at rather than read: line charts of
// training curves (several runs overlaid, optionally smoothed) and bar charts with error bars.
//
// Axes run over "nice" ticks (1, 2 or 5 × 10^k apart) that cover the data. Smoothing is
// TensorBoard's: a debiased exponential moving average with weight w in [0, 1),
//   m_i = w·m_{i-1} + (1 - w)·y_i,  m_0 = 0,  shown value s_i = m_i / (1 - w^(i+1)),
// drawn over the raw curve, which stays visible, faded. Non-finite values are skipped.
//
// Each chart's root <svg> carries data-x-min/-max and data-y-min/-max (the axis range drawn), and
// each curve or bar its data-label, so that tests and scripts can check what was plotted.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace rlaif {

struct ChartSeries {
  std::string label;
  std::vector<std::pair<double, double>> points;  // (x, y), in x order
  int colour = -1;  // index into chart_palette(), so a run keeps its colour across charts;
                    // -1 = the series' position in the chart
};

struct ChartOptions {
  std::string title;
  std::string x_label;
  std::string y_label;
  int width = 560;
  int height = 320;
  double smoothing = 0.0;  // EMA weight in [0, 1); 0 draws the raw curves only
  bool legend = false;     // a legend even for a single series (several always get one)
};

// A line chart of every series on shared axes, with a legend when there are several (or when
// options.legend asks for one).
std::string line_chart_svg(const std::vector<ChartSeries>& series, const ChartOptions& options);

struct ChartBar {
  std::string label;
  double value = 0.0;
  double error = 0.0;  // half-length of the error bar (e.g. one standard error); 0 = none
};

// A vertical bar chart from 0 (or below, for negative values) with error bars.
std::string bar_chart_svg(const std::vector<ChartBar>& bars, const ChartOptions& options);

// The ticks that cover [lo, hi]: about `target` multiples of a step of 1, 2 or 5 × 10^k, from the
// largest multiple ≤ lo to the smallest ≥ hi.
std::vector<double> nice_ticks(double lo, double hi, int target);

// Text with &, <, >, " and ' escaped, for XML text and attribute values.
std::string xml_escape(const std::string& text);

// Colours of the series, in order (a palette that colour-blind readers can tell apart).
const std::vector<std::string>& chart_palette();

}  // namespace rlaif
