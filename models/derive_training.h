// Private to the derive_*.cpp files: float64 options, disjoint random streams
// per experiment, and the MLPs they train (built from nn layers).
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

// x [N, sizes.front()] → [N, sizes.back()]: nn::Linear layers with `activation`
// between them and a linear output; weights ~ N(0, 1/fan_in) from g, biases 0.
std::shared_ptr<nn::Sequential> mlp(const std::vector<int64_t>& sizes,
                                    const std::function<Tensor(const Tensor&)>& activation, Generator& g);

}  // namespace loom::derive::training
