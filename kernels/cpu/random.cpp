// CPU reference for the random family (kernels/random.h).
#include "kernels/random.h"

#include <algorithm>
#include <cmath>

#include "kernels/philox.h"

namespace loom::kernels::cpu {
namespace {

// Each Philox block is computed once, for the per_block<T> uniforms it holds: f(i, len, u) gets
// elements i .. i + len − 1 of the stream in u. philox::uniform(seed, offset, i) defines element i
// alone and computes its whole block, so the element-wise loops paid a block per value (four times the
// work for float; Box-Muller's two uniforms per value twice that): the binarization of the batch was a
// fifth of a `bernoulli` step. The same numbers (tests/test_random.cpp checks them against philox::).
template <class T, class F>
void by_block(int64_t n, uint64_t seed, uint64_t offset, F&& f) {
  constexpr int64_t k = philox::per_block<T>;
  const int64_t blocks = (n + k - 1) / k;
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t b = 0; b < blocks; ++b) {
    const philox::U4 r = philox::block(seed, offset + static_cast<uint64_t>(b));
    T u[k];
    for (int64_t j = 0; j < k; ++j) u[j] = philox::unit_from_block<T>(r, static_cast<uint32_t>(j));
    f(b * k, std::min(k, n - b * k), u);
  }
}

template <class T>
void uniform_impl(T* o, int64_t n, uint64_t seed, uint64_t offset, double lo, double hi) {
  by_block<T>(n, seed, offset, [&](int64_t i, int64_t len, const T* u) {
    for (int64_t j = 0; j < len; ++j) o[i + j] = T(lo) + T(hi - lo) * u[j];
  });
}

// Element i is Box-Muller on the pair of uniforms (2⌊i/2⌋, 2⌊i/2⌋ + 1), which share i's block
// (philox::normal); r = √(−2 log u₁) is computed once for the pair's cosine and sine.
template <class T>
void normal_impl(T* o, int64_t n, uint64_t seed, uint64_t offset, double mean, double stddev) {
  by_block<T>(n, seed, offset, [&](int64_t i, int64_t len, const T* u) {
    for (int64_t j = 0; j < len; j += 2) {
      const T r = std::sqrt(T(-2) * std::log(u[j])), theta = T(6.283185307179586476925) * u[j + 1];
      o[i + j] = T(mean) + T(stddev) * (r * std::cos(theta));
      if (j + 1 < len) o[i + j + 1] = T(mean) + T(stddev) * (r * std::sin(theta));
    }
  });
}

template <class T>
void bernoulli_impl(const T* p, T* o, int64_t n, uint64_t seed, uint64_t offset) {
  by_block<T>(n, seed, offset, [&](int64_t i, int64_t len, const T* u) {
    for (int64_t j = 0; j < len; ++j) o[i + j] = u[j] <= p[i + j] ? T(1) : T(0);
  });
}

}  // namespace

// Host tensors are never part of a CUDA graph: the offset has no device shift.
static uint64_t host_offset(PhiloxOffset o, const char* op) {
  LOOM_CHECK(o.shift == nullptr, op, ": a device-shifted Philox offset (CUDA graphs) on the CPU");
  return o.offset;
}

void uniform(const KernelCtx&, DType dt, void* out, int64_t n, uint64_t seed, PhiloxOffset offset, double lo,
             double hi) {
  LOOM_FLOAT_SWITCH(dt, T, uniform_impl<T>(static_cast<T*>(out), n, seed, host_offset(offset, "uniform"), lo, hi));
}

void normal(const KernelCtx&, DType dt, void* out, int64_t n, uint64_t seed, PhiloxOffset offset, double mean,
            double stddev) {
  LOOM_FLOAT_SWITCH(dt, T,
                    normal_impl<T>(static_cast<T*>(out), n, seed, host_offset(offset, "normal"), mean, stddev));
}

void bernoulli(const KernelCtx&, DType dt, const void* p, void* out, int64_t n, uint64_t seed, PhiloxOffset offset) {
  LOOM_FLOAT_SWITCH(dt, T, bernoulli_impl<T>(static_cast<const T*>(p), static_cast<T*>(out), n, seed,
                                             host_offset(offset, "bernoulli")));
}

}  // namespace loom::kernels::cpu
