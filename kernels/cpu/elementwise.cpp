// CPU reference for the elementwise family (kernels/elementwise.h); the scalar
// formulas live in kernels/elementwise_math.h, shared with the CUDA kernels.
#include "kernels/elementwise.h"

#include <algorithm>
#include <type_traits>

#include "kernels/cpu/clones.h"
#include "kernels/elementwise_math.h"

namespace loom::kernels::cpu {
namespace {

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

// f(std::integral_constant<Op, op>{}): the loops below are instantiated per op, so the switch of
// unary_fn / unary_grad / binary_fn folds away at compile time and the simple ops (relu, add, mul, ...)
// vectorize. With the op a run-time value, every element paid the switch and no loop vectorized:
// ReLU's forward and backward were 23 % of a classifier step. The arithmetic is the same, so are the bits.
#define LOOM_OP_CASE(E, name) \
  case E::name: return f(std::integral_constant<E, E::name>{});
template <class F>
void with_op(UnaryOp op, F&& f) {
  switch (op) {
    LOOM_OP_CASE(UnaryOp, Neg) LOOM_OP_CASE(UnaryOp, Exp) LOOM_OP_CASE(UnaryOp, Log) LOOM_OP_CASE(UnaryOp, Log1p)
    LOOM_OP_CASE(UnaryOp, Sqrt) LOOM_OP_CASE(UnaryOp, Rsqrt) LOOM_OP_CASE(UnaryOp, Tanh)
    LOOM_OP_CASE(UnaryOp, Sigmoid) LOOM_OP_CASE(UnaryOp, Relu) LOOM_OP_CASE(UnaryOp, LeakyRelu)
    LOOM_OP_CASE(UnaryOp, Elu) LOOM_OP_CASE(UnaryOp, Silu) LOOM_OP_CASE(UnaryOp, Softplus) LOOM_OP_CASE(UnaryOp, Abs)
    LOOM_OP_CASE(UnaryOp, Square) LOOM_OP_CASE(UnaryOp, PowScalar) LOOM_OP_CASE(UnaryOp, Clamp)
    LOOM_OP_CASE(UnaryOp, Sign) LOOM_OP_CASE(UnaryOp, Sin) LOOM_OP_CASE(UnaryOp, Cos)
  }
}
template <class F>
void with_op(BinaryOp op, F&& f) {
  switch (op) {
    LOOM_OP_CASE(BinaryOp, Add) LOOM_OP_CASE(BinaryOp, Sub) LOOM_OP_CASE(BinaryOp, Mul) LOOM_OP_CASE(BinaryOp, Div)
    LOOM_OP_CASE(BinaryOp, Pow) LOOM_OP_CASE(BinaryOp, Maximum) LOOM_OP_CASE(BinaryOp, Minimum)
    LOOM_OP_CASE(BinaryOp, Eq) LOOM_OP_CASE(BinaryOp, Ne) LOOM_OP_CASE(BinaryOp, Lt) LOOM_OP_CASE(BinaryOp, Le)
    LOOM_OP_CASE(BinaryOp, Gt) LOOM_OP_CASE(BinaryOp, Ge)
  }
}
#undef LOOM_OP_CASE

// The loops are functions of their own, compiled per instruction set (kernels/cpu/clones.h). The
// parameters are a private copy in each thread (firstprivate): shared, they were read through the
// OpenMP region's pointer for every element, on one side of a branch, where no compiler may hoist a load,
// and the loop stayed scalar.
//
// Elements from which a unary loop is split between threads. Waking a sleeping OpenMP thread
// (OMP_WAIT_POLICY=passive) costs tens of microseconds: worth it from ~64 K elements of a cheap
// op, but from ~8 K of one that calls libm's scalar exp/log/log1p/tanh/pow/sin/cos (10–20 ns an element).
// A `bernoulli` step's float64 softplus over 64 × 784 elements ran on one thread of two. Each
// element is computed alone, so the split changes no result.
constexpr int64_t parallel_from(UnaryOp op) {
  switch (op) {
    case UnaryOp::Exp:
    case UnaryOp::Log:
    case UnaryOp::Log1p:
    case UnaryOp::Tanh:
    case UnaryOp::Sigmoid:
    case UnaryOp::Elu:
    case UnaryOp::Silu:
    case UnaryOp::Softplus:
    case UnaryOp::PowScalar:
    case UnaryOp::Sin:
    case UnaryOp::Cos: return 8192;
    default: return 65536;
  }
}

template <class T, class Op>
LOOM_CPU_CLONES void unary_loop(Op, const T* x, T* y, int64_t n, UnaryParams q) {
#pragma omp parallel for schedule(static) if (n > parallel_from(Op::value)) firstprivate(q)
  for (int64_t i = 0; i < n; ++i) y[i] = unary_fn(Op::value, x[i], q);
}

template <class T, class Op>
LOOM_CPU_CLONES void unary_backward_loop(Op, const T* x, const T* y, const T* gy, T* gx, int64_t n, UnaryParams q) {
#pragma omp parallel for schedule(static) if (n > parallel_from(Op::value)) firstprivate(q)
  for (int64_t i = 0; i < n; ++i) gx[i] = gy[i] * unary_grad(Op::value, x[i], y[i], q);
}

// One row of a binary op: the common inner strides as loops of their own, which vectorize: both
// operands contiguous, or one of them a scalar along the row (a bias, a per-channel scale).
template <class T, class Op>
LOOM_CPU_CLONES void binary_row(Op, const T* pa, int64_t sa, const T* pb, int64_t sb, T* po, int64_t len) {
  if (sa == 1 && sb == 1) {
    for (int64_t i = 0; i < len; ++i) po[i] = binary_fn(Op::value, pa[i], pb[i]);
  } else if (sa == 1 && sb == 0) {
    const T vb = *pb;
    for (int64_t i = 0; i < len; ++i) po[i] = binary_fn(Op::value, pa[i], vb);
  } else if (sa == 0 && sb == 1) {
    const T va = *pa;
    for (int64_t i = 0; i < len; ++i) po[i] = binary_fn(Op::value, va, pb[i]);
  } else {
    for (int64_t i = 0; i < len; ++i) po[i] = binary_fn(Op::value, pa[i * sa], pb[i * sb]);
  }
}

template <class T>
void unary_impl(UnaryOp op, const T* x, T* y, int64_t n, const UnaryParams& p) {
  with_op(op, [&](auto c) { unary_loop(c, x, y, n, p); });
}

template <class T>
void unary_backward_impl(UnaryOp op, const T* x, const T* y, const T* gy, T* gx, int64_t n, const UnaryParams& p) {
  with_op(op, [&](auto c) { unary_backward_loop(c, x, y, gy, gx, n, p); });
}

template <class T>
void binary_impl(BinaryOp op, const T* a, const T* b, T* out, const Broadcast& bc) {
  with_op(op, [&](auto c) {
    broadcast_loop<2>(bc, [&](int64_t base, const int64_t* off, int64_t len, int last) {
      const int64_t sa = bc.rank ? bc.stride[0][last] : 0, sb = bc.rank ? bc.stride[1][last] : 0;
      binary_row(c, a + off[0], sa, b + off[1], sb, out + base, len);
    });
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
