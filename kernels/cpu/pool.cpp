// CPU reference for the pool family (kernels/pool.h). One thread per plane:
// backward scatters into overlapping windows, so a plane is never shared.
// Sums accumulate in double (the reference is the accurate side).
#include "kernels/pool.h"

#include <algorithm>

#include "kernels/cpu/clones.h"

namespace loom::kernels::cpu {
namespace {

// Window (i, j) clipped to the real plane: rows [r0, r1), columns [c0, c1).
struct Window {
  int64_t r0, r1, c0, c1;
};
Window window(const Pool2d& p, int64_t i, int64_t j) {
  const int64_t r = i * p.sh - p.ph, c = j * p.sw - p.pw;
  return {std::max<int64_t>(r, 0), std::min(r + p.kh, p.h), std::max<int64_t>(c, 0), std::min(c + p.kw, p.w)};
}

// Parallel over planes once there is enough work to pay for the threads.
bool parallel(const Pool2d& p) { return p.planes * p.oh * p.ow * p.kh * p.kw > 65536; }

// The first NaN wins, else the first maximum, in the window's row-major order. Selects, not a branch:
// on activations the comparison goes either way about half the time, and mispredicted branches made
// this loop 17 % of a classifier step.
template <class T>
inline void take_max(T v, int64_t idx, T& best, int64_t& at) {
  const bool take = (best == best) & ((v > best) | (v != v));
  best = take ? v : best;
  at = take ? idx : at;
}

// Output row i, columns [jlo, jhi), whose windows the padding does not clip sideways: all of them at
// once, the loop over j innermost (it vectorizes), each window still visited in row-major order from
// its first element, so the same maximum and index win as one window at a time.
template <class T>
LOOM_CPU_CLONES void max_pool2d_row(const T* __restrict xp, T* __restrict y, int64_t* __restrict argmax,
                                    const Pool2d& p, int64_t i, int64_t jlo, int64_t jhi) {
  // Locals, not p's fields: a store through y could change p for all the compiler knows.
  const int64_t w = p.w, sw = p.sw, pw = p.pw, kw = p.kw;
  const int64_t r0 = std::max<int64_t>(i * p.sh - p.ph, 0), r1 = std::min(i * p.sh - p.ph + p.kh, p.h);
  for (int64_t j = jlo; j < jhi; ++j) {
    argmax[j] = r0 * w + j * sw - pw;
    y[j] = xp[argmax[j]];
  }
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t c = 0; c < kw; ++c) {
      const int64_t base = r * w + c - pw;
      for (int64_t j = jlo; j < jhi; ++j) {
        T best = y[j];
        int64_t at = argmax[j];
        take_max(xp[base + j * sw], base + j * sw, best, at);
        y[j] = best;
        argmax[j] = at;
      }
    }
}

template <class T>
void max_pool2d_impl(const T* x, T* y, int64_t* argmax, const Pool2d& p) {
  // The columns whose windows lie within [0, w): j·sw − pw ≥ 0 and j·sw − pw + kw ≤ w.
  const int64_t jlo = std::min(p.ow, (p.pw + p.sw - 1) / p.sw);
  const int64_t jhi = p.w + p.pw - p.kw < 0 ? jlo : std::clamp((p.w + p.pw - p.kw) / p.sw + 1, jlo, p.ow);
#pragma omp parallel for schedule(static) if (parallel(p))
  for (int64_t pl = 0; pl < p.planes; ++pl) {
    const T* xp = x + pl * p.h * p.w;
    for (int64_t i = 0; i < p.oh; ++i) {
      const int64_t o = (pl * p.oh + i) * p.ow;
      max_pool2d_row(xp, y + o, argmax + o, p, i, jlo, jhi);
      // The columns the padding clips, one window at a time.
      auto clipped = [&](int64_t j) {
        const Window win = window(p, i, j);
        int64_t at = win.r0 * p.w + win.c0;
        T best = xp[at];
        for (int64_t r = win.r0; r < win.r1; ++r)
          for (int64_t c = win.c0; c < win.c1; ++c) take_max(xp[r * p.w + c], r * p.w + c, best, at);
        y[o + j] = best;
        argmax[o + j] = at;
      };
      for (int64_t j = 0; j < jlo; ++j) clipped(j);
      for (int64_t j = jhi; j < p.ow; ++j) clipped(j);
    }
  }
}

template <class T>
void max_pool2d_backward_impl(const T* gy, const int64_t* argmax, T* gx, const Pool2d& p) {
#pragma omp parallel for schedule(static) if (parallel(p))
  for (int64_t pl = 0; pl < p.planes; ++pl) {
    T* gp = gx + pl * p.h * p.w;
    std::fill(gp, gp + p.h * p.w, T(0));
    const int64_t o0 = pl * p.oh * p.ow;
    for (int64_t o = o0; o < o0 + p.oh * p.ow; ++o) gp[argmax[o]] += gy[o];
  }
}

template <class T>
void avg_pool2d_impl(const T* x, T* y, const Pool2d& p) {
  const double inv_count = 1.0 / double(p.kh * p.kw);
#pragma omp parallel for schedule(static) if (parallel(p))
  for (int64_t pl = 0; pl < p.planes; ++pl) {
    const T* xp = x + pl * p.h * p.w;
    for (int64_t i = 0; i < p.oh; ++i) {
      for (int64_t j = 0; j < p.ow; ++j) {
        const Window win = window(p, i, j);
        double s = 0;
        for (int64_t r = win.r0; r < win.r1; ++r)
          for (int64_t c = win.c0; c < win.c1; ++c) s += xp[r * p.w + c];
        y[(pl * p.oh + i) * p.ow + j] = static_cast<T>(s * inv_count);
      }
    }
  }
}

template <class T>
void avg_pool2d_backward_impl(const T* gy, T* gx, const Pool2d& p) {
  const double inv_count = 1.0 / double(p.kh * p.kw);
#pragma omp parallel for schedule(static) if (parallel(p))
  for (int64_t pl = 0; pl < p.planes; ++pl) {
    T* gp = gx + pl * p.h * p.w;
    std::fill(gp, gp + p.h * p.w, T(0));
    for (int64_t i = 0; i < p.oh; ++i) {
      for (int64_t j = 0; j < p.ow; ++j) {
        const Window win = window(p, i, j);
        const T share = static_cast<T>(gy[(pl * p.oh + i) * p.ow + j] * inv_count);
        for (int64_t r = win.r0; r < win.r1; ++r)
          for (int64_t c = win.c0; c < win.c1; ++c) gp[r * p.w + c] += share;
      }
    }
  }
}

template <class T>
void upsample_nearest2d_impl(const T* x, T* y, int64_t planes, int64_t h, int64_t w, int64_t s) {
  const int64_t oh = h * s, ow = w * s;
#pragma omp parallel for schedule(static) if (planes * oh * ow > 65536)
  for (int64_t pl = 0; pl < planes; ++pl) {
    const T* xp = x + pl * h * w;
    T* yp = y + pl * oh * ow;
    for (int64_t i = 0; i < oh; ++i)
      for (int64_t j = 0; j < ow; ++j) yp[i * ow + j] = xp[(i / s) * w + j / s];
  }
}

template <class T>
void upsample_nearest2d_backward_impl(const T* gy, T* gx, int64_t planes, int64_t h, int64_t w, int64_t s) {
  const int64_t oh = h * s, ow = w * s;
#pragma omp parallel for schedule(static) if (planes * oh * ow > 65536)
  for (int64_t pl = 0; pl < planes; ++pl) {
    const T* gp = gy + pl * oh * ow;
    for (int64_t r = 0; r < h; ++r) {
      for (int64_t c = 0; c < w; ++c) {
        double acc = 0;
        for (int64_t a = 0; a < s; ++a)
          for (int64_t b = 0; b < s; ++b) acc += gp[(r * s + a) * ow + c * s + b];
        gx[(pl * h + r) * w + c] = static_cast<T>(acc);
      }
    }
  }
}

}  // namespace

void max_pool2d(const KernelCtx&, DType dt, const void* x, void* y, int64_t* argmax, const Pool2d& p) {
  LOOM_FLOAT_SWITCH(dt, T, max_pool2d_impl<T>(static_cast<const T*>(x), static_cast<T*>(y), argmax, p));
}

void max_pool2d_backward(const KernelCtx&, DType dt, const void* gy, const int64_t* argmax, void* gx,
                         const Pool2d& p) {
  LOOM_FLOAT_SWITCH(dt, T, max_pool2d_backward_impl<T>(static_cast<const T*>(gy), argmax, static_cast<T*>(gx), p));
}

void avg_pool2d(const KernelCtx&, DType dt, const void* x, void* y, const Pool2d& p) {
  LOOM_FLOAT_SWITCH(dt, T, avg_pool2d_impl<T>(static_cast<const T*>(x), static_cast<T*>(y), p));
}

void avg_pool2d_backward(const KernelCtx&, DType dt, const void* gy, void* gx, const Pool2d& p) {
  LOOM_FLOAT_SWITCH(dt, T, avg_pool2d_backward_impl<T>(static_cast<const T*>(gy), static_cast<T*>(gx), p));
}

void upsample_nearest2d(const KernelCtx&, DType dt, const void* x, void* y, int64_t planes, int64_t h, int64_t w,
                        int64_t scale) {
  LOOM_FLOAT_SWITCH(dt, T,
                    upsample_nearest2d_impl<T>(static_cast<const T*>(x), static_cast<T*>(y), planes, h, w, scale));
}

void upsample_nearest2d_backward(const KernelCtx&, DType dt, const void* gy, void* gx, int64_t planes, int64_t h,
                                 int64_t w, int64_t scale) {
  LOOM_FLOAT_SWITCH(dt, T,
                    upsample_nearest2d_backward_impl<T>(static_cast<const T*>(gy), static_cast<T*>(gx), planes, h, w,
                                                        scale));
}

}  // namespace loom::kernels::cpu
