// CUDA kernels for the random family (kernels/random.h): uniform, normal and
// bernoulli fills from the counter-based Philox stream of kernels/philox.h.
//
//   uniform    out[i] = lo + (hi − lo)·u_i,     u_i uniform in (0, 1]
//   normal     out[i] = mean + stddev·z_i,      z_i from Box-Muller on (u_2i', u_2i'+1)
//   bernoulli  out[i] = u_i ≤ p[i] ? 1 : 0
//
// Value i depends only on (seed, offset, i), so these kernels produce the CPU
// reference's numbers: uniform and bernoulli bit for bit (integer hashing, exact
// conversions, and add_rn/mul_rn so nvcc does not fuse lo + (hi − lo)·u into an
// FMA the CPU does not use); normal up to the last bits where CUDA's log, sin
// and cos round differently from libm.
//
// One variant: each thread computes one Philox block (ten rounds of 32-bit
// multiplies) and writes every value it yields (4 floats or 2 doubles, for
// uniform and normal alike since a Box-Muller pair never straddles a block),
// instead of recomputing the block per element as philox::uniform(i) would.
//
// Benchmark: no CUDA benchmark harness exists yet; profile with
//   nsys profile --stats=true ./build/tests/loom_cuda_tests --gtest_filter='CudaOps.Random*'
#include "kernels/random.h"

#include "kernels/cuda/launch.h"
#include "kernels/philox.h"

namespace loom::kernels::cuda {
namespace {

enum class Dist { Uniform, Normal, Bernoulli };

// Thread t handles block t of the stream: elements [t·P, t·P + P), P = per_block<T>.
// a, b: (lo, hi − lo) for Uniform, (mean, stddev) for Normal; p: Bernoulli's probabilities.
// offset + *shift (shift: a CUDA graph's device word, null outside graphs) is block 0's.
template <class T, Dist D>
__global__ void random_kernel(T* out, const T* p, int64_t n, uint64_t seed, uint64_t offset, const uint64_t* shift,
                              T a, T b) {
  constexpr uint32_t P = philox::per_block<T>;
  if (shift) offset += *shift;
  const int64_t blocks = (n + P - 1) / P;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; t < blocks; t += stride) {
    const philox::U4 r = philox::block(seed, offset + t);
#pragma unroll
    for (uint32_t e = 0; e < P; ++e) {
      const int64_t i = t * P + e;
      if (i >= n) break;
      if constexpr (D == Dist::Normal) {
        // Element i pairs uniforms 2(i/2) and 2(i/2)+1: values e&~1 and (e&~1)+1 of this block.
        const T u1 = philox::unit_from_block<T>(r, e & ~1u), u2 = philox::unit_from_block<T>(r, (e & ~1u) + 1);
        out[i] = add_rn(a, mul_rn(b, philox::box_muller(u1, u2, e % 2 == 1)));
      } else if constexpr (D == Dist::Uniform) {
        out[i] = add_rn(a, mul_rn(b, philox::unit_from_block<T>(r, e)));
      } else {
        out[i] = philox::unit_from_block<T>(r, e) <= p[i] ? T(1) : T(0);
      }
    }
  }
}

template <class T, Dist D>
void launch(const KernelCtx& k, const char* name, T* out, const T* p, int64_t n, uint64_t seed, PhiloxOffset offset,
            T a, T b) {
  if (n == 0) return;
  LaunchScope s(k, name);
  const int64_t blocks = (n + philox::per_block<T> - 1) / philox::per_block<T>;
  s.launch(random_kernel<T, D>, s.blocks(blocks), kThreads, out, p, n, seed, offset.offset, offset.shift, a, b);
}

}  // namespace

// The CPU computes T(lo) + T(hi - lo) * u and T(mean) + T(stddev) * z: the same
// T-rounded coefficients are passed here.
void uniform(const KernelCtx& k, DType dt, void* out, int64_t n, uint64_t seed, PhiloxOffset offset, double lo,
             double hi) {
  LOOM_FLOAT_SWITCH(dt, T,
                    launch<T, Dist::Uniform>(k, "uniform", static_cast<T*>(out), nullptr, n, seed, offset, T(lo),
                                             T(hi - lo)));
}

void normal(const KernelCtx& k, DType dt, void* out, int64_t n, uint64_t seed, PhiloxOffset offset, double mean,
            double stddev) {
  LOOM_FLOAT_SWITCH(dt, T,
                    launch<T, Dist::Normal>(k, "normal", static_cast<T*>(out), nullptr, n, seed, offset, T(mean),
                                            T(stddev)));
}

void bernoulli(const KernelCtx& k, DType dt, const void* p, void* out, int64_t n, uint64_t seed, PhiloxOffset offset) {
  LOOM_FLOAT_SWITCH(dt, T,
                    launch<T, Dist::Bernoulli>(k, "bernoulli", static_cast<T*>(out), static_cast<const T*>(p), n,
                                               seed, offset, T(0), T(0)));
}

}  // namespace loom::kernels::cuda
