// SVG charts: parsed by libxml2 as XML (well-formed, labels escaped), axis ranges that cover the
// data on nice ticks, every plotted point inside the plot area, TensorBoard's debiased smoothing,
// and bars whose heights and error bars follow their values.
#include "io/svg_chart.h"

#include <gtest/gtest.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include <cmath>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace rlaif {
namespace {

// The parsed document; fails the test when the text is not well-formed XML.
struct Xml {
  explicit Xml(const std::string& text) {
    doc = xmlReadMemory(text.data(), static_cast<int>(text.size()), "chart.svg", nullptr,
                        XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
  }
  ~Xml() {
    if (doc != nullptr) xmlFreeDoc(doc);
  }
  xmlNode* root() const { return xmlDocGetRootElement(doc); }
  xmlDoc* doc = nullptr;
};

std::string attribute(xmlNode* node, const char* name) {
  xmlChar* value = xmlGetProp(node, reinterpret_cast<const xmlChar*>(name));
  if (value == nullptr) return "";
  std::string s(reinterpret_cast<const char*>(value));
  xmlFree(value);
  return s;
}

double number_attribute(xmlNode* node, const char* name) {
  return std::stod(attribute(node, name));
}

// Every element named `tag` under `node`, in document order.
void collect(xmlNode* node, const std::string& tag, std::vector<xmlNode*>* out) {
  for (xmlNode* n = node; n != nullptr; n = n->next) {
    if (n->type == XML_ELEMENT_NODE && tag == reinterpret_cast<const char*>(n->name)) {
      out->push_back(n);
    }
    collect(n->children, tag, out);
  }
}
std::vector<xmlNode*> elements(const Xml& xml, const std::string& tag) {
  std::vector<xmlNode*> out;
  collect(xml.root(), tag, &out);
  return out;
}

std::vector<std::pair<double, double>> polyline_points(xmlNode* node) {
  std::vector<std::pair<double, double>> points;
  std::istringstream in(attribute(node, "points"));
  std::string pair;
  while (in >> pair) {
    const size_t comma = pair.find(',');
    points.emplace_back(std::stod(pair.substr(0, comma)), std::stod(pair.substr(comma + 1)));
  }
  return points;
}

// The plot area: the frame rectangle drawn around it (the rect with a stroke and no fill).
struct Box {
  double x0, y0, x1, y1;
};
Box plot_area(const Xml& xml) {
  for (xmlNode* r : elements(xml, "rect")) {
    if (attribute(r, "fill") == "none") {
      const double x = number_attribute(r, "x"), y = number_attribute(r, "y");
      return {x, y, x + number_attribute(r, "width"), y + number_attribute(r, "height")};
    }
  }
  ADD_FAILURE() << "no plot frame";
  return {};
}

ChartOptions options(const std::string& title, const std::string& x_label = "",
                     const std::string& y_label = "", double smoothing = 0.0) {
  ChartOptions o;
  o.title = title;
  o.x_label = x_label;
  o.y_label = y_label;
  o.smoothing = smoothing;
  return o;
}

TEST(NiceTicks, CoverTheRangeWithRoundSteps) {
  EXPECT_EQ(nice_ticks(0.0, 1.0, 5), (std::vector<double>{0, 0.2, 0.4, 0.6, 0.8, 1.0}));
  EXPECT_EQ(nice_ticks(3.0, 97.0, 5), (std::vector<double>{0, 20, 40, 60, 80, 100}));
  const std::vector<double> t = nice_ticks(-0.013, 0.041, 5);
  EXPECT_LE(t.front(), -0.013);
  EXPECT_GE(t.back(), 0.041);
  const double step = t[1] - t[0];
  EXPECT_NEAR(step, 0.02, 1e-12);  // 0.01 would need 6 steps for a target of 5
  EXPECT_EQ(t.size(), 5u);
  for (size_t i = 1; i < t.size(); ++i) EXPECT_NEAR(t[i] - t[i - 1], step, 1e-12);
}

TEST(LineChart, WellFormedRangesCoverTheDataAndPointsStayInside) {
  ChartSeries a{"run <a> & \"b\"", {}}, b{"second", {}};
  for (int step = 1; step <= 50; ++step) {
    a.points.emplace_back(step, 4.0 * std::exp(-step / 15.0) + 0.3);
    b.points.emplace_back(step * 2, 3.0 / step);
  }
  b.points.emplace_back(101, std::nan(""));  // skipped, not drawn
  const std::string svg = line_chart_svg({a, b}, options("loss <train>", "step", "loss"));
  Xml xml(svg);
  ASSERT_NE(xml.doc, nullptr) << "not well-formed XML:\n" << svg;
  xmlNode* root = xml.root();
  EXPECT_STREQ(reinterpret_cast<const char*>(root->name), "svg");
  // The axis ranges cover every finite value.
  EXPECT_LE(number_attribute(root, "data-x-min"), 1.0);
  EXPECT_GE(number_attribute(root, "data-x-max"), 100.0);
  EXPECT_LE(number_attribute(root, "data-y-min"), 3.0 / 50);
  EXPECT_GE(number_attribute(root, "data-y-max"), 4.0 * std::exp(-1 / 15.0) + 0.3);
  // One curve per series, with its escaped label restored by the parser, every point inside.
  const std::vector<xmlNode*> curves = elements(xml, "polyline");
  ASSERT_EQ(curves.size(), 2u);
  EXPECT_EQ(attribute(curves[0], "data-label"), "run <a> & \"b\"");
  EXPECT_EQ(attribute(curves[1], "data-points"), "50");
  const Box box = plot_area(xml);
  for (xmlNode* c : curves) {
    const auto points = polyline_points(c);
    EXPECT_EQ(points.size(), std::stoul(attribute(c, "data-points")));
    for (const auto& [x, y] : points) {
      EXPECT_GE(x, box.x0 - 1e-6);
      EXPECT_LE(x, box.x1 + 1e-6);
      EXPECT_GE(y, box.y0 - 1e-6);
      EXPECT_LE(y, box.y1 + 1e-6);
    }
    // Steps increase to the right; a falling loss is drawn going down (larger SVG y).
    EXPECT_LT(points.front().first, points.back().first);
    EXPECT_LT(points.front().second, points.back().second);
  }
  // A legend names both runs.
  EXPECT_NE(svg.find("&gt;"), std::string::npos);
  EXPECT_NE(svg.find(">second</text>"), std::string::npos);
}

TEST(LineChart, ASeriesKeepsItsColourAndALoneSeriesCanHaveALegend) {
  // The third run's curve, alone in a chart, is drawn in the third colour and named.
  ChartSeries s{"third run", {{0, 1}, {1, 2}}, 2};
  ChartOptions o = options("t", "step", "y");
  o.legend = true;
  const std::string svg = line_chart_svg({s}, o);
  Xml xml(svg);
  ASSERT_NE(xml.doc, nullptr) << svg;
  const std::vector<xmlNode*> curves = elements(xml, "polyline");
  ASSERT_EQ(curves.size(), 1u);
  EXPECT_EQ(attribute(curves[0], "stroke"), chart_palette()[2]);
  EXPECT_NE(svg.find(">third run</text>"), std::string::npos);
  // Without the option a lone series gets no legend, and position picks the colour.
  const std::string plain =
      line_chart_svg({ChartSeries{"only", {{0, 1}, {1, 2}}}}, options("t", "", ""));
  EXPECT_EQ(plain.find(">only</text>"), std::string::npos);
  Xml plain_xml(plain);
  ASSERT_NE(plain_xml.doc, nullptr);
  EXPECT_EQ(attribute(elements(plain_xml, "polyline")[0], "stroke"), chart_palette()[0]);
}

TEST(LineChart, SmoothingIsTensorBoardsDebiasedAverage) {
  // y = 1, 0, 1, 0 with weight 0.5: m = 0.5, 0.25, 0.625, 0.3125 over 1 - 0.5^(i+1) gives
  // 1, 1/3, 5/7, 1/3.
  ChartSeries s{"s", {{0, 1}, {1, 0}, {2, 1}, {3, 0}}};
  Xml xml(line_chart_svg({s}, options("t", "", "", 0.5)));
  ASSERT_NE(xml.doc, nullptr);
  std::vector<xmlNode*> raw, smooth;
  for (xmlNode* c : elements(xml, "polyline")) {
    (attribute(c, "class") == "raw" ? raw : smooth).push_back(c);
  }
  ASSERT_EQ(raw.size(), 1u);
  ASSERT_EQ(smooth.size(), 1u);
  // Map SVG y back to data through the raw curve, whose values are known (1 and 0).
  const auto r = polyline_points(raw[0]), m = polyline_points(smooth[0]);
  const double y_at_1 = r[0].second, y_at_0 = r[1].second;
  const std::vector<double> want = {1.0, 1.0 / 3, 5.0 / 7, 1.0 / 3};
  for (size_t i = 0; i < 4; ++i) {
    const double value = (m[i].second - y_at_0) / (y_at_1 - y_at_0);
    EXPECT_NEAR(value, want[i], 0.01) << i;  // coordinates are written to 0.01 px
  }
}

TEST(BarChart, HeightsAndErrorBarsFollowTheValues) {
  const std::vector<ChartBar> bars = {
      {"SFT strong", 0.62, 0.03}, {"SFT weak", 0.31, 0.02}, {"weak + DPO", 0.45, 0.0}};
  const std::string svg = bar_chart_svg(bars, options("win rate", "", "win rate"));
  Xml xml(svg);
  ASSERT_NE(xml.doc, nullptr) << svg;
  std::vector<xmlNode*> rects;
  for (xmlNode* r : elements(xml, "rect")) {
    if (attribute(r, "class") == "bar") rects.push_back(r);
  }
  ASSERT_EQ(rects.size(), 3u);
  EXPECT_EQ(elements(xml, "path").size(), 2u);  // no error bar where the error is 0
  EXPECT_LE(number_attribute(xml.root(), "data-y-min"), 0.0);
  EXPECT_GE(number_attribute(xml.root(), "data-y-max"), 0.65);
  // Heights are proportional to the values (the bars all start at 0).
  const double h0 = number_attribute(rects[0], "height"), h1 = number_attribute(rects[1], "height");
  EXPECT_NEAR(h0 / h1, 0.62 / 0.31, 0.01);
  EXPECT_EQ(attribute(rects[2], "data-label"), "weak + DPO");
}

TEST(LineChart, NoDataStillDrawsAnEmptyChart) {
  Xml xml(line_chart_svg({{"empty", {}}}, options("nothing yet")));
  ASSERT_NE(xml.doc, nullptr);
  EXPECT_EQ(elements(xml, "polyline").size(), 1u);
}

}  // namespace
}  // namespace rlaif
