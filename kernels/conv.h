// 2-D convolution, NCHW, with stride, padding, dilation and groups.
//
//   y[n, o, i, j] = Σ_{c', a, b} w[o, c', a, b] · x[n, g·C/G + c', i·sh − ph + a·dh, j·sw − pw + b·dw]
//
// where g = o / (O/G) is o's group, c' < C/G, x reads as zero outside [0, H) × [0, W), and
// w is [O, C/G, kh, kw]. The three passes of conv2d's autograd, each a kernel:
//   forward          y  = conv(x, w) (+ bias[o])
//   backward_data    gx = convᵀ(gy, w): the adjoint, <conv(x, w), gy> = <x, convᵀ(gy, w)>
//   backward_weight  gw[o, c', a, b] = Σ_{n,i,j} gy[n, o, i, j] · x[n, c, i·sh − ph + a·dh, …]
// Transposed convolution is the same linear map read backwards, so conv_transpose2d needs no
// kernels of its own: its forward is backward_data (with a bias), its backward-data is forward,
// and its weight gradient is backward_weight with x and gy swapping roles.
//
// The geometry names the conv2d direction: `in_*` is x (and gx), `out_*` is y (and gy). out_h and
// out_w are given, not derived, so that conv_transpose2d's output_padding rows (which no input
// reaches) fit the same kernels.
#pragma once

#include "kernels/dispatch.h"

namespace loom {

struct ConvGeometry {
  int64_t batch = 0, in_channels = 0, in_h = 0, in_w = 0;
  int64_t out_channels = 0, out_h = 0, out_w = 0;
  int64_t kernel_h = 0, kernel_w = 0;
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dilation_h = 1, dilation_w = 1;
  int64_t groups = 1;
};

}  // namespace loom

// `variant` picks the algorithm. CPU (kernels/cpu/conv.cpp): 0 chooses per shape, 1 is im2col + a
// GEMM per image, 2 is an implicit GEMM over shifted views of the input (a GEMM per kernel tap, no
// im2col). CUDA (kernels/cuda/conv.cu): 0 follows conv_impl() below, 1 is loom's direct kernels, 2
// its tiled implicit GEMM. Every variant computes the same function; tests and benchmarks name them.
#define LOOM_CONV_API                                                                             \
  /* y [N, O, OH, OW] = conv(x [N, C, H, W], w [O, C/G, kh, kw]) + bias [O] (bias may be null) */  \
  void conv2d_forward(const KernelCtx& k, DType dt, const ConvGeometry& g, const void* x,        \
                      const void* w, const void* bias, void* y, int variant = 0);                \
  /* gx [N, C, H, W] = convᵀ(gy [N, O, OH, OW], w) + bias [C] (bias may be null; it is there      \
     because this pass is conv_transpose2d's forward) */                                          \
  void conv2d_backward_data(const KernelCtx& k, DType dt, const ConvGeometry& g, const void* gy, \
                            const void* w, const void* bias, void* gx, int variant = 0);          \
  /* gw [O, C/G, kh, kw] = Σ_n gy[n] ⋆ x[n] (overwritten, not accumulated) */                     \
  void conv2d_backward_weight(const KernelCtx& k, DType dt, const ConvGeometry& g, const void* x, \
                              const void* gy, void* gw, int variant = 0);

LOOM_DECLARE_KERNELS(LOOM_CUDA_CONV, LOOM_CONV_API)

namespace loom::kernels {
// Which kernels run conv on CUDA tensors (the CPU always runs kernels/cpu/conv.cpp). Numbered as in
// kernels/cuda/conv.cu:
//   Loom        v2, loom's tiled implicit GEMM (the default)
//   LoomDirect  v1, loom's naive direct kernels (one thread per output element: the readable reference)
//   CuDnn       v0, cuDNN's legacy convolution API (kernels/cuda/conv_cudnn.cu), the baseline to beat
// The environment variable LOOM_CONV=loom|direct|cudnn sets it at first use; set_conv_impl overrides.
// Never silent: choosing cuDNN in a build without it (CPU-only, or cuDNN not found) is a loom::Error,
// and so is an unknown LOOM_CONV value.
enum class ConvImpl { Loom, LoomDirect, CuDnn };
void set_conv_impl(ConvImpl impl);
ConvImpl conv_impl();
const char* conv_impl_name(ConvImpl impl);
}  // namespace loom::kernels
