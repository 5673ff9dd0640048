// v0 of the conv family (kernels/conv.h): the three passes through cuDNN's legacy convolution API, for
// kernels/cuda/conv.cu to call when conv_variant() is ConvVariant::V0. Only in builds with cuDNN.
#pragma once

#include "kernels/base.h"  // kernels/config.h: LOOM_HAVE_CUDNN

#ifdef LOOM_HAVE_CUDNN
#include "kernels/conv.h"
#include "kernels/cuda/launch.h"

namespace loom::kernels::cuda::cudnn {
void conv2d_forward(const LaunchScope& s, DType dt, const ConvGeometry& g, const void* x, const void* w,
                    const void* bias, void* y);
void conv2d_backward_data(const LaunchScope& s, DType dt, const ConvGeometry& g, const void* gy, const void* w,
                          const void* bias, void* gx);
void conv2d_backward_weight(const LaunchScope& s, DType dt, const ConvGeometry& g, const void* x, const void* gy,
                            void* gw);
}  // namespace loom::kernels::cuda::cudnn
#endif
