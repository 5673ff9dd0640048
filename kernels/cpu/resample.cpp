// CPU reference for the resample family (kernels/resample.h). Parallel over
// planes; the adjoints gather (each input element sums the outputs that read
// it) in the order the CUDA kernels use, accumulating in double.
#include "kernels/resample.h"

namespace loom::kernels::cpu {
namespace {

// Calls at(pl, i, j) for every element of [planes, rows, cols] and stores it at y.
template <class T, class F>
void for_each_plane_element(T* y, int64_t planes, int64_t rows, int64_t cols, F at) {
#pragma omp parallel for schedule(static) if (planes * rows * cols > 65536)
  for (int64_t pl = 0; pl < planes; ++pl)
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) y[(pl * rows + i) * cols + j] = at(pl, i, j);
}

}  // namespace

void pad2d(const KernelCtx&, DType dt, const void* x, void* y, const Pad2d& p) {
  LOOM_FLOAT_SWITCH(dt, T, {
    const T* xs = static_cast<const T*>(x);
    for_each_plane_element(static_cast<T*>(y), p.planes, p.oh, p.ow,
                           [&](int64_t pl, int64_t i, int64_t j) { return pad2d_at(xs, pl, i, j, p); });
  });
}

void pad2d_backward(const KernelCtx&, DType dt, const void* gy, void* gx, const Pad2d& p) {
  LOOM_FLOAT_SWITCH(dt, T, {
    const T* g = static_cast<const T*>(gy);
    for_each_plane_element(static_cast<T*>(gx), p.planes, p.h, p.w, [&](int64_t pl, int64_t r, int64_t c) {
      return pad2d_backward_at<PlainArith>(g, pl, r, c, p);
    });
  });
}

void upsample_bilinear2d(const KernelCtx&, DType dt, const void* x, void* y, const Resize2d& p) {
  LOOM_FLOAT_SWITCH(dt, T, {
    const T* xs = static_cast<const T*>(x);
    for_each_plane_element(static_cast<T*>(y), p.planes, p.oh, p.ow, [&](int64_t pl, int64_t i, int64_t j) {
      return upsample_bilinear2d_at<PlainArith>(xs, pl, i, j, p);
    });
  });
}

void upsample_bilinear2d_backward(const KernelCtx&, DType dt, const void* gy, void* gx, const Resize2d& p) {
  LOOM_FLOAT_SWITCH(dt, T, {
    const T* g = static_cast<const T*>(gy);
    for_each_plane_element(static_cast<T*>(gx), p.planes, p.h, p.w, [&](int64_t pl, int64_t r, int64_t c) {
      return upsample_bilinear2d_backward_at<PlainArith>(g, pl, r, c, p);
    });
  });
}

}  // namespace loom::kernels::cpu
