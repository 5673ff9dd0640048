// Derivatives of whole functions, in the spirit of torch.autograd.functional,
// built on grad() with create_graph. For small functions: tests and the theory
// tools (`loom derive`) use them; a training loop calls grad() directly.
#pragma once

#include <functional>

#include "autograd/tensor.h"

namespace loom {

using TensorFn = std::function<Tensor(const Tensor&)>;

// The Hessian-vector product ∇²f(x)·v of a scalar function f (a one-element
// result) at x, by double backward (Pearlmutter 1994): v ↦ ∂⟨∇f(x), v⟩/∂x, without
// forming the Hessian. x and v: float32/float64 of one shape, dtype and device;
// the result has x's shape and carries no history. x itself is not modified and
// need not require grad. Throws if f(x) is not one element, does not depend on x,
// or v does not match x.
Tensor hvp(const TensorFn& f, const Tensor& x, const Tensor& v);

// The Jacobian ∂f(x)/∂x, shaped f(x).shape ++ x.shape (one reverse sweep per
// element of f(x): for small functions). Elements of f(x) that do not depend on
// x give zero rows. No history.
Tensor jacobian(const TensorFn& f, const Tensor& x);

}  // namespace loom
