// Reflect/replicate padding and bilinear resampling over NCHW planes (N·C
// independent [h, w] images). Each forward has its adjoint as a kernel of its
// own, and autograd/ops/resample.cpp records both as ops, each the other's
// backward (so gradients of gradients stay on the tape).
//
//   pad2d:    y[i, j] = x[src(i − top, h), src(j − left, w)] with
//               reflect:   src(u, n) = |u| mirrored at 0 and n − 1 (no edge repeat; needs pad < n)
//               replicate: src(u, n) = clamp(u, 0, n − 1)
//   pad2d_backward: gx[r, c] = Σ over the (i, j) with src(i) = r, src(j) = c of gy[i, j]
//
//   upsample_bilinear2d (align_corners = false, PyTorch's convention):
//     s = max((i + ½)·h/oh − ½, 0), r0 = ⌊s⌋, r1 = min(r0 + 1, h − 1), λ = s − r0 (likewise columns)
//     y[i, j] = (1−λi)·((1−λj)·x[r0, c0] + λj·x[r0, c1]) + λi·((1−λj)·x[r1, c0] + λj·x[r1, c1])
//   upsample_bilinear2d_backward: gx[r, c] = Σ_{i, j} wr(i, r)·wc(j, c)·gy[i, j], where
//     wr(i, r) is the weight output row i gives input row r (λ-terms above, summed when r0 = r1).
//
// Both adjoints are written as gathers (each input element sums the outputs
// that read it), in the same order with double accumulation on the CPU and the
// GPU: no atomics, deterministic, and the two backends agree to rounding.
#pragma once

#include <cmath>

#include "kernels/dispatch.h"

namespace loom {

struct Pad2d {
  int64_t planes = 0;      // N·C
  int64_t h = 0, w = 0;    // input plane
  int64_t oh = 0, ow = 0;  // output plane: h + top + bottom, w + left + right
  int64_t top = 0, left = 0;
  bool replicate = false;  // else reflect
};

struct Resize2d {
  int64_t planes = 0;
  int64_t h = 0, w = 0;    // input plane
  int64_t oh = 0, ow = 0;  // output plane
};

namespace kernels {

// The source index of padded position u (u = i − before) in a dim of n elements.
LOOM_HD int64_t pad_source(int64_t u, int64_t n, bool replicate) {
  if (replicate) return u < 0 ? 0 : (u > n - 1 ? n - 1 : u);
  if (n == 1) return 0;
  return u < 0 ? -u : (u > n - 1 ? 2 * (n - 1) - u : u);
}

// The padded positions u whose source is r, as at most three closed ranges [lo, hi]
// (in increasing u, disjoint), for before/after pads; returns how many.
LOOM_HD int pad_preimage(int64_t r, int64_t n, int64_t before, int64_t after, bool replicate, int64_t lo[3],
                         int64_t hi[3]) {
  if (replicate) {
    lo[0] = r == 0 ? -before : r;
    hi[0] = r == n - 1 ? n - 1 + after : r;
    return 1;
  }
  int k = 0;
  if (r >= 1 && r <= before) lo[k] = hi[k] = -r, ++k;  // mirrored at 0
  lo[k] = hi[k] = r, ++k;
  const int64_t m = 2 * (n - 1) - r;  // mirrored at n − 1
  if (r <= n - 2 && m <= n - 1 + after) lo[k] = hi[k] = m, ++k;
  return k;
}

// Output position i of a bilinear resize from n to out (align_corners = false):
// the two source indices and their weights.
struct LerpTap {
  int64_t i0, i1;
  double w0, w1;
};
LOOM_HD LerpTap lerp_tap(int64_t i, int64_t n, int64_t out) {
  const double scale = double(n) / double(out);
  double s = (double(i) + 0.5) * scale - 0.5;
  if (s < 0) s = 0;
  int64_t i0 = int64_t(s);
  if (i0 > n - 1) i0 = n - 1;
  const int64_t i1 = i0 + 1 < n ? i0 + 1 : n - 1;
  const double l1 = s - double(i0);
  return {i0, i1, 1.0 - l1, l1};
}

// The weight output position i gives source index r (0 when it does not read r).
LOOM_HD double lerp_weight(int64_t i, int64_t r, int64_t n, int64_t out) {
  const LerpTap t = lerp_tap(i, n, out);
  return (t.i0 == r ? t.w0 : 0.0) + (t.i1 == r ? t.w1 : 0.0);
}

// The output positions that may read source index r: a superset of those with a
// non-zero weight, clipped to [0, out). The source position of i is ≈ (i + ½)·n/out − ½,
// and it reads r when that lies in (r − 1, r + 1).
LOOM_HD void lerp_readers(int64_t r, int64_t n, int64_t out, int64_t* first, int64_t* last) {
  const double inv = double(out) / double(n);
  int64_t a = int64_t(::floor((double(r) - 1 + 0.5) * inv - 0.5)) - 1;
  int64_t b = int64_t(::ceil((double(r) + 1 + 0.5) * inv - 0.5)) + 1;
  *first = a < 0 ? 0 : a;
  *last = b > out - 1 ? out - 1 : b;
}

// One output element of each kernel, written once for both backends (as
// elementwise_math.h does): `A` supplies the double add and multiply, plain on the
// CPU and round-to-nearest intrinsics on the GPU (nvcc would otherwise contract
// into fused multiply-adds), so the two backends sum the same terms in the same order.
struct PlainArith {
  static LOOM_HD double add(double a, double b) { return a + b; }
  static LOOM_HD double mul(double a, double b) { return a * b; }
};

// y[pl, i, j] of pad2d.
template <class T>
LOOM_HD T pad2d_at(const T* x, int64_t pl, int64_t i, int64_t j, const Pad2d& p) {
  return x[(pl * p.h + pad_source(i - p.top, p.h, p.replicate)) * p.w + pad_source(j - p.left, p.w, p.replicate)];
}

// gx[pl, r, c] of pad2d_backward: the sum of gy over the padded positions copied from (r, c).
template <class A, class T>
LOOM_HD T pad2d_backward_at(const T* gy, int64_t pl, int64_t r, int64_t c, const Pad2d& p) {
  const T* gp = gy + pl * p.oh * p.ow;
  int64_t rlo[3], rhi[3], clo[3], chi[3];
  const int nr = pad_preimage(r, p.h, p.top, p.oh - p.h - p.top, p.replicate, rlo, rhi);
  const int nc = pad_preimage(c, p.w, p.left, p.ow - p.w - p.left, p.replicate, clo, chi);
  double acc = 0;
  for (int a = 0; a < nr; ++a)
    for (int64_t u = rlo[a]; u <= rhi[a]; ++u)
      for (int b = 0; b < nc; ++b)
        for (int64_t v = clo[b]; v <= chi[b]; ++v) acc = A::add(acc, double(gp[(u + p.top) * p.ow + v + p.left]));
  return static_cast<T>(acc);
}

// y[pl, i, j] of upsample_bilinear2d.
template <class A, class T>
LOOM_HD T upsample_bilinear2d_at(const T* x, int64_t pl, int64_t i, int64_t j, const Resize2d& p) {
  const T* xp = x + pl * p.h * p.w;
  const LerpTap ti = lerp_tap(i, p.h, p.oh), tj = lerp_tap(j, p.w, p.ow);
  const double top = A::add(A::mul(tj.w0, double(xp[ti.i0 * p.w + tj.i0])), A::mul(tj.w1, double(xp[ti.i0 * p.w + tj.i1])));
  const double bot = A::add(A::mul(tj.w0, double(xp[ti.i1 * p.w + tj.i0])), A::mul(tj.w1, double(xp[ti.i1 * p.w + tj.i1])));
  return static_cast<T>(A::add(A::mul(ti.w0, top), A::mul(ti.w1, bot)));
}

// gx[pl, r, c] of upsample_bilinear2d_backward: Σ wr(i, r)·wc(j, c)·gy[i, j] over the outputs that read (r, c).
template <class A, class T>
LOOM_HD T upsample_bilinear2d_backward_at(const T* gy, int64_t pl, int64_t r, int64_t c, const Resize2d& p) {
  const T* gp = gy + pl * p.oh * p.ow;
  int64_t i0, i1, j0, j1;
  lerp_readers(r, p.h, p.oh, &i0, &i1);
  lerp_readers(c, p.w, p.ow, &j0, &j1);
  double acc = 0;
  for (int64_t i = i0; i <= i1; ++i) {
    const double wr = lerp_weight(i, r, p.h, p.oh);
    if (wr == 0) continue;
    for (int64_t j = j0; j <= j1; ++j) {
      const double wc = lerp_weight(j, c, p.w, p.ow);
      if (wc != 0) acc = A::add(acc, A::mul(A::mul(wr, wc), double(gp[i * p.ow + j])));
    }
  }
  return static_cast<T>(acc);
}

}  // namespace kernels
}  // namespace loom

#define LOOM_RESAMPLE_API                                                                              \
  /* x [planes, h, w] → y [planes, oh, ow] */                                                          \
  void pad2d(const KernelCtx& k, DType dt, const void* x, void* y, const Pad2d& p);                   \
  /* gy [planes, oh, ow] → gx [planes, h, w] (every element written) */                               \
  void pad2d_backward(const KernelCtx& k, DType dt, const void* gy, void* gx, const Pad2d& p);        \
  void upsample_bilinear2d(const KernelCtx& k, DType dt, const void* x, void* y, const Resize2d& p);  \
  void upsample_bilinear2d_backward(const KernelCtx& k, DType dt, const void* gy, void* gx,           \
                                    const Resize2d& p);

LOOM_DECLARE_KERNELS(LOOM_CUDA_RESAMPLE, LOOM_RESAMPLE_API)
