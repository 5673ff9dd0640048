// Sample grids: a batch of images tiled into one PNG, as torchvision's
// make_grid + save_image lay it out (row-major tiles, `padding` black pixels
// between and around them).
#pragma once

#include <string>

#include "autograd/loom.h"

namespace loom {

struct GridOptions {
  int64_t nrow = 8;        // images per row of the grid
  int64_t padding = 2;     // black pixels between and around the tiles
  double lo = 0, hi = 1;   // this value range maps linearly to 0..255; values outside are clamped, NaN is 0
  int64_t upscale = 1;     // nearest-neighbour enlargement of the whole grid, for tiny images
};

// images: [N, C, H, W] with C = 1 (grey PNG) or 3 (RGB PNG), any dtype or
// device. Writes path or throws a loom::Error naming it.
void save_image_grid(const Tensor& images, const std::string& path, const GridOptions& o = {});

}  // namespace loom
