#include "models/derive_training.h"

#include <cmath>

namespace loom::derive::training {

Mlp::Mlp(const std::vector<int64_t>& sizes, Activation activation, Generator& g) : activation_(std::move(activation)) {
  LOOM_CHECK(sizes.size() >= 2, "Mlp: needs at least an input and an output size");
  for (size_t l = 0; l + 1 < sizes.size(); ++l) {
    Tensor w = normal({sizes[l], sizes[l + 1]}, 0, 1 / std::sqrt(static_cast<double>(sizes[l])), f64(), &g);
    params_.push_back(w.requires_grad_());
    params_.push_back(zeros({sizes[l + 1]}, f64()).requires_grad_());
  }
}

Tensor Mlp::operator()(const Tensor& x) const {
  Tensor h = x;
  for (size_t l = 0; l < params_.size(); l += 2) {
    h = matmul(h, params_[l]) + params_[l + 1];
    if (l + 2 < params_.size()) h = activation_(h);
  }
  return h;
}

LocalAdam::LocalAdam(std::vector<Tensor> params, double lr, double beta1, double beta2, double eps)
    : lr(lr), params_(std::move(params)), beta1_(beta1), beta2_(beta2), eps_(eps) {
  for (const Tensor& p : params_) {
    m_.push_back(zeros_like(p));
    v_.push_back(zeros_like(p));
  }
}

void LocalAdam::step() {
  NoGrad ng;
  ++t_;
  const double c1 = 1 - std::pow(beta1_, static_cast<double>(t_));
  const double c2 = 1 - std::pow(beta2_, static_cast<double>(t_));
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor g = params_[i].grad();
    if (!g.defined()) continue;  // the parameter took no part in this loss
    m_[i].mul_(beta1_).add_(g, 1 - beta1_);
    v_[i].mul_(beta2_).add_(g * g, 1 - beta2_);
    params_[i].add_((m_[i] / c1) / (sqrt(v_[i] / c2) + eps_), -lr);
    params_[i].zero_grad();
  }
}

void LocalAdam::zero_grad() {
  for (Tensor& p : params_) p.zero_grad();
}

}  // namespace loom::derive::training
