#pragma once
// Small images as SVG: a grid of panels, each a greyscale or RGB image drawn pixel by pixel
// (crisp at any zoom), with text lines under it and, optionally, a coarse map laid over it
// (an attention map: the image is darkened where the map is low). Used for the digits the
// classifier got wrong and for the captioner's per-word attention.
//
//   plot::ImageGrid g;
//   g.title = "misclassified test digits";
//   g.columns = 8;
//   plot::ImagePanel p;
//   p.height = p.width = 8, p.channels = 1, p.pixels = px, p.lines = {"true 3", "pred 8"};
//   g.panels.push_back(p);
//   g.save("out/misclassified.svg");
#include <cstdint>
#include <string>
#include <vector>

namespace unroll::plot {

struct ImagePanel {
  int64_t height = 0, width = 0;
  int64_t channels = 1;         ///< 1 (grey) or 3 (RGB)
  std::vector<double> pixels;   ///< [height][width][channels], values in [0,1] (clamped)
  std::vector<std::string> lines;  ///< text under the image, one line each
  std::string line_color;       ///< colour of the text lines (empty: black)
  /// An optional map over the image at its own resolution (e.g. a 6x6 feature map over a
  /// 24x24 image): [overlay_height][overlay_width], values >= 0; each cell dims the pixels
  /// it covers by (1 - value / max) * 0.85, so the brightest part is where the map is largest.
  int64_t overlay_height = 0, overlay_width = 0;
  std::vector<double> overlay;
  bool blank = false;  ///< draws nothing: keeps the panel's place in the grid
};

struct ImageGrid {
  std::string title;
  std::vector<std::string> notes;  ///< lines under the title
  int64_t columns = 8;   ///< panels per row (a row header starts a new row, see below)
  double cell = 72;      ///< side of an image in SVG pixels
  std::vector<ImagePanel> panels;
  /// Optional: panels in rows of `columns` each, with a text line above every row
  /// (row_headers[r] above row r; missing or empty entries print nothing).
  std::vector<std::string> row_headers;
  std::string svg() const;
  /// Writes the SVG atomically; throws unroll::Error on failure or on a malformed panel.
  void save(const std::string& path) const;
};

}  // namespace unroll::plot
