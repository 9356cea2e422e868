#include "common/plot.h"

#include "core/atomic_file.h"
#include "core/error.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string_view>

#include <fmt/format.h>

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
// Dash patterns for automatic styles: solid first, then patterns that stay distinct at 1.8 px.
const char* kDashes[] = {"none", "9,3", "2,3", "10,3,2,3", "5,5", "1,5"};
const char* kMarkers[] = {"circle", "square", "triangle", "diamond", "down", "plus"};
const char* kReferenceGrey = "#888888";

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
  if (v == 0) return "0";  // never "-0"
  if (std::abs(v) >= 1e5 || std::abs(v) < 1e-3) std::snprintf(buf, sizeof buf, "%.0e", v);
  else std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

std::string text(double x, double y, const std::string& s, const char* anchor = "middle", int size = 12,
                 const std::string& extra = "") {
  char buf[160];
  std::snprintf(buf, sizeof buf, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"%d\" text-anchor=\"%s\" %s>", x, y, size,
                anchor, extra.c_str());
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

// A marker of the given shape centred at (x, y), r its half-size.
std::string marker(const std::string& shape, double x, double y, const std::string& color, double r = 3.4) {
  char buf[320];
  const char* stroke = "stroke=\"white\" stroke-width=\"0.7\"";
  if (shape == "circle") {
    std::snprintf(buf, sizeof buf, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"%s\" %s/>", x, y, r, color.c_str(), stroke);
  } else if (shape == "square") {
    std::snprintf(buf, sizeof buf, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\" %s/>", x - r * 0.85,
                  y - r * 0.85, r * 1.7, r * 1.7, color.c_str(), stroke);
  } else if (shape == "triangle" || shape == "down") {
    const double d = shape == "triangle" ? 1 : -1;
    std::snprintf(buf, sizeof buf, "<path d=\"M%.1f %.1fL%.1f %.1fL%.1f %.1fZ\" fill=\"%s\" %s/>", x, y - d * r * 1.15,
                  x + r, y + d * r * 0.75, x - r, y + d * r * 0.75, color.c_str(), stroke);
  } else if (shape == "diamond") {
    std::snprintf(buf, sizeof buf, "<path d=\"M%.1f %.1fL%.1f %.1fL%.1f %.1fL%.1f %.1fZ\" fill=\"%s\" %s/>", x, y - r * 1.2,
                  x + r, y, x, y + r * 1.2, x - r, y, color.c_str(), stroke);
  } else {  // plus
    std::snprintf(buf, sizeof buf, "<path d=\"M%.1f %.1fH%.1fM%.1f %.1fV%.1f\" stroke=\"%s\" stroke-width=\"2\"/>", x - r,
                  y, x + r, x, y - r, y + r, color.c_str());
  }
  return std::string(buf) + "\n";
}

struct Style {
  std::string color, dash, shape;  // dash "none": solid; shape "": no markers
};

}  // namespace

double text_width(const std::string& s, double size) {
  double em = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if ((c & 0xC0) == 0x80) continue;  // a UTF-8 continuation byte
    if (c >= 0xE1) em += 1.0;          // U+1100 and up: Hangul, CJK, wide symbols
    else if (c >= 0x80) em += 0.65;
    else if (std::string_view("iljI.,:;'|!`").find(static_cast<char>(c)) != std::string_view::npos) em += 0.28;
    else if (std::string_view("frt()[]{}-/ \"*").find(static_cast<char>(c)) != std::string_view::npos) em += 0.36;
    else if (std::string_view("mwMW@%").find(static_cast<char>(c)) != std::string_view::npos) em += 0.9;
    else if (c >= 'A' && c <= 'Z') em += 0.70;
    else em += 0.58;  // lower case, digits, the rest
  }
  return em * size * 1.04;
}

std::string log_tick_label(double v) {
  char buf[32];
  const double e = std::floor(std::log10(v) + 1e-9);
  if (e >= -3 && e <= 4) {
    std::snprintf(buf, sizeof buf, "%.*f", e < 0 ? static_cast<int>(-e) : 0, v);
    return buf;
  }
  const double m = v / std::pow(10.0, e);
  std::snprintf(buf, sizeof buf, "%.0fe%d", m, static_cast<int>(e));
  return buf;
}

std::vector<double> log_ticks(int lo, int hi) {
  std::vector<double> t;
  if (hi <= lo) hi = lo + 1;
  const int span = hi - lo;
  if (span <= 2) {
    for (int e = lo; e <= hi; ++e)
      for (double m : {1.0, 2.0, 5.0})
        if (e < hi || m == 1.0) t.push_back(m * std::pow(10.0, e));
    return t;
  }
  int every = 1;
  for (int c : {1, 2, 5, 10, 20, 50, 100})
    if (span / c <= 9) {
      every = c;
      break;
    }
  const int first = static_cast<int>(std::ceil(static_cast<double>(lo) / every)) * every;
  for (int e = first; e <= hi; e += every) t.push_back(std::pow(10.0, e));
  return t;
}

LinePlot& LinePlot::add(std::string label, std::vector<double> x, std::vector<double> y, bool dashed) {
  UNROLL_CHECK(x.size() == y.size(), "LinePlot::add: '{}' has {} x values and {} y values", label, x.size(), y.size());
  Series se;
  se.label = std::move(label), se.x = std::move(x), se.y = std::move(y), se.dashed = dashed;
  series.push_back(std::move(se));
  return *this;
}

LinePlot& LinePlot::add(std::string label, std::vector<double> y, bool dashed) {
  std::vector<double> x(y.size());
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<double>(i);
  return add(std::move(label), std::move(x), std::move(y), dashed);
}

LinePlot& LinePlot::add_reference(std::string label, double x0, double x1, double y) {
  add(std::move(label), {x0, x1}, {y, y}, true);
  series.back().reference = true;
  return *this;
}

std::string LinePlot::svg() const {
  const double kTitle = 15, kTick = 12, kAxis = 13, kLegend = 12, kEnd = 11;
  auto usable = [&](double y) { return std::isfinite(y) && (!log_y || y > 0); };
  auto tr = [&](double y) { return log_y ? std::log10(y) : y; };

  // Styles: references grey and dashed; the others palette colours, dashes and markers.
  bool semantic_dash = false;
  for (const Series& se : series) semantic_dash = semantic_dash || (se.dashed && !se.reference);
  std::vector<Style> style(series.size());
  size_t k_auto = 0;
  for (size_t k = 0; k < series.size(); ++k) {
    const Series& se = series[k];
    Style& st = style[k];
    if (se.reference) {
      st = {se.color.empty() ? kReferenceGrey : se.color, se.dash.empty() ? "6,4" : se.dash, ""};
      continue;
    }
    const size_t j = k_auto++;
    st.color = se.color.empty() ? kPalette[j % 8] : se.color;
    if (!se.dash.empty()) st.dash = se.dash;
    else if (se.dashed) st.dash = "6,4";
    else st.dash = semantic_dash ? "none" : kDashes[j % 6];
    st.shape = kMarkers[j % 6];
  }

  // Data range, limited by y_min / y_max when set.
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  const double lim_lo = std::isnan(y_min) || (log_y && y_min <= 0) ? -INFINITY : tr(y_min);
  const double lim_hi = std::isnan(y_max) || (log_y && y_max <= 0) ? INFINITY : tr(y_max);
  for (const Series& se : series)
    for (size_t i = 0; i < se.x.size(); ++i) {
      if (!std::isfinite(se.x[i])) continue;
      x0 = std::min(x0, se.x[i]), x1 = std::max(x1, se.x[i]);
      if (!usable(se.y[i])) continue;
      const double y = std::clamp(tr(se.y[i]), lim_lo, lim_hi);
      y0 = std::min(y0, y), y1 = std::max(y1, y);
    }
  if (!std::isfinite(x0)) x0 = 0, x1 = 1;
  if (!std::isfinite(y0)) y0 = 0, y1 = 1;
  if (std::isfinite(lim_lo)) y0 = lim_lo;
  if (std::isfinite(lim_hi)) y1 = lim_hi;
  if (x1 == x0) x1 = x0 + 1;
  std::vector<double> yt;  // tick positions in axis units
  if (log_y) {
    // Whole decades; a line lying on a decade that would be the axis' edge (a max-norm line
    // at 1, a loss at exactly 1e-4) gets one more decade, so that the frame does not hide it.
    const double data_lo = y0, data_hi = y1;
    y0 = std::floor(y0 + 1e-9), y1 = std::ceil(y1 - 1e-9);
    if (!std::isfinite(lim_lo) && data_lo - y0 < 0.02) y0 -= 1;
    if (!std::isfinite(lim_hi) && y1 - data_hi < 0.02) y1 += 1;
    if (y1 <= y0) y1 = y0 + 1;
    for (double v : log_ticks(static_cast<int>(y0), static_cast<int>(y1))) yt.push_back(std::log10(v));
  } else {
    const double pad = (y1 - y0) * 0.05 + (y1 == y0 ? 1 : 0);
    if (!std::isfinite(lim_lo)) y0 -= pad;
    if (!std::isfinite(lim_hi)) y1 += pad;
    yt = nice_ticks(y0, y1);
  }
  auto ytick_label = [&](double t) { return log_y ? log_tick_label(std::pow(10.0, t)) : fmt_tick(t); };

  // Layout: measure every text, then size the canvas around a plot area of the nominal size.
  double tick_w = 0;
  for (double t : yt) tick_w = std::max(tick_w, text_width(ytick_label(t), kTick));
  const double left = 34 + tick_w + 10, top = title.empty() ? 16 : 40;
  const double pw = std::max(200.0, width - 90 - 20), ph = std::max(150.0, height - 40 - 55);
  // Line-end labels: at the last drawn point of each series, pushed apart to not overlap.
  struct EndLabel {
    size_t k;
    double y_point, y;
  };
  std::vector<EndLabel> ends;
  auto px = [&](double x) { return left + (x - x0) / (x1 - x0) * pw; };
  auto py_raw = [&](double t) { return top + ph - (t - y0) / (y1 - y0) * ph; };
  auto py = [&](double y) { return std::clamp(py_raw(tr(y)), top, top + ph); };
  double end_w = 0;
  if (end_labels) {
    for (size_t k = 0; k < series.size(); ++k) {
      const Series& se = series[k];
      for (size_t i = se.x.size(); i-- > 0;)
        if (usable(se.y[i]) && std::isfinite(se.x[i])) {
          ends.push_back({k, py(se.y[i]), py(se.y[i])});
          end_w = std::max(end_w, text_width(se.label, kEnd));
          break;
        }
    }
    std::sort(ends.begin(), ends.end(), [](const EndLabel& a, const EndLabel& b) { return a.y_point < b.y_point; });
    const double gap = kEnd + 2;
    for (size_t i = 1; i < ends.size(); ++i) ends[i].y = std::max(ends[i].y, ends[i - 1].y + gap);
    if (!ends.empty() && ends.back().y > top + ph + 4) {
      ends.back().y = top + ph + 4;
      for (size_t i = ends.size() - 1; i-- > 0;) ends[i].y = std::min(ends[i].y, ends[i + 1].y - gap);
    }
  }
  const double right = ends.empty() ? 20 : 14 + end_w + 8;
  double canvas_w = left + pw + right;
  canvas_w = std::max(canvas_w, text_width(title, kTitle) + 20);
  // Legend below the x label: one entry per series (its line, dash and marker), wrapped in rows.
  const bool legend = series.size() > 1;
  struct Entry {
    size_t k;
    double x, y;
  };
  std::vector<Entry> entries;
  const double legend_top = top + ph + 48;
  double legend_h = 0;
  if (legend) {
    double x = left, y = legend_top + 8;
    for (size_t k = 0; k < series.size(); ++k) {
      const double w = 34 + text_width(series[k].label, kLegend) + 18;
      if (x + w > left + pw + right - 4 && x > left) x = left, y += 18;
      entries.push_back({k, x, y});
      x += w;
    }
    legend_h = y - legend_top + 14;
  }
  const double canvas_h = legend_top + legend_h + 4;

  std::string s = header(canvas_w, canvas_h);
  s += text(canvas_w / 2, 24, title, "middle", static_cast<int>(kTitle), "font-weight=\"bold\"");
  char buf[512];
  for (double t : nice_ticks(x0, x1)) {
    std::snprintf(buf, sizeof buf, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>\n", px(t),
                  top, px(t), top + ph);
    s += buf;
    s += text(px(t), top + ph + 16, fmt_tick(t), "middle", static_cast<int>(kTick));
  }
  for (double t : yt) {
    std::snprintf(buf, sizeof buf, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>\n", left,
                  py_raw(t), left + pw, py_raw(t));
    s += buf;
    s += text(left - 6, py_raw(t) + 4, ytick_label(t), "end", static_cast<int>(kTick));
  }
  if (log_y && y1 - y0 <= 6 && y1 - y0 > 2)  // minor ticks at 2..9 of each decade
    for (double e = y0; e < y1; ++e)
      for (int m = 2; m <= 9; ++m) {
        const double yy = py_raw(e + std::log10(m));
        std::snprintf(buf, sizeof buf, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>\n", left,
                      yy, left + 4, yy);
        s += buf;
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
    s += text((bx0 + bx1) / 2, b.label_below ? top + ph - 6 : top + 15, b.label, "middle", 13, fill);
  }
  s += text(left + pw / 2, top + ph + 36, xlabel, "middle", static_cast<int>(kAxis));
  std::snprintf(buf, sizeof buf, "transform=\"rotate(-90 %.1f %.1f)\"", 18.0, top + ph / 2);
  s += text(18, top + ph / 2, ylabel + (log_y ? " (log scale)" : ""), "middle", static_cast<int>(kAxis), buf);

  // Series: references first (under the others), then in order.
  std::vector<size_t> order;
  for (size_t k = 0; k < series.size(); ++k)
    if (series[k].reference) order.push_back(k);
  for (size_t k = 0; k < series.size(); ++k)
    if (!series[k].reference) order.push_back(k);
  std::string overlay;  // off-scale and NaN marks, drawn over every line
  for (size_t k : order) {
    const Series& se = series[k];
    const Style& st = style[k];
    std::snprintf(buf, sizeof buf, "<g class=\"series\" data-series=\"%zu\" data-stroke=\"%s\" data-dash=\"%s\" data-marker=\"%s\">\n",
                  k, st.color.c_str(), st.dash.c_str(), st.shape.c_str());
    s += buf;
    const std::string dash_attr = st.dash == "none" ? "" : " stroke-dasharray=\"" + st.dash + "\"";
    std::string pts, marks;
    auto flush = [&] {
      if (!pts.empty())
        s += "<polyline fill=\"none\" stroke=\"" + st.color + "\" stroke-width=\"" + (se.reference ? "1.5" : "1.8") +
             "\"" + dash_attr + " points=\"" + pts + "\"/>\n";
      pts.clear();
    };
    const size_t n = se.x.size();
    // Markers: every point if asked (and not too many), else about 8 along the line, shifted
    // per series so that markers of lines on top of each other do not hide one another.
    std::vector<bool> mark(n, false);
    if (!st.shape.empty() && n > 0) {
      if (se.markers && n <= 200) {
        mark.assign(n, true);
      } else {
        const double shift = std::fmod(0.37 * static_cast<double>(k), 1.0);
        for (int m = 0; m < 8; ++m) {
          const double f = (m + shift) / 8.0;
          mark[std::min(n - 1, static_cast<size_t>(std::llround(f * static_cast<double>(n - 1))))] = true;
        }
      }
    }
    bool had_finite = false, off_scale = false, off_scale_noted = false, nan_marked = false;
    for (size_t i = 0; i < n; ++i) {
      if (!std::isfinite(se.x[i])) continue;
      if (!std::isfinite(se.y[i])) {
        flush();
        if (had_finite && !nan_marked) {
          nan_marked = true;
          overlay += marker("plus", px(se.x[i]), top + 2, "#d62728", 5);
          overlay += text(px(se.x[i]) + 7, top + 14, fmt::format("{}: {} at x = {:g}", se.label, std::isnan(se.y[i]) ? "NaN" : "Inf", se.x[i]),
                          "start", 11, "fill=\"#d62728\"");
        }
        continue;
      }
      if (!usable(se.y[i])) {
        flush();
        continue;
      }
      had_finite = true;
      const double t = tr(se.y[i]);
      const bool out = t > y1 + 1e-12 || t < y0 - 1e-12;
      if (out && !off_scale) {
        overlay += marker(t > y1 ? "triangle" : "down", px(se.x[i]), py(se.y[i]) + (t > y1 ? 6 : -6), st.color, 5);
        if (!off_scale_noted)
          overlay += text(px(se.x[i]) + 8, py(se.y[i]) + (t > y1 ? 28 : -14),
                          fmt::format("{}: off scale from x = {:g}", se.label, se.x[i]), "start", 11,
                          "fill=\"" + st.color + "\"");
        off_scale_noted = true;
      }
      off_scale = out;
      std::snprintf(buf, sizeof buf, "%.1f,%.1f ", px(se.x[i]), py(se.y[i]));
      pts += buf;
      if (mark[i] && !out) marks += marker(st.shape, px(se.x[i]), py(se.y[i]), st.color);
    }
    flush();
    s += marks + "</g>\n";
  }
  s += overlay;
  // Line-end labels, with a short leader from the line's end to its label.
  for (const EndLabel& e : ends) {
    const Style& st = style[e.k];
    std::snprintf(buf, sizeof buf, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"1\"/>\n",
                  left + pw + 1, e.y_point, left + pw + 10, e.y, st.color.c_str());
    s += buf;
    s += text(left + pw + 13, e.y + 4, series[e.k].label, "start", static_cast<int>(kEnd), "class=\"end-label\" fill=\"" + st.color + "\"");
  }
  // Legend: the same colour, dash and marker as the drawn line.
  for (const Entry& e : entries) {
    const Style& st = style[e.k];
    std::snprintf(buf, sizeof buf, "<g class=\"legend-entry\" data-series=\"%zu\" data-stroke=\"%s\" data-dash=\"%s\" data-marker=\"%s\">\n",
                  e.k, st.color.c_str(), st.dash.c_str(), st.shape.c_str());
    s += buf;
    std::snprintf(buf, sizeof buf, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"%s/>\n", e.x,
                  e.y, e.x + 28, e.y, st.color.c_str(),
                  st.dash == "none" ? "" : (" stroke-dasharray=\"" + st.dash + "\"").c_str());
    s += buf;
    if (!st.shape.empty()) s += marker(st.shape, e.x + 14, e.y, st.color);
    s += text(e.x + 34, e.y + 4, series[e.k].label, "start", static_cast<int>(kLegend)) + "</g>\n";
  }
  return s + "</svg>\n";
}

void LinePlot::save(const std::string& path) const { write_file_atomic("LinePlot::save", path, svg()); }

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
  const double cell = std::clamp(420.0 / static_cast<double>(std::max<size_t>({rows, cols, 1})), 3.0, 48.0);
  double widest = 0;
  for (const std::string& l : row_labels) widest = std::max(widest, text_width(l, 10));
  const double left = std::max(60.0, 34 + widest + 8), top = 50, pw = cell * static_cast<double>(cols),
               ph = cell * static_cast<double>(rows);
  // The colour bar: its ticks, their labels and the bar's label, to the right of the cells.
  const double bx = left + pw + 24, bh = std::max(ph, 120.0);
  const std::vector<double> ticks = nice_ticks(vmin, vmax, 5);
  double tick_w = 0;
  for (double t : ticks) tick_w = std::max(tick_w, text_width(fmt_tick(t), 10));
  double legend_w = 0;
  for (const std::string& l : point_labels) legend_w = std::max(legend_w, 22 + text_width(l, 11));
  const double bar_right = bx + 16 + 6 + tick_w + (colorbar_label.empty() ? 8 : 26);
  double width = std::max(bar_right, left + pw + 24 + legend_w + 8);
  width = std::max(width, text_width(title, 15) + 20);
  width = std::max(width, left + pw / 2 + text_width(xlabel, 13) / 2 + 10);
  const double height = std::max(top + ph + 60, top + bh + 20 + 18 * static_cast<double>(point_labels.size()) + 10);
  std::string s = header(width, height);
  s += text(width / 2, 26, title, "middle", 15, "font-weight=\"bold\"");
  char buf[256];
  for (size_t r = 0; r < rows; ++r)
    for (size_t c = 0; c < cols; ++c) {
      const double v = values[r][c];
      std::snprintf(buf, sizeof buf, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.2f\" height=\"%.2f\" fill=\"%s\"><title>%g</title></rect>\n",
                    left + cell * static_cast<double>(c), top + cell * static_cast<double>(r), cell + 0.3, cell + 0.3,
                    colour((v - vmin) / (vmax - vmin)).c_str(), v);
      s += buf;
      if (annotate && cell >= 24) {
        std::snprintf(buf, sizeof buf, "%.2f", v);
        s += text(left + cell * (static_cast<double>(c) + 0.5), top + cell * (static_cast<double>(r) + 0.5) + 4, buf,
                  "middle", 9, (v - vmin) / (vmax - vmin) > 0.6 ? "fill=\"black\"" : "fill=\"white\"");
      }
    }
  // Points over the cells: group 0 white circles, 1 black triangles, 2 orange squares, ...
  const char* point_shape[] = {"circle", "triangle", "square", "diamond"};
  const char* point_fill[] = {"#ffffff", "#111111", "#ff7f0e", "#e377c2"};
  auto point = [&](int g, double x, double y) {
    const size_t i = static_cast<size_t>(std::abs(g)) % 4;
    std::string m = marker(point_shape[i], x, y, point_fill[i], 3.2);
    // an outline in the opposite shade, so that a point shows on any colour of the map
    const std::string outline = i == 1 ? "stroke=\"white\" stroke-width=\"0.8\"" : "stroke=\"#111\" stroke-width=\"0.8\"";
    const size_t at = m.find("stroke=\"white\" stroke-width=\"0.7\"");
    if (at != std::string::npos) m.replace(at, 33, outline);
    return m;
  };
  for (const HeatPoint& p : points) {
    if (!(p.col >= 0 && p.row >= 0 && p.col <= static_cast<double>(cols) && p.row <= static_cast<double>(rows))) continue;
    s += point(p.group, left + cell * p.col, top + cell * p.row);
  }
  for (size_t c = 0; c < col_labels.size() && c < cols; ++c)
    s += text(left + cell * (static_cast<double>(c) + 0.5), top + ph + 14, col_labels[c], "middle", 10);
  for (size_t r = 0; r < row_labels.size() && r < rows; ++r)
    s += text(left - 6, top + cell * (static_cast<double>(r) + 0.5) + 4, row_labels[r], "end", 10);
  s += text(left + pw / 2, top + ph + 40, xlabel, "middle", 13);
  std::snprintf(buf, sizeof buf, "transform=\"rotate(-90 %.1f %.1f)\"", 16.0, top + ph / 2);
  s += text(16, top + ph / 2, ylabel, "middle", 13, buf);
  // colour bar, with ticks and its label
  for (int i = 0; i < 50; ++i) {
    std::snprintf(buf, sizeof buf, "<rect x=\"%.1f\" y=\"%.1f\" width=\"16\" height=\"%.2f\" fill=\"%s\"/>\n", bx,
                  top + bh * i / 50.0, bh / 50.0 + 0.5, colour(1.0 - (i + 0.5) / 50.0).c_str());
    s += buf;
  }
  std::snprintf(buf, sizeof buf, "<rect x=\"%.1f\" y=\"%.1f\" width=\"16\" height=\"%.1f\" fill=\"none\" stroke=\"#333\"/>\n", bx, top, bh);
  s += buf;
  for (double t : ticks) {
    const double y = top + bh * (1.0 - (t - vmin) / (vmax - vmin));
    std::snprintf(buf, sizeof buf, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>\n", bx + 12, y, bx + 20, y);
    s += buf;
    s += text(bx + 22, y + 3.5, fmt_tick(t), "start", 10);
  }
  if (!colorbar_label.empty()) {
    const double lx = bx + 22 + tick_w + 14;
    std::snprintf(buf, sizeof buf, "transform=\"rotate(-90 %.1f %.1f)\"", lx, top + bh / 2);
    s += text(lx, top + bh / 2, colorbar_label, "middle", 12, buf);
  }
  for (size_t i = 0; i < point_labels.size(); ++i) {
    const double y = top + bh + 22 + 18 * static_cast<double>(i);
    s += point(static_cast<int>(i), bx + 6, y - 4);
    s += text(bx + 16, y, point_labels[i], "start", 11);
  }
  return s + "</svg>\n";
}

void Heatmap::save(const std::string& path) const { write_file_atomic("Heatmap::save", path, svg()); }

void make_dirs(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  UNROLL_CHECK(!ec, "cannot create directory '{}': {}", path, ec.message());
}

}  // namespace unroll::plot
