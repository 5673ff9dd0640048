// CPU reference for the random family (kernels/random.h).
#include "kernels/random.h"

#include "kernels/philox.h"

namespace loom::kernels::cpu {
namespace {

template <class T>
void uniform_impl(T* o, int64_t n, uint64_t seed, uint64_t offset, double lo, double hi) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) o[i] = T(lo) + T(hi - lo) * philox::uniform<T>(seed, offset, i);
}

template <class T>
void normal_impl(T* o, int64_t n, uint64_t seed, uint64_t offset, double mean, double stddev) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) o[i] = T(mean) + T(stddev) * philox::normal<T>(seed, offset, i);
}

template <class T>
void bernoulli_impl(const T* p, T* o, int64_t n, uint64_t seed, uint64_t offset) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) o[i] = philox::uniform<T>(seed, offset, i) <= p[i] ? T(1) : T(0);
}

}  // namespace

void uniform(const KernelCtx&, DType dt, void* out, int64_t n, uint64_t seed, uint64_t offset, double lo,
             double hi) {
  LOOM_FLOAT_SWITCH(dt, T, uniform_impl<T>(static_cast<T*>(out), n, seed, offset, lo, hi));
}

void normal(const KernelCtx&, DType dt, void* out, int64_t n, uint64_t seed, uint64_t offset, double mean,
            double stddev) {
  LOOM_FLOAT_SWITCH(dt, T, normal_impl<T>(static_cast<T*>(out), n, seed, offset, mean, stddev));
}

void bernoulli(const KernelCtx&, DType dt, const void* p, void* out, int64_t n, uint64_t seed, uint64_t offset) {
  LOOM_FLOAT_SWITCH(dt, T, bernoulli_impl<T>(static_cast<const T*>(p), static_cast<T*>(out), n, seed, offset));
}

}  // namespace loom::kernels::cpu
