// Pooling and nearest-neighbour upsampling over NCHW planes (N·C independent
// [h, w] images):
//
//   max_pool2d:  y[i, j] = max over window (i, j) of x; padding never wins (it acts as −∞)
//   avg_pool2d:  y[i, j] = (1 / (kh·kw)) Σ over window (i, j) of x; padding counts as zeros
//   upsample_nearest2d: y[i, j] = x[⌊i/s⌋, ⌊j/s⌋] for an integer scale s
//
// Window (i, j) covers rows i·sh − ph … i·sh − ph + kh − 1 and columns
// j·sw − pw … j·sw − pw + kw − 1. The ops in autograd/ops/pool.cpp guarantee
// that every window holds at least one real element (h, w ≥ 1 and padding at
// most half the kernel) and never reaches past the padded input, so kh·kw is
// the count_include_pad divisor of every window.
#pragma once

#include "kernels/dispatch.h"

namespace loom {

struct Pool2d {
  int64_t planes = 0;      // N·C
  int64_t h = 0, w = 0;    // input plane
  int64_t oh = 0, ow = 0;  // output plane
  int64_t kh = 0, kw = 0, sh = 0, sw = 0, ph = 0, pw = 0;
};

}  // namespace loom

#define LOOM_POOL_API                                                                             \
  /* argmax (int64, shaped like y) receives the flat index r·w + c of each maximum within its     \
     plane; ties go to the first in row-major order, a NaN wins and sticks. */                      \
  void max_pool2d(const KernelCtx& k, DType dt, const void* x, void* y, int64_t* argmax,         \
                  const Pool2d& p);                                                               \
  /* gx = 0, then gx[plane, argmax] += gy for every output (overlapping windows accumulate). */   \
  void max_pool2d_backward(const KernelCtx& k, DType dt, const void* gy, const int64_t* argmax,  \
                           void* gx, const Pool2d& p);                                            \
  void avg_pool2d(const KernelCtx& k, DType dt, const void* x, void* y, const Pool2d& p);        \
  /* gx = Σ over the windows containing each element of gy / (kh·kw). */                          \
  void avg_pool2d_backward(const KernelCtx& k, DType dt, const void* gy, void* gx, const Pool2d& p); \
  /* x [planes, h, w] → y [planes, h·s, w·s] */                                                   \
  void upsample_nearest2d(const KernelCtx& k, DType dt, const void* x, void* y, int64_t planes,  \
                          int64_t h, int64_t w, int64_t scale);                                   \
  /* gx[r, c] = Σ of the s×s block of gy at (r·s, c·s) */                                          \
  void upsample_nearest2d_backward(const KernelCtx& k, DType dt, const void* gy, void* gx,       \
                                   int64_t planes, int64_t h, int64_t w, int64_t scale);

LOOM_DECLARE_KERNELS(LOOM_CUDA_POOL, LOOM_POOL_API)
