// Pooling and nearest-neighbour upsampling of NCHW tensors (kernels/pool.h).
//
//   max_pool2d:  y = max over each window (padding acts as −∞, so it never wins);
//                ∂L/∂x[argmax] += ∂L/∂y, with the int64 argmax the forward kernel saved
//   avg_pool2d:  y = Σ window / (kh·kw), padding counting as zeros (count_include_pad);
//                ∂L/∂x spreads ∂L/∂y / (kh·kw) over each window
//   upsample_nearest2d: y[i, j] = x[⌊i/s⌋, ⌊j/s⌋];  ∂L/∂x sums each s×s block of ∂L/∂y
//
// Output size per spatial dim: ⌊(in + 2·pad − kernel) / stride⌋ + 1 (PyTorch, ceil_mode off).
#include "autograd/ops/common.h"
#include "kernels/pool.h"

namespace loom {
using namespace detail;

namespace {

Shape as_shape(Pair p) { return {p[0], p[1]}; }

void check_nchw(const char* op, const Tensor& x) {
  check_floating(op, x);
  LOOM_CHECK(x.dim() == 4, op, ": input must be 4-D [N, C, H, W], got ", x.shape());
  LOOM_CHECK(x.size(2) > 0 && x.size(3) > 0, op, ": input ", x.shape(), " has an empty spatial dimension");
}

// Validates the window parameters against x and returns the kernel geometry.
Pool2d pool_geometry(const char* op, const Tensor& x, Pair kernel, Pair stride, Pair padding) {
  check_nchw(op, x);
  if (stride == Pair{0, 0}) stride = kernel;
  LOOM_CHECK(kernel[0] > 0 && kernel[1] > 0, op, ": kernel ", as_shape(kernel), " must be positive (input ",
             x.shape(), ")");
  LOOM_CHECK(stride[0] > 0 && stride[1] > 0, op, ": stride ", as_shape(stride),
             " must be positive ([0, 0] means stride = kernel; input ", x.shape(), ")");
  // PyTorch's rule too: with pad ≤ kernel/2 every window holds at least one real element.
  LOOM_CHECK(padding[0] >= 0 && padding[1] >= 0 && padding[0] <= kernel[0] / 2 && padding[1] <= kernel[1] / 2, op,
             ": padding ", as_shape(padding), " must be non-negative and at most half the kernel ", as_shape(kernel),
             " (input ", x.shape(), ")");
  Pool2d p;
  p.planes = x.size(0) * x.size(1);
  p.h = x.size(2), p.w = x.size(3);
  // 2 · padding ≤ kernel fits; the padded sizes may not.
  const int64_t padded_h = checked_add(op, x.shape(), p.h, 2 * padding[0]),
                padded_w = checked_add(op, x.shape(), p.w, 2 * padding[1]);
  LOOM_CHECK(padded_h >= kernel[0] && padded_w >= kernel[1], op, ": kernel ", as_shape(kernel),
             " is larger than the padded input ", Shape{padded_h, padded_w}, " (input ", x.shape(), ", padding ",
             as_shape(padding), ")");
  p.kh = kernel[0], p.kw = kernel[1], p.sh = stride[0], p.sw = stride[1], p.ph = padding[0], p.pw = padding[1];
  p.oh = (padded_h - p.kh) / p.sh + 1;
  p.ow = (padded_w - p.kw) / p.sw + 1;
  return p;
}

Shape pooled_shape(const Tensor& x, const Pool2d& p) { return {x.size(0), x.size(1), p.oh, p.ow}; }

// avg_pool2d's gradient as an op: ∂L/∂x spreads each gy over its window, a linear
// map whose adjoint is avg_pool2d itself, so its own backward is avg_pool2d of the
// incoming gradient. Recorded only when the sweep records (create_graph).
Tensor avg_pool2d_backward_op(const Tensor& gy, const Shape& xs, const Pool2d& p) {
  const OpRange range(OpId::AvgPool2dBackward);
  Tensor gx = empty(xs, gy.options());
  KernelCtx k = kernel_ctx(gy.device());
  LOOM_DISPATCH(k, LOOM_CUDA_POOL, avg_pool2d_backward, k, gy.dtype(), gy.data_ptr(), gx.data_ptr(), p);
  if (needs_grad({&gy}))
    record(OpId::AvgPool2dBackward, {gy}, {gx}, {}, [p](BackwardCtx& c) {
      return std::vector<Tensor>{avg_pool2d(c.grad_out[0], {p.kh, p.kw}, {p.sh, p.sw}, {p.ph, p.pw})};
    });
  return gx;
}

}  // namespace

Tensor max_pool2d(const Tensor& x, Pair kernel, Pair stride, Pair padding) {
  const OpRange range(OpId::MaxPool2d);
  const Pool2d p = pool_geometry("max_pool2d", x, kernel, stride, padding);
  Tensor y = empty(pooled_shape(x, p), x.options());
  Tensor argmax = empty(y.shape(), TensorOptions{DType::Int64, x.device()});
  KernelCtx k = kernel_ctx(x.device());
  LOOM_DISPATCH(k, LOOM_CUDA_POOL, max_pool2d, k, x.dtype(), x.data_ptr(), y.data_ptr(), argmax.data<int64_t>(), p);
  if (needs_grad({&x})) {
    Shape xs = x.shape();
    record(OpId::MaxPool2d, {x}, {y}, {argmax}, [p, xs](BackwardCtx& c) {
      const Tensor &gy = c.grad_out[0], &argmax = c.saved[0];
      if (differentiable({&gy})) {  // a recorded scatter_add of gy to each window's argmax within its plane
        Tensor planes = zeros({p.planes, p.h * p.w}, gy.options());
        Tensor gx = scatter_add(planes, 1, reshape(argmax, {p.planes, p.oh * p.ow}), reshape(gy, {p.planes, p.oh * p.ow}));
        return std::vector<Tensor>{reshape(gx, xs)};
      }
      Tensor gx = empty(xs, gy.options());
      KernelCtx k = kernel_ctx(gy.device());
      LOOM_DISPATCH(k, LOOM_CUDA_POOL, max_pool2d_backward, k, gy.dtype(), gy.data_ptr(), argmax.data<int64_t>(),
                    gx.data_ptr(), p);
      return std::vector<Tensor>{gx};
    });
  }
  return y;
}

Tensor avg_pool2d(const Tensor& x, Pair kernel, Pair stride, Pair padding) {
  const OpRange range(OpId::AvgPool2d);
  const Pool2d p = pool_geometry("avg_pool2d", x, kernel, stride, padding);
  Tensor y = empty(pooled_shape(x, p), x.options());
  KernelCtx k = kernel_ctx(x.device());
  LOOM_DISPATCH(k, LOOM_CUDA_POOL, avg_pool2d, k, x.dtype(), x.data_ptr(), y.data_ptr(), p);
  if (needs_grad({&x})) {
    Shape xs = x.shape();
    record(OpId::AvgPool2d, {x}, {y}, {}, [p, xs](BackwardCtx& c) {
      return std::vector<Tensor>{avg_pool2d_backward_op(c.grad_out[0], xs, p)};
    });
  }
  return y;
}

Tensor upsample_nearest2d(const Tensor& x, int64_t scale) {
  const OpRange range(OpId::UpsampleNearest2d);
  check_nchw("upsample_nearest2d", x);
  LOOM_CHECK(scale >= 1, "upsample_nearest2d: scale ", scale, " must be a positive integer (input ", x.shape(), ")");
  const int64_t planes = x.size(0) * x.size(1), h = x.size(2), w = x.size(3);
  Tensor y = empty({x.size(0), x.size(1), checked_mul("upsample_nearest2d", x.shape(), h, scale),
                    checked_mul("upsample_nearest2d", x.shape(), w, scale)},
                   x.options());
  KernelCtx k = kernel_ctx(x.device());
  LOOM_DISPATCH(k, LOOM_CUDA_POOL, upsample_nearest2d, k, x.dtype(), x.data_ptr(), y.data_ptr(), planes, h, w, scale);
  if (needs_grad({&x})) {
    Shape xs = x.shape();
    record(OpId::UpsampleNearest2d, {x}, {y}, {}, [xs, planes, h, w, scale](BackwardCtx& c) {
      const Tensor& gy = c.grad_out[0];
      // Recorded: the sum over each s×s block is s² times its average.
      if (differentiable({&gy})) return std::vector<Tensor>{avg_pool2d(gy, {scale, scale}) * double(scale * scale)};
      Tensor gx = empty(xs, gy.options());
      KernelCtx k = kernel_ctx(gy.device());
      LOOM_DISPATCH(k, LOOM_CUDA_POOL, upsample_nearest2d_backward, k, gy.dtype(), gy.data_ptr(), gx.data_ptr(),
                    planes, h, w, scale);
      return std::vector<Tensor>{gx};
    });
  }
  return y;
}

}  // namespace loom
