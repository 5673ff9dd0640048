// v0 of the CPU conv family (kernels/conv.h): the three passes through oneDNN 2.x, for
// kernels/cpu/conv.cpp to call when v0 is selected (or auto picks it). Only in builds with oneDNN, and
// float32 only: oneDNN has no float64 convolution on the CPU.
#pragma once

#include "kernels/base.h"  // kernels/config.h: LOOM_HAVE_DNNL

#ifdef LOOM_HAVE_DNNL
#include "kernels/conv.h"

namespace loom::kernels::cpu::onednn {
// The same contracts as conv2d_forward, conv2d_backward_data and conv2d_backward_weight (kernels/conv.h),
// with float32 pointers. A failure inside oneDNN is a loom::Error naming the pass and oneDNN's status.
void conv2d_forward(const ConvGeometry& g, const float* x, const float* w, const float* bias, float* y);
void conv2d_backward_data(const ConvGeometry& g, const float* gy, const float* w, const float* bias, float* gx);
void conv2d_backward_weight(const ConvGeometry& g, const float* x, const float* gy, float* gw);
}  // namespace loom::kernels::cpu::onednn
#endif
