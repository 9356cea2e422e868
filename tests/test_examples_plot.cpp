// The SVG writer of the examples (examples/common/plot.cpp): every text element lies inside
// the canvas (the canvas grows to fit titles, tick labels, line-end labels and legends), each
// legend entry shows the style its series is drawn with, lines get distinct styles, a
// reference line is drawn under the others, a run that goes NaN or off the axis is marked,
// and log axes get readable ticks.
#include <doctest/doctest.h>

#include "common/plot.h"

#include <cmath>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

namespace {

struct TextBox {
  std::string content;
  double x0, x1, y0, y1;
};

std::string unescape(std::string s) {
  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
           {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&amp;", "&"}}) {
    for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) s.replace(at, from.size(), to);
  }
  return s;
}

double attr(const std::string& tag, const std::string& name) {
  const std::regex re(" " + name + "=\"([-0-9.e+]+)\"");
  std::smatch m;
  return std::regex_search(tag, m, re) ? std::stod(m[1]) : NAN;
}

std::string sattr(const std::string& tag, const std::string& name) {
  const std::regex re(" " + name + "=\"([^\"]*)\"");
  std::smatch m;
  return std::regex_search(tag, m, re) ? std::string(m[1]) : std::string();
}

// The extent of every <text> element, from its position, anchor, size, rotation and the
// writer's own width estimate.
std::vector<TextBox> text_boxes(const std::string& svg) {
  std::vector<TextBox> boxes;
  const std::regex re("<text([^>]*)>([^<]*)</text>");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), re); it != std::sregex_iterator(); ++it) {
    const std::string tag = (*it)[1], content = unescape((*it)[2]);
    const double x = attr(tag, "x"), y = attr(tag, "y"), size = attr(tag, "font-size");
    const std::string anchor = sattr(tag, "text-anchor");
    const double w = unroll::plot::text_width(content, size);
    double lo = anchor == "end" ? -w : anchor == "middle" ? -w / 2 : 0, hi = lo + w;
    if (tag.find("rotate(-90") != std::string::npos)  // reads upwards: the width runs along y
      boxes.push_back({content, x - size, x + 0.3 * size, y - hi, y - lo});
    else
      boxes.push_back({content, x + lo, x + hi, y - size, y + 0.3 * size});
  }
  return boxes;
}

void check_text_inside(const std::string& svg) {
  const double W = attr(svg.substr(0, svg.find('>')), "width"), H = attr(svg.substr(0, svg.find('>')), "height");
  REQUIRE(W > 0);
  REQUIRE(H > 0);
  const std::vector<TextBox> boxes = text_boxes(svg);
  CHECK(boxes.size() > 5);
  for (const TextBox& b : boxes) {
    INFO("text '" << b.content << "' spans x " << b.x0 << ".." << b.x1 << ", y " << b.y0 << ".." << b.y1
                  << " on a canvas of " << W << " x " << H);
    CHECK(b.x0 >= 0);
    CHECK(b.x1 <= W);
    CHECK(b.y0 >= 0);
    CHECK(b.y1 <= H);
  }
}

// data-series -> "stroke|dash|marker" of the <g> elements of the given class.
std::map<std::string, std::string> styles(const std::string& svg, const std::string& cls) {
  std::map<std::string, std::string> out;
  const std::regex re("<g class=\"" + cls + "\"([^>]*)>");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), re); it != std::sregex_iterator(); ++it) {
    const std::string tag = (*it)[1];
    out[sattr(tag, "data-series")] = sattr(tag, "data-stroke") + "|" + sattr(tag, "data-dash") + "|" + sattr(tag, "data-marker");
  }
  return out;
}

unroll::plot::LinePlot demo_plot() {
  unroll::plot::LinePlot p;
  p.title = "a title much wider than the nominal canvas of this plot, so that the writer has to widen the canvas for it";
  p.xlabel = "training step";
  p.ylabel = "MSE";
  p.log_y = true;
  p.width = 400;
  std::vector<double> x, flat, falling, diverging;
  for (int i = 0; i < 100; ++i) {
    x.push_back(i);
    flat.push_back(0.17);
    falling.push_back(0.2 * std::exp(-0.05 * i));
    diverging.push_back(i < 40 ? 0.5 * std::exp(0.5 * i) : NAN);
  }
  p.add("tanh RNN with a long label that reaches beyond the right edge", x, flat);
  p.add("LSTM (lies exactly on the tanh RNN)", x, flat);
  p.add("GRU", x, falling);
  p.add("SGD without clipping", x, diverging);
  p.add_reference("baseline 1/6", 0, 99, 1.0 / 6.0);
  p.y_max = 100;
  return p;
}

}  // namespace

TEST_CASE("plot: every text lies inside the canvas; the canvas grows for a long title and labels") {
  const unroll::plot::LinePlot p = demo_plot();
  const std::string svg = p.svg();
  check_text_inside(svg);
  CHECK(attr(svg.substr(0, svg.find('>')), "width") > p.width);  // widened for the title
  // Every series is labelled at its line's end and in the legend.
  for (const unroll::plot::Series& se : p.series) {
    const std::string label = se.label;
    CHECK(svg.find("class=\"end-label\" fill=\"") != std::string::npos);
    size_t count = 0;
    for (const TextBox& b : text_boxes(svg)) count += b.content == label;
    CHECK_MESSAGE(count == 2, label);  // line end and legend
  }
}

TEST_CASE("plot: the legend shows each series with the style it is drawn with, and the styles differ") {
  const unroll::plot::LinePlot p = demo_plot();
  const std::string svg = p.svg();
  const auto drawn = styles(svg, "series"), legend = styles(svg, "legend-entry");
  REQUIRE(drawn.size() == p.series.size());
  CHECK(legend == drawn);
  // The drawn polylines and the legend's line sample carry the same stroke and dash.
  const std::regex group("<g class=\"(series|legend-entry)\" data-series=\"(\\d+)\" data-stroke=\"([^\"]*)\" data-dash=\"([^\"]*)\"[^>]*>([\\s\\S]*?)</g>");
  int groups = 0;
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), group); it != std::sregex_iterator(); ++it, ++groups) {
    const std::string body = (*it)[5], stroke = (*it)[3], dash = (*it)[4];
    const std::string kind = (*it)[1] == "series" ? "<polyline" : "<line";
    const size_t at = body.find(kind);
    REQUIRE(at != std::string::npos);
    const std::string line = body.substr(at, body.find('>', at) - at);
    CHECK(sattr(line, "stroke") == stroke);
    CHECK(sattr(line, "stroke-dasharray") == (dash == "none" ? "" : dash));
  }
  CHECK(groups == 2 * static_cast<int>(p.series.size()));
  // Two lines lying on each other (tanh RNN, LSTM) still differ in colour, dash and marker.
  std::set<std::string> distinct;
  for (const auto& [k, st] : drawn) distinct.insert(st);
  CHECK(distinct.size() == drawn.size());
  CHECK(drawn.at("0").substr(drawn.at("0").find('|')) != drawn.at("1").substr(drawn.at("1").find('|')));
  // The reference line is drawn first, under the models.
  CHECK(svg.find("<g class=\"series\" data-series=\"4\"") < svg.find("<g class=\"series\" data-series=\"0\""));
}

TEST_CASE("plot: a diverging run is clipped to the axis and its NaN marked, without flattening the others") {
  const std::string svg = demo_plot().svg();
  CHECK(svg.find("SGD without clipping: off scale from x = ") != std::string::npos);
  CHECK(svg.find("SGD without clipping: NaN at x = 40") != std::string::npos);
  // y_max = 100: the top tick is 100, not the run's 1e8.
  bool top_100 = false, beyond = false;
  for (const TextBox& b : text_boxes(svg)) top_100 = top_100 || b.content == "100", beyond = beyond || b.content == "1e8";
  CHECK(top_100);
  CHECK_FALSE(beyond);
}

TEST_CASE("plot: log-axis ticks at readable steps") {
  using unroll::plot::log_ticks;
  CHECK(log_ticks(-2, 0) == std::vector<double>{0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1});
  const std::vector<double> decades = log_ticks(-4, 2);
  CHECK(decades.size() == 7);
  for (size_t i = 1; i < decades.size(); ++i) CHECK(decades[i] / decades[i - 1] == doctest::Approx(10));
  const std::vector<double> wide = log_ticks(-47, 10);  // 57 decades: every 10
  CHECK(wide.size() <= 9);
  CHECK(wide.front() == doctest::Approx(1e-40));
  CHECK(wide.back() == doctest::Approx(1e10));
  CHECK(unroll::plot::log_tick_label(0.05) == "0.05");
  CHECK(unroll::plot::log_tick_label(1e-20) == "1e-20");
  CHECK(unroll::plot::log_tick_label(1e10) == "1e10");
  CHECK(unroll::plot::text_width("년월일", 10) > unroll::plot::text_width("abc", 10));
}

TEST_CASE("plot: a heatmap has a labelled colour bar with ticks, points over the map, text inside") {
  unroll::plot::Heatmap h;
  h.title = "a heatmap title that is longer than the cells and the colour bar together";
  h.xlabel = "column";
  h.ylabel = "row";
  h.colorbar_label = "P(class 1)";
  h.values = {{0.0, 0.5}, {0.25, 1.0}};
  h.row_labels = {"first row", "second"};
  h.col_labels = {"a", "b"};
  h.points = {{0.5, 0.5, 0}, {1.5, 1.5, 1}};
  h.point_labels = {"class 0", "class 1"};
  const std::string svg = h.svg();
  check_text_inside(svg);
  std::set<std::string> texts;
  for (const TextBox& b : text_boxes(svg)) texts.insert(b.content);
  for (const char* t : {"P(class 1)", "0", "0.2", "0.4", "0.6", "0.8", "1", "class 0", "class 1"}) CHECK_MESSAGE(texts.count(t) == 1, t);
  CHECK(svg.find("<circle") != std::string::npos);  // class 0 points
  for (const std::string& t : texts) CHECK_MESSAGE(t.rfind("-0", 0) != 0, t);  // no "-0" tick
}

TEST_CASE("plot: a line on the decade that would be a log axis' edge is not hidden by the frame") {
  unroll::plot::LinePlot p;
  p.title = "gradient norm";
  p.xlabel = "step";
  p.ylabel = "norm";
  p.log_y = true;
  p.add("norm", {0, 1, 2}, {20, 300, 5000});
  p.add_reference("max norm 1", 0, 2, 1.0);  // exactly on 10^0
  std::set<std::string> ticks;
  for (const TextBox& b : text_boxes(p.svg())) ticks.insert(b.content);
  CHECK(ticks.count("0.1") == 1);  // the axis goes one decade below the reference line
  CHECK(ticks.count("10000") == 1);  // the top stays at the decade above 5000, which is not on it
  CHECK(ticks.count("1e5") == 0);
}
