#pragma once
// Figures as SVG files, readable in any browser: line plots (linear or log y axis) and
// heatmaps with a colour scale. Small on purpose: every example draws with these two.
//
//   LinePlot p;
//   p.title = "loss", p.xlabel = "step", p.ylabel = "MSE", p.log_y = true;
//   p.add("LSTM", steps, losses);
//   p.save("out/loss.svg");
#include <string>
#include <vector>

namespace unroll::plot {

struct Series {
  std::string label;
  std::vector<double> x, y;
  std::string color;  ///< empty: taken from the palette
  bool dashed = false;
  bool markers = false;  ///< draw a dot at every point (for sparse data)
};

/// A shaded range of x with a label, drawn behind the series (e.g. where an event is).
struct Band {
  double x0 = 0, x1 = 0;
  std::string label;
  std::string color = "#999999";
  bool label_below = false;  ///< label at the bottom of the plot instead of the top
};

struct LinePlot {
  std::string title, xlabel, ylabel;
  std::vector<Band> bands;
  bool log_y = false;  ///< log10 y axis; non-positive values are skipped
  double width = 720, height = 440;
  std::vector<Series> series;
  /// Adds a series; x and y must have the same length.
  LinePlot& add(std::string label, std::vector<double> x, std::vector<double> y, bool dashed = false);
  /// Adds a series with x = 0, 1, 2, ...
  LinePlot& add(std::string label, std::vector<double> y, bool dashed = false);
  std::string svg() const;
  /// Writes the SVG atomically (temporary file, then rename); throws unroll::Error on failure.
  void save(const std::string& path) const;
};

struct Heatmap {
  std::string title, xlabel, ylabel;
  std::vector<std::vector<double>> values;  ///< values[row][col]
  std::vector<std::string> row_labels, col_labels;  ///< optional tick labels
  double vmin = 0, vmax = 1;  ///< colour scale range (auto_range() sets them from the data)
  bool annotate = false;      ///< print each value in its cell
  void auto_range();
  std::string svg() const;
  void save(const std::string& path) const;
};

/// s with <, >, & and " escaped, for SVG text and attribute values.
std::string xml_escape(const std::string& s);
/// Writes text to path atomically (shared by the figure writers and the examples).
void write_file_atomic(const std::string& path, const std::string& text);
/// Creates a directory and its parents if missing.
void make_dirs(const std::string& path);

}  // namespace unroll::plot
