// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3",
// SC'11): a counter-based generator. Number i of the stream (seed, offset) is a
// pure function of (seed, offset + i), so the CPU and CUDA backends produce
// identical numbers for the same seed regardless of how work is split across
// threads.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define LOOM_HD __host__ __device__ __forceinline__
#else
#define LOOM_HD inline
#endif

namespace loom::philox {

struct U4 {
  uint32_t x[4];
};

LOOM_HD uint32_t mulhilo(uint32_t a, uint32_t b, uint32_t* hi) {
  uint64_t p = static_cast<uint64_t>(a) * b;
  *hi = static_cast<uint32_t>(p >> 32);
  return static_cast<uint32_t>(p);
}

// Ten rounds of Philox4x32 on counter c with key k.
LOOM_HD U4 philox4x32(U4 c, uint32_t k0, uint32_t k1) {
  constexpr uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u;
  constexpr uint32_t W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
  for (int r = 0; r < 10; ++r) {
    uint32_t hi0, hi1;
    uint32_t lo0 = mulhilo(M0, c.x[0], &hi0);
    uint32_t lo1 = mulhilo(M1, c.x[2], &hi1);
    c = U4{{hi1 ^ c.x[1] ^ k0, lo1, hi0 ^ c.x[3] ^ k1, lo0}};
    k0 += W0;
    k1 += W1;
  }
  return c;
}

// Four 32-bit random words for block `block` of stream `seed`.
LOOM_HD U4 block(uint64_t seed, uint64_t block) {
  U4 c{{static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32), 0u, 0u}};
  return philox4x32(c, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

// Uniform in (0, 1], 24 bits: never 0, so log(u) is finite.
LOOM_HD float to_unit_float(uint32_t w) { return ((w >> 8) + 1) * (1.0f / 16777216.0f); }
// Uniform in (0, 1], 53 bits from two words.
LOOM_HD double to_unit_double(uint32_t a, uint32_t b) {
  uint64_t v = (static_cast<uint64_t>(a >> 5) << 26) | (b >> 6);  // 27 + 26 = 53 bits
  return (v + 1) * (1.0 / 9007199254740992.0);
}

// Element i of a uniform (0,1] stream. float uses one word, double two; each
// block of four words feeds 4 floats or 2 doubles.
template <class T>
LOOM_HD T uniform(uint64_t seed, uint64_t offset, uint64_t i) {
  if constexpr (sizeof(T) == 4) {
    U4 r = block(seed, offset + i / 4);
    return static_cast<T>(to_unit_float(r.x[i % 4]));
  } else {
    U4 r = block(seed, offset + i / 2);
    uint32_t j = static_cast<uint32_t>(i % 2) * 2;
    return static_cast<T>(to_unit_double(r.x[j], r.x[j + 1]));
  }
}

// Element i of a standard normal stream: Box-Muller on uniform pairs (2i', 2i'+1)
// of a separate sub-stream; even i takes the cosine, odd i the sine branch.
template <class T>
LOOM_HD T normal(uint64_t seed, uint64_t offset, uint64_t i) {
  uint64_t pair = i / 2;
  T u1 = uniform<T>(seed, offset, 2 * pair);
  T u2 = uniform<T>(seed, offset, 2 * pair + 1);
  T r = std::sqrt(T(-2) * std::log(u1));
  T theta = T(6.283185307179586476925) * u2;
  return (i % 2 == 0) ? r * std::cos(theta) : r * std::sin(theta);
}

// Number of Philox blocks consumed by n values of type T (uniform) — the
// generator advances its offset by this so consecutive draws never overlap.
template <class T>
constexpr uint64_t blocks_for(uint64_t n, bool normal_dist) {
  uint64_t words = normal_dist ? 2 * ((n + 1) / 2) : n;  // normal uses 2 uniforms per pair
  uint64_t per_block = sizeof(T) == 4 ? 4 : 2;
  return (words + per_block - 1) / per_block;
}

}  // namespace loom::philox
