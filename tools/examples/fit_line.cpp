// The README's example: fit y = 3x − 1 with a one-feature linear model.
#include <cmath>
#include <cstdio>

#include "autograd/loom.h"

using namespace loom;

int main() {
  manual_seed(0);
  Tensor x = randn({256, 1});
  Tensor y = x * 3.0 - 1.0 + 0.1 * randn({256, 1});  // noisy targets
  nn::Linear model(1, 1);
  optim::SGD opt(model.parameters(), {.lr = 0.1});
  for (int step = 0; step < 200; ++step) {
    Tensor loss = mse_loss(model(x), y);  // recorded on the tape
    opt.zero_grad();
    backward(loss);                       // one reverse sweep
    opt.step();                           // one fused update
    if (step % 50 == 0) std::printf("step %3d  loss %.4f\n", step, loss.item());
  }
  std::printf("w = %.3f, b = %.3f\n", model.weight.item(), model.bias.item());
  return std::abs(model.weight.item() - 3) < 0.05 && std::abs(model.bias.item() + 1) < 0.05 ? 0 : 1;
}
