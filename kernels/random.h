// Random fills from the counter-based Philox stream (kernels/philox.h): value i
// depends only on (seed, offset, i), so every backend draws the same numbers.
#pragma once

#include "kernels/dispatch.h"

namespace loom {
// Where a fill starts in its stream: Philox block `offset`, plus, in a CUDA
// graph, the value of the device word *shift, which the graph sets anew before
// each replay (kernels/graph.h capture_word); null outside graphs (and always on the CPU).
struct PhiloxOffset {
  uint64_t offset = 0;
  const uint64_t* shift = nullptr;
  PhiloxOffset(uint64_t o = 0, const uint64_t* s = nullptr) : offset(o), shift(s) {}  // NOLINT: implicit from a plain offset
};
}  // namespace loom

#define LOOM_RANDOM_API                                                                      \
  /* out[i] = lo + (hi - lo) * u_i, u_i uniform in (0, 1] */                                  \
  void uniform(const KernelCtx& k, DType dt, void* out, int64_t n, uint64_t seed,          \
               PhiloxOffset offset, double lo, double hi);                                       \
  void normal(const KernelCtx& k, DType dt, void* out, int64_t n, uint64_t seed,           \
              PhiloxOffset offset, double mean, double stddev);                                   \
  /* out[i] = u_i <= p[i] ? 1 : 0; p has n elements of dtype dt */                             \
  void bernoulli(const KernelCtx& k, DType dt, const void* p, void* out, int64_t n,        \
                 uint64_t seed, PhiloxOffset offset);

LOOM_DECLARE_KERNELS(LOOM_CUDA_RANDOM, LOOM_RANDOM_API)
