// Sample grids: geometry, value mapping and errors, read back with stb_image.
#include <stb_image.h>

#include <cmath>
#include <limits>

#include "models/image_grid.h"
#include "tests/gradcheck.h"
#include "tests/temp_dir.h"

using namespace loom;
using namespace loom::testing;

namespace {
struct Png {
  int w = 0, h = 0, c = 0;
  std::vector<unsigned char> px;
  int at(int x, int y, int ch) const { return px[(y * w + x) * c + ch]; }
};
Png read_png(const std::string& path) {
  Png p;
  unsigned char* d = stbi_load(path.c_str(), &p.w, &p.h, &p.c, 0);
  EXPECT_TRUE(d) << path << ": " << stbi_failure_reason();
  if (d) p.px.assign(d, d + p.w * p.h * p.c);
  stbi_image_free(d);
  return p;
}
}  // namespace

TEST(ImageGrid, RgbLayoutPaddingAndUpscale) {
  // 5 RGB images of 2×3 in rows of 3 with padding 1: tiles of 3×4, a 7×13 grid,
  // 14×26 after a 2× upscale. Image k, channel ch, pixel (y, x) = (k + 1)·0.1 + ch·0.2 + y·0.05 + x·0.01.
  const int64_t n = 5, c = 3, h = 2, w = 3;
  std::vector<double> v;
  for (int64_t k = 0; k < n; ++k)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x) v.push_back((k + 1) * 0.1 + ch * 0.2 + y * 0.05 + x * 0.01);
  TempDir dir;
  std::string path = dir / "grid.png";
  save_image_grid(from_vector(v, {n, c, h, w}), path, {0, 1}, {.nrow = 3, .padding = 1, .upscale = 2});
  Png p = read_png(path);
  ASSERT_EQ(p.w, 26);
  ASSERT_EQ(p.h, 14);
  ASSERT_EQ(p.c, 3);
  for (int64_t k = 0; k < n; ++k)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x) {
          int gy = int((k / 3) * 3 + 1 + y), gx = int((k % 3) * 4 + 1 + x);
          float value = float((k + 1) * 0.1 + ch * 0.2 + y * 0.05 + x * 0.01);  // stored as float32
          int expected = int(std::lround(255 * double(value)));
          for (int dy = 0; dy < 2; ++dy)
            for (int dx = 0; dx < 2; ++dx) EXPECT_EQ(p.at(2 * gx + dx, 2 * gy + dy, int(ch)), expected);
        }
  // Padding rows/columns and the unused sixth tile stay black.
  for (int x = 0; x < 26; ++x) EXPECT_EQ(p.at(x, 0, 0), 0);
  for (int y = 0; y < 14; ++y) EXPECT_EQ(p.at(2 * 4, y, 1), 0);
  EXPECT_EQ(p.at(2 * (2 * 4 + 1), 2 * (3 + 1), 2), 0);
}

TEST(ImageGrid, GreyValueRangeClampAndNaN) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Tensor x =
      from_vector(std::vector<double>{-1, 0, 1, -5, 7, nan, 0.5, -0.5}, {2, 1, 1, 4}, TensorOptions{DType::Float64});
  TempDir dir;
  std::string path = dir / "g.png";
  save_image_grid(x, path, {-1, 1}, {.nrow = 1, .padding = 0});
  Png p = read_png(path);
  ASSERT_EQ(p.w, 4);
  ASSERT_EQ(p.h, 2);
  ASSERT_EQ(p.c, 1);
  // round(255 · (clamp(v, −1, 1) + 1) / 2): −1 → 0, 0 → 128 (127.5 rounds up), 1 → 255,
  // −5 → 0, 7 → 255, NaN → 0, 0.5 → 191, −0.5 → 64.
  EXPECT_EQ(p.px, (std::vector<unsigned char>{0, 128, 255, 0, 255, 0, 191, 64}));
  // nrow larger than N: one row of N tiles.
  save_image_grid(x, path, {-1, 1}, {.nrow = 10, .padding = 3});
  p = read_png(path);
  EXPECT_EQ(p.w, 2 * (4 + 3) + 3);
  EXPECT_EQ(p.h, 1 + 2 * 3);
}

// The full disk: samples.png was left truncated and the run went on. Now the
// write fails whole, naming the file and the cause, and the previous grid stays.
TEST(ImageGrid, AFailedWriteKeepsThePreviousGrid) {
  TempDir dir;
  const std::string path = dir / "samples.png";
  save_image_grid(zeros({1, 1, 4, 4}), path, {0, 1});
  const std::string before = read_bytes(path);
  Generator g(3);
  const Tensor noise = rand({16, 3, 28, 28}, {}, &g);  // incompressible: far more than the limit's 4 KiB
  expect_error([&] { with_file_size_limit(4096, [&] { save_image_grid(noise, path, {0, 1}); }); },
               {"save_image_grid: " + path, "writing", "File too large", "is untouched"});
  EXPECT_EQ(read_bytes(path), before);
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"samples.png"});
  Png p = read_png(path);
  EXPECT_EQ(p.w, 4 + 2 * 2);
}

TEST(ImageGrid, RefusesBadShapesOptionsAndPaths) {
  TempDir dir;
  std::string path = dir / "x.png";
  expect_error([&] { save_image_grid(zeros({2, 4, 3, 3}), path, {0, 1}); },
               {"save_image_grid: " + path, "[2, 4, 3, 3] must be [N, C, H, W] with C = 1 or 3"});
  expect_error([&] { save_image_grid(zeros({3, 3, 3}), path, {0, 1}); }, {"must be [N, C, H, W]"});
  expect_error([&] { save_image_grid(Tensor(), path, {0, 1}); }, {"undefined"});
  expect_error([&] { save_image_grid(zeros({0, 1, 3, 3}), path, {0, 1}); }, {"are empty"});
  expect_error([&] { save_image_grid(zeros({1, 1, 3, 3}), path, {0, 1}, {.nrow = 0}); }, {"must be positive"});
  expect_error([&] { save_image_grid(zeros({1, 1, 3, 3}), path, {0, 1}, {.padding = -1}); }, {"non-negative"});
  expect_error([&] { save_image_grid(zeros({1, 1, 3, 3}), path, {1, 1}); }, {"not a finite interval"});
  expect_error([&] { save_image_grid(zeros({1, 1, 3, 3}), path, {0, 1}, {.upscale = 100000}); }, {"too large"});
  std::string bad = dir / "missing/x.png";
  expect_error([&] { save_image_grid(zeros({1, 1, 3, 3}), bad, {0, 1}); },
               {bad, "cannot create the temporary file", "No such file"});
  EXPECT_TRUE(dir.entries().empty());
}
