#include "common/plot.h"

#include "core/error.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

namespace unroll::plot {

std::string xml_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '&': o += "&amp;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

namespace {

const char* kPalette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"};


// "Nice" tick positions covering [lo, hi]: steps of 1, 2 or 5 times a power of ten.
std::vector<double> nice_ticks(double lo, double hi, int target = 6) {
  if (!(hi > lo)) hi = lo + 1;
  const double raw = (hi - lo) / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (raw <= m * mag) {
      step = m * mag;
      break;
    }
  std::vector<double> t;
  for (double v = std::ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) t.push_back(std::abs(v) < step * 1e-9 ? 0 : v);
  return t;
}

std::string fmt_tick(double v) {
  char buf[32];
  if (v != 0 && (std::abs(v) >= 1e5 || std::abs(v) < 1e-3)) std::snprintf(buf, sizeof buf, "%.0e", v);
  else std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

std::string text(double x, double y, const std::string& s, const char* anchor = "middle", int size = 12,
                 const char* extra = "") {
  char buf[160];
  std::snprintf(buf, sizeof buf, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"%d\" text-anchor=\"%s\" %s>", x, y, size,
                anchor, extra);
  return std::string(buf) + xml_escape(s) + "</text>\n";
}

std::string header(double w, double h) {
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
                "font-family=\"Helvetica, Arial, sans-serif\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
                w, h, w, h);
  return buf;
}

}  // namespace

LinePlot& LinePlot::add(std::string label, std::vector<double> x, std::vector<double> y, bool dashed) {
  UNROLL_CHECK(x.size() == y.size(), "LinePlot::add: '{}' has {} x values and {} y values", label, x.size(), y.size());
  series.push_back({std::move(label), std::move(x), std::move(y), "", dashed, false});
  return *this;
}

LinePlot& LinePlot::add(std::string label, std::vector<double> y, bool dashed) {
  std::vector<double> x(y.size());
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<double>(i);
  return add(std::move(label), std::move(x), std::move(y), dashed);
}

std::string LinePlot::svg() const {
  const double left = 70, right = 20 + (series.size() > 1 ? 150 : 0), top = 40, bottom = 55;
  const double pw = width - left - right, ph = height - top - bottom;
  auto usable = [&](double y) { return std::isfinite(y) && (!log_y || y > 0); };
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (const Series& s : series)
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!usable(s.y[i]) || !std::isfinite(s.x[i])) continue;
      const double y = log_y ? std::log10(s.y[i]) : s.y[i];
      x0 = std::min(x0, s.x[i]), x1 = std::max(x1, s.x[i]), y0 = std::min(y0, y), y1 = std::max(y1, y);
    }
  if (!std::isfinite(x0)) x0 = 0, x1 = 1, y0 = 0, y1 = 1;
  if (x1 == x0) x1 = x0 + 1;
  if (log_y) {
    y0 = std::floor(y0), y1 = std::ceil(y1);
    if (y1 == y0) y1 = y0 + 1;
  } else {
    const double pad = (y1 - y0) * 0.05 + (y1 == y0 ? 1 : 0);
    y0 -= pad, y1 += pad;
  }
  auto px = [&](double x) { return left + (x - x0) / (x1 - x0) * pw; };
  auto py = [&](double y) { return top + ph - ((log_y ? std::log10(y) : y) - y0) / (y1 - y0) * ph; };
  auto py_raw = [&](double t) { return top + ph - (t - y0) / (y1 - y0) * ph; };

  std::string s = header(width, height);
  s += text(width / 2, 24, title, "middle", 15, "font-weight=\"bold\"");
  char buf[256];
  // grid and ticks
  for (double t : nice_ticks(x0, x1)) {
    std::snprintf(buf, sizeof buf, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>\n", px(t),
                  top, px(t), top + ph);
    s += buf;
    s += text(px(t), top + ph + 16, fmt_tick(t));
  }
  std::vector<double> yt;
  if (log_y) {
    const int span = static_cast<int>(y1 - y0);
    const int every = std::max(1, span / 8);
    for (double e = y0; e <= y1; e += every) yt.push_back(e);
  } else {
    yt = nice_ticks(y0, y1);
  }
  for (double t : yt) {
    std::snprintf(buf, sizeof buf, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>\n", left,
                  py_raw(t), left + pw, py_raw(t));
    s += buf;
    std::string label = log_y ? "1e" + std::to_string(static_cast<int>(t)) : fmt_tick(t);
    s += text(left - 6, py_raw(t) + 4, label, "end");
  }
  std::snprintf(buf, sizeof buf, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#333\"/>\n",
                left, top, pw, ph);
  s += buf;
  for (const Band& b : bands) {
    const double bx0 = std::clamp(px(b.x0), left, left + pw), bx1 = std::clamp(px(b.x1), left, left + pw);
    if (!(bx1 > bx0)) continue;
    std::snprintf(buf, sizeof buf, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\" fill-opacity=\"0.18\"/>\n",
                  bx0, top, bx1 - bx0, ph, b.color.c_str());
    s += buf;
    const std::string fill = "fill=\"" + b.color + "\" font-weight=\"bold\"";
    s += text((bx0 + bx1) / 2, b.label_below ? top + ph - 6 : top + 15, b.label, "middle", 13, fill.c_str());
  }
  s += text(left + pw / 2, height - 14, xlabel, "middle", 13);
  std::snprintf(buf, sizeof buf, "transform=\"rotate(-90 %.1f %.1f)\"", 18.0, top + ph / 2);
  s += text(18, top + ph / 2, ylabel + (log_y ? " (log scale)" : ""), "middle", 13, buf);
  // series
  for (size_t k = 0; k < series.size(); ++k) {
    const Series& se = series[k];
    const std::string color = se.color.empty() ? kPalette[k % 8] : se.color;
    std::string pts;
    for (size_t i = 0; i < se.x.size(); ++i) {
      if (!usable(se.y[i])) continue;
      std::snprintf(buf, sizeof buf, "%.1f,%.1f ", px(se.x[i]), std::clamp(py(se.y[i]), top, top + ph));
      pts += buf;
      if (se.markers) {
        char dot[160];
        std::snprintf(dot, sizeof dot, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>\n", px(se.x[i]),
                      std::clamp(py(se.y[i]), top, top + ph), color.c_str());
        s += dot;
      }
    }
    s += "<polyline fill=\"none\" stroke=\"" + color + "\" stroke-width=\"1.8\"" +
         (se.dashed ? " stroke-dasharray=\"6,4\"" : "") + " points=\"" + pts + "\"/>\n";
    if (series.size() > 1) {
      const double ly = top + 10 + 20 * static_cast<double>(k);
      std::snprintf(buf, sizeof buf, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"3\"%s/>\n",
                    left + pw + 12, ly, left + pw + 36, ly, color.c_str(), se.dashed ? " stroke-dasharray=\"6,4\"" : "");
      s += buf;
      s += text(left + pw + 42, ly + 4, se.label, "start");
    }
  }
  return s + "</svg>\n";
}

void LinePlot::save(const std::string& path) const { write_file_atomic(path, svg()); }

void Heatmap::auto_range() {
  vmin = INFINITY, vmax = -INFINITY;
  for (const auto& row : values)
    for (double v : row)
      if (std::isfinite(v)) vmin = std::min(vmin, v), vmax = std::max(vmax, v);
  if (!std::isfinite(vmin)) vmin = 0, vmax = 1;
  if (vmax == vmin) vmax = vmin + 1;
}

// A perceptual-ish sequential scale from dark blue through teal to yellow.
static std::string colour(double t) {
  t = std::clamp(std::isfinite(t) ? t : 0.0, 0.0, 1.0);
  const double stops[5][3] = {{68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}};
  const double f = t * 4;
  const int i = std::min(3, static_cast<int>(f));
  const double u = f - i;
  char buf[16];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", static_cast<int>(stops[i][0] + u * (stops[i + 1][0] - stops[i][0])),
                static_cast<int>(stops[i][1] + u * (stops[i + 1][1] - stops[i][1])),
                static_cast<int>(stops[i][2] + u * (stops[i + 1][2] - stops[i][2])));
  return buf;
}

std::string Heatmap::svg() const {
  const size_t rows = values.size(), cols = rows ? values[0].size() : 0;
  for (const auto& r : values)
    UNROLL_CHECK(r.size() == cols, "Heatmap: rows have different lengths ({} and {})", cols, r.size());
  const double cell = std::clamp(420.0 / static_cast<double>(std::max<size_t>({rows, cols, 1})), 8.0, 48.0);
  // Room for the longest row label (estimated at font size 10: 6 px a character, 10 px for
  // a wide one such as a Korean syllable, i.e. a 3-byte UTF-8 sequence from U+1100 on).
  double widest = 0;
  for (const std::string& l : row_labels) {
    double w = 0;
    for (size_t i = 0; i < l.size(); ++i) {
      const unsigned char c = static_cast<unsigned char>(l[i]);
      if ((c & 0xC0) == 0x80) continue;
      w += c >= 0xE1 ? 10 : 6;
    }
    widest = std::max(widest, w);
  }
  const double left = std::max(80.0, 34 + widest), top = 50, pw = cell * static_cast<double>(cols),
               ph = cell * static_cast<double>(rows);
  const double width = left + pw + 110, height = top + ph + 60;
  std::string s = header(width, height);
  s += text(width / 2, 26, title, "middle", 15, "font-weight=\"bold\"");
  char buf[256];
  for (size_t r = 0; r < rows; ++r)
    for (size_t c = 0; c < cols; ++c) {
      const double v = values[r][c];
      std::snprintf(buf, sizeof buf, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"><title>%g</title></rect>\n",
                    left + cell * static_cast<double>(c), top + cell * static_cast<double>(r), cell, cell,
                    colour((v - vmin) / (vmax - vmin)).c_str(), v);
      s += buf;
      if (annotate && cell >= 24) {
        std::snprintf(buf, sizeof buf, "%.2f", v);
        s += text(left + cell * (static_cast<double>(c) + 0.5), top + cell * (static_cast<double>(r) + 0.5) + 4, buf,
                  "middle", 9, (v - vmin) / (vmax - vmin) > 0.6 ? "fill=\"black\"" : "fill=\"white\"");
      }
    }
  for (size_t c = 0; c < col_labels.size() && c < cols; ++c)
    s += text(left + cell * (static_cast<double>(c) + 0.5), top + ph + 14, col_labels[c], "middle", 10);
  for (size_t r = 0; r < row_labels.size() && r < rows; ++r)
    s += text(left - 6, top + cell * (static_cast<double>(r) + 0.5) + 4, row_labels[r], "end", 10);
  s += text(left + pw / 2, top + ph + 40, xlabel, "middle", 13);
  std::snprintf(buf, sizeof buf, "transform=\"rotate(-90 %.1f %.1f)\"", 16.0, top + ph / 2);
  s += text(16, top + ph / 2, ylabel, "middle", 13, buf);
  // colour bar
  const double bx = left + pw + 30, bh = std::max(ph, 120.0);
  for (int i = 0; i < 50; ++i) {
    std::snprintf(buf, sizeof buf, "<rect x=\"%.1f\" y=\"%.1f\" width=\"16\" height=\"%.2f\" fill=\"%s\"/>\n", bx,
                  top + bh * i / 50.0, bh / 50.0 + 0.5, colour(1.0 - i / 49.0).c_str());
    s += buf;
  }
  s += text(bx + 22, top + 10, fmt_tick(vmax), "start", 10);
  s += text(bx + 22, top + bh, fmt_tick(vmin), "start", 10);
  return s + "</svg>\n";
}

void Heatmap::save(const std::string& path) const { write_file_atomic(path, svg()); }

void write_file_atomic(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    UNROLL_CHECK(f.good(), "write: cannot open '{}' for writing", tmp);
    f << content;
    f.flush();
    if (!f.good()) {
      std::remove(tmp.c_str());
      fail("write: writing '{}' failed", tmp);
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    fail("write: cannot rename '{}' to '{}'", tmp, path);
  }
}

void make_dirs(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  UNROLL_CHECK(!ec, "cannot create directory '{}': {}", path, ec.message());
}

}  // namespace unroll::plot
