// Shape ops. Data is always contiguous, so reshape/squeeze/unsqueeze/flatten
// are views sharing storage, while ops that reorder or replicate data
// (permute, expand, concat, split, slice, pad) copy through the strided-copy
// kernel, and the index ops (index_select, gather, scatter_add, one_hot) move
// elements through the index kernels.
//
// Gradient rules, g = ∂L/∂y:
//   reshape: reshape(g, x.shape)          permute(perm): permute(g, perm⁻¹)
//   expand: sum_to(g, x.shape)            concat: each input gets the slice of g it filled
//   split: concat of the pieces' g        slice: g scattered into zeros at start, start+step, …
//   pad(p): pad(g, −p) (crops what was padded, zero where x was cropped away)
//   index_select: index_add of g into zeros           gather: scatter_add of g into zeros
//   scatter_add(x, idx, src): ∂x = g, ∂src = gather(g, idx)
//   to_device (Tensor::to(Device)): g moved back      cast (Tensor::to(DType)): g cast back
//   clone: g
//
// Index tensors are int64 and are checked before any kernel uses them
// (check_indices): an index outside its axis would make a kernel read or
// write outside its buffer, so it is a loom::Error naming the op, the value, its
// position and the axis instead. Backward reuses the validated (saved,
// version-checked) index through the raw kernels below without checking it again.
#include <algorithm>
#include <numeric>

#include "autograd/graph.h"
#include "autograd/ops/common.h"
#include "kernels/graph.h"
#include "kernels/memory.h"
#include "kernels/shape.h"

namespace loom {
using namespace detail;

namespace {

Shape contiguous_strides(const Shape& s) {
  Shape st(s.size(), 1);
  for (int64_t i = static_cast<int64_t>(s.size()) - 2; i >= 0; --i) st[i] = st[i + 1] * s[i + 1];
  return st;
}

// Where a box of elements lives in a contiguous buffer: the element at
// multi-index i sits at offset + Σ_d i_d · strides[d].
struct StridedView {
  int64_t offset = 0;
  Shape strides;
};

StridedView whole(const Shape& s) { return {0, contiguous_strides(s)}; }

// The elements start, start + step, … along `axis` of a contiguous tensor of shape s.
StridedView along(const Shape& s, int64_t axis, int64_t start, int64_t step = 1) {
  StridedView v = whole(s);
  v.offset = start * v.strides[axis];
  v.strides[axis] *= step;
  return v;
}

// dst[to at i] = src[from at i] for every multi-index i < extent, in one
// copy_strided call. Size-1 axes are dropped and neighbouring axes that are
// contiguous in both views merged first (axis i folds into the kept axis k
// when stride_k = stride_i · extent_i on both sides), so the kernel's inner
// loop is as long as possible (a memcpy where both views are dense).
void strided_copy(const Tensor& dst, const StridedView& to, const Tensor& src, const StridedView& from,
                  const Shape& extent, const char* op) {
  if (numel(extent) == 0) return;
  Broadcast bc;
  int r = 0;
  for (size_t i = 0; i < extent.size(); ++i) {
    const int64_t n = extent[i], sd = to.strides[i], ss = from.strides[i];
    if (n == 1) continue;
    if (r > 0 && bc.stride[0][r - 1] == sd * n && bc.stride[1][r - 1] == ss * n) {
      bc.shape[r - 1] *= n;
      bc.stride[0][r - 1] = sd;
      bc.stride[1][r - 1] = ss;
      continue;
    }
    LOOM_CHECK(r < kMaxRank, op, ": shape ", extent, " has more than ", kMaxRank, " axes that cannot be merged");
    bc.shape[r] = n;
    bc.stride[0][r] = sd;
    bc.stride[1][r] = ss;
    ++r;
  }
  bc.rank = r;
  KernelCtx k = kernel_ctx(dst.device());
  LOOM_DISPATCH(k, LOOM_CUDA_SHAPE, copy_strided, k, dst.dtype(), dst.data_ptr(), to.offset, src.data_ptr(),
                from.offset, bc);
}

// A view of x's storage with a new shape (numel must match).
Tensor view_as(const Tensor& x, const Shape& shape) {
  Tensor v = x.detach();
  v.impl().shape = shape;
  return v;
}

// Wraps `axis` for an op that needs a real axis (a 0-d tensor has none).
int64_t axis_of(const char* op, const Tensor& x, int64_t axis) {
  LOOM_CHECK(x.defined(), op, ": the input is an undefined tensor");
  LOOM_CHECK(x.dim() > 0, op, ": a 0-d tensor has no axis ", axis);
  return wrap_axis(op, axis, x.dim());
}

// ---- index helpers ----------------------------------------------------------------

void check_index_tensor(const char* op, const Tensor& index, const Tensor& x) {
  LOOM_CHECK(index.defined(), op, ": the index is an undefined tensor");
  LOOM_CHECK(index.dtype() == DType::Int64, op, ": index must be int64, got ", index.dtype(), " ", index.shape());
  LOOM_CHECK(index.device() == x.device(), op, ": index ", index.shape(), " is on ", index.device(), " but the input ",
             x.shape(), " is on ", x.device());
}

// gather/scatter_add walk x and index together as [outer, ·, inner] blocks, so
// the index must match x on every axis but `axis` (torch also accepts smaller
// index dims there; loom does not).
void check_index_matches_outside_axis(const char* op, const Tensor& index, const Tensor& x, int64_t axis) {
  bool same = index.dim() == x.dim();
  for (int64_t d = 0; same && d < x.dim(); ++d) same = d == axis || index.shape()[d] == x.shape()[d];
  LOOM_CHECK(same, op, ": index shape ", index.shape(), " must match the input shape ", x.shape(),
             " on every axis but ", axis);
}

std::string axis_name(int64_t axis, const Shape& s) {
  return str("axis ", axis, " of size ", s[axis], " (input shape ", s, ")");
}

// A contiguous tensor of shape s seen as [outer, n, inner] around `axis`.
struct AroundAxis {
  int64_t outer, n, inner;
};
AroundAxis around(const Shape& s, int64_t axis) {
  return {prod(s, 0, axis), s[axis], prod(s, axis + 1, static_cast<int64_t>(s.size()))};
}

// y = x[.., index[..j..], ..] with y shaped like index (indices already checked).
Tensor gather_raw(const Tensor& x, int64_t axis, const Tensor& index) {
  Tensor y = empty(index.shape(), x.options());
  if (y.numel() == 0) return y;
  const AroundAxis a = around(x.shape(), axis);
  KernelCtx k = kernel_ctx(x.device());
  LOOM_DISPATCH(k, LOOM_CUDA_SHAPE, gather, k, x.dtype(), x.data_ptr(), index.data<int64_t>(), y.data_ptr(), a.outer,
                a.n, index.shape()[axis], a.inner);
  return y;
}

// out[.., index[..j..], ..] += src[..j..] in place (indices already checked); duplicates sum.
void scatter_add_into(const Tensor& out, int64_t axis, const Tensor& index, const Tensor& src) {
  if (src.numel() == 0) return;
  const AroundAxis a = around(out.shape(), axis);
  KernelCtx k = kernel_ctx(out.device());
  LOOM_DISPATCH(k, LOOM_CUDA_SHAPE, scatter_add, k, out.dtype(), src.data_ptr(), index.data<int64_t>(),
                out.data_ptr(), a.outer, a.n, index.shape()[axis], a.inner);
}

// slice's adjoint through recorded ops: g placed at start, start + step, … of a
// zero tensor shaped xs. With step > 1 each row of g is followed by step − 1 zero
// rows (a concat along a new axis), then pad moves the result to `start` and
// crops or extends it to xs[ax].
Tensor slice_backward_recorded(const Tensor& g, const Shape& xs, int64_t ax, int64_t start, int64_t step) {
  const int64_t m = g.shape()[ax];
  Tensor spread = g;
  if (step > 1 && m > 0) {
    Shape zs = g.shape();
    zs.insert(zs.begin() + ax + 1, step - 1);
    Tensor rows = concat({unsqueeze(g, ax + 1), zeros(zs, g.options())}, ax + 1);
    Shape flat = g.shape();
    flat[ax] = m * step;
    spread = reshape(rows, flat);
  }
  // pad's pairs count from the last axis: pair r−1−ax pads axis ax.
  std::vector<int64_t> pads(2 * (xs.size() - ax), 0);
  pads[pads.size() - 2] = start;
  pads[pads.size() - 1] = xs[ax] - start - spread.shape()[ax];
  return pad(spread, pads, 0);
}

}  // namespace

void check_indices(const char* op, const Tensor& index, int64_t bound, const std::string& what, const char* noun) {
  LOOM_CHECK(index.defined() && index.dtype() == DType::Int64, op, ": ", noun, "s must be int64, got ",
             index.defined() ? str(index.dtype(), " ", index.shape()) : std::string("an undefined tensor"));
  const int64_t n = index.numel();
  if (n == 0) return;
  // The least bad position, or n: on the CPU a plain read, on a GPU one word copied back.
  Tensor first = full({1}, static_cast<double>(n), TensorOptions{DType::Int64, index.device()});
  KernelCtx k = kernel_ctx(index.device());
  LOOM_DISPATCH(k, LOOM_CUDA_SHAPE, find_bad_index, k, index.data<int64_t>(), n, bound, first.data<int64_t>());
  const auto read = [op, noun, what, idx = index.detach(), first, n] {
    const int64_t j = first.to_vector<int64_t>()[0];
    if (j < n)
      throw Error(str(op, ": ", noun, " ", slice(reshape(idx, {n}), 0, j, j + 1).to_vector<int64_t>()[0],
                      " at position ", j, " is out of range for ", what));
  };
  // A captured step cannot read the device: the graph reads the word after each replay.
  CudaGraph* graph = CudaGraph::capturing();
  if (graph && kernels::capturing(index.device())) return graph->check_after_replay(read);
  read();
}

Tensor reshape(const Tensor& x, Shape shape) {
  const OpRange range(OpId::Reshape);
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      LOOM_CHECK(infer < 0, "reshape: more than one -1 in ", shape);
      infer = static_cast<int64_t>(i);
    } else {
      LOOM_CHECK(shape[i] >= 0, "reshape: negative dimension in ", shape);
      known = checked_mul("reshape", x.shape(), known, shape[i]);
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
  if (x.dim() == 0) return x;  // a 0-d tensor squeezes to itself, as in torch
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
  const OpRange range(OpId::Permute);
  const int64_t r = x.dim();
  LOOM_CHECK(static_cast<int64_t>(perm.size()) == r, "permute: ", perm.size(), " axes given for a tensor of shape ",
             x.shape());
  std::vector<bool> seen(r, false);
  for (int64_t& p : perm) {
    p = wrap_axis("permute", p, r);
    LOOM_CHECK(!seen[p], "permute: axis ", p, " repeated in the permutation of ", x.shape());
    seen[p] = true;
  }
  // y[i] = x[i permuted back]: read x through its strides taken in perm order.
  const Shape x_strides = contiguous_strides(x.shape());
  Shape out(r);
  StridedView from{0, Shape(r)};
  for (int64_t i = 0; i < r; ++i) {
    out[i] = x.shape()[perm[i]];
    from.strides[i] = x_strides[perm[i]];
  }
  Tensor y = empty(out, x.options());
  strided_copy(y, whole(out), x, from, out, "permute");
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
  const int64_t i = wrap_axis("transpose", a0, x.dim()), j = wrap_axis("transpose", a1, x.dim());
  std::vector<int64_t> perm(x.dim());
  std::iota(perm.begin(), perm.end(), 0);
  if (x.dim() > 0) std::swap(perm[i], perm[j]);  // a 0-d tensor transposes to (a copy of) itself
  return permute(x, perm);
}

Tensor expand(const Tensor& x, const Shape& shape) {
  const OpRange range(OpId::Expand);
  for (int64_t d : shape) LOOM_CHECK(d >= 0, "expand: negative size in the target shape ", shape, " for ", x.shape());
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

Tensor concat(const std::vector<Tensor>& xs, int64_t axis) {
  const OpRange range(OpId::Concat);
  LOOM_CHECK(!xs.empty(), "concat: needs at least one tensor");
  const Tensor& first = xs[0];
  const int64_t ax = axis_of("concat", first, axis);
  auto outside_axis = [ax](Shape s) {
    s.erase(s.begin() + ax);
    return s;
  };
  std::vector<int64_t> sizes;
  Shape out = first.shape();
  out[ax] = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const Tensor& x = xs[i];
    check_compatible("concat", {&first, &x});
    LOOM_CHECK(x.dim() == first.dim() && outside_axis(x.shape()) == outside_axis(first.shape()), "concat: tensor ", i,
               " has shape ", x.shape(), ", which differs from tensor 0's ", first.shape(), " outside axis ", ax);
    sizes.push_back(x.shape()[ax]);
    out[ax] += sizes.back();
  }
  // Each input is copied into its slice of y, one kernel call per input.
  Tensor y = empty(out, first.options());
  int64_t start = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    strided_copy(y, along(out, ax, start), xs[i], whole(xs[i].shape()), xs[i].shape(), "concat");
    start += sizes[i];
  }
  if (needs_grad(xs))
    record(OpId::Concat, xs, {y}, {}, [ax, sizes](BackwardCtx& c) {
      std::vector<Tensor> gx(sizes.size());
      int64_t start = 0;
      for (size_t i = 0; i < sizes.size(); ++i) {
        if (c.needs[i]) gx[i] = slice(c.grad_out[0], ax, start, start + sizes[i]);
        start += sizes[i];
      }
      return gx;
    });
  return y;
}

Tensor stack(const std::vector<Tensor>& xs, int64_t axis) {
  LOOM_CHECK(!xs.empty(), "stack: needs at least one tensor");
  check_compatible("stack", {&xs[0]});
  const int64_t ax = wrap_axis("stack", axis, xs[0].dim() + 1);
  std::vector<Tensor> parts;
  for (size_t i = 0; i < xs.size(); ++i) {
    check_compatible("stack", {&xs[0], &xs[i]});
    LOOM_CHECK(xs[i].shape() == xs[0].shape(), "stack: tensor ", i, " has shape ", xs[i].shape(),
               " but tensor 0 has ", xs[0].shape(), " (stack needs equal shapes)");
    parts.push_back(unsqueeze(xs[i], ax));
  }
  return concat(parts, ax);
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t axis) {
  const OpRange range(OpId::Split);
  const int64_t ax = axis_of("split", x, axis);
  LOOM_CHECK(!sizes.empty(), "split: no sizes given for splitting ", x.shape(), " along axis ", ax);
  int64_t total = 0;
  for (int64_t s : sizes) {
    LOOM_CHECK(s >= 0, "split: negative size ", s, " in sizes ", sizes, " for ", x.shape());
    total += s;
  }
  LOOM_CHECK(total == x.shape()[ax], "split: sizes ", sizes, " sum to ", total, " but axis ", ax, " of ", x.shape(),
             " has size ", x.shape()[ax]);
  std::vector<Tensor> pieces;
  int64_t start = 0;
  for (int64_t s : sizes) {
    Shape ps = x.shape();
    ps[ax] = s;
    Tensor p = empty(ps, x.options());
    strided_copy(p, whole(ps), x, along(x.shape(), ax, start), ps, "split");
    pieces.push_back(p);
    start += s;
  }
  // One tape entry for all pieces: backward writes each piece's gradient into
  // its slot of a single x-sized buffer (a concat). One entry per piece would
  // instead scatter each into its own x-sized zeros for the tape to sum: k
  // times the memory and traffic for the same result.
  if (needs_grad({&x})) {
    // A piece nobody used arrives as zeros (the tape makes them from the piece's shape).
    record(OpId::Split, {x}, pieces, {}, [ax](BackwardCtx& c) { return std::vector<Tensor>{concat(c.grad_out, ax)}; });
  }
  return pieces;
}

std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t axis) {
  const int64_t ax = axis_of("chunk", x, axis);
  LOOM_CHECK(chunks > 0, "chunk: needs a positive number of chunks, got ", chunks, " for ", x.shape());
  // As torch.chunk: pieces of ⌈n / chunks⌉, the last one smaller, so there may be
  // fewer than `chunks` pieces (6 into 4 gives 2, 2, 2); an empty axis gives
  // `chunks` empty pieces.
  const int64_t n = x.shape()[ax], size = n / chunks + (n % chunks != 0);
  std::vector<int64_t> sizes;
  if (n == 0) sizes.assign(chunks, 0);
  for (int64_t start = 0; start < n; start += size) sizes.push_back(std::min(size, n - start));
  return split(x, sizes, ax);
}

Tensor slice(const Tensor& x, int64_t axis, int64_t start, int64_t stop, int64_t step) {
  const OpRange range(OpId::Slice);
  const int64_t ax = axis_of("slice", x, axis);
  LOOM_CHECK(step > 0, "slice: step must be positive, got ", step, " (slicing ", x.shape(), " along axis ", ax, ")");
  // Python's rule: a negative bound counts from the end, then both clamp to [0, n].
  const int64_t n = x.shape()[ax];
  auto bound = [n](int64_t b) { return std::clamp<int64_t>(b < 0 ? b + n : b, 0, n); };
  start = bound(start);
  stop = bound(stop);
  Shape out = x.shape();
  out[ax] = stop > start ? (stop - start - 1) / step + 1 : 0;  // ⌈(stop − start) / step⌉
  Tensor y = empty(out, x.options());
  strided_copy(y, whole(out), x, along(x.shape(), ax, start, step), out, "slice");
  if (needs_grad({&x})) {
    const Shape xs = x.shape();
    record(OpId::Slice, {x}, {y}, {}, [xs, ax, start, step](BackwardCtx& c) {
      const Tensor& g = c.grad_out[0];
      if (differentiable({&g})) return std::vector<Tensor>{slice_backward_recorded(g, xs, ax, start, step)};
      Tensor gx = zeros(xs, g.options());
      strided_copy(gx, along(xs, ax, start, step), g, whole(g.shape()), g.shape(), "slice backward");
      return std::vector<Tensor>{gx};
    });
  }
  return y;
}

Tensor pad(const Tensor& x, const std::vector<int64_t>& pads, double value) {
  const OpRange range(OpId::Pad);
  LOOM_CHECK(x.defined(), "pad: the input is an undefined tensor");
  const int64_t r = x.dim(), pairs = static_cast<int64_t>(pads.size()) / 2;
  LOOM_CHECK(pads.size() % 2 == 0, "pad: pads ", pads, " must be (before, after) pairs, got an odd count");
  LOOM_CHECK(pairs <= r, "pad: pads ", pads, " give ", pairs, " (before, after) pairs for ", x.shape(),
             ", which has only ", r, " axes");
  // Pair i pads axis r−1−i. A positive pad moves where x lands in y; a negative
  // one crops, so x is read from further in. What survives the crops is copied
  // into y, which starts out filled with `value`.
  const Shape& xs = x.shape();
  Shape out = xs, kept = xs;
  StridedView from = whole(xs);
  for (int64_t i = 0; i < pairs; ++i) {
    const int64_t d = r - 1 - i, before = pads[2 * i], after = pads[2 * i + 1];
    LOOM_CHECK(before != INT64_MIN && after != INT64_MIN, "pad: pads ", pads, " must lie in [-(2^63 - 1), 2^63 - 1]");
    out[d] = checked_add("pad", xs, checked_add("pad", xs, xs[d], before), after);
    LOOM_CHECK(out[d] >= 0, "pad: pads (", before, ", ", after, ") on axis ", d, " shrink its size ", xs[d], " to ",
               out[d], " (input ", xs, ", pads ", pads, ")");
    // Clamped: a crop past the input leaves nothing to copy (and must not overflow the offset).
    from.offset += std::min(std::max<int64_t>(-before, 0), xs[d]) * from.strides[d];
    kept[d] = std::max<int64_t>(0, xs[d] - std::max<int64_t>(-before, 0) - std::max<int64_t>(-after, 0));
  }
  StridedView to = whole(out);
  for (int64_t i = 0; i < pairs; ++i)
    to.offset += std::min(std::max<int64_t>(pads[2 * i], 0), out[r - 1 - i]) * to.strides[r - 1 - i];
  Tensor y = full(out, value, x.options());
  strided_copy(y, to, x, from, kept, "pad");
  if (needs_grad({&x})) {
    std::vector<int64_t> inverse(pads.size());
    std::transform(pads.begin(), pads.end(), inverse.begin(), [](int64_t p) { return -p; });
    record(OpId::Pad, {x}, {y}, {}, [inverse](BackwardCtx& c) {
      return std::vector<Tensor>{pad(c.grad_out[0], inverse, 0)};
    });
  }
  return y;
}

Tensor index_select(const Tensor& x, int64_t axis, const Tensor& index) {
  const OpRange range(OpId::IndexSelect);
  const int64_t ax = axis_of("index_select", x, axis);
  check_index_tensor("index_select", index, x);
  LOOM_CHECK(index.dim() == 1, "index_select: index must be 1-D, got shape ", index.shape());
  check_indices("index_select", index, x.shape()[ax], axis_name(ax, x.shape()));
  Shape out = x.shape();
  out[ax] = index.numel();
  Tensor y = empty(out, x.options());
  const AroundAxis a = around(x.shape(), ax);
  KernelCtx k = kernel_ctx(x.device());
  if (y.numel() > 0)
    LOOM_DISPATCH(k, LOOM_CUDA_SHAPE, index_select, k, x.dtype(), x.data_ptr(), index.data<int64_t>(), y.data_ptr(),
                  a.outer, a.n, index.numel(), a.inner);
  if (needs_grad({&x})) {
    const Shape xs = x.shape();
    record(OpId::IndexSelect, {x}, {y}, {index}, [xs, a, ax](BackwardCtx& c) {
      const Tensor &g = c.grad_out[0], &index = c.saved[0];
      if (differentiable({&g})) {  // index_add as a recorded scatter_add of g along ax
        Shape is(g.dim(), 1);
        is[ax] = index.numel();
        return std::vector<Tensor>{scatter_add(zeros(xs, g.options()), ax, expand(reshape(index, is), g.shape()), g)};
      }
      Tensor gx = zeros(xs, g.options());  // rows picked twice receive both gradients
      KernelCtx k = kernel_ctx(g.device());
      if (g.numel() > 0)
        LOOM_DISPATCH(k, LOOM_CUDA_SHAPE, index_add, k, g.dtype(), g.data_ptr(), index.data<int64_t>(),
                      gx.data_ptr(), a.outer, a.n, index.numel(), a.inner);
      return std::vector<Tensor>{gx};
    });
  }
  return y;
}

Tensor gather(const Tensor& x, int64_t axis, const Tensor& index) {
  const OpRange range(OpId::Gather);
  const int64_t ax = axis_of("gather", x, axis);
  check_index_tensor("gather", index, x);
  check_index_matches_outside_axis("gather", index, x, ax);
  check_indices("gather", index, x.shape()[ax], axis_name(ax, x.shape()));
  Tensor y = gather_raw(x, ax, index);
  if (needs_grad({&x})) {
    const Shape xs = x.shape();
    record(OpId::Gather, {x}, {y}, {index}, [xs, ax](BackwardCtx& c) {
      const Tensor& g = c.grad_out[0];
      if (differentiable({&g})) return std::vector<Tensor>{scatter_add(zeros(xs, g.options()), ax, c.saved[0], g)};
      Tensor gx = zeros(xs, g.options());
      scatter_add_into(gx, ax, c.saved[0], g);
      return std::vector<Tensor>{gx};
    });
  }
  return y;
}

Tensor scatter_add(const Tensor& x, int64_t axis, const Tensor& index, const Tensor& src) {
  const OpRange range(OpId::ScatterAdd);
  check_compatible("scatter_add", {&x, &src});
  const int64_t ax = axis_of("scatter_add", x, axis);
  check_index_tensor("scatter_add", index, x);
  LOOM_CHECK(index.shape() == src.shape(), "scatter_add: index shape ", index.shape(), " and src shape ", src.shape(),
             " must be equal");
  check_index_matches_outside_axis("scatter_add", index, x, ax);
  check_indices("scatter_add", index, x.shape()[ax], axis_name(ax, x.shape()));
  Tensor y = x.detach().clone();
  scatter_add_into(y, ax, index, src);
  if (needs_grad({&x, &src}))
    record(OpId::ScatterAdd, {x, src}, {y}, {index}, [ax](BackwardCtx& c) {
      const Tensor& g = c.grad_out[0];
      Tensor gsrc;
      if (c.needs[1]) gsrc = differentiable({&g}) ? gather(g, ax, c.saved[0]) : gather_raw(g, ax, c.saved[0]);
      return std::vector<Tensor>{c.needs[0] ? g : Tensor(), gsrc};
    });
  return y;
}

Tensor one_hot(const Tensor& labels, int64_t num_classes, DType dtype) {
  LOOM_CHECK(labels.defined(), "one_hot: the labels are an undefined tensor");
  LOOM_CHECK(labels.dtype() == DType::Int64, "one_hot: labels must be int64, got ", labels.dtype(), " ",
             labels.shape());
  LOOM_CHECK(num_classes > 0, "one_hot: num_classes must be positive, got ", num_classes);
  check_indices("one_hot", labels, num_classes, str(num_classes, " classes (labels shape ", labels.shape(), ")"));
  // y[..., c] = 1 where c = labels[...]: a scatter_add of ones along the new last
  // axis, with the labels as a [..., 1] index. Not differentiable.
  Shape out = labels.shape();
  out.push_back(num_classes);
  Tensor y = zeros(out, TensorOptions{dtype, labels.device()});
  Tensor index = unsqueeze(labels, -1);
  scatter_add_into(y, labels.dim(), index, ones(index.shape(), y.options()));
  return y;
}

// ---- copies: Tensor::to(Device), Tensor::to(DType), Tensor::clone() -------------------------------
// Member functions of Tensor, recorded as the ops to_device, cast and clone (autograd/ops.def).

Tensor Tensor::to(Device d) const {
  const OpRange range(OpId::ToDevice);
  if (d == device()) return *this;
  Tensor out = empty(shape(), TensorOptions{dtype(), d});
  kernels::copy_bytes(d, out.data_ptr(), device(), data_ptr(), numel() * dtype_size(dtype()));
  Device from = device();
  record(OpId::ToDevice, {*this}, {out}, {}, [from](BackwardCtx& c) {
    return std::vector<Tensor>{c.grad_out[0].to(from)};
  });
  return out;
}

Tensor Tensor::to(DType t) const {
  const OpRange range(OpId::Cast);
  if (t == dtype()) return *this;
  Tensor out = empty(shape(), TensorOptions{t, device()});
  KernelCtx k = kernel_ctx(device());
  LOOM_DISPATCH(k, LOOM_CUDA_ELEMENTWISE, cast, k, dtype(), data_ptr(), t, out.data_ptr(), numel());
  if (is_floating(t)) {
    DType from = dtype();
    record(OpId::Cast, {*this}, {out}, {}, [from](BackwardCtx& c) {
      return std::vector<Tensor>{c.grad_out[0].to(from)};
    });
  }
  return out;
}

Tensor Tensor::clone() const {
  const OpRange range(OpId::Clone);
  Tensor out = empty(shape(), options());
  kernels::copy_bytes(device(), out.data_ptr(), device(), data_ptr(), numel() * dtype_size(dtype()));
  record(OpId::Clone, {*this}, {out}, {}, [](BackwardCtx& c) { return std::vector<Tensor>{c.grad_out[0]}; });
  return out;
}

}  // namespace loom
