#pragma once
// Bar charts as SVG (examples/memory's bytes per time step): one bar group per category,
// series side by side or stacked, with a legend below the plot.
//
//   plot::BarChart c;
//   c.title = "bytes per step", c.xlabel = "step", c.ylabel = "bytes";
//   c.categories = {"0", "1", "2"};
//   c.add("saved for backward", {320, 320, 320});
//   c.save("out/bytes.svg");
#include <string>
#include <vector>

namespace unroll::plot {

struct BarSeries {
  std::string label;
  std::vector<double> values;  ///< one per category (NaN or negative: no bar)
  std::string color;           ///< empty: from the palette
};

struct BarChart {
  std::string title, xlabel, ylabel;
  std::vector<std::string> categories;  ///< the x tick labels, one per bar group
  std::vector<BarSeries> series;
  bool stacked = false;      ///< stack the series in each group (else side by side)
  int label_every = 0;       ///< write every n-th category label (0: automatic, to fit)
  double width = 900, height = 420;
  /// Adds a series; values.size() must equal categories.size().
  BarChart& add(std::string label, std::vector<double> values, std::string color = {});
  std::string svg() const;
  /// Writes the SVG atomically; throws unroll::Error on failure.
  void save(const std::string& path) const;
};

/// "12.3 KiB", "4 B", "1.5 MiB": bytes for axis ticks and tables.
std::string format_bytes(double bytes);

}  // namespace unroll::plot
