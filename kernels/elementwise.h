// Elementwise kernels: unary maps and their derivatives, broadcasting binary
// and ternary (where) maps, fill, cast and iota.
//
// Broadcasting is described by a Broadcast (kernels/broadcast.h): the output
// shape plus, for each operand, its strides in elements with 0 on broadcast
// dimensions. Ops in autograd/ build it once with make_broadcast; kernels just
// walk it.
#pragma once

#include "kernels/broadcast.h"
#include "kernels/dispatch.h"

namespace loom {

enum class UnaryOp : uint8_t {
  Neg, Exp, Log, Log1p, Sqrt, Rsqrt, Tanh, Sigmoid, Relu, LeakyRelu, Elu, Silu,
  Softplus, Abs, Square, PowScalar, Clamp, Sign, Sin, Cos
};
// a, b: LeakyRelu slope (a); Elu alpha (a); PowScalar exponent (a); Clamp [a, b].
struct UnaryParams {
  double a = 0, b = 0;
};

// Which of x and y = f(x) unary_backward reads (unary_grad, kernels/elementwise_math.h):
// the tape keeps only that one alive and passes it in the other's place. ReLU, leaky
// ReLU and ELU test x > 0, which for a slope or α ≥ 0 is y > 0, and ELU's y + α reads
// y: they keep y, as PyTorch does for ReLU (the next layer saves y anyway, and x is freed).
enum class GradReads { None, X, Y };
inline GradReads unary_grad_reads(UnaryOp op, const UnaryParams& p) {
  switch (op) {
    case UnaryOp::Neg:
    case UnaryOp::Sign: return GradReads::None;
    case UnaryOp::Exp:
    case UnaryOp::Sqrt:
    case UnaryOp::Rsqrt:
    case UnaryOp::Tanh:
    case UnaryOp::Sigmoid:
    case UnaryOp::Relu: return GradReads::Y;
    case UnaryOp::LeakyRelu:
    case UnaryOp::Elu: return p.a >= 0 ? GradReads::Y : GradReads::X;
    case UnaryOp::Log:
    case UnaryOp::Log1p:
    case UnaryOp::Silu:
    case UnaryOp::Softplus:
    case UnaryOp::Abs:
    case UnaryOp::Square:
    case UnaryOp::PowScalar:
    case UnaryOp::Clamp:
    case UnaryOp::Sin:
    case UnaryOp::Cos: return GradReads::X;
  }
  return GradReads::X;
}

enum class BinaryOp : uint8_t { Add, Sub, Mul, Div, Pow, Maximum, Minimum, Eq, Ne, Lt, Le, Gt, Ge };

}  // namespace loom

#define LOOM_ELEMENTWISE_API                                                                     \
  void unary(const KernelCtx& k, UnaryOp op, DType dt, const void* x, void* y, int64_t n,       \
             UnaryParams p);                                                                     \
  /* gx = gy * f'(x); reads x or y = f(x) as unary_grad_reads says (both are given). */          \
  void unary_backward(const KernelCtx& k, UnaryOp op, DType dt, const void* x, const void* y,   \
                      const void* gy, void* gx, int64_t n, UnaryParams p);                      \
  /* out = a op b over bc (operands 0 = a, 1 = b); comparisons write 1 or 0. */                  \
  void binary(const KernelCtx& k, BinaryOp op, DType dt, const void* a, const void* b,          \
              void* out, const Broadcast& bc);                                                   \
  /* out = cond != 0 ? a : b over bc (operands 0 = cond, 1 = a, 2 = b). */                       \
  void where(const KernelCtx& k, DType dt, const void* cond, const void* a, const void* b,      \
             void* out, const Broadcast& bc);                                                    \
  void fill(const KernelCtx& k, DType dt, void* out, int64_t n, double value);                  \
  void cast(const KernelCtx& k, DType from, const void* x, DType to, void* y, int64_t n);       \
  /* out[i] = start + i * step */                                                                \
  void iota(const KernelCtx& k, DType dt, void* out, int64_t n, double start, double step);

LOOM_DECLARE_KERNELS(LOOM_CUDA_ELEMENTWISE, LOOM_ELEMENTWISE_API)
