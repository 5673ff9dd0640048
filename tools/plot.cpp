#include "tools/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>
#include <cstdio>
#include <limits>

// A header of static C functions, not all of which are used here.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#include <stb_easy_font.h>
#pragma GCC diagnostic pop

#include "autograd/loom.h"  // loom::Error
#include "models/image_grid.h"  // save_png

namespace loom::plot {
namespace {

struct Rgb {
  uint8_t r, g, b;
};
// Tableau's ten colours, the matplotlib default: distinct and colour-blind tolerable;
// then near-black, so ten classes and one more series (a prior) stay apart.
const Rgb kPalette[] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},   {148, 103, 189}, {140, 86, 75},
                        {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207}, {40, 40, 40}};
const Rgb kInk{30, 30, 30}, kGrid{228, 228, 228}, kFrame{120, 120, 120};
constexpr double kGlyphHeight = 7;  // stb_easy_font's cap height in font units

struct Rect {
  double x0, y0, x1, y1;
};

// stb_easy_font draws printable ASCII only (and indexes its tables by the byte).
std::string printable(const std::string& s) {
  std::string out = s;
  for (char& ch : out)
    if (ch < 32 || ch > 126) ch = '?';
  return out;
}

class Canvas {
 public:
  Canvas(int w, int h) : w_(w), h_(h), rgb_(static_cast<size_t>(w) * h * 3, 255) {}

  void blend(int x, int y, Rgb c, double alpha) {
    if (x < 0 || y < 0 || x >= w_ || y >= h_ || alpha <= 0) return;
    uint8_t* p = &rgb_[(static_cast<size_t>(y) * w_ + x) * 3];
    alpha = std::min(alpha, 1.0);
    p[0] = static_cast<uint8_t>(std::lround(p[0] + (c.r - p[0]) * alpha));
    p[1] = static_cast<uint8_t>(std::lround(p[1] + (c.g - p[1]) * alpha));
    p[2] = static_cast<uint8_t>(std::lround(p[2] + (c.b - p[2]) * alpha));
  }

  // [x0, x1) × [y0, y1), with each edge pixel weighted by the fraction it covers.
  void fill_rect(Rect r, Rgb c, double alpha = 1) {
    if (r.x0 > r.x1) std::swap(r.x0, r.x1);
    if (r.y0 > r.y1) std::swap(r.y0, r.y1);
    for (int y = static_cast<int>(std::floor(r.y0)); y < std::ceil(r.y1); ++y) {
      const double cy = std::min(y + 1.0, r.y1) - std::max<double>(y, r.y0);
      for (int x = static_cast<int>(std::floor(r.x0)); x < std::ceil(r.x1); ++x) {
        const double cx = std::min(x + 1.0, r.x1) - std::max<double>(x, r.x0);
        blend(x, y, c, alpha * cx * cy);
      }
    }
  }

  // An anti-aliased polyline of width `width`, drawn only inside `clip`. Coverage is
  // the maximum over the segments, so joints between segments do not darken.
  void polyline(const std::vector<std::pair<double, double>>& pts, double width, Rgb c, Rect clip) {
    if (pts.empty()) return;
    const double hw = width / 2;
    const int cx0 = std::max(0, static_cast<int>(clip.x0)), cy0 = std::max(0, static_cast<int>(clip.y0));
    const int cx1 = std::min(w_, static_cast<int>(std::ceil(clip.x1))), cy1 = std::min(h_, static_cast<int>(std::ceil(clip.y1)));
    std::vector<float> cover(static_cast<size_t>(w_) * h_, 0.0f);
    int bx0 = w_, by0 = h_, bx1 = 0, by1 = 0;
    for (size_t i = 0; i < pts.size(); ++i) {
      const auto [ax, ay] = pts[i];
      const auto [bx, by] = pts[i + 1 < pts.size() ? i + 1 : i];
      const int x0 = std::max(cx0, static_cast<int>(std::floor(std::min(ax, bx) - hw - 1)));
      const int x1 = std::min(cx1, static_cast<int>(std::ceil(std::max(ax, bx) + hw + 1)));
      const int y0 = std::max(cy0, static_cast<int>(std::floor(std::min(ay, by) - hw - 1)));
      const int y1 = std::min(cy1, static_cast<int>(std::ceil(std::max(ay, by) + hw + 1)));
      const double dx = bx - ax, dy = by - ay, len2 = dx * dx + dy * dy;
      for (int y = y0; y < y1; ++y)
        for (int x = x0; x < x1; ++x) {
          // Distance from the pixel centre to the segment.
          const double px = x + 0.5 - ax, py = y + 0.5 - ay;
          const double t = len2 > 0 ? std::clamp((px * dx + py * dy) / len2, 0.0, 1.0) : 0.0;
          const double d = std::hypot(px - t * dx, py - t * dy);
          const float cov = static_cast<float>(std::clamp(hw + 0.5 - d, 0.0, 1.0));
          float& slot = cover[static_cast<size_t>(y) * w_ + x];
          slot = std::max(slot, cov);
        }
      bx0 = std::min(bx0, x0), by0 = std::min(by0, y0), bx1 = std::max(bx1, x1), by1 = std::max(by1, y1);
    }
    for (int y = by0; y < by1; ++y)
      for (int x = bx0; x < bx1; ++x) blend(x, y, c, cover[static_cast<size_t>(y) * w_ + x]);
  }

  // Text with its top-left corner at (x, y); `vertical` turns it 90° to read upward,
  // with (x, y) its bottom-left corner.
  void text(double x, double y, const std::string& s, double scale, Rgb c, bool vertical = false) {
    std::string buf = printable(s);  // stb_easy_font takes a mutable char*
    std::vector<char> vbuf(1024 * (s.size() + 1));  // 64 bytes a quad, at most ~12 quads a glyph
    const int quads = stb_easy_font_print(0, 0, buf.data(), nullptr, vbuf.data(), static_cast<int>(vbuf.size()));
    for (int q = 0; q < quads; ++q) {
      const float* v = reinterpret_cast<const float*>(vbuf.data() + q * 64);  // 4 vertices of 16 bytes
      const double qx0 = v[0], qy0 = v[1], qx1 = v[8], qy1 = v[9];       // opposite corners
      if (vertical)
        fill_rect({x + qy0 * scale, y - qx1 * scale, x + qy1 * scale, y - qx0 * scale}, c);
      else
        fill_rect({x + qx0 * scale, y + qy0 * scale, x + qx1 * scale, y + qy1 * scale}, c);
    }
  }
  static double text_width(const std::string& s, double scale) {
    std::string buf = printable(s);
    return stb_easy_font_width(buf.data()) * scale;
  }

  void save(const std::string& path) const {
    save_png(path, rgb_.data(), w_, h_, 3, "plot: " + path);
  }

 private:
  int w_, h_;
  std::vector<uint8_t> rgb_;
};

// One axis: the data range in axis units (log10 of the data on a log axis) and its ticks.
struct Axis {
  bool log = false;
  double lo = 0, hi = 1;
  std::vector<double> ticks;  // in axis units
  bool valid(double v) const { return std::isfinite(v) && (!log || v > 0); }
  double to_axis(double v) const { return log ? std::log10(v) : v; }
};

std::string format_number(double v, const char* spec) {
  char buf[64];
  std::snprintf(buf, sizeof buf, spec, v);
  return buf;
}

std::string tick_label(const Axis& a, double t) {
  if (a.log) {
    if (t >= -3 && t <= 4) return format_number(std::pow(10.0, t), "%g");
    if (t == std::round(t)) return "1e" + std::to_string(static_cast<int64_t>(t));
    return format_number(std::pow(10.0, t), "%.0e");
  }
  const double step = a.ticks.size() > 1 ? a.ticks[1] - a.ticks[0] : std::max(std::abs(t), 1.0);
  const double biggest = std::max(std::abs(a.lo), std::abs(a.hi));
  if (biggest >= 1e6 || step < 1e-4) return format_number(t, "%.3g");
  const int decimals = std::clamp(static_cast<int>(-std::floor(std::log10(step) + 1e-9)), 0, 6);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, t);
  return buf;
}

// Decades on a log axis (every k-th when there are many); 1-2-5 steps when the range spans few decades.
std::vector<double> log_ticks(double lo, double hi) {
  std::vector<double> t;
  const double first = std::ceil(lo - 1e-9), last = std::floor(hi + 1e-9);
  if (last - first >= 2) {
    const std::vector<double> nice = nice_ticks(first, last + 1e-9, 7);
    const double stride = std::max(1.0, nice.size() > 1 ? nice[1] - nice[0] : 1.0);  // whole decades only
    for (double k = std::ceil(first / stride) * stride; k <= last + 1e-9; k += stride) t.push_back(k);
    return t;
  }
  for (double k = std::floor(lo); k <= std::ceil(hi); ++k)
    for (double m : {1.0, 2.0, 5.0}) {
      const double v = k + std::log10(m);
      if (v >= lo - 1e-9 && v <= hi + 1e-9) t.push_back(v);
    }
  return t.size() >= 2 ? t : nice_ticks(lo, hi);
}

// Fits the axis to `values` (at least one valid).
void fit_axis(Axis& a, const std::vector<double>& values, double pad_fraction, bool include_zero) {
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (double v : values)
    if (a.valid(v)) lo = std::min(lo, a.to_axis(v)), hi = std::max(hi, a.to_axis(v));
  if (include_zero && !a.log) lo = std::min(lo, 0.0), hi = std::max(hi, 0.0);
  if (hi - lo < 1e-12 * std::max(1.0, std::abs(hi))) {
    const double half = a.log ? 0.5 : std::max(0.5, 0.1 * std::abs(hi));
    lo -= half, hi += half;
  }
  const double pad = (hi - lo) * pad_fraction;
  a.lo = (include_zero && !a.log && lo == 0) ? 0 : lo - pad;
  a.hi = hi + pad;
  a.ticks = a.log ? log_ticks(a.lo, a.hi) : nice_ticks(a.lo, a.hi);
}

double bar_width(const Series& s) {
  double w = std::numeric_limits<double>::infinity();
  for (size_t i = 1; i < s.x.size(); ++i) w = std::min(w, std::abs(s.x[i] - s.x[i - 1]));
  return std::isfinite(w) && w > 0 ? w : 1.0;
}

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int target) {
  LOOM_CHECK(std::isfinite(lo) && std::isfinite(hi) && lo < hi && target > 0, "nice_ticks: bad range [", lo, ", ",
             hi, "]");
  const double raw = (hi - lo) / target, mag = std::pow(10.0, std::floor(std::log10(raw))), norm = raw / mag;
  const double step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  std::vector<double> t;
  for (double k = std::ceil(lo / step - 1e-9); k * step <= hi + 1e-9 * step; ++k) t.push_back(k == 0 ? 0 : k * step);
  return t;
}

void write_png(const Chart& chart, const std::string& path) {
  LOOM_CHECK(chart.width >= 200 && chart.height >= 150, "plot: ", chart.width, "x", chart.height,
             " is too small for a chart (at least 200x150)");
  for (const Series& s : chart.series)
    LOOM_CHECK(s.x.size() == s.y.size(), "plot: series '", s.label, "' has ", s.x.size(), " x values but ",
               s.y.size(), " y values");
  Axis ax, ay;
  ax.log = chart.log_x;
  ay.log = chart.log_y;
  std::vector<double> xs, ys;
  bool any_histogram = false;
  for (const Series& s : chart.series) {
    const double half = s.histogram ? bar_width(s) / 2 : 0;
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!ax.valid(s.x[i]) || !ay.valid(s.y[i])) continue;
      xs.push_back(s.x[i] - half), xs.push_back(s.x[i] + half);
      ys.push_back(s.y[i]);
    }
    any_histogram = any_histogram || s.histogram;
  }
  LOOM_CHECK(!xs.empty(), "plot: no finite point to draw",
             chart.log_x || chart.log_y ? " (a log axis needs values > 0)" : "");
  const bool any_points = std::any_of(chart.series.begin(), chart.series.end(), [](const Series& s) { return s.points; });
  fit_axis(ax, xs, any_points ? 0.05 : 0, false);
  fit_axis(ay, ys, 0.05, any_histogram);

  // Layout: the margins make room for the title, the labels and the widest tick label.
  const double tick_scale = 1.5, label_scale = 2, title_scale = 2;
  double widest_tick = 0;
  for (double t : ay.ticks) widest_tick = std::max(widest_tick, Canvas::text_width(tick_label(ay, t), tick_scale));
  const bool has_ylabel = !chart.ylabel.empty();
  const Rect plot{22 + (has_ylabel ? kGlyphHeight * label_scale + 14 : 0) + widest_tick, 50, chart.width - 25.0,
                  chart.height - (chart.xlabel.empty() ? 40.0 : 70.0)};
  auto px = [&](double v) { return plot.x0 + (ax.to_axis(v) - ax.lo) / (ax.hi - ax.lo) * (plot.x1 - plot.x0); };
  auto py = [&](double v) { return plot.y1 - (ay.to_axis(v) - ay.lo) / (ay.hi - ay.lo) * (plot.y1 - plot.y0); };

  Canvas c(chart.width, chart.height);
  for (double t : ax.ticks) {
    const double x = plot.x0 + (t - ax.lo) / (ax.hi - ax.lo) * (plot.x1 - plot.x0);
    c.fill_rect({x - 0.5, plot.y0, x + 0.5, plot.y1}, kGrid);
    c.fill_rect({x - 0.5, plot.y1, x + 0.5, plot.y1 + 5}, kFrame);
    const std::string label = tick_label(ax, t);
    c.text(x - Canvas::text_width(label, tick_scale) / 2, plot.y1 + 9, label, tick_scale, kInk);
  }
  for (double t : ay.ticks) {
    const double y = plot.y1 - (t - ay.lo) / (ay.hi - ay.lo) * (plot.y1 - plot.y0);
    c.fill_rect({plot.x0, y - 0.5, plot.x1, y + 0.5}, kGrid);
    c.fill_rect({plot.x0 - 5, y - 0.5, plot.x0, y + 0.5}, kFrame);
    const std::string label = tick_label(ay, t);
    c.text(plot.x0 - 9 - Canvas::text_width(label, tick_scale), y - kGlyphHeight * tick_scale / 2, label, tick_scale,
           kInk);
  }

  // Histograms first (translucent bars under an outline), then the lines on top.
  const double base = ay.log ? plot.y1 : py(0);
  for (size_t k = 0; k < chart.series.size(); ++k) {
    const Series& s = chart.series[k];
    if (!s.histogram) continue;
    const Rgb col = kPalette[k % std::size(kPalette)];
    const double half = bar_width(s) / 2;
    std::vector<std::pair<double, double>> outline;
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!ax.valid(s.x[i]) || !ay.valid(s.y[i])) continue;
      const double l = px(s.x[i] - half), r = px(s.x[i] + half), top = py(s.y[i]);
      c.fill_rect({l, top, r, base}, col, 0.35);
      if (outline.empty()) outline.push_back({l, base});
      outline.push_back({l, top});
      outline.push_back({r, top});
    }
    if (!outline.empty()) outline.push_back({outline.back().first, base});
    c.polyline(outline, 1.5, col, plot);
  }
  for (size_t k = 0; k < chart.series.size(); ++k) {
    const Series& s = chart.series[k];
    if (!s.points) continue;
    const Rgb col = kPalette[k % std::size(kPalette)];
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!ax.valid(s.x[i]) || !ay.valid(s.y[i])) continue;
      const double x = px(s.x[i]), y = py(s.y[i]);
      if (x < plot.x0 || x > plot.x1 || y < plot.y0 || y > plot.y1) continue;
      c.fill_rect({x - 1.5, y - 1.5, x + 1.5, y + 1.5}, col, 0.5);
    }
  }
  for (size_t k = 0; k < chart.series.size(); ++k) {
    const Series& s = chart.series[k];
    if (s.histogram || s.points) continue;
    std::vector<std::pair<double, double>> run;  // a stretch of valid points; an invalid one breaks the line
    for (size_t i = 0; i <= s.x.size(); ++i) {
      if (i < s.x.size() && ax.valid(s.x[i]) && ay.valid(s.y[i])) {
        run.push_back({px(s.x[i]), py(s.y[i])});
        continue;
      }
      c.polyline(run, 2.5, kPalette[k % std::size(kPalette)], plot);
      run.clear();
    }
  }

  // Frame, title, axis labels.
  c.fill_rect({plot.x0 - 0.5, plot.y0 - 0.5, plot.x1 + 0.5, plot.y0 + 0.5}, kFrame);
  c.fill_rect({plot.x0 - 0.5, plot.y1 - 0.5, plot.x1 + 0.5, plot.y1 + 0.5}, kFrame);
  c.fill_rect({plot.x0 - 0.5, plot.y0 - 0.5, plot.x0 + 0.5, plot.y1 + 0.5}, kFrame);
  c.fill_rect({plot.x1 - 0.5, plot.y0 - 0.5, plot.x1 + 0.5, plot.y1 + 0.5}, kFrame);
  c.text((chart.width - Canvas::text_width(chart.title, title_scale)) / 2, 16, chart.title, title_scale, kInk);
  if (!chart.xlabel.empty())
    c.text((plot.x0 + plot.x1 - Canvas::text_width(chart.xlabel, label_scale)) / 2, chart.height - 28.0,
           chart.xlabel, label_scale, kInk);
  if (has_ylabel)
    c.text(14, (plot.y0 + plot.y1 + Canvas::text_width(chart.ylabel, label_scale)) / 2, chart.ylabel, label_scale,
           kInk, true);

  // Legend in the top-right corner of the plot, over a translucent white box.
  std::vector<size_t> named;
  for (size_t k = 0; k < chart.series.size(); ++k)
    if (!chart.series[k].label.empty()) named.push_back(k);
  if (!named.empty()) {
    const double row = kGlyphHeight * tick_scale + 10, sample = 28;
    double widest = 0;
    for (size_t k : named) widest = std::max(widest, Canvas::text_width(chart.series[k].label, tick_scale));
    // The corner of the plot whose box covers the fewest data points.
    const double bw = widest + sample + 20, bh = 6 + row * named.size();
    Rect box{};
    size_t least = SIZE_MAX;
    for (const auto& [left, top] : {std::pair{false, true}, {true, true}, {false, false}, {true, false}}) {
      const double x0 = left ? plot.x0 + 10 : plot.x1 - 10 - bw, y0 = top ? plot.y0 + 10 : plot.y1 - 10 - bh;
      const Rect cand{x0, y0, x0 + bw, y0 + bh};
      size_t covered = 0;
      for (const Series& s : chart.series)
        for (size_t i = 0; i < s.x.size(); ++i) {
          if (!ax.valid(s.x[i]) || !ay.valid(s.y[i])) continue;
          const double x = px(s.x[i]), y = py(s.y[i]);
          covered += x >= cand.x0 && x <= cand.x1 && y >= cand.y0 && y <= cand.y1;
        }
      if (covered < least) least = covered, box = cand;
    }
    c.fill_rect(box, {255, 255, 255}, 0.85);
    c.polyline({{box.x0, box.y0}, {box.x1, box.y0}, {box.x1, box.y1}, {box.x0, box.y1}, {box.x0, box.y0}}, 1, kGrid,
               {0, 0, static_cast<double>(chart.width), static_cast<double>(chart.height)});
    for (size_t j = 0; j < named.size(); ++j) {
      const size_t k = named[j];
      const Rgb col = kPalette[k % std::size(kPalette)];
      const double y = box.y0 + 8 + row * j + kGlyphHeight * tick_scale / 2;
      if (chart.series[k].histogram)
        c.fill_rect({box.x0 + 8, y - 5, box.x0 + 8 + sample, y + 5}, col, 0.6);
      else if (chart.series[k].points)
        c.fill_rect({box.x0 + 8 + sample / 2 - 3, y - 3, box.x0 + 8 + sample / 2 + 3, y + 3}, col, 0.8);
      else
        c.polyline({{box.x0 + 8, y}, {box.x0 + 8 + sample, y}}, 2.5, col, box);
      c.text(box.x0 + sample + 16, y - kGlyphHeight * tick_scale / 2, chart.series[k].label, tick_scale, kInk);
    }
  }
  c.save(path);
}

}  // namespace loom::plot
