// Private to the derive_*.cpp files: float64 options and disjoint random streams
// per experiment (their networks are nn::mlp).
#pragma once

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

}  // namespace loom::derive::training
