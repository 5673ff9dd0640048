// Reductions over any set of axes, softmax and log_softmax.
//
// A reduction over a non-contiguous axis set runs as successive reductions over
// each contiguous run of axes (kept as size-1 dims in between): sum, max, min
// and logsumexp all compose that way (lse(lse(x)) = lse(x)), so no transpose
// copy is needed. Backward rules, with ĝ = g broadcast back over the axes:
//   sum:  ĝ               mean: ĝ / n
//   max/min: ĝ · 1[x = m] / #ties        logsumexp: ĝ · exp(x − lse)
//   var (correction c, composed): 2 (x − μ) ĝ / (n − c)
// and for the scan cumsum (prefix sums along one axis), whose adjoint is the
// suffix sum: cumsum(x, reverse)' = cumsum(g, !reverse).
#include <algorithm>
#include <cmath>

#include "autograd/ops/common.h"
#include "kernels/reduce.h"

namespace loom {
using namespace detail;

namespace {

struct Axes {
  std::vector<int64_t> axes;  // sorted, unique, non-negative
  Shape kept;                 // x.shape with reduced axes set to 1
  Shape out;                  // the result shape honouring keepdim
  int64_t count = 1;          // number of elements reduced into each output
};

Axes resolve(const char* op, const Tensor& x, std::vector<int64_t> axes, bool keepdim) {
  Axes a;
  const int64_t r = x.dim();
  if (axes.empty())
    for (int64_t i = 0; i < r; ++i) axes.push_back(i);
  for (int64_t& ax : axes) ax = wrap_axis(op, ax, r);
  std::sort(axes.begin(), axes.end());
  auto repeated = std::adjacent_find(axes.begin(), axes.end());
  LOOM_CHECK(repeated == axes.end(), op, ": axis ", (repeated == axes.end() ? 0 : *repeated),
             " is repeated in the reduction of ", x.shape());
  // A 0-d tensor accepts axis 0 or -1 (as PyTorch does) and reduces over nothing.
  if (r == 0) axes.clear();
  a.axes = axes;
  a.kept = x.shape();
  for (int64_t ax : axes) {
    a.count *= a.kept[ax];
    a.kept[ax] = 1;
  }
  if (keepdim) {
    a.out = a.kept;
  } else {
    for (int64_t i = 0; i < r; ++i)
      if (!std::binary_search(axes.begin(), axes.end(), i)) a.out.push_back(x.shape()[i]);
  }
  return a;
}

// One reduction kernel call per contiguous run of axes, last run first.
// Returns the result in the kept (keepdim) shape, never sharing x's storage.
Tensor reduce_raw(const char* op, ReduceOp kop, const Tensor& x, const std::vector<int64_t>& axes) {
  if (axes.empty()) return x.detach().clone();  // a reduction over no axis is the identity
  Tensor cur = x;
  Shape shape = x.shape();
  size_t i = axes.size();
  while (i > 0) {
    size_t j = i - 1;
    while (j > 0 && axes[j - 1] == axes[j] - 1) --j;
    const int64_t a0 = axes[j], a1 = axes[i - 1];
    const int64_t outer = prod(shape, 0, a0), rlen = prod(shape, a0, a1 + 1),
                  inner = prod(shape, a1 + 1, static_cast<int64_t>(shape.size()));
    // Max, min and logsumexp have no identity element to return for zero elements.
    LOOM_CHECK(rlen > 0 || kop == ReduceOp::Sum, op, ": reduction over an empty axis of ", x.shape());
    for (int64_t ax = a0; ax <= a1; ++ax) shape[ax] = 1;
    Tensor out = empty(shape, x.options());
    KernelCtx k = kernel_ctx(x.device());
    LOOM_DISPATCH(k, LOOM_CUDA_REDUCE, reduce, k, kop, x.dtype(), cur.data_ptr(), out.data_ptr(), nullptr, outer,
                  rlen, inner);
    cur = out;
    i = j;
  }
  return cur;
}

Tensor reduction(OpId id, ReduceOp kop, const Tensor& x, std::vector<int64_t> axes_in, bool keepdim) {
  const OpRange range(id);
  const char* name = op_name(id);
  check_floating(name, x);
  Axes a = resolve(name, x, std::move(axes_in), keepdim);
  Tensor kept = reduce_raw(name, kop, x, a.axes);
  Tensor y = reshape(kept.detach(), a.out);
  if (!needs_grad({&x})) return y;
  // logsumexp saves its output y, not `kept` (the same values without history):
  // its gradient exp(x − y) depends on x through y too, which a second derivative needs.
  std::vector<Tensor> saved;
  if (kop != ReduceOp::Sum) saved = {x, kop == ReduceOp::LogSumExp ? y : kept};
  Shape xs = x.shape(), ks = a.kept;
  record(id, {x}, {y}, saved, [kop, xs, ks](BackwardCtx& c) {
    Tensor g = reshape(c.grad_out[0], ks);
    if (kop == ReduceOp::Sum) return std::vector<Tensor>{expand(g, xs)};
    const Tensor &x = c.saved[0], m = reshape(c.saved[1], ks);
    if (kop == ReduceOp::LogSumExp) return std::vector<Tensor>{g * exp(x - m)};
    Tensor mask = eq(x, m);
    std::vector<int64_t> axes;
    for (size_t i = 0; i < xs.size(); ++i)
      if (ks[i] == 1 && xs[i] != 1) axes.push_back(static_cast<int64_t>(i));
    Tensor ties = axes.empty() ? ones_like(m) : sum(mask, axes, true);
    return std::vector<Tensor>{mask * (g / ties)};
  });
  return y;
}

Tensor softmax_op(OpId id, const Tensor& x, int64_t axis, bool log) {
  const OpRange range(id);
  const char* name = op_name(id);
  check_floating(name, x);
  const int64_t ax = wrap_axis(name, axis, x.dim());
  const Shape& s = x.shape();
  const int64_t outer = prod(s, 0, ax), r = x.dim() ? s[ax] : 1, inner = prod(s, ax + 1, x.dim());
  Tensor y = empty(s, x.options());
  KernelCtx k = kernel_ctx(x.device());
  LOOM_DISPATCH(k, LOOM_CUDA_REDUCE, softmax, k, x.dtype(), x.data_ptr(), y.data_ptr(), outer, r, inner, log);
  if (needs_grad({&x}))
    record(id, {x}, {y}, {y}, [outer, r, inner, log, ax](BackwardCtx& c) {
      const Tensor &y = c.saved[0], &gy = c.grad_out[0];
      // Recorded: softmax ∂x = y ⊙ (g − Σ_ax g ⊙ y); log_softmax ∂x = g − e^y ⊙ Σ_ax g.
      if (differentiable({&y, &gy}))
        return std::vector<Tensor>{log ? gy - exp(y) * sum(gy, {ax}, true) : y * (gy - sum(gy * y, {ax}, true))};
      Tensor gx = empty(y.shape(), y.options());
      KernelCtx k = kernel_ctx(y.device());
      LOOM_DISPATCH(k, LOOM_CUDA_REDUCE, softmax_backward, k, y.dtype(), y.data_ptr(), gy.data_ptr(), gx.data_ptr(),
                    outer, r, inner, log);
      return std::vector<Tensor>{gx};
    });
  return y;
}

}  // namespace

Tensor sum(const Tensor& x, std::vector<int64_t> axes, bool keepdim) {
  return reduction(OpId::Sum, ReduceOp::Sum, x, std::move(axes), keepdim);
}
Tensor max(const Tensor& x, std::vector<int64_t> axes, bool keepdim) {
  return reduction(OpId::Max, ReduceOp::Max, x, std::move(axes), keepdim);
}
Tensor min(const Tensor& x, std::vector<int64_t> axes, bool keepdim) {
  return reduction(OpId::Min, ReduceOp::Min, x, std::move(axes), keepdim);
}
Tensor logsumexp(const Tensor& x, std::vector<int64_t> axes, bool keepdim) {
  return reduction(OpId::LogSumExp, ReduceOp::LogSumExp, x, std::move(axes), keepdim);
}

Tensor mean(const Tensor& x, std::vector<int64_t> axes, bool keepdim) {
  const OpRange range(OpId::Mean);
  check_floating("mean", x);
  Axes a = resolve("mean", x, axes, keepdim);
  LOOM_CHECK(a.count > 0, "mean: reduction over an empty axis of ", x.shape());
  return sum(x, std::move(axes), keepdim) / static_cast<double>(a.count);
}

Tensor var(const Tensor& x, std::vector<int64_t> axes, bool keepdim, int64_t correction) {
  check_floating("var", x);
  Axes a = resolve("var", x, axes, keepdim);
  LOOM_CHECK(a.count - correction > 0, "var: ", a.count, " elements with correction ", correction,
             " leave no degrees of freedom (shape ", x.shape(), ")");
  Tensor d = x - mean(x, axes, true);
  return sum(square(d), std::move(axes), keepdim) / static_cast<double>(a.count - correction);
}

Tensor norm(const Tensor& x, double p, std::vector<int64_t> axes, bool keepdim) {
  const OpRange range(OpId::Norm);
  check_floating("norm", x);
  LOOM_CHECK(p >= 1, "norm: p = ", p, " is not a norm (p must be ≥ 1 or inf; input ", x.shape(), ")");
  if (std::isinf(p)) return max(abs(x), std::move(axes), keepdim);  // abs′(0) = 0, max shares ties
  Axes a = resolve("norm", x, axes, keepdim);
  Tensor y;
  {
    NoGrad no_grad;
    y = p == 2 ? sqrt(sum(square(x), axes, keepdim))
        : p == 1 ? sum(abs(x), axes, keepdim) : pow(sum(pow(abs(x), p), axes, keepdim), 1 / p);
  }
  if (needs_grad({&x}))
    record(OpId::Norm, {x}, {y}, {x, y}, [p, ks = a.kept](BackwardCtx& c) {
      const Tensor& x = c.saved[0];
      Tensor y = reshape(c.saved[1], ks), g = reshape(c.grad_out[0], ks);
      Tensor zero = zeros({}, x.options());
      if (p == 1) return std::vector<Tensor>{g * sign(x)};
      Tensor nonzero = ne(y, zero);
      Tensor safe = where(nonzero, y, ones({}, x.options()));  // 1 where ‖x‖ = 0: no 0/0 on either branch
      Tensor d = p == 2 ? x / safe : sign(x) * pow(abs(x), p - 1) / pow(safe, p - 1);
      return std::vector<Tensor>{where(nonzero, g * d, zero)};
    });
  return y;
}

Tensor cumsum(const Tensor& x, int64_t axis, bool reverse) {
  const OpRange range(OpId::Cumsum);
  check_floating("cumsum", x);
  const int64_t ax = wrap_axis("cumsum", axis, x.dim());
  const Shape& s = x.shape();
  const int64_t outer = prod(s, 0, ax), r = x.dim() ? s[ax] : 1, inner = prod(s, ax + 1, x.dim());
  Tensor y = empty(s, x.options());
  KernelCtx k = kernel_ctx(x.device());
  LOOM_DISPATCH(k, LOOM_CUDA_REDUCE, cumsum, k, x.dtype(), x.data_ptr(), y.data_ptr(), outer, r, inner, reverse);
  // ∂L/∂x_k = Σ_{j ≥ k} g_j: the suffix sum of g (the prefix sum for reverse). A
  // linear map needs nothing saved, and calling the op itself records the
  // backward under create_graph.
  if (needs_grad({&x}))
    record(OpId::Cumsum, {x}, {y}, {}, [ax, reverse](BackwardCtx& c) {
      return std::vector<Tensor>{cumsum(c.grad_out[0], ax, !reverse)};
    });
  return y;
}

Tensor softmax(const Tensor& x, int64_t axis) { return softmax_op(OpId::Softmax, x, axis, false); }
Tensor log_softmax(const Tensor& x, int64_t axis) { return softmax_op(OpId::LogSoftmax, x, axis, true); }

Tensor argmax(const Tensor& x, int64_t axis, bool keepdim) {
  check_floating("argmax", x);
  const int64_t ax = wrap_axis("argmax", axis, x.dim());
  const Shape& s = x.shape();
  LOOM_CHECK(x.dim() == 0 || s[ax] > 0, "argmax: empty axis ", ax, " of ", s);
  Axes a = resolve("argmax", x, {ax}, keepdim);
  Tensor vals = empty(a.kept, x.options());
  Tensor idx = empty(a.out, TensorOptions{DType::Int64, x.device()});
  KernelCtx k = kernel_ctx(x.device());
  LOOM_DISPATCH(k, LOOM_CUDA_REDUCE, reduce, k, ReduceOp::Max, x.dtype(), x.data_ptr(), vals.data_ptr(),
                idx.data<int64_t>(), prod(s, 0, ax), x.dim() ? s[ax] : 1, prod(s, ax + 1, x.dim()));
  return idx;
}

}  // namespace loom
