#include "common/bars.h"

#include "common/plot.h"
#include "core/atomic_file.h"

#include <fmt/format.h>
#include <unroll.h>

#include <algorithm>
#include <cmath>

namespace unroll::plot {

namespace {

const char* const kPalette[] = {"#4477aa", "#ee6677", "#228833", "#ccbb44", "#66ccee", "#aa3377", "#bbbbbb"};

// A "nice" tick step (1, 2 or 5 times a power of ten) giving about n ticks up to hi.
double nice_step(double hi, int n) {
  const double raw = hi / n, p = std::pow(10.0, std::floor(std::log10(raw))), f = raw / p;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}

std::string text(double x, double y, const std::string& s, const char* anchor = "middle", double size = 12,
                 const char* extra = "") {
  return fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"{}\" text-anchor=\"{}\" {}>{}</text>\n", x, y, size,
                     anchor, extra, xml_escape(s));
}

bool drawn(double v) { return std::isfinite(v) && v > 0; }

}  // namespace

std::string format_bytes(double b) {
  if (!std::isfinite(b)) return "?";
  const char* units[] = {"B", "KiB", "MiB", "GiB"};
  int u = 0;
  while (std::fabs(b) >= 1024 && u < 3) b /= 1024, ++u;
  return u == 0 ? fmt::format("{:.0f} B", b) : fmt::format("{:.4g} {}", b, units[u]);
}

BarChart& BarChart::add(std::string label, std::vector<double> values, std::string color) {
  UNROLL_CHECK(values.size() == categories.size(), "BarChart::add: series '{}' has {} values for {} categories", label,
               values.size(), categories.size());
  series.push_back({std::move(label), std::move(values), std::move(color)});
  return *this;
}

std::string BarChart::svg() const {
  UNROLL_CHECK(!categories.empty() && !series.empty(), "BarChart: no categories or no series");
  const size_t n = categories.size(), k = series.size();
  double hi = 0;
  for (size_t c = 0; c < n; ++c) {
    double sum = 0;
    for (const BarSeries& s : series)
      if (drawn(s.values[c])) {
        sum += s.values[c];
        hi = std::max(hi, s.values[c]);
      }
    if (stacked) hi = std::max(hi, sum);
  }
  if (hi <= 0) hi = 1;
  // Nice ticks in the unit the labels are written in (KiB ticks at 10, 20, ... KiB).
  double unit = 1;
  while (hi / unit >= 1024 && unit < 1024.0 * 1024 * 1024) unit *= 1024;
  const double step = nice_step(hi / unit, 5) * unit, top = std::ceil(hi / step - 1e-9) * step;

  double tick_w = 0;
  for (double v = 0; v <= top + step / 2; v += step) tick_w = std::max(tick_w, text_width(format_bytes(v), 11));
  const double L = 30 + tick_w + 10, R = 20, T = title.empty() ? 20 : 44, plot_h = height - 110 - T;
  const double plot_w = width - L - R, B = T + plot_h;
  // Legend: one row of swatches below the x label.
  const double legend_y = B + 62, H = legend_y + 24;

  std::string s = fmt::format("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{:.0f}\" height=\"{:.0f}\" "
                              "viewBox=\"0 0 {:.0f} {:.0f}\" font-family=\"Helvetica, Arial, sans-serif\">\n",
                              width, H, width, H);
  s += fmt::format("<rect width=\"{:.0f}\" height=\"{:.0f}\" fill=\"white\"/>\n", width, H);
  if (!title.empty()) s += text(width / 2, 26, title, "middle", 15, "font-weight=\"bold\"");
  for (double v = 0; v <= top + step / 2; v += step) {
    const double y = B - v / top * plot_h;
    s += fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#e4e4e4\"/>\n", L, y,
                     L + plot_w, y);
    s += text(L - 6, y + 4, format_bytes(v), "end", 11);
  }
  const double group = plot_w / static_cast<double>(n), gap = std::max(0.5, group * 0.15);
  const double bar_w = stacked ? group - gap : (group - gap) / static_cast<double>(k);
  int every = label_every;
  if (every <= 0) {
    double widest = 0;
    for (const std::string& c : categories) widest = std::max(widest, text_width(c, 11) + 6);
    every = std::max(1, static_cast<int>(std::ceil(widest / group)));
    if (every > 1 && every < 5) every = 5;
  }
  for (size_t c = 0; c < n; ++c) {
    const double x0 = L + group * static_cast<double>(c) + gap / 2;
    double base = 0;
    for (size_t j = 0; j < k; ++j) {
      const double v = series[j].values[c];
      if (!drawn(v)) continue;
      const std::string& col = series[j].color.empty() ? kPalette[j % std::size(kPalette)] : series[j].color;
      const double x = stacked ? x0 : x0 + bar_w * static_cast<double>(j);
      const double y1 = B - (base + v) / top * plot_h, h = v / top * plot_h;
      s += fmt::format("<rect x=\"{:.2f}\" y=\"{:.2f}\" width=\"{:.2f}\" height=\"{:.2f}\" fill=\"{}\"><title>{} {}: "
                       "{}</title></rect>\n",
                       x, y1, std::max(0.5, bar_w), h, col, xml_escape(categories[c]), xml_escape(series[j].label),
                       format_bytes(v));
      if (stacked) base += v;
    }
    if (c % static_cast<size_t>(every) == 0) s += text(x0 + (group - gap) / 2, B + 16, categories[c], "middle", 11);
  }
  s += fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#333\"/>\n", L, B, L + plot_w,
                   B);
  s += fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#333\"/>\n", L, T, L, B);
  if (!xlabel.empty()) s += text(L + plot_w / 2, B + 38, xlabel, "middle", 13);
  if (!ylabel.empty())
    s += fmt::format("<text x=\"14\" y=\"{:.1f}\" font-size=\"13\" text-anchor=\"middle\" "
                     "transform=\"rotate(-90 14 {:.1f})\">{}</text>\n",
                     T + plot_h / 2, T + plot_h / 2, xml_escape(ylabel));
  double lx = L;
  for (size_t j = 0; j < k; ++j) {
    const std::string& col = series[j].color.empty() ? kPalette[j % std::size(kPalette)] : series[j].color;
    s += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"12\" height=\"12\" fill=\"{}\"/>\n", lx, legend_y - 10,
                     col);
    s += text(lx + 17, legend_y, series[j].label, "start", 12);
    lx += 17 + text_width(series[j].label, 12) + 24;
  }
  return s + "</svg>\n";
}

void BarChart::save(const std::string& path) const { write_file_atomic("BarChart::save", path, svg()); }

}  // namespace unroll::plot
