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
  LOOM_CHECK(axis >= -n && axis < n, op, ": axis ", axis, " is out of range for a tensor of rank ", rank);
  return axis < 0 ? axis + n : axis;
}

Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b) {
  size_t r = std::max(a.size(), b.size());
  Shape out(r);
  for (size_t i = 0; i < r; ++i) {
    int64_t da = i < r - a.size() ? 1 : a[i - (r - a.size())];
    int64_t db = i < r - b.size() ? 1 : b[i - (r - b.size())];
    LOOM_CHECK(da == db || da == 1 || db == 1, op, ": shapes ", a, " and ", b,
               " cannot be broadcast (dimension ", i, " is ", da, " vs ", db, ")");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

Broadcast make_broadcast(const char* op, const Shape& out, std::initializer_list<Shape> operands) {
  const int r = static_cast<int>(out.size());
  const int nops = static_cast<int>(operands.size());
  // Full-rank strides per operand (0 where broadcast).
  std::vector<std::vector<int64_t>> st(nops, std::vector<int64_t>(r, 0));
  int j = 0;
  for (const Shape& s : operands) {
    int64_t stride = 1;
    for (int i = r - 1; i >= 0; --i) {
      int si = i - (r - static_cast<int>(s.size()));
      int64_t d = si >= 0 ? s[si] : 1;
      st[j][i] = (d == 1 && out[i] != 1) ? 0 : stride;
      stride *= d;
    }
    ++j;
  }
  // Merge dim i into i+1 when every operand is contiguous across the pair.
  Broadcast bc;
  std::vector<int64_t> shape;
  std::vector<std::vector<int64_t>> merged(nops);
  for (int i = 0; i < r; ++i) {
    if (out[i] == 1 && r > 1) continue;  // size-1 dims carry no iteration
    bool can_merge = !shape.empty();
    for (int o = 0; o < nops && can_merge; ++o)
      can_merge = merged[o].back() == st[o][i] * out[i];
    if (can_merge) {
      shape.back() *= out[i];
      for (int o = 0; o < nops; ++o) merged[o].back() = st[o][i];
    } else {
      shape.push_back(out[i]);
      for (int o = 0; o < nops; ++o) merged[o].push_back(st[o][i]);
    }
  }
  LOOM_CHECK(shape.size() <= static_cast<size_t>(kMaxRank), op, ": shape ", out, " has more than ",
             kMaxRank, " non-mergeable dimensions");
  bc.rank = static_cast<int>(shape.size());
  for (int i = 0; i < bc.rank; ++i) {
    bc.shape[i] = shape[i];
    for (int o = 0; o < nops; ++o) bc.stride[o][i] = merged[o][i];
  }
  return bc;
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
