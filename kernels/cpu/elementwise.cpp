// CPU reference for the elementwise family (kernels/elementwise.h).
#include "kernels/elementwise.h"

#include <algorithm>
#include <cmath>

namespace loom::kernels::cpu {
namespace {

template <class T>
T sigmoid(T x) {
  // Two branches so exp never overflows: for x < 0, e^x / (1 + e^x).
  if (x >= 0) return T(1) / (T(1) + std::exp(-x));
  T e = std::exp(x);
  return e / (T(1) + e);
}

template <class T>
T unary_fn(UnaryOp op, T x, const UnaryParams& p) {
  switch (op) {
    case UnaryOp::Neg: return -x;
    case UnaryOp::Exp: return std::exp(x);
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
  }
  return x;
}

// d f(x) / dx, given x and y = f(x).
template <class T>
T unary_grad(UnaryOp op, T x, T y, const UnaryParams& p) {
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
  }
  return T(0);
}

template <class T>
T binary_fn(BinaryOp op, T a, T b) {
  switch (op) {
    case BinaryOp::Add: return a + b;
    case BinaryOp::Sub: return a - b;
    case BinaryOp::Mul: return a * b;
    case BinaryOp::Div: return a / b;
    case BinaryOp::Pow: return std::pow(a, b);
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

// Walks the output in row-major order keeping per-operand offsets, so the
// inner loop is a strided loop with no division. Parallel over blocks of the
// outermost dimensions.
template <int NOps, class F>
void broadcast_loop(const Broadcast& bc, F&& f) {
  const int r = bc.rank;
  if (r == 0) {
    int64_t off[3] = {0, 0, 0};
    f(int64_t(0), off, int64_t(1), 0);
    return;
  }
  const int64_t inner = bc.shape[r - 1];
  int64_t outer = 1;
  for (int d = 0; d < r - 1; ++d) outer *= bc.shape[d];
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(inner, 1));
#pragma omp parallel for schedule(static) if (outer * inner > 65536)
  for (int64_t chunk = 0; chunk < (outer + grain - 1) / grain; ++chunk) {
    for (int64_t o = chunk * grain; o < std::min(outer, (chunk + 1) * grain); ++o) {
      int64_t off[3] = {0, 0, 0};
      int64_t rem = o;
      for (int d = r - 2; d >= 0; --d) {
        int64_t idx = rem % bc.shape[d];
        rem /= bc.shape[d];
        for (int j = 0; j < NOps; ++j) off[j] += idx * bc.stride[j][d];
      }
      f(o * inner, off, inner, r - 1);
    }
  }
}

template <class T>
void unary_impl(UnaryOp op, const T* x, T* y, int64_t n, const UnaryParams& p) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) y[i] = unary_fn(op, x[i], p);
}

template <class T>
void unary_backward_impl(UnaryOp op, const T* x, const T* y, const T* gy, T* gx, int64_t n, const UnaryParams& p) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) gx[i] = gy[i] * unary_grad(op, x[i], y[i], p);
}

template <class T>
void binary_impl(BinaryOp op, const T* a, const T* b, T* out, const Broadcast& bc) {
  broadcast_loop<2>(bc, [&](int64_t base, const int64_t* off, int64_t len, int last) {
    const int64_t sa = bc.rank ? bc.stride[0][last] : 0, sb = bc.rank ? bc.stride[1][last] : 0;
    const T* pa = a + off[0];
    const T* pb = b + off[1];
    T* po = out + base;
    for (int64_t i = 0; i < len; ++i) po[i] = binary_fn(op, pa[i * sa], pb[i * sb]);
  });
}

template <class T>
void where_impl(const T* cond, const T* a, const T* b, T* out, const Broadcast& bc) {
  broadcast_loop<3>(bc, [&](int64_t base, const int64_t* off, int64_t len, int last) {
    const int64_t sc = bc.rank ? bc.stride[0][last] : 0, sa = bc.rank ? bc.stride[1][last] : 0,
                  sb = bc.rank ? bc.stride[2][last] : 0;
    for (int64_t i = 0; i < len; ++i)
      out[base + i] = cond[off[0] + i * sc] != T(0) ? a[off[1] + i * sa] : b[off[2] + i * sb];
  });
}

template <class S, class D>
void cast_impl(const S* x, D* y, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<D>(x[i]);
}

template <class T>
void iota_impl(T* out, int64_t n, double start, double step) {
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<T>(start + static_cast<double>(i) * step);
}

}  // namespace

void unary(const KernelCtx&, UnaryOp op, DType dt, const void* x, void* y, int64_t n, UnaryParams p) {
  LOOM_FLOAT_SWITCH(dt, T, unary_impl<T>(op, static_cast<const T*>(x), static_cast<T*>(y), n, p));
}

void unary_backward(const KernelCtx&, UnaryOp op, DType dt, const void* x, const void* y, const void* gy, void* gx,
                    int64_t n, UnaryParams p) {
  LOOM_FLOAT_SWITCH(dt, T,
                    unary_backward_impl<T>(op, static_cast<const T*>(x), static_cast<const T*>(y),
                                           static_cast<const T*>(gy), static_cast<T*>(gx), n, p));
}

void binary(const KernelCtx&, BinaryOp op, DType dt, const void* a, const void* b, void* out, const Broadcast& bc) {
  LOOM_ANY_SWITCH(dt, T,
                  binary_impl<T>(op, static_cast<const T*>(a), static_cast<const T*>(b), static_cast<T*>(out), bc));
}

void where(const KernelCtx&, DType dt, const void* cond, const void* a, const void* b, void* out,
           const Broadcast& bc) {
  LOOM_ANY_SWITCH(dt, T,
                  where_impl<T>(static_cast<const T*>(cond), static_cast<const T*>(a), static_cast<const T*>(b),
                                static_cast<T*>(out), bc));
}

void fill(const KernelCtx&, DType dt, void* out, int64_t n, double value) {
  LOOM_ANY_SWITCH(dt, T, std::fill_n(static_cast<T*>(out), n, static_cast<T>(value)));
}

void cast(const KernelCtx&, DType from, const void* x, DType to, void* y, int64_t n) {
  LOOM_ANY_SWITCH(from, S, LOOM_ANY_SWITCH(to, D, cast_impl<S, D>(static_cast<const S*>(x), static_cast<D*>(y), n)));
}

void iota(const KernelCtx&, DType dt, void* out, int64_t n, double start, double step) {
  LOOM_ANY_SWITCH(dt, T, iota_impl<T>(static_cast<T*>(out), n, start, step));
}

}  // namespace loom::kernels::cpu
