// Private to the derive_*.cpp files: the little training machinery they need
// before autograd/nn and autograd/optim exist. A small MLP written with raw ops
// and a plain Adam step done in place under NoGrad.
#pragma once

#include <functional>
#include <vector>

#include "autograd/loom.h"

namespace loom::derive::training {

inline TensorOptions f64() { return TensorOptions{DType::Float64}; }

// The k-th of disjoint random streams under one seed (Philox offsets 2^40 blocks
// apart), one per experiment: resizing one experiment leaves the others' draws as they were.
inline Generator stream(uint64_t seed, uint64_t k) {
  Generator g;
  g.set_state(seed, k << 40);
  return g;
}

// x [N, sizes.front()] → [N, sizes.back()]: affine layers with `activation`
// between them and a linear output. Weights ~ N(0, 1/fan_in), biases 0.
class Mlp {
 public:
  using Activation = std::function<Tensor(const Tensor&)>;
  Mlp(const std::vector<int64_t>& sizes, Activation activation, Generator& g);
  Tensor operator()(const Tensor& x) const;
  const std::vector<Tensor>& parameters() const { return params_; }

 private:
  std::vector<Tensor> params_;  // W0, b0, W1, b1, ...
  Activation activation_;
};

// Adam (Kingma & Ba 2015) on a fixed list of leaves:
//   m ← β1 m + (1 − β1) g,  v ← β2 v + (1 − β2) g²,
//   θ ← θ − lr · (m / (1 − β1^t)) / (√(v / (1 − β2^t)) + ε).
// step() reads each parameter's accumulated .grad() and zeroes it.
class LocalAdam {
 public:
  LocalAdam(std::vector<Tensor> params, double lr, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8);
  void step();
  void zero_grad();  // drops gradients accumulated by a loss this optimizer should not follow
  double lr;

 private:
  std::vector<Tensor> params_, m_, v_;
  double beta1_, beta2_, eps_;
  int64_t t_ = 0;
};

}  // namespace loom::derive::training
