// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3",
// SC'11): a counter-based generator. Number i of the stream (seed, offset) is a
// pure function of (seed, offset + i), so the CPU and CUDA backends produce
// identical numbers for the same seed regardless of how work is split across
// threads.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/base.h"

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

// Values per Philox block: 4 floats (one word each) or 2 doubles (two words each).
template <class T>
inline constexpr uint32_t per_block = sizeof(T) == 4 ? 4 : 2;

// Value j (< per_block<T>) of block r as a uniform in (0, 1].
template <class T>
LOOM_HD T unit_from_block(const U4& r, uint32_t j) {
  if constexpr (sizeof(T) == 4) {
    return static_cast<T>(to_unit_float(r.x[j]));
  } else {
    return static_cast<T>(to_unit_double(r.x[2 * j], r.x[2 * j + 1]));
  }
}

// Element i of a uniform (0,1] stream: value i % per_block of block offset + i / per_block.
// (A kernel may compute one block and take all its values: the same numbers.)
template <class T>
LOOM_HD T uniform(uint64_t seed, uint64_t offset, uint64_t i) {
  return unit_from_block<T>(block(seed, offset + i / per_block<T>), static_cast<uint32_t>(i % per_block<T>));
}

// Box-Muller: (u1, u2) uniform in (0, 1] → r cos θ (cosine branch) or r sin θ,
// r = sqrt(-2 log u1), θ = 2π u2; both are standard normal.
template <class T>
LOOM_HD T box_muller(T u1, T u2, bool sine) {
  T r = std::sqrt(T(-2) * std::log(u1));
  T theta = T(6.283185307179586476925) * u2;
  return sine ? r * std::sin(theta) : r * std::cos(theta);
}

// Element i of a standard normal stream: Box-Muller on uniform pairs (2i', 2i'+1)
// of the stream, i' = i / 2; even i takes the cosine, odd i the sine branch.
// A pair never straddles two blocks (per_block is even).
template <class T>
LOOM_HD T normal(uint64_t seed, uint64_t offset, uint64_t i) {
  uint64_t pair = i / 2;
  return box_muller(uniform<T>(seed, offset, 2 * pair), uniform<T>(seed, offset, 2 * pair + 1), i % 2 == 1);
}

// Number of Philox blocks consumed by n values of type T (uniform) — the
// generator advances its offset by this so consecutive draws never overlap.
template <class T>
constexpr uint64_t blocks_for(uint64_t n, bool normal_dist) {
  uint64_t words = normal_dist ? 2 * ((n + 1) / 2) : n;  // normal uses 2 uniforms per pair
  return (words + per_block<T> - 1) / per_block<T>;
}

}  // namespace loom::philox
