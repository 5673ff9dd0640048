// The scalar formulas of the elementwise family, written once for both
// backends: kernels/cpu/elementwise.cpp and kernels/cuda/elementwise.cu call
// these same functions, so the CPU reference and the CUDA kernels compute the
// same thing, NaN and edge-case rules included (kernels/philox.h does the same
// for random numbers). Results may still differ in the last bits where libm and
// CUDA's math library round exp/log/pow/tanh differently, or where nvcc fuses a
// multiply-add.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "kernels/elementwise.h"

namespace loom::kernels {

// e^x in float with no branch and no call, so that the CPU's elementwise loops over it vectorize
// (glibc's expf is a scalar call: SiLU's sigmoid in the forward and again in the backward was a fifth
// of a DDPM step). x = n ln 2 + r with n = round(x / ln 2), |r| ≤ ln 2 / 2 (ln 2 split in two floats,
// the first with 9 significant bits so that n·C1 is exact, Cody & Waite); e^r by its Taylor series to
// r⁷/7! (the remainder r⁸/8! < 5.2e-9 < ulp(1)/20); 2^n built in the exponent bits as 2^⌊n/2⌋·2^⌈n/2⌉
// so that results down to the subnormals round once and e^88.73 reaches +inf. Within 1 ulp of e^x
// rounded from double (every float in [−104, 89] was checked once; tests/test_ops_elementwise.cpp
// checks every 127th, and the edges); NaN gives NaN, e^−∞ = 0, e^∞ = ∞. Round to nearest by adding
// 1.5·2²³: the float's low bits are then n, with no float-to-int conversion (which a NaN would make
// undefined).
inline float exp_vectorizable(float x) {  // host only: CUDA has its own expf
  x = std::min(std::max(x, -104.0f), 89.0f);  // NaN passes both; beyond them e^x is 0 or ∞ in float
  constexpr float kShift = 12582912.0f;      // 1.5 · 2^23
  const float k = x * 1.44269504088896341f + kShift;
  const float n = k - kShift;
  const float r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
  float p = 1.0f / 5040;
  p = p * r + 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t ni = static_cast<int32_t>(std::bit_cast<uint32_t>(k) - std::bit_cast<uint32_t>(kShift));
  const int32_t n1 = ni >> 1, n2 = ni - n1;  // each in [−75, 64]: 2^n1 and 2^n2 are normal floats
  const float s1 = std::bit_cast<float>(static_cast<uint32_t>(n1 + 127) << 23);
  const float s2 = std::bit_cast<float>(static_cast<uint32_t>(n2 + 127) << 23);
  return p * s1 * s2;
}

// e^x as the elementwise ops compute it: exp_vectorizable for float on the CPU (and in the emulated
// CUDA build, which runs these functions on the host), the math library's otherwise (CUDA's expf on
// the device, double everywhere: the float64 gradient checks see libm).
template <class T>
LOOM_HD T exp_fn(T x) {
#if !defined(__CUDA_ARCH__)
  if constexpr (std::is_same_v<T, float>) return exp_vectorizable(x);
#endif
  return std::exp(x);
}

template <class T>
LOOM_HD T sigmoid(T x) {
  // e = e^−|x| never overflows: 1 / (1 + e) for x ≥ 0, e / (1 + e) = e^x / (1 + e^x) for x < 0.
  // Both sides are computed and one selected, which vectorizes; NaN gives NaN.
  const T e = exp_fn(-std::abs(x)), d = T(1) + e;
  return x >= 0 ? T(1) / d : e / d;
}

template <class T>
LOOM_HD T unary_fn(UnaryOp op, T x, const UnaryParams& p) {
  switch (op) {
    case UnaryOp::Neg: return -x;
    case UnaryOp::Exp: return exp_fn(x);
    case UnaryOp::Log: return std::log(x);
    case UnaryOp::Log1p: return std::log1p(x);
    case UnaryOp::Sqrt: return std::sqrt(x);
    case UnaryOp::Rsqrt: return T(1) / std::sqrt(x);
    case UnaryOp::Tanh: return std::tanh(x);
    case UnaryOp::Sigmoid: return sigmoid(x);
    case UnaryOp::Relu: return x <= 0 ? T(0) : x;  // written so that NaN propagates (NaN <= 0 is false)
    case UnaryOp::LeakyRelu: return x > 0 ? x : T(p.a) * x;
    case UnaryOp::Elu: return x > 0 ? x : T(p.a) * std::expm1(x);
    case UnaryOp::Silu: return x * sigmoid(x);
    // softplus(x) = log(1 + e^x) = max(x, 0) + log1p(e^-|x|), stable for any x.
    case UnaryOp::Softplus: return std::max(x, T(0)) + std::log1p(std::exp(-std::abs(x)));
    case UnaryOp::Abs: return std::abs(x);
    case UnaryOp::Square: return x * x;
    case UnaryOp::PowScalar: return std::pow(x, T(p.a));
    case UnaryOp::Clamp: return std::min(std::max(x, T(p.a)), T(p.b));
    case UnaryOp::Sign: return x != x ? x : T((x > 0) - (x < 0));  // NaN stays NaN, as NumPy
    case UnaryOp::Sin: return std::sin(x);
    case UnaryOp::Cos: return std::cos(x);
  }
  return x;
}

// d f(x) / dx, given x and y = f(x).
template <class T>
LOOM_HD T unary_grad(UnaryOp op, T x, T y, const UnaryParams& p) {
  switch (op) {
    case UnaryOp::Neg: return T(-1);
    case UnaryOp::Exp: return y;
    case UnaryOp::Log: return T(1) / x;
    case UnaryOp::Log1p: return T(1) / (T(1) + x);
    case UnaryOp::Sqrt: return T(0.5) / y;
    case UnaryOp::Rsqrt: return T(-0.5) * y * y * y;
    case UnaryOp::Tanh: return T(1) - y * y;
    case UnaryOp::Sigmoid: return y * (T(1) - y);
    case UnaryOp::Relu: return x > 0 ? T(1) : T(0);
    case UnaryOp::LeakyRelu: return x > 0 ? T(1) : T(p.a);
    case UnaryOp::Elu: return x > 0 ? T(1) : y + T(p.a);
    case UnaryOp::Silu: {
      T s = sigmoid(x);
      return s * (T(1) + x * (T(1) - s));
    }
    case UnaryOp::Softplus: return sigmoid(x);
    case UnaryOp::Abs: return T((x > 0) - (x < 0));
    case UnaryOp::Square: return T(2) * x;
    case UnaryOp::PowScalar: return p.a == 0 ? T(0) : T(p.a) * std::pow(x, T(p.a - 1));
    case UnaryOp::Clamp: return (x >= T(p.a) && x <= T(p.b)) ? T(1) : T(0);
    case UnaryOp::Sign: return T(0);
    case UnaryOp::Sin: return std::cos(x);
    case UnaryOp::Cos: return -std::sin(x);
  }
  return T(0);
}

// a^b for integers by repeated squaring, exact where std::pow's double result
// would round (beyond 2^53) and identical on every backend. Overflow wraps
// (unsigned arithmetic); a negative exponent gives the truncated real power:
// 1 for a = 1, ±1 for a = -1, 0 otherwise (also for 0^-k, which has no value).
template <class T>
LOOM_HD T int_pow(T a, T b) {
  if (b < 0) return a == 1 ? T(1) : a == -1 ? ((b & 1) ? T(-1) : T(1)) : T(0);
  using U = std::make_unsigned_t<T>;
  U r = 1, base = static_cast<U>(a);
  for (; b; b >>= 1, base *= base)
    if (b & 1) r *= base;
  return static_cast<T>(r);
}

template <class T>
LOOM_HD T binary_fn(BinaryOp op, T a, T b) {
  switch (op) {
    case BinaryOp::Add: return a + b;
    case BinaryOp::Sub: return a - b;
    case BinaryOp::Mul: return a * b;
    case BinaryOp::Div: return a / b;
    case BinaryOp::Pow:
      if constexpr (std::is_integral_v<T>) {
        return int_pow(a, b);
      } else {
        return std::pow(a, b);
      }
    // NaN propagates, as in IEEE fmax's opposite: a NaN operand gives NaN.
    case BinaryOp::Maximum: return (a != a || b != b) ? a + b : std::max(a, b);
    case BinaryOp::Minimum: return (a != a || b != b) ? a + b : std::min(a, b);
    case BinaryOp::Eq: return T(a == b);
    case BinaryOp::Ne: return T(a != b);
    case BinaryOp::Lt: return T(a < b);
    case BinaryOp::Le: return T(a <= b);
    case BinaryOp::Gt: return T(a > b);
    case BinaryOp::Ge: return T(a >= b);
  }
  return a;
}

}  // namespace loom::kernels
