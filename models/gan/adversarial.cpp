#include "models/gan/adversarial.h"

#include <cmath>

namespace loom::models::gan {

GeneratorLoss parse_generator_loss(const std::string& name) {
  if (name == "minimax") return GeneratorLoss::Minimax;
  if (name == "nonsaturating") return GeneratorLoss::NonSaturating;
  throw Error(str("gan: unknown generator loss '", name, "' (minimax or nonsaturating)"));
}

Tensor discriminator_loss(const Tensor& real_logits, const Tensor& fake_logits) {
  return mean(softplus(-real_logits)) + mean(softplus(fake_logits));
}

Tensor matching_aware_discriminator_loss(const Tensor& real_right, const Tensor& real_wrong, const Tensor& fake_right) {
  // −log σ(l) = softplus(−l), −log(1 − σ(l)) = softplus(l).
  return mean(softplus(-real_right)) + 0.5 * (mean(softplus(real_wrong)) + mean(softplus(fake_right)));
}

Tensor generator_loss(const Tensor& fake_logits, GeneratorLoss kind) {
  return kind == GeneratorLoss::Minimax ? -mean(softplus(fake_logits)) : mean(softplus(-fake_logits));
}

void dcgan_init(nn::Module& root) {
  root.apply([](nn::Module& m) {
    auto init = [](Tensor& weight, Tensor& bias, double mean) {
      nn::init::normal_(weight, mean, 0.02);
      if (bias.defined()) nn::init::zeros_(bias);
    };
    if (auto* l = dynamic_cast<nn::Linear*>(&m)) init(l->weight, l->bias, 0);
    if (auto* c = dynamic_cast<nn::Conv2d*>(&m)) init(c->weight, c->bias, 0);
    if (auto* t = dynamic_cast<nn::ConvTranspose2d*>(&m)) init(t->weight, t->bias, 0);
    if (auto* bn = dynamic_cast<nn::BatchNorm*>(&m)) init(bn->weight, bn->bias, 1);
  });
}

ModeCoverage mode_coverage(const Tensor& samples, data::Toy2d kind) {
  const data::ToyModes modes = data::toy_2d_modes(kind);
  LOOM_CHECK(!modes.centres.empty(), "mode_coverage: this 2-D set is not a Gaussian mixture");
  LOOM_CHECK(samples.dim() == 2 && samples.size(1) == 2 && samples.size(0) >= 1,
             "mode_coverage: expected samples [N, 2], got ", samples.shape());
  const std::vector<double> xy = samples.to(Device::cpu()).to(DType::Float64).to_vector<double>();
  const int64_t n = samples.size(0);
  std::vector<int64_t> per_mode(modes.centres.size(), 0);
  int64_t good = 0;
  for (int64_t i = 0; i < n; ++i) {
    size_t best = 0;
    double best_d2 = INFINITY;
    for (size_t k = 0; k < modes.centres.size(); ++k) {
      const double dx = xy[2 * i] - modes.centres[k][0], dy = xy[2 * i + 1] - modes.centres[k][1];
      if (dx * dx + dy * dy < best_d2) best_d2 = dx * dx + dy * dy, best = k;
    }
    if (std::sqrt(best_d2) <= 3 * modes.sigma) ++good, ++per_mode[best];
  }
  ModeCoverage c;
  for (int64_t count : per_mode) c.modes_covered += count >= 0.01 * static_cast<double>(n) ? 1 : 0;
  c.high_quality = static_cast<double>(good) / static_cast<double>(n);
  return c;
}

}  // namespace loom::models::gan
