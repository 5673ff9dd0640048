// A program built on loom from outside its tree (tests/consumer/run.cmake builds it through
// add_subdirectory and against an install of loom): the README's fit_line example, one call into each
// part of loom::models that links something of its own (metrics; image grids, through stb).
#include <cmath>
#include <cstdio>

#include "autograd/loom.h"
#include "models/image_grid.h"
#include "models/metrics.h"

using namespace loom;

int main() {
  manual_seed(0);
  Tensor x = randn({256, 1});
  Tensor y = x * 3.0 - 1.0 + 0.1 * randn({256, 1});
  nn::Linear model(1, 1);
  optim::SGD opt(model.parameters(), {.lr = 0.1});  // designated initializers: C++20 came with loom::loom
  for (int step = 0; step < 200; ++step) {
    Tensor loss = mse_loss(model(x), y);
    opt.zero_grad();
    backward(loss);
    opt.step();
  }
  const double w = model.weight.item(), b = model.bias.item();
  const double d = models::frechet_distance(randn({64, 2}), randn({64, 2}));
  save_image_grid(rand({4, 1, 8, 8}), "consumer_grid.png", {0, 1});
  // LOOM_WITH_CUDA comes from loom's generated kernels/config.h, never from this project.
  std::printf("w = %.3f, b = %.3f, frechet = %.3f, cuda backend = %d\n", w, b, d, LOOM_WITH_CUDA);
  const bool ok = std::abs(w - 3.0) < 0.05 && std::abs(b + 1.0) < 0.05 && std::isfinite(d);
  std::puts(ok ? "loom consumer: ok" : "loom consumer: WRONG");
  return ok ? 0 : 1;
}
