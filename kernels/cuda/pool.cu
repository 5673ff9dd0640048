// CUDA kernels for the pool family (kernels/pool.h), with the CPU reference's
// semantics (kernels/cpu/pool.cpp) and, where the CPU accumulates, its order:
//   forward     one thread per output: the CPU's row-major scan of the clipped
//               window (max: first element, then "a NaN wins and sticks, else a
//               strictly larger value"; avg: Σ in double · 1/(kh·kw)).
//   backward    one thread per input element, gathering from every window that
//               contains it (rows i with i·sh − ph ≤ r < i·sh − ph + kh, likewise
//               columns), in increasing (i, j): the order in which the CPU's
//               scatter visits that element, in the same precision. So there are
//               no atomics, results are deterministic and equal the CPU's bit for
//               bit (no multiply-add is left for nvcc to fuse).
//   upsample    forward a gather; backward sums the s×s block in double.
// All loops are grid-stride over the flat output (or input) index.
#include "kernels/pool.h"

#include "kernels/cuda/launch.h"

namespace loom::kernels::cuda {
namespace {

// Window (i, j) clipped to the real plane: rows [r0, r1), columns [c0, c1).
struct Window {
  int64_t r0, r1, c0, c1;
};
__device__ Window window(const Pool2d& p, int64_t i, int64_t j) {
  const int64_t r = i * p.sh - p.ph, c = j * p.sw - p.pw;
  return {max(r, int64_t(0)), min(r + p.kh, p.h), max(c, int64_t(0)), min(c + p.kw, p.w)};
}

struct Range {
  int64_t lo, hi;  // [lo, hi)
};

// Output rows i whose window [i·s − pad, i·s − pad + k) contains input row r,
// clipped to [0, out): i ≥ ⌈(r + pad − k + 1) / s⌉ and i ≤ ⌊(r + pad) / s⌋.
__device__ Range windows_containing(int64_t r, int64_t k, int64_t s, int64_t pad, int64_t out) {
  const int64_t first = r + pad - k + 1;
  const int64_t lo = first <= 0 ? 0 : (first + s - 1) / s;
  const int64_t hi = min(out, (r + pad) / s + 1);
  return {lo, hi};
}

template <class T>
__global__ void max_pool2d_forward_kernel(const T* x, T* y, int64_t* argmax, Pool2d p) {
  const int64_t n = p.planes * p.oh * p.ow, stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t o = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; o < n; o += stride) {
    const int64_t j = o % p.ow, i = (o / p.ow) % p.oh, pl = o / (p.ow * p.oh);
    const T* xp = x + pl * p.h * p.w;
    const Window win = window(p, i, j);
    int64_t at = win.r0 * p.w + win.c0;
    T best = xp[at];
    for (int64_t r = win.r0; r < win.r1; ++r)
      for (int64_t c = win.c0; c < win.c1; ++c) {
        const T v = xp[r * p.w + c];
        if (best == best && (v > best || v != v)) best = v, at = r * p.w + c;
      }
    y[o] = best;
    argmax[o] = at;
  }
}

// gx[r, c] = Σ gy over the windows containing (r, c) whose argmax is (r, c).
template <class T>
__global__ void max_pool2d_backward_gather_kernel(const T* gy, const int64_t* argmax, T* gx, Pool2d p) {
  const int64_t n = p.planes * p.h * p.w, stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < n; e += stride) {
    const int64_t at = e % (p.h * p.w), pl = e / (p.h * p.w), r = at / p.w, c = at % p.w;
    const Range rows = windows_containing(r, p.kh, p.sh, p.ph, p.oh), cols = windows_containing(c, p.kw, p.sw, p.pw, p.ow);
    T acc = T(0);
    for (int64_t i = rows.lo; i < rows.hi; ++i)
      for (int64_t j = cols.lo; j < cols.hi; ++j) {
        const int64_t o = (pl * p.oh + i) * p.ow + j;
        if (argmax[o] == at) acc = add_rn(acc, gy[o]);
      }
    gx[e] = acc;
  }
}

template <class T>
__global__ void avg_pool2d_forward_kernel(const T* x, T* y, Pool2d p, double inv_count) {
  const int64_t n = p.planes * p.oh * p.ow, stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t o = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; o < n; o += stride) {
    const int64_t j = o % p.ow, i = (o / p.ow) % p.oh, pl = o / (p.ow * p.oh);
    const T* xp = x + pl * p.h * p.w;
    const Window win = window(p, i, j);
    double s = 0;
    for (int64_t r = win.r0; r < win.r1; ++r)
      for (int64_t c = win.c0; c < win.c1; ++c) s = add_rn(s, double(xp[r * p.w + c]));
    y[o] = static_cast<T>(mul_rn(s, inv_count));
  }
}

// gx[r, c] = Σ over the windows containing (r, c) of T(gy · 1/(kh·kw)): the
// CPU's per-window share, rounded to T before it is added, as there.
template <class T>
__global__ void avg_pool2d_backward_gather_kernel(const T* gy, T* gx, Pool2d p, double inv_count) {
  const int64_t n = p.planes * p.h * p.w, stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < n; e += stride) {
    const int64_t at = e % (p.h * p.w), pl = e / (p.h * p.w), r = at / p.w, c = at % p.w;
    const Range rows = windows_containing(r, p.kh, p.sh, p.ph, p.oh), cols = windows_containing(c, p.kw, p.sw, p.pw, p.ow);
    T acc = T(0);
    for (int64_t i = rows.lo; i < rows.hi; ++i)
      for (int64_t j = cols.lo; j < cols.hi; ++j)
        acc = add_rn(acc, static_cast<T>(mul_rn(double(gy[(pl * p.oh + i) * p.ow + j]), inv_count)));
    gx[e] = acc;
  }
}

template <class T>
__global__ void upsample_nearest2d_forward_kernel(const T* x, T* y, int64_t planes, int64_t h, int64_t w, int64_t s) {
  const int64_t oh = h * s, ow = w * s, n = planes * oh * ow, stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t o = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; o < n; o += stride) {
    const int64_t j = o % ow, i = (o / ow) % oh, pl = o / (ow * oh);
    y[o] = x[(pl * h + i / s) * w + j / s];
  }
}

template <class T>
__global__ void upsample_nearest2d_backward_block_sum_kernel(const T* gy, T* gx, int64_t planes, int64_t h, int64_t w,
                                                             int64_t s) {
  const int64_t ow = w * s, n = planes * h * w, stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < n; e += stride) {
    const int64_t c = e % w, r = (e / w) % h, pl = e / (w * h);
    const T* gp = gy + pl * h * s * ow;
    double acc = 0;
    for (int64_t a = 0; a < s; ++a)
      for (int64_t b = 0; b < s; ++b) acc = add_rn(acc, double(gp[(r * s + a) * ow + c * s + b]));
    gx[e] = static_cast<T>(acc);
  }
}

}  // namespace

void max_pool2d(const KernelCtx& k, DType dt, const void* x, void* y, int64_t* argmax, const Pool2d& p) {
  const int64_t n = p.planes * p.oh * p.ow;
  if (n == 0) return;
  LaunchScope s(k, "max_pool2d");
  LOOM_FLOAT_SWITCH(dt, T, {
    s.launch(max_pool2d_forward_kernel<T>, s.blocks(n), kThreads, static_cast<const T*>(x),
             static_cast<T*>(y), argmax, p);
  });
}

void max_pool2d_backward(const KernelCtx& k, DType dt, const void* gy, const int64_t* argmax, void* gx,
                         const Pool2d& p) {
  const int64_t n = p.planes * p.h * p.w;
  if (n == 0) return;
  LaunchScope s(k, "max_pool2d_backward");
  LOOM_FLOAT_SWITCH(dt, T, {
    s.launch(max_pool2d_backward_gather_kernel<T>, s.blocks(n), kThreads, static_cast<const T*>(gy), argmax,
             static_cast<T*>(gx), p);
  });
}

void avg_pool2d(const KernelCtx& k, DType dt, const void* x, void* y, const Pool2d& p) {
  const int64_t n = p.planes * p.oh * p.ow;
  if (n == 0) return;
  LaunchScope s(k, "avg_pool2d");
  LOOM_FLOAT_SWITCH(dt, T, {
    s.launch(avg_pool2d_forward_kernel<T>, s.blocks(n), kThreads, static_cast<const T*>(x), static_cast<T*>(y), p,
             1.0 / double(p.kh * p.kw));
  });
}

void avg_pool2d_backward(const KernelCtx& k, DType dt, const void* gy, void* gx, const Pool2d& p) {
  const int64_t n = p.planes * p.h * p.w;
  if (n == 0) return;
  LaunchScope s(k, "avg_pool2d_backward");
  LOOM_FLOAT_SWITCH(dt, T, {
    s.launch(avg_pool2d_backward_gather_kernel<T>, s.blocks(n), kThreads, static_cast<const T*>(gy),
             static_cast<T*>(gx), p, 1.0 / double(p.kh * p.kw));
  });
}

void upsample_nearest2d(const KernelCtx& k, DType dt, const void* x, void* y, int64_t planes, int64_t h, int64_t w,
                        int64_t scale) {
  const int64_t n = planes * h * scale * w * scale;
  if (n == 0) return;
  LaunchScope s(k, "upsample_nearest2d");
  LOOM_FLOAT_SWITCH(dt, T, {
    s.launch(upsample_nearest2d_forward_kernel<T>, s.blocks(n), kThreads, static_cast<const T*>(x), static_cast<T*>(y),
             planes, h, w, scale);
  });
}

void upsample_nearest2d_backward(const KernelCtx& k, DType dt, const void* gy, void* gx, int64_t planes, int64_t h,
                                 int64_t w, int64_t scale) {
  const int64_t n = planes * h * w;
  if (n == 0) return;
  LaunchScope s(k, "upsample_nearest2d_backward");
  LOOM_FLOAT_SWITCH(dt, T, {
    s.launch(upsample_nearest2d_backward_block_sum_kernel<T>, s.blocks(n), kThreads, static_cast<const T*>(gy),
             static_cast<T*>(gx), planes, h, w, scale);
  });
}

}  // namespace loom::kernels::cuda
