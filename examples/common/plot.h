#pragma once
// Figures as SVG files, readable in any browser: line plots (linear or log y axis) and
// heatmaps with a colour scale. Small on purpose: every example draws with these two.
//
//   LinePlot p;
//   p.title = "loss", p.xlabel = "step", p.ylabel = "MSE", p.log_y = true;
//   p.add("LSTM", steps, losses);
//   p.save("out/loss.svg");
#include <cmath>
#include <string>
#include <vector>

namespace unroll::plot {

/// One line. Its style is automatic unless set: a colour from the palette, a dash pattern
/// (solid first; when any series of the plot is `dashed`, dashing means that and the other
/// series stay solid) and a marker shape, all distinct per series, so that lines lying on
/// top of each other can still be told apart.
struct Series {
  std::string label;
  std::vector<double> x, y;
  std::string color;  ///< empty: taken from the palette (grey for a reference line)
  bool dashed = false;
  bool markers = false;  ///< a marker at every point (for sparse data); else about 8 along the line
  bool reference = false;  ///< a reference line (a baseline): drawn first, under the others, no markers
  std::string dash;  ///< an explicit stroke-dasharray ("none": solid); empty: automatic
};

/// A shaded range of x with a label, drawn behind the series (e.g. where an event is).
struct Band {
  double x0 = 0, x1 = 0;
  std::string label;
  std::string color = "#999999";
  bool label_below = false;  ///< label at the bottom of the plot instead of the top
};

/// A line plot. The canvas grows to fit its text (title, tick labels, line-end labels, the
/// legend below the plot), so nothing is cut. A y value that is NaN or Inf breaks the line;
/// where a series first turns non-finite, a red cross on the top edge says so. Values past
/// y_max / y_min (when set) are drawn on the edge, with a triangle where the series leaves
/// the axis, so that one diverging run does not flatten the others.
struct LinePlot {
  std::string title, xlabel, ylabel;
  std::vector<Band> bands;
  bool log_y = false;  ///< log10 y axis; non-positive values are skipped
  double width = 720, height = 440;  ///< the nominal canvas; it grows if its text needs more room
  double y_min = NAN, y_max = NAN;   ///< axis limits (NaN: from the data)
  bool end_labels = true;  ///< each series' label at the right end of its line
  std::vector<Series> series;
  /// Adds a series; x and y must have the same length.
  LinePlot& add(std::string label, std::vector<double> x, std::vector<double> y, bool dashed = false);
  /// Adds a series with x = 0, 1, 2, ...
  LinePlot& add(std::string label, std::vector<double> y, bool dashed = false);
  /// Adds a horizontal reference line at y over [x0, x1] (a baseline), drawn under the series.
  LinePlot& add_reference(std::string label, double x0, double x1, double y);
  std::string svg() const;
  /// Writes the SVG atomically (temporary file, then rename); throws unroll::Error on failure.
  void save(const std::string& path) const;
};

/// A point drawn over a heatmap, in cell units: col 0.5 is the centre of the first column.
struct HeatPoint {
  double col = 0, row = 0;
  int group = 0;  ///< picks the marker (0: white circle, 1: black triangle, ...)
};

struct Heatmap {
  std::string title, xlabel, ylabel;
  std::string colorbar_label;  ///< what the colour means (drawn beside the colour bar)
  std::vector<std::vector<double>> values;  ///< values[row][col]
  std::vector<std::string> row_labels, col_labels;  ///< optional tick labels
  double vmin = 0, vmax = 1;  ///< colour scale range (auto_range() sets them from the data)
  bool annotate = false;      ///< print each value in its cell
  std::vector<HeatPoint> points;            ///< drawn over the cells
  std::vector<std::string> point_labels;    ///< legend text per group
  void auto_range();
  std::string svg() const;
  void save(const std::string& path) const;
};

/// The width in pixels of s in the figures' font (Helvetica/Arial) at font size `size`,
/// estimated per character (a wide CJK syllable counts as a full em); an upper estimate.
double text_width(const std::string& s, double size);
/// A y tick label on a log axis: 0.01, 0.5, 1000 inside [1e-3, 1e4], else 1e-5, 2e+6.
std::string log_tick_label(double value);
/// The ticks of a log10 axis spanning [10^lo, 10^hi] (lo, hi integers): every decade, or
/// 1-2-5 in each decade when there are at most two, or every 2/5/10/20/... decades when there
/// are many; the values themselves (not exponents).
std::vector<double> log_ticks(int lo, int hi);

/// s with <, >, & and " escaped, for SVG text and attribute values.
std::string xml_escape(const std::string& s);
/// Creates a directory and its parents if missing.
void make_dirs(const std::string& path);

}  // namespace unroll::plot
