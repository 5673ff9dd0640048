// Line charts, histograms and scatter plots written as PNG files, drawn in memory with no
// plotting library: anti-aliased polylines, linear or log10 axes with "nice"
// tick labels, a title, axis labels and a legend. Text is stb_easy_font's
// bitmap font, the file is encoded by stb_image_write (both from libstb-dev) and
// written atomically by save_png (models/image_grid.h).
// Used by `loom derive --plots DIR`; meant for `loom plot metrics.jsonl` too.
#pragma once

#include <string>
#include <vector>

namespace loom::plot {

struct Series {
  std::string label;
  std::vector<double> x, y;
  // Bars of height y[i] centred on x[i], as wide as the spacing of x
  // (translucent, so several histograms can overlap).
  bool histogram = false;
  // A translucent dot per point, unconnected: a scatter plot (samples over data).
  bool points = false;
};

struct Chart {
  std::string title, xlabel, ylabel;
  std::vector<Series> series;
  bool log_x = false, log_y = false;  // points ≤ 0 on a log axis are left out (the line breaks)
  int width = 960, height = 600;
};

// Draws `chart` and writes it to `path` as save_png does (a loom::Error naming
// path and the cause if it cannot, or if the chart has no finite point to draw).
void write_png(const Chart& chart, const std::string& path);

// Tick positions for [lo, hi]: multiples of 1, 2 or 5 × 10^k, about `target` of them.
std::vector<double> nice_ticks(double lo, double hi, int target = 6);

}  // namespace loom::plot
