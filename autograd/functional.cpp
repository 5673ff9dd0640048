#include "autograd/functional.h"

#include "autograd/ops.h"
#include "autograd/tape.h"

namespace loom {

namespace {
// A fresh leaf sharing x's values, so f's history starts at it.
Tensor leaf_like(const Tensor& x, const char* fn) {
  LOOM_CHECK(x.defined(), fn, ": x is an undefined tensor");
  LOOM_CHECK(is_floating(x.dtype()), fn, ": x must be float32 or float64, got ", x.dtype(), " ", x.shape());
  return x.detach().requires_grad_();
}
}  // namespace

Tensor hvp(const TensorFn& f, const Tensor& x, const Tensor& v) {
  Tensor xr = leaf_like(x, "hvp");
  LOOM_CHECK(v.defined() && v.shape() == x.shape() && v.dtype() == x.dtype() && v.device() == x.device(),
             "hvp: v must match x ", x.shape(), " ", x.dtype(), " on ", x.device(), ", got ",
             v.defined() ? v.shape() : Shape{}, v.defined() ? str(" ", v.dtype()) : std::string());
  Tensor y = f(xr);
  LOOM_CHECK(y.defined() && y.numel() == 1, "hvp: f must return one element, got ", y.defined() ? y.shape() : Shape{});
  Tensor g = grad({y}, {xr}, {}, {.create_graph = true})[0];
  // ⟨∇f, v⟩ may not depend on x at all (f linear): then the product is 0.
  if (!g.requires_grad()) return zeros_like(x);
  Tensor hv = grad({sum(g * v.detach())}, {xr}, {}, {.allow_unused = true})[0];
  return hv.defined() ? hv.detach() : zeros_like(x);
}

Tensor jacobian(const TensorFn& f, const Tensor& x) {
  Tensor xr = leaf_like(x, "jacobian");
  Tensor y = f(xr);
  LOOM_CHECK(y.defined(), "jacobian: f returned an undefined tensor");
  Shape shape = y.shape();
  shape.insert(shape.end(), x.shape().begin(), x.shape().end());
  if (!y.requires_grad() || y.numel() == 0) return zeros(shape, x.options());  // f ignores x, or is empty
  const int64_t n = y.numel();
  std::vector<Tensor> rows;
  for (int64_t i = 0; i < n; ++i) {
    std::vector<double> onehot(static_cast<size_t>(n), 0.0);
    onehot[static_cast<size_t>(i)] = 1;
    Tensor e = from_vector(onehot, y.shape(), y.options());
    Tensor row = grad({y}, {xr}, {e}, {.retain_graph = i + 1 < n, .allow_unused = true})[0];
    rows.push_back(row.defined() ? reshape(row.detach(), {1, x.numel()}) : zeros({1, x.numel()}, x.options()));
  }
  return reshape(concat(rows, 0), shape);
}

}  // namespace loom
