// Reflect/replicate padding and bilinear resizing of NCHW tensors
// (kernels/resample.h), as two adjoint pairs of recorded ops, ggml's *_BACK
// pattern: the backward of pad2d is the op pad2d_backward, whose backward is
// pad2d again (likewise upsample_bilinear2d). All four are linear, so each
// backward only applies the other op to the incoming gradient, through the
// public recorded function: when the tape records a backward (higher-order
// gradients) that step is differentiable too, and on the plain path it costs
// exactly the kernel.
//
//   pad2d:  y = P x, P copies source pixel src(i), src(j) into each padded position
//   pad2d_backward:  gx = Pᵀ gy  (each source pixel sums the positions copying it)
//   upsample_bilinear2d:  y = B x (four-tap interpolation, weights from the geometry only)
//   upsample_bilinear2d_backward:  gx = Bᵀ gy
#include "autograd/ops/common.h"
#include "kernels/resample.h"

namespace loom {
using namespace detail;

namespace {

const char* mode_name(PadMode m) { return m == PadMode::Reflect ? "reflect" : "replicate"; }

void check_nchw(const char* op, const Tensor& x) {
  check_floating(op, x);
  LOOM_CHECK(x.dim() == 4, op, ": input must be 4-D [N, C, H, W], got ", x.shape());
}

// Validates pads against the source plane h×w (of x for pad2d, implied by gy for
// the adjoint) and returns the kernel geometry.
Pad2d pad_geometry(const char* op, const Tensor& t, int64_t h, int64_t w, const Pads2d& pads, PadMode mode) {
  const Shape ps{pads[0], pads[1], pads[2], pads[3]};
  LOOM_CHECK(pads[0] >= 0 && pads[1] >= 0 && pads[2] >= 0 && pads[3] >= 0, op, ": pads ", ps,
             " ({left, right, top, bottom}) must be non-negative (input ", t.shape(), ")");
  LOOM_CHECK(h > 0 && w > 0, op, ": ", mode_name(mode), " padding needs a non-empty plane, got input ",
             t.shape(), " with pads ", ps);
  if (mode == PadMode::Reflect)
    LOOM_CHECK(pads[0] < w && pads[1] < w && pads[2] < h && pads[3] < h, op,
               ": reflect padding must be smaller than the padded dimension, got pads ", ps,
               " ({left, right, top, bottom}) for a plane of height ", h, " and width ", w, " (input ", t.shape(),
               ")");
  Pad2d p;
  p.planes = t.size(0) * t.size(1);
  p.h = h, p.w = w;
  p.oh = checked_add(op, t.shape(), checked_add(op, t.shape(), h, pads[2]), pads[3]);
  p.ow = checked_add(op, t.shape(), checked_add(op, t.shape(), w, pads[0]), pads[1]);
  p.top = pads[2], p.left = pads[0];
  p.replicate = mode == PadMode::Replicate;
  return p;
}

Resize2d resize_geometry(const Tensor& t, int64_t h, int64_t w, int64_t oh, int64_t ow) {
  Resize2d p;
  p.planes = t.size(0) * t.size(1);
  p.h = h, p.w = w, p.oh = oh, p.ow = ow;
  return p;
}

}  // namespace

Tensor pad2d(const Tensor& x, const Pads2d& pads, PadMode mode) {
  const OpRange range(OpId::Pad2d);
  check_nchw("pad2d", x);
  const Pad2d p = pad_geometry("pad2d", x, x.size(2), x.size(3), pads, mode);
  Tensor y = empty({x.size(0), x.size(1), p.oh, p.ow}, x.options());
  KernelCtx k = kernel_ctx(x.device());
  LOOM_DISPATCH(k, LOOM_CUDA_RESAMPLE, pad2d, k, x.dtype(), x.data_ptr(), y.data_ptr(), p);
  if (needs_grad({&x})) {
    record(OpId::Pad2d, {x}, {y}, {}, [pads, mode](BackwardCtx& c) {
      return std::vector<Tensor>{pad2d_backward(c.grad_out[0], pads, mode)};
    });
  }
  return y;
}

Tensor pad2d_backward(const Tensor& gy, const Pads2d& pads, PadMode mode) {
  const OpRange range(OpId::Pad2dBackward);
  check_nchw("pad2d_backward", gy);
  const int64_t h = gy.size(2) - pads[2] - pads[3], w = gy.size(3) - pads[0] - pads[1];
  const Pad2d p = pad_geometry("pad2d_backward", gy, h, w, pads, mode);
  Tensor gx = empty({gy.size(0), gy.size(1), h, w}, gy.options());
  KernelCtx k = kernel_ctx(gy.device());
  LOOM_DISPATCH(k, LOOM_CUDA_RESAMPLE, pad2d_backward, k, gy.dtype(), gy.data_ptr(), gx.data_ptr(), p);
  if (needs_grad({&gy})) {
    record(OpId::Pad2dBackward, {gy}, {gx}, {}, [pads, mode](BackwardCtx& c) {
      return std::vector<Tensor>{pad2d(c.grad_out[0], pads, mode)};
    });
  }
  return gx;
}

Tensor upsample_bilinear2d(const Tensor& x, int64_t out_h, int64_t out_w) {
  const OpRange range(OpId::UpsampleBilinear2d);
  check_nchw("upsample_bilinear2d", x);
  LOOM_CHECK(x.size(2) > 0 && x.size(3) > 0, "upsample_bilinear2d: input ", x.shape(),
             " has an empty spatial dimension");
  LOOM_CHECK(out_h > 0 && out_w > 0, "upsample_bilinear2d: output size ", Shape{out_h, out_w},
             " must be positive (input ", x.shape(), ")");
  const int64_t h = x.size(2), w = x.size(3);
  const Resize2d p = resize_geometry(x, h, w, out_h, out_w);
  Tensor y = empty({x.size(0), x.size(1), out_h, out_w}, x.options());
  KernelCtx k = kernel_ctx(x.device());
  LOOM_DISPATCH(k, LOOM_CUDA_RESAMPLE, upsample_bilinear2d, k, x.dtype(), x.data_ptr(), y.data_ptr(), p);
  if (needs_grad({&x})) {
    record(OpId::UpsampleBilinear2d, {x}, {y}, {}, [h, w](BackwardCtx& c) {
      return std::vector<Tensor>{upsample_bilinear2d_backward(c.grad_out[0], h, w)};
    });
  }
  return y;
}

Tensor upsample_bilinear2d(const Tensor& x, int64_t scale) {
  check_nchw("upsample_bilinear2d", x);
  LOOM_CHECK(scale >= 1, "upsample_bilinear2d: scale ", scale, " must be a positive integer (input ", x.shape(), ")");
  return upsample_bilinear2d(x, checked_mul("upsample_bilinear2d", x.shape(), x.size(2), scale),
                             checked_mul("upsample_bilinear2d", x.shape(), x.size(3), scale));
}

Tensor upsample_bilinear2d_backward(const Tensor& gy, int64_t in_h, int64_t in_w) {
  const OpRange range(OpId::UpsampleBilinear2dBackward);
  check_nchw("upsample_bilinear2d_backward", gy);
  LOOM_CHECK(gy.size(2) > 0 && gy.size(3) > 0, "upsample_bilinear2d_backward: gradient ", gy.shape(),
             " has an empty spatial dimension");
  LOOM_CHECK(in_h > 0 && in_w > 0, "upsample_bilinear2d_backward: input size ", Shape{in_h, in_w},
             " must be positive (gradient ", gy.shape(), ")");
  const int64_t oh = gy.size(2), ow = gy.size(3);
  const Resize2d p = resize_geometry(gy, in_h, in_w, oh, ow);
  Tensor gx = empty({gy.size(0), gy.size(1), in_h, in_w}, gy.options());
  KernelCtx k = kernel_ctx(gy.device());
  LOOM_DISPATCH(k, LOOM_CUDA_RESAMPLE, upsample_bilinear2d_backward, k, gy.dtype(), gy.data_ptr(), gx.data_ptr(), p);
  if (needs_grad({&gy})) {
    record(OpId::UpsampleBilinear2dBackward, {gy}, {gx}, {}, [oh, ow](BackwardCtx& c) {
      return std::vector<Tensor>{upsample_bilinear2d(c.grad_out[0], oh, ow)};
    });
  }
  return gx;
}

}  // namespace loom
