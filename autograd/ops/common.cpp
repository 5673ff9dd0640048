#include "autograd/ops/common.h"

namespace loom::detail {

void check_compatible(const char* op, std::initializer_list<const Tensor*> xs) {
  const Tensor* first = nullptr;
  for (const Tensor* t : xs) {
    LOOM_CHECK(t->defined(), op, ": an operand is an undefined tensor");
    if (!first) {
      first = t;
      continue;
    }
    LOOM_CHECK(t->dtype() == first->dtype(), op, ": dtype mismatch, ", first->dtype(), " ",
               first->shape(), " vs ", t->dtype(), " ", t->shape(), " (convert one with .to(dtype))");
    LOOM_CHECK(t->device() == first->device(), op, ": device mismatch, ", first->shape(), " on ",
               first->device(), " vs ", t->shape(), " on ", t->device(), " (move one with .to(device))");
  }
}

void check_floating(const char* op, const Tensor& x) {
  LOOM_CHECK(x.defined(), op, ": the input is an undefined tensor");
  LOOM_CHECK(is_floating(x.dtype()), op, ": needs a float32 or float64 tensor, got ", x.dtype(), " ",
             x.shape());
}

int64_t wrap_axis(const char* op, int64_t axis, int64_t rank) {
  // A 0-d tensor takes axis 0 or -1 as if it were [1] (PyTorch's convention), so that
  // softmax(x) with its default axis -1 works on a scalar.
  const int64_t n = std::max<int64_t>(rank, 1);
  LOOM_CHECK(axis >= -n && axis < n, op, ": axis ", axis, " is out of range for a tensor of rank ", rank,
             " (expected an axis in [", -n, ", ", n, "))");
  return axis < 0 ? axis + n : axis;
}

int64_t prod(const Shape& s, int64_t begin, int64_t end) {
  int64_t p = 1;
  for (int64_t i = begin; i < end; ++i) p *= s[i];
  return p;
}

Tensor sum_to(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  const int64_t r = g.dim(), lead = r - static_cast<int64_t>(shape.size());
  std::vector<int64_t> axes;
  for (int64_t i = 0; i < r; ++i)
    if (i < lead || (shape[i - lead] == 1 && g.shape()[i] != 1)) axes.push_back(i);
  return reshape(sum(g, axes, false), shape);
}

}  // namespace loom::detail
