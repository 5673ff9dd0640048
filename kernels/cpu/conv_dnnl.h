// v0 of the CPU conv family (kernels/conv.h): the three passes through oneDNN 2.x, for
// kernels/cpu/conv.cpp to call when v0 is selected (or auto picks it). Only in builds with oneDNN, and
// float32 only: oneDNN has no float64 convolution on the CPU.
#pragma once

#include "kernels/conv.h"  // and kernels/config.h: LOOM_HAVE_DNNL

namespace loom::kernels::cpu {
// The three passes of kernels/conv.h. Each takes (a, b, bias, out):
//   Forward         x, w, bias over y's channels (or null) → y
//   BackwardData    gy, w, bias over gx's channels (or null) → gx
//   BackwardWeight  x, gy, null → gw
enum class ConvPass { Forward, BackwardData, BackwardWeight };

#ifdef LOOM_HAVE_DNNL
namespace onednn {
// The pass with the contract of its kernels/conv.h entry point, on float32 data. A failure inside oneDNN
// is a loom::Error naming the pass, the shapes and oneDNN's status.
void conv2d(ConvPass pass, const ConvGeometry& g, const float* a, const float* b, const float* bias, float* out);
}  // namespace onednn
#endif
}  // namespace loom::kernels::cpu
