#include "models/image_grid.h"

#include <stb_image_write.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "autograd/io/atomic_file.h"

namespace loom {

void check_grid_size(const std::string& what, int64_t n, int64_t h, int64_t w, const GridOptions& o) {
  LOOM_CHECK(n >= 1 && h >= 1 && w >= 1, what, ": ", n, " images of ", w, "×", h, " make no grid");
  LOOM_CHECK(o.nrow >= 1 && o.padding >= 0 && o.upscale >= 1, what, ": nrow (", o.nrow, ") and upscale (", o.upscale,
             ") must be positive and padding (", o.padding, ") non-negative");
  // In double: the sizes of an absurd n would overflow int64, and only the comparison matters.
  const double cols = static_cast<double>(std::min(o.nrow, n)), rows = std::ceil(static_cast<double>(n) / cols);
  const double pad = static_cast<double>(o.padding), up = static_cast<double>(o.upscale);
  const double out_w = (cols * (static_cast<double>(w) + pad) + pad) * up,
               out_h = (rows * (static_cast<double>(h) + pad) + pad) * up;
  LOOM_CHECK(out_w <= kMaxGridSide && out_h <= kMaxGridSide, what, ": a ", out_w, "×", out_h, " grid of ", n,
             " images is too large (at most ", kMaxGridSide, " pixels on a side)");
}

void save_image_grid(const Tensor& images, const std::string& path, PixelRange range, const GridOptions& o) {
  const std::string what = "save_image_grid: " + path;
  LOOM_CHECK(images.defined() && images.dim() == 4 && (images.size(1) == 1 || images.size(1) == 3), what,
             ": images ", images.defined() ? str(images.shape()) : "undefined",
             " must be [N, C, H, W] with C = 1 or 3");
  const int64_t n = images.size(0), c = images.size(1), h = images.size(2), w = images.size(3);
  LOOM_CHECK(n >= 1 && h >= 1 && w >= 1, what, ": images ", images.shape(), " are empty");
  check_grid_size(what, n, h, w, o);
  LOOM_CHECK(std::isfinite(range.lo) && std::isfinite(range.hi) && range.lo < range.hi, what, ": value range [",
             range.lo, ", ", range.hi, "] is not a finite interval");

  // Grid geometry: cols × rows tiles of (h + padding) × (w + padding), plus one
  // padding strip on the far edges.
  const int64_t cols = std::min(o.nrow, n), rows = (n + cols - 1) / cols;
  const int64_t grid_h = rows * (h + o.padding) + o.padding, grid_w = cols * (w + o.padding) + o.padding;
  const int64_t out_h = grid_h * o.upscale, out_w = grid_w * o.upscale;

  std::vector<float> v = images.to_vector<float>();
  std::vector<unsigned char> grid(grid_h * grid_w * c, 0);
  const double scale = 255.0 / (range.hi - range.lo);
  for (int64_t k = 0; k < n; ++k) {
    const int64_t y0 = (k / cols) * (h + o.padding) + o.padding, x0 = (k % cols) * (w + o.padding) + o.padding;
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x) {
          double e = v[((k * c + ch) * h + y) * w + x];
          // byte = round(255 · (clamp(e, lo, hi) − lo) / (hi − lo)); NaN would be UB to convert.
          double b = std::isnan(e) ? 0.0 : std::round((std::clamp(e, range.lo, range.hi) - range.lo) * scale);
          grid[((y0 + y) * grid_w + x0 + x) * c + ch] = static_cast<unsigned char>(b);
        }
  }
  std::vector<unsigned char> enlarged;
  const unsigned char* pixels = grid.data();
  if (o.upscale > 1) {
    enlarged.resize(out_h * out_w * c);
    for (int64_t y = 0; y < out_h; ++y)
      for (int64_t x = 0; x < out_w; ++x)
        std::memcpy(&enlarged[(y * out_w + x) * c], &grid[((y / o.upscale) * grid_w + x / o.upscale) * c], c);
    pixels = enlarged.data();
  }
  save_png(path, pixels, out_w, out_h, c, what);
}

void save_png(const std::string& path, const uint8_t* pixels, int64_t w, int64_t h, int64_t c, const std::string& what) {
  LOOM_CHECK(w >= 1 && h >= 1 && w <= INT32_MAX / 4 && h <= INT32_MAX / (w * 4) && c >= 1 && c <= 4, what,
             ": cannot encode a ", w, "×", h, " PNG of ", c, " channels");
  // Encoded in memory, so that every byte reaches the disk through one checked, atomic write.
  std::string png;
  auto append = [](void* out, void* data, int n) { static_cast<std::string*>(out)->append(static_cast<char*>(data), n); };
  const int ok = stbi_write_png_to_func(append, &png, static_cast<int>(w), static_cast<int>(h), static_cast<int>(c),
                                        pixels, static_cast<int>(w * c));
  LOOM_CHECK(ok, what, ": encoding the PNG failed (out of memory?)");
  write_file_atomically(path, png, what);
}

}  // namespace loom
