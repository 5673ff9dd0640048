// Shape ops. Data is always contiguous, so reshape/squeeze/unsqueeze/flatten
// are views sharing storage, while ops that reorder or replicate data
// (permute, expand, concat, slice, pad) copy through one strided-copy kernel.
#include <algorithm>
#include <numeric>

#include "autograd/ops/common.h"
#include "kernels/shape.h"

namespace loom {
using namespace detail;

namespace {

Shape contiguous_strides(const Shape& s) {
  Shape st(s.size(), 1);
  for (int64_t i = static_cast<int64_t>(s.size()) - 2; i >= 0; --i) st[i] = st[i + 1] * s[i + 1];
  return st;
}

// Copies src (viewed with src_strides from src_offset) into dst (dst_strides,
// dst_offset) over `shape`.
void strided_copy(const Tensor& dst, int64_t dst_offset, const Shape& dst_strides, const Tensor& src,
                  int64_t src_offset, const Shape& src_strides, const Shape& shape, const char* op) {
  if (numel(shape) == 0) return;
  LOOM_CHECK(shape.size() <= static_cast<size_t>(kMaxRank), op, ": rank ", shape.size(), " exceeds ", kMaxRank);
  Broadcast bc;
  bc.rank = static_cast<int>(shape.size());
  for (int i = 0; i < bc.rank; ++i) {
    bc.shape[i] = shape[i];
    bc.stride[0][i] = dst_strides[i];
    bc.stride[1][i] = src_strides[i];
  }
  KernelCtx k = kernel_ctx(dst.device());
  LOOM_DISPATCH(k, LOOM_CUDA_SHAPE, copy_strided, k, dst.dtype(), dst.data_ptr(), dst_offset, src.data_ptr(),
                src_offset, bc);
}

// A view of x's storage with a new shape (numel must match).
Tensor view_as(const Tensor& x, const Shape& shape) {
  Tensor v = x.detach();
  v.impl().shape = shape;
  return v;
}

}  // namespace

Tensor reshape(const Tensor& x, Shape shape) {
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      LOOM_CHECK(infer < 0, "reshape: more than one -1 in ", shape);
      infer = static_cast<int64_t>(i);
    } else {
      LOOM_CHECK(shape[i] >= 0, "reshape: negative dimension in ", shape);
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    LOOM_CHECK(known > 0 && x.numel() % known == 0, "reshape: cannot infer -1 reshaping ", x.shape(), " to ", shape);
    shape[infer] = x.numel() / known;
  }
  LOOM_CHECK(numel(shape) == x.numel(), "reshape: ", x.shape(), " (", x.numel(), " elements) cannot become ", shape,
             " (", numel(shape), " elements)");
  if (shape == x.shape()) return x;
  Tensor y = view_as(x, shape);
  Shape xs = x.shape();
  record(OpId::Reshape, {x}, {y}, {}, [xs](BackwardCtx& c) {
    return std::vector<Tensor>{reshape(c.grad_out[0], xs)};
  });
  return y;
}

Tensor flatten(const Tensor& x, int64_t start_axis, int64_t end_axis) {
  if (x.dim() == 0) return reshape(x, {1});
  const int64_t s = wrap_axis("flatten", start_axis, x.dim()), e = wrap_axis("flatten", end_axis, x.dim());
  LOOM_CHECK(s <= e, "flatten: start axis ", start_axis, " comes after end axis ", end_axis, " for ", x.shape());
  Shape out(x.shape().begin(), x.shape().begin() + s);
  out.push_back(prod(x.shape(), s, e + 1));
  out.insert(out.end(), x.shape().begin() + e + 1, x.shape().end());
  return reshape(x, out);
}

Tensor squeeze(const Tensor& x, int64_t axis) {
  const int64_t a = wrap_axis("squeeze", axis, x.dim());
  LOOM_CHECK(x.shape()[a] == 1, "squeeze: axis ", axis, " of ", x.shape(), " has size ", x.shape()[a], ", not 1");
  Shape s = x.shape();
  s.erase(s.begin() + a);
  return reshape(x, s);
}

Tensor unsqueeze(const Tensor& x, int64_t axis) {
  const int64_t a = wrap_axis("unsqueeze", axis, x.dim() + 1);
  Shape s = x.shape();
  s.insert(s.begin() + a, 1);
  return reshape(x, s);
}

Tensor permute(const Tensor& x, std::vector<int64_t> perm) {
  const int64_t r = x.dim();
  LOOM_CHECK(static_cast<int64_t>(perm.size()) == r, "permute: ", perm.size(), " axes given for a tensor of shape ",
             x.shape());
  std::vector<bool> seen(r, false);
  for (int64_t& p : perm) {
    p = wrap_axis("permute", p, r);
    LOOM_CHECK(!seen[p], "permute: axis ", p, " repeated in the permutation of ", x.shape());
    seen[p] = true;
  }
  Shape out(r), src_strides(r);
  const Shape xst = contiguous_strides(x.shape());
  for (int64_t i = 0; i < r; ++i) {
    out[i] = x.shape()[perm[i]];
    src_strides[i] = xst[perm[i]];
  }
  Tensor y = empty(out, x.options());
  strided_copy(y, 0, contiguous_strides(out), x, 0, src_strides, out, "permute");
  if (needs_grad({&x})) {
    std::vector<int64_t> inv(r);
    for (int64_t i = 0; i < r; ++i) inv[perm[i]] = i;
    record(OpId::Permute, {x}, {y}, {}, [inv](BackwardCtx& c) {
      return std::vector<Tensor>{permute(c.grad_out[0], inv)};
    });
  }
  return y;
}

Tensor transpose(const Tensor& x, int64_t a0, int64_t a1) {
  std::vector<int64_t> perm(x.dim());
  std::iota(perm.begin(), perm.end(), 0);
  std::swap(perm[wrap_axis("transpose", a0, x.dim())], perm[wrap_axis("transpose", a1, x.dim())]);
  return permute(x, perm);
}

Tensor expand(const Tensor& x, const Shape& shape) {
  Shape out = broadcast_shapes("expand", x.shape(), shape);
  LOOM_CHECK(out == shape, "expand: ", x.shape(), " cannot be expanded to ", shape);
  if (out == x.shape()) return x;
  Broadcast bc = make_broadcast("expand", out, {out, x.shape()});
  Tensor y = empty(out, x.options());
  if (y.numel() > 0) {
    KernelCtx k = kernel_ctx(x.device());
    LOOM_DISPATCH(k, LOOM_CUDA_SHAPE, copy_strided, k, x.dtype(), y.data_ptr(), 0, x.data_ptr(), 0, bc);
  }
  Shape xs = x.shape();
  record(OpId::Expand, {x}, {y}, {}, [xs](BackwardCtx& c) { return std::vector<Tensor>{sum_to(c.grad_out[0], xs)}; });
  return y;
}

}  // namespace loom
