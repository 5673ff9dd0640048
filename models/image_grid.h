// Sample grids: a batch of images tiled into one PNG, as torchvision's
// make_grid + save_image lay it out (row-major tiles, `padding` black pixels
// between and around them).
#pragma once

#include <string>

#include "autograd/loom.h"

namespace loom {

// The value range of the images, which maps linearly to 0..255 (values outside
// are clamped, NaN is 0). It has no default because it depends on the model's
// output: {0, 1} for sigmoid/Bernoulli outputs (the VAE), {-1, 1} for tanh
// outputs (DCGAN-style generators, the classifier's normalized data) — a tanh
// image written as [0, 1] loses its whole negative half to the clamp.
// A model states its range in DataSpec::lo/hi (models/model.h).
struct PixelRange {
  double lo, hi;
};

struct GridOptions {
  int64_t nrow = 8;        // images per row of the grid
  int64_t padding = 2;     // black pixels between and around the tiles
  int64_t upscale = 1;     // nearest-neighbour enlargement of the whole grid, for tiny images
};

// The most pixels on a side of a grid PNG loom writes (a 32768 × 32768 RGB grid
// is 3 GiB in memory).
inline constexpr int64_t kMaxGridSide = 32768;

// Checks that n images of h × w laid out by o make a picture of at most
// kMaxGridSide on a side, before any of them is made: a loom::Error
// "<what>: a W×H grid of n images is too large ..." otherwise.
void check_grid_size(const std::string& what, int64_t n, int64_t h, int64_t w, const GridOptions& o);

// images: [N, C, H, W] with C = 1 (grey PNG) or 3 (RGB PNG), any dtype or
// device, with values in `range`. Writes path as save_png does, or throws
// check_grid_size's loom::Error.
void save_image_grid(const Tensor& images, const std::string& path, PixelRange range, const GridOptions& o = {});

// Encodes h rows of w pixels of c interleaved 8-bit channels (1 grey, 3 RGB,
// 4 RGBA) as a PNG (stb_image_write) and writes it to path atomically
// (autograd/io/atomic_file.h): on any failure a loom::Error starting with `what`
// and naming the cause (ENOSPC, EROFS, ...), and an existing path is left whole.
void save_png(const std::string& path, const uint8_t* pixels, int64_t w, int64_t h, int64_t c, const std::string& what);

}  // namespace loom
