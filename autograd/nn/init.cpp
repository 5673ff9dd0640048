#include <cmath>

#include "autograd/nn.h"

namespace loom::nn::init {

std::pair<int64_t, int64_t> fans(const Tensor& w) {
  LOOM_CHECK(w.dim() >= 2, "init: fan computation needs a weight with at least 2 dims, got ", w.shape());
  int64_t receptive = 1;
  for (int64_t i = 2; i < w.dim(); ++i) receptive *= w.shape()[i];
  return {w.shape()[1] * receptive, w.shape()[0] * receptive};
}

void uniform_(Tensor& w, double lo, double hi, Generator* g) {
  NoGrad ng;
  w.copy_(uniform(w.shape(), lo, hi, w.options(), g));
}

void normal_(Tensor& w, double mean, double stddev, Generator* g) {
  NoGrad ng;
  w.copy_(normal(w.shape(), mean, stddev, w.options(), g));
}

void zeros_(Tensor& w) {
  NoGrad ng;
  w.fill_(0);
}

void ones_(Tensor& w) {
  NoGrad ng;
  w.fill_(1);
}

void xavier_uniform_(Tensor& w, double gain, Generator* g) {
  auto [in, out] = fans(w);
  const double a = gain * std::sqrt(6.0 / static_cast<double>(in + out));
  uniform_(w, -a, a, g);
}

void xavier_normal_(Tensor& w, double gain, Generator* g) {
  auto [in, out] = fans(w);
  normal_(w, 0, gain * std::sqrt(2.0 / static_cast<double>(in + out)), g);
}

void kaiming_uniform_(Tensor& w, double gain, Generator* g) {
  const double a = gain * std::sqrt(3.0 / static_cast<double>(fans(w).first));
  uniform_(w, -a, a, g);
}

void kaiming_normal_(Tensor& w, double gain, Generator* g) {
  normal_(w, 0, gain / std::sqrt(static_cast<double>(fans(w).first)), g);
}

}  // namespace loom::nn::init
