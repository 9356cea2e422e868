#include "common/images.h"

#include "common/plot.h"
#include "core/atomic_file.h"
#include "core/error.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace unroll::plot {

namespace {


void check_panel(const ImagePanel& p, size_t i) {
  UNROLL_CHECK(p.height > 0 && p.width > 0, "ImageGrid: panel {} is {}x{}; both sides must be positive", i, p.height,
               p.width);
  UNROLL_CHECK(p.channels == 1 || p.channels == 3, "ImageGrid: panel {} has {} channels; expected 1 or 3", i, p.channels);
  UNROLL_CHECK(p.pixels.size() == static_cast<size_t>(p.height * p.width * p.channels),
               "ImageGrid: panel {} ({}x{}x{}) has {} pixel values, expected {}", i, p.height, p.width, p.channels,
               p.pixels.size(), p.height * p.width * p.channels);
  if (!p.overlay.empty() || p.overlay_height || p.overlay_width)
    UNROLL_CHECK(p.overlay_height > 0 && p.overlay_width > 0 &&
                     p.overlay.size() == static_cast<size_t>(p.overlay_height * p.overlay_width),
                 "ImageGrid: panel {}: the overlay is {}x{} with {} values", i, p.overlay_height, p.overlay_width,
                 p.overlay.size());
}

int byte(double v) { return static_cast<int>(std::lround(255.0 * std::clamp(std::isfinite(v) ? v : 0.0, 0.0, 1.0))); }

/// One panel's pixels as rects, equal neighbours in a row merged into one rect.
std::string panel_svg(const ImagePanel& p, double x0, double y0, double cell) {
  const double px = cell / static_cast<double>(std::max(p.height, p.width));
  double omax = 0;
  for (double v : p.overlay) omax = std::max(omax, std::isfinite(v) ? v : 0.0);
  auto colour = [&](int64_t r, int64_t c) {
    const size_t at = static_cast<size_t>((r * p.width + c) * p.channels);
    double rgb[3];
    for (int k = 0; k < 3; ++k) rgb[k] = p.pixels[at + (p.channels == 3 ? static_cast<size_t>(k) : 0)];
    if (!p.overlay.empty()) {
      const int64_t orow = r * p.overlay_height / p.height, ocol = c * p.overlay_width / p.width;
      const double v = p.overlay[static_cast<size_t>(orow * p.overlay_width + ocol)];
      const double keep = 1.0 - 0.85 * (1.0 - (omax > 0 && std::isfinite(v) ? std::max(v, 0.0) / omax : 0.0));
      for (double& x : rgb) x = 0.12 * (1 - keep) + x * keep;  // dim towards a dark grey
    }
    return fmt::format("#{:02x}{:02x}{:02x}", byte(rgb[0]), byte(rgb[1]), byte(rgb[2]));
  };
  std::string s;
  for (int64_t r = 0; r < p.height; ++r) {
    for (int64_t c = 0; c < p.width;) {
      const std::string col = colour(r, c);
      int64_t e = c + 1;
      while (e < p.width && colour(r, e) == col) ++e;
      // a hair wider than the cell so that neighbouring rects leave no seam
      s += fmt::format("<rect x=\"{:.2f}\" y=\"{:.2f}\" width=\"{:.2f}\" height=\"{:.2f}\" fill=\"{}\"/>\n",
                       x0 + static_cast<double>(c) * px, y0 + static_cast<double>(r) * px,
                       static_cast<double>(e - c) * px + 0.3, px + 0.3, col);
      c = e;
    }
  }
  s += fmt::format("<rect x=\"{:.2f}\" y=\"{:.2f}\" width=\"{:.2f}\" height=\"{:.2f}\" fill=\"none\" stroke=\"#888\" "
                   "stroke-width=\"0.5\"/>\n",
                   x0, y0, static_cast<double>(p.width) * px, static_cast<double>(p.height) * px);
  return s;
}

}  // namespace

std::string ImageGrid::svg() const {
  UNROLL_CHECK(columns > 0 && cell > 0, "ImageGrid: columns ({}) and cell ({}) must be positive", columns, cell);
  for (size_t i = 0; i < panels.size(); ++i)
    if (!panels[i].blank) check_panel(panels[i], i);
  const double gap = 10, margin = 16, line_h = 14;
  size_t lines = 0;
  for (const ImagePanel& p : panels) lines = std::max(lines, p.lines.size());
  bool headers = false;
  for (const std::string& h : row_headers) headers = headers || !h.empty();
  const int64_t n = static_cast<int64_t>(panels.size());
  const int64_t rows = std::max<int64_t>(1, (n + columns - 1) / columns);
  const int64_t cols = std::min<int64_t>(columns, std::max<int64_t>(n, 1));
  const double header_h = headers ? 18 : 0;
  const double row_h = header_h + cell + static_cast<double>(lines) * line_h + gap + 4;
  const double top = margin + (title.empty() ? 0 : 22) + static_cast<double>(notes.size()) * 16;
  const double width = std::max(2 * margin + static_cast<double>(cols) * (cell + gap) - gap, 360.0);
  const double height = top + static_cast<double>(rows) * row_h + margin;
  std::string s = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{:.0f}\" height=\"{:.0f}\" viewBox=\"0 0 {:.0f} {:.0f}\" "
      "font-family=\"Helvetica, Arial, sans-serif\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
      width, height, width, height);
  double y = margin;
  if (!title.empty()) {
    s += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"15\" font-weight=\"bold\">{}</text>\n", margin,
                     y + 13, xml_escape(title));
    y += 22;
  }
  for (const std::string& note : notes) {
    s += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"12\" fill=\"#444\">{}</text>\n", margin, y + 11,
                     xml_escape(note));
    y += 16;
  }
  if (panels.empty())
    s += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"12\">(none)</text>\n", margin, top + 14);
  for (int64_t i = 0; i < n; ++i) {
    const ImagePanel& p = panels[static_cast<size_t>(i)];
    const int64_t r = i / columns, c = i % columns;
    const double x0 = margin + static_cast<double>(c) * (cell + gap), y0 = top + static_cast<double>(r) * row_h;
    if (c == 0 && static_cast<size_t>(r) < row_headers.size() && !row_headers[static_cast<size_t>(r)].empty())
      s += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"12\">{}</text>\n", x0, y0 + 12,
                       xml_escape(row_headers[static_cast<size_t>(r)]));
    if (p.blank) continue;
    s += panel_svg(p, x0, y0 + header_h, cell);
    for (size_t l = 0; l < p.lines.size(); ++l)
      s += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"11\" text-anchor=\"middle\" fill=\"{}\">{}</text>\n",
                       x0 + cell / 2, y0 + header_h + cell + 12 + static_cast<double>(l) * line_h,
                       p.line_color.empty() ? "black" : xml_escape(p.line_color), xml_escape(p.lines[l]));
  }
  return s + "</svg>\n";
}

void ImageGrid::save(const std::string& path) const { write_file_atomic("ImageGrid::save", path, svg()); }

}  // namespace unroll::plot
