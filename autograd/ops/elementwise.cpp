// Elementwise ops: forward (checks, allocation, one kernel call) and backward.
//
// Unary:  y = f(x),        ∂L/∂x = ∂L/∂y · f'(x)          (one fused kernel)
// Binary: z = a ∘ b with broadcasting; the gradient of a broadcast operand is
//         summed back to its shape (detail::sum_to).
#include <algorithm>
#include <cmath>

#include "autograd/ops/common.h"

namespace loom {
using namespace detail;

namespace {

// ∂L/∂x = ∂L/∂y · f'(x) through recorded ops: the form a create_graph sweep
// differentiates again. The same f' as kernels/elementwise_math.h's unary_grad,
// which the fast path runs fused; masks of comparisons are constants. x and y are
// the one value the tape kept (unary_grad_reads), standing in for both.
Tensor unary_backward_recorded(UnaryOp kop, const Tensor& x, const Tensor& y, const Tensor& gy, UnaryParams p) {
  Tensor zero = zeros({}, x.options());
  switch (kop) {
    case UnaryOp::Neg: return neg(gy);
    case UnaryOp::Exp: return gy * y;
    case UnaryOp::Log: return gy / x;
    case UnaryOp::Log1p: return gy / (x + 1.0);
    case UnaryOp::Sqrt: return gy / y * 0.5;
    case UnaryOp::Rsqrt: return gy * (square(y) * y) * -0.5;
    case UnaryOp::Tanh: return gy * (1.0 - square(y));
    case UnaryOp::Sigmoid: return gy * (y * (1.0 - y));
    case UnaryOp::Relu: return gy * gt(x, zero);
    case UnaryOp::LeakyRelu: return gy * where(gt(x, zero), ones({}, x.options()), full({}, p.a, x.options()));
    case UnaryOp::Elu: return gy * where(gt(x, zero), ones({}, x.options()), y + p.a);
    case UnaryOp::Silu: {
      Tensor s = sigmoid(x);
      return gy * (s * (1.0 + x * (1.0 - s)));
    }
    case UnaryOp::Softplus: return gy * sigmoid(x);
    case UnaryOp::Abs: return gy * sign(x);
    case UnaryOp::Square: return gy * x * 2.0;
    case UnaryOp::PowScalar: return p.a == 0 ? zeros_like(gy) : gy * pow(x, p.a - 1) * p.a;
    case UnaryOp::Clamp: return gy * (ge(x, full({}, p.a, x.options())) * le(x, full({}, p.b, x.options())));
    case UnaryOp::Sin: return gy * cos(x);
    case UnaryOp::Cos: return neg(gy * sin(x));
    case UnaryOp::Sign: break;
  }
  throw Error("unary backward: not differentiable");
}

Tensor unary_op(OpId id, UnaryOp kop, const Tensor& x, UnaryParams p = {}, const char* name = nullptr) {
  const OpRange range(id);
  if (!name) name = op_name(id);
  check_floating(name, x);
  Tensor y = empty(x.shape(), x.options());
  KernelCtx k = kernel_ctx(x.device());
  LOOM_DISPATCH(k, LOOM_CUDA_ELEMENTWISE, unary, k, kop, x.dtype(), x.data_ptr(), y.data_ptr(), x.numel(), p);
  if (needs_grad({&x})) {
    // Only the value f' reads is kept; it stands in for the other (f' ignores that one).
    const GradReads reads = unary_grad_reads(kop, p);
    std::vector<Tensor> saved;
    if (reads != GradReads::None) saved.push_back(reads == GradReads::Y ? y : x);
    record(id, {x}, {y}, std::move(saved), [kop, p](BackwardCtx& c) {
      const Tensor &gy = c.grad_out[0], &v = c.saved.empty() ? gy : c.saved[0];
      if (differentiable({&v, &gy})) return std::vector<Tensor>{unary_backward_recorded(kop, v, v, gy, p)};
      Tensor gx = empty(gy.shape(), gy.options());
      KernelCtx k = kernel_ctx(gy.device());
      LOOM_DISPATCH(k, LOOM_CUDA_ELEMENTWISE, unary_backward, k, kop, gy.dtype(), v.data_ptr(), v.data_ptr(),
                    gy.data_ptr(), gx.data_ptr(), gy.numel(), p);
      return std::vector<Tensor>{gx};
    });
  }
  return y;
}

// Forward of a broadcasting binary op, no recording.
Tensor binary_raw(const char* name, BinaryOp kop, const Tensor& a, const Tensor& b) {
  check_compatible(name, {&a, &b});
  Shape out = broadcast_shapes(name, a.shape(), b.shape());
  Tensor z = empty(out, a.options());
  Broadcast bc = make_broadcast(name, out, {a.shape(), b.shape()});
  KernelCtx k = kernel_ctx(a.device());
  LOOM_DISPATCH(k, LOOM_CUDA_ELEMENTWISE, binary, k, kop, a.dtype(), a.data_ptr(), b.data_ptr(), z.data_ptr(), bc);
  return z;
}

Tensor binary_op(OpId id, BinaryOp kop, const Tensor& a, const Tensor& b) {
  const OpRange range(id);
  const char* name = op_name(id);
  Tensor z = binary_raw(name, kop, a, b);
  if (!needs_grad({&a, &b})) return z;  // integer tensors never require grad (requires_grad_ refuses them)
  // Save only what the rule reads: add/sub read nothing, mul/div/pow read operands.
  std::vector<Tensor> saved;
  if (kop != BinaryOp::Add && kop != BinaryOp::Sub) saved = {a, b, kop == BinaryOp::Pow ? z : Tensor()};
  Shape sa = a.shape(), sb = b.shape();
  record(id, {a, b}, {z}, std::move(saved), [kop, sa, sb](BackwardCtx& c) {
    const Tensor& g = c.grad_out[0];
    Tensor ga, gb;
    switch (kop) {
      case BinaryOp::Add:
        if (c.needs[0]) ga = g;
        if (c.needs[1]) gb = g;
        break;
      case BinaryOp::Sub:
        if (c.needs[0]) ga = g;
        if (c.needs[1]) gb = neg(g);
        break;
      case BinaryOp::Mul:  // ∂(ab)/∂a = b
        if (c.needs[0]) ga = g * c.saved[1];
        if (c.needs[1]) gb = g * c.saved[0];
        break;
      case BinaryOp::Div:  // ∂(a/b)/∂a = 1/b, ∂(a/b)/∂b = -a/b²
        if (c.needs[0]) ga = g / c.saved[1];
        if (c.needs[1]) gb = neg(g * c.saved[0] / square(c.saved[1]));
        break;
      // ∂a^b/∂a = b·a^(b-1), taken as 0 where b = 0 (a^0 = 1 for every a, and 0·0^-1 would be NaN).
      // ∂a^b/∂b = a^b·log|a|, taken as 0 where a = 0 (0^b is constant in b). For a < 0 (real
      // only for integer b) log|a| gives the real part of the complex derivative a^b·(log|a| + iπ).
      // Each mask is applied last, so the discarded branch may hold NaN or inf.
      case BinaryOp::Pow: {
        const Tensor &a = c.saved[0], &b = c.saved[1], &z = c.saved[2];
        Tensor zero = zeros({}, a.options());
        if (c.needs[0]) ga = where(eq(b, zero), zero, g * b * pow(a, b - 1.0));
        if (c.needs[1]) gb = where(eq(a, zero), zero, g * z * log(abs(a)));
        break;
      }
      case BinaryOp::Maximum:
      case BinaryOp::Minimum: {  // to the larger (smaller) operand; ties share equally
        const Tensor &a = c.saved[0], &b = c.saved[1];
        Tensor win_a = kop == BinaryOp::Maximum ? gt(a, b) : lt(a, b);
        Tensor tie = eq(a, b) * 0.5;
        if (c.needs[0]) ga = g * (win_a + tie);
        if (c.needs[1]) gb = g * ((1.0 - win_a) - tie);
        break;
      }
      default:
        throw Error("binary backward: not differentiable");
    }
    if (ga.defined()) ga = sum_to(ga, sa);
    if (gb.defined()) gb = sum_to(gb, sb);
    return std::vector<Tensor>{ga, gb};
  });
  return z;
}

// The double operand of `op` as a 0-d tensor of t's dtype and device. For an integer
// t it must be a whole number: 2.5 would silently become 2 (and 0.5 a zero divisor).
Tensor scalar_like(const char* op, double v, const Tensor& t) {
  LOOM_CHECK(t.defined(), op, ": the tensor operand is undefined");
  LOOM_CHECK(is_floating(t.dtype()) || v == std::trunc(v), op, ": scalar ", v, " is not a whole number, so it cannot ",
             "combine with the ", t.dtype(), " tensor ", t.shape(), " (convert the tensor with .to(dtype))");
  return full({}, v, t.options());
}

}  // namespace

Tensor neg(const Tensor& x) { return unary_op(OpId::Neg, UnaryOp::Neg, x); }
Tensor exp(const Tensor& x) { return unary_op(OpId::Exp, UnaryOp::Exp, x); }
Tensor log(const Tensor& x) { return unary_op(OpId::Log, UnaryOp::Log, x); }
Tensor log1p(const Tensor& x) { return unary_op(OpId::Log1p, UnaryOp::Log1p, x); }
Tensor sqrt(const Tensor& x) { return unary_op(OpId::Sqrt, UnaryOp::Sqrt, x); }
Tensor rsqrt(const Tensor& x) { return unary_op(OpId::Rsqrt, UnaryOp::Rsqrt, x); }
Tensor tanh(const Tensor& x) { return unary_op(OpId::Tanh, UnaryOp::Tanh, x); }
Tensor sigmoid(const Tensor& x) { return unary_op(OpId::Sigmoid, UnaryOp::Sigmoid, x); }
Tensor relu(const Tensor& x) { return unary_op(OpId::Relu, UnaryOp::Relu, x); }
Tensor leaky_relu(const Tensor& x, double slope) {
  return unary_op(OpId::LeakyRelu, UnaryOp::LeakyRelu, x, {slope, 0});
}
Tensor elu(const Tensor& x, double alpha) { return unary_op(OpId::Elu, UnaryOp::Elu, x, {alpha, 0}); }
Tensor silu(const Tensor& x) { return unary_op(OpId::Silu, UnaryOp::Silu, x); }
Tensor softplus(const Tensor& x) { return unary_op(OpId::Softplus, UnaryOp::Softplus, x); }
Tensor abs(const Tensor& x) { return unary_op(OpId::Abs, UnaryOp::Abs, x); }
Tensor square(const Tensor& x) { return unary_op(OpId::Square, UnaryOp::Square, x); }
Tensor pow(const Tensor& x, double e) { return unary_op(OpId::PowScalar, UnaryOp::PowScalar, x, {e, 0}); }
Tensor sin(const Tensor& x) { return unary_op(OpId::Sin, UnaryOp::Sin, x); }
Tensor cos(const Tensor& x) { return unary_op(OpId::Cos, UnaryOp::Cos, x); }
Tensor clamp(const Tensor& x, double lo, double hi) {
  LOOM_CHECK(lo <= hi, "clamp: lower bound ", lo, " exceeds upper bound ", hi);
  return unary_op(OpId::Clamp, UnaryOp::Clamp, x, {lo, hi});
}
Tensor sign(const Tensor& x) {
  NoGrad ng;  // piecewise constant: no gradient to record
  return unary_op(OpId::Abs, UnaryOp::Sign, x, {}, "sign");
}

Tensor add(const Tensor& a, const Tensor& b) { return binary_op(OpId::Add, BinaryOp::Add, a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary_op(OpId::Sub, BinaryOp::Sub, a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary_op(OpId::Mul, BinaryOp::Mul, a, b); }
Tensor div(const Tensor& a, const Tensor& b) {
  // Integer division by zero traps (SIGFPE) inside the kernel: refuse it here. Only
  // integer divisors pay for this host-side scan.
  check_compatible("div", {&a, &b});
  if (!is_floating(b.dtype())) {
    std::vector<int64_t> divisor = b.to_vector<int64_t>();
    LOOM_CHECK(std::find(divisor.begin(), divisor.end(), 0) == divisor.end(), "div: integer division by zero (",
               b.dtype(), " divisor ", b.shape(), ")");
  }
  return binary_op(OpId::Div, BinaryOp::Div, a, b);
}
Tensor pow(const Tensor& a, const Tensor& b) { return binary_op(OpId::Pow, BinaryOp::Pow, a, b); }
Tensor maximum(const Tensor& a, const Tensor& b) { return binary_op(OpId::Maximum, BinaryOp::Maximum, a, b); }
Tensor minimum(const Tensor& a, const Tensor& b) { return binary_op(OpId::Minimum, BinaryOp::Minimum, a, b); }

Tensor eq(const Tensor& a, const Tensor& b) { return binary_raw("eq", BinaryOp::Eq, a, b); }
Tensor ne(const Tensor& a, const Tensor& b) { return binary_raw("ne", BinaryOp::Ne, a, b); }
Tensor lt(const Tensor& a, const Tensor& b) { return binary_raw("lt", BinaryOp::Lt, a, b); }
Tensor le(const Tensor& a, const Tensor& b) { return binary_raw("le", BinaryOp::Le, a, b); }
Tensor gt(const Tensor& a, const Tensor& b) { return binary_raw("gt", BinaryOp::Gt, a, b); }
Tensor ge(const Tensor& a, const Tensor& b) { return binary_raw("ge", BinaryOp::Ge, a, b); }

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  const OpRange range(OpId::Where);
  check_compatible("where", {&cond, &a, &b});
  Shape out = broadcast_shapes("where", broadcast_shapes("where", cond.shape(), a.shape()), b.shape());
  Tensor z = empty(out, a.options());
  Broadcast bc = make_broadcast("where", out, {cond.shape(), a.shape(), b.shape()});
  KernelCtx k = kernel_ctx(a.device());
  LOOM_DISPATCH(k, LOOM_CUDA_ELEMENTWISE, where, k, a.dtype(), cond.data_ptr(), a.data_ptr(), b.data_ptr(),
                z.data_ptr(), bc);
  // cond is not an input of the tape entry: the output is piecewise constant in it,
  // so no gradient flows there even when cond itself requires grad.
  if (needs_grad({&a, &b})) {
    Shape sa = a.shape(), sb = b.shape();
    record(OpId::Where, {a, b}, {z}, {cond}, [sa, sb](BackwardCtx& c) {
      const Tensor &m = c.saved[0], &g = c.grad_out[0];
      Tensor zero = zeros({}, g.options());
      Tensor ga = c.needs[0] ? sum_to(where(m, g, zero), sa) : Tensor();
      Tensor gb = c.needs[1] ? sum_to(where(m, zero, g), sb) : Tensor();
      return std::vector<Tensor>{ga, gb};
    });
  }
  return z;
}

Tensor operator-(const Tensor& x) { return neg(x); }
Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator+(const Tensor& a, double b) { return add(a, scalar_like("add", b, a)); }
Tensor operator-(const Tensor& a, double b) { return sub(a, scalar_like("sub", b, a)); }
Tensor operator*(const Tensor& a, double b) { return mul(a, scalar_like("mul", b, a)); }
Tensor operator/(const Tensor& a, double b) { return div(a, scalar_like("div", b, a)); }
Tensor operator+(double a, const Tensor& b) { return add(scalar_like("add", a, b), b); }
Tensor operator-(double a, const Tensor& b) { return sub(scalar_like("sub", a, b), b); }
Tensor operator*(double a, const Tensor& b) { return mul(scalar_like("mul", a, b), b); }
Tensor operator/(double a, const Tensor& b) { return div(scalar_like("div", a, b), b); }

}  // namespace loom
