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

#include <string>

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

// The kernels run the variant selected by set_conv_variant / LOOM_CONV (below), read at every call.
#define LOOM_CONV_API                                                                             \
  /* y [N, O, OH, OW] = conv(x [N, C, H, W], w [O, C/G, kh, kw]) + bias [O] (bias may be null) */  \
  void conv2d_forward(const KernelCtx& k, DType dt, const ConvGeometry& g, const void* x,        \
                      const void* w, const void* bias, void* y);                                 \
  /* gx [N, C, H, W] = convᵀ(gy [N, O, OH, OW], w) + bias [C] (bias may be null; it is there      \
     because this pass is conv_transpose2d's forward) */                                          \
  void conv2d_backward_data(const KernelCtx& k, DType dt, const ConvGeometry& g, const void* gy, \
                            const void* w, const void* bias, void* gx);                           \
  /* gw [O, C/G, kh, kw] = Σ_n gy[n] ⋆ x[n] (overwritten, not accumulated) */                     \
  void conv2d_backward_weight(const KernelCtx& k, DType dt, const ConvGeometry& g, const void* x, \
                              const void* gy, void* gw);

LOOM_DECLARE_KERNELS(LOOM_CUDA_CONV, LOOM_CONV_API)

namespace loom::kernels {
// Which algorithm runs each conv pass. One numbering on both backends, llm.c's: v0 is a library
// baseline, v1 the naive (readable, reference) version, higher numbers are tuned:
//
//          CPU (kernels/cpu/conv.cpp)                CUDA (kernels/cuda/conv.cu)
//   v0     oneDNN 2.x (kernels/cpu/conv_dnnl.cpp),   cuDNN's legacy API (kernels/cuda/conv_cudnn.cu), the
//          PyTorch's CPU conv; float32 only, in      baseline to beat; only in builds that found cuDNN
//          builds that found libdnnl
//   v1     im2col + a GEMM per image                 direct: one thread per output element
//   v2     shifted views: an implicit GEMM, one      tiled implicit GEMM
//          GEMM per kernel tap, no im2col
//   auto   v0 for float32 passes where it was        v2 (default)
//          measured faster (C/G ≥ 16; but for a
//          plain 1x1 also forward/weight from
//          C/G ≥ 3, data from C/G, O/G ≥ 8), else
//          v1 or v2 per shape (default)
//
// Every variant computes the same function; v1 is the reference the tests hold the others to. One
// process-wide selector for both backends: set_conv_variant, or the environment variable
// LOOM_CONV=auto|v0|v1|v2 (read once, at first use). Never silent: selecting v0 in a build with neither
// library, running a conv with v0 selected on a backend whose library this build lacks, a float64 CPU
// conv with v0 selected (oneDNN has no float64 conv; auto runs float64 on loom's kernels), and an
// unknown LOOM_CONV value are each a loom::Error.
enum class ConvVariant : int8_t { Auto = -1, V0 = 0, V1 = 1, V2 = 2 };
void set_conv_variant(ConvVariant v);
ConvVariant conv_variant();
// "auto", "v0", "v1", "v2" (or "0", "1", "2"): LOOM_CONV's values. Anything else is a loom::Error.
ConvVariant parse_conv_variant(const std::string& s);
// What the variant runs on that backend, e.g. "v2 tiled implicit GEMM" (tables, test traces).
const char* conv_variant_name(ConvVariant v, DeviceType backend);

// Selects a variant for a scope and restores the previous one (tests, benchmarks). Process-wide, like
// the selector: scopes on different threads would interleave.
class ConvVariantScope {
 public:
  explicit ConvVariantScope(ConvVariant v) : previous_(conv_variant()) { set_conv_variant(v); }
  ~ConvVariantScope() { set_conv_variant(previous_); }
  ConvVariantScope(const ConvVariantScope&) = delete;
  ConvVariantScope& operator=(const ConvVariantScope&) = delete;

 private:
  ConvVariant previous_;
};
}  // namespace loom::kernels
