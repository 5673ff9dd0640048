// CPU reference for the resample family (kernels/resample.h). Parallel over
// planes; the adjoints gather (each input element sums the outputs that read
// it) in the order the CUDA kernels use, accumulating in double.
#include "kernels/resample.h"

#include <algorithm>
#include <vector>

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

// Row by row: the source row is chosen once, and the columns inside the input's width are one copy;
// only the padded columns look their source up (a table, made once). As pad2d_at, element by element.
template <class T>
void pad2d_impl(const T* x, T* y, const Pad2d& p) {
  std::vector<int64_t> src_col(static_cast<size_t>(p.ow));
  for (int64_t j = 0; j < p.ow; ++j) src_col[j] = pad_source(j - p.left, p.w, p.replicate);
#pragma omp parallel for schedule(static) if (p.planes * p.oh * p.ow > 65536)
  for (int64_t pl = 0; pl < p.planes; ++pl)
    for (int64_t i = 0; i < p.oh; ++i) {
      const T* src = x + (pl * p.h + pad_source(i - p.top, p.h, p.replicate)) * p.w;
      T* out = y + (pl * p.oh + i) * p.ow;
      for (int64_t j = 0; j < p.left; ++j) out[j] = src[src_col[j]];
      std::copy(src, src + p.w, out + p.left);
      for (int64_t j = p.left + p.w; j < p.ow; ++j) out[j] = src[src_col[j]];
    }
}

// Position r of a dim of n padded by before/after: is it copied to one padded position only (itself)?
bool single_copy(int64_t r, int64_t n, int64_t before, int64_t after, bool replicate) {
  int64_t lo[3], hi[3];
  return pad_preimage(r, n, before, after, replicate, lo, hi) == 1 && lo[0] == hi[0];
}

// An element copied once (the interior, all but a pad's width from the edges) gets its one gradient,
// 0.0 + gy in double as pad2d_backward_at's sum (the same bits, −0 included), without computing the
// preimages; the rest gather as pad2d_backward_at does.
template <class T>
void pad2d_backward_impl(const T* gy, T* gx, const Pad2d& p) {
  const int64_t after_h = p.oh - p.h - p.top, after_w = p.ow - p.w - p.left;
  std::vector<char> single_col(static_cast<size_t>(p.w));
  for (int64_t c = 0; c < p.w; ++c) single_col[c] = single_copy(c, p.w, p.left, after_w, p.replicate);
#pragma omp parallel for schedule(static) if (p.planes * p.h * p.w > 65536)
  for (int64_t pl = 0; pl < p.planes; ++pl)
    for (int64_t r = 0; r < p.h; ++r) {
      T* out = gx + (pl * p.h + r) * p.w;
      const T* in = gy + (pl * p.oh + r + p.top) * p.ow + p.left;
      const bool single_row = single_copy(r, p.h, p.top, after_h, p.replicate);
      for (int64_t c = 0; c < p.w; ++c)
        out[c] = single_row && single_col[c] ? static_cast<T>(0.0 + double(in[c]))
                                             : pad2d_backward_at<PlainArith>(gy, pl, r, c, p);
    }
}

}  // namespace

void pad2d(const KernelCtx&, DType dt, const void* x, void* y, const Pad2d& p) {
  LOOM_FLOAT_SWITCH(dt, T, pad2d_impl<T>(static_cast<const T*>(x), static_cast<T*>(y), p));
}

void pad2d_backward(const KernelCtx&, DType dt, const void* gy, void* gx, const Pad2d& p) {
  LOOM_FLOAT_SWITCH(dt, T, pad2d_backward_impl<T>(static_cast<const T*>(gy), static_cast<T*>(gx), p));
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
