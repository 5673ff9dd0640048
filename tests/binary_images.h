// Binary images for the density-model tests (tests/test_likelihood_models.cpp,
// tests/test_nade.cpp): every image of a tiny raster, enumerated, as model input.
#pragma once

#include <vector>

#include "autograd/loom.h"

namespace loom::testing {

using Image = std::vector<int>;  // binary pixels, raster order

// Every binary image of n pixels, 2^n of them; image b has pixel i = bit n−1−i of b.
inline std::vector<Image> all_images(int n) {
  std::vector<Image> out;
  for (int b = 0; b < (1 << n); ++b) {
    Image im(n);
    for (int i = 0; i < n; ++i) im[i] = (b >> (n - 1 - i)) & 1;
    out.push_back(im);
  }
  return out;
}

// Images as float32 rows [count, n].
inline Tensor as_tensor(const std::vector<Image>& images) {
  std::vector<float> v;
  for (const Image& im : images) v.insert(v.end(), im.begin(), im.end());
  return from_vector(v, {static_cast<int64_t>(images.size()), static_cast<int64_t>(images[0].size())});
}

}  // namespace loom::testing
