// CUDA kernels for the resample family (kernels/resample.h): grid-stride loops
// over the flat output (forward) or input (adjoint) index. The adjoints gather
// in the CPU reference's order with double accumulation and round-to-nearest
// arithmetic (no contraction into multiply-adds), so there are no atomics and
// the result is deterministic.
#include "kernels/resample.h"

#include "kernels/cuda/launch.h"

namespace loom::kernels::cuda {
namespace {

// Round-to-nearest double arithmetic (launch.h's add_rn/mul_rn): no contraction into FMAs.
struct RoundedArith {
  static __device__ __forceinline__ double add(double a, double b) { return add_rn(a, b); }
  static __device__ __forceinline__ double mul(double a, double b) { return mul_rn(a, b); }
};

// One thread per element of [planes, rows, cols] (grid-stride): y[e] = at(pl, i, j).
template <class T, class F>
__device__ __forceinline__ void plane_elements(T* y, int64_t planes, int64_t rows, int64_t cols, F at) {
  const int64_t n = planes * rows * cols, stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < n; e += stride)
    y[e] = at(e / (rows * cols), (e / cols) % rows, e % cols);
}

template <class T>
__global__ void pad2d_forward_kernel(const T* x, T* y, Pad2d p) {
  plane_elements(y, p.planes, p.oh, p.ow, [&](int64_t pl, int64_t i, int64_t j) { return pad2d_at(x, pl, i, j, p); });
}

template <class T>
__global__ void pad2d_backward_gather_kernel(const T* gy, T* gx, Pad2d p) {
  plane_elements(gx, p.planes, p.h, p.w,
                 [&](int64_t pl, int64_t r, int64_t c) { return pad2d_backward_at<RoundedArith>(gy, pl, r, c, p); });
}

template <class T>
__global__ void upsample_bilinear2d_forward_kernel(const T* x, T* y, Resize2d p) {
  plane_elements(y, p.planes, p.oh, p.ow, [&](int64_t pl, int64_t i, int64_t j) {
    return upsample_bilinear2d_at<RoundedArith>(x, pl, i, j, p);
  });
}

template <class T>
__global__ void upsample_bilinear2d_backward_gather_kernel(const T* gy, T* gx, Resize2d p) {
  plane_elements(gx, p.planes, p.h, p.w, [&](int64_t pl, int64_t r, int64_t c) {
    return upsample_bilinear2d_backward_at<RoundedArith>(gy, pl, r, c, p);
  });
}

}  // namespace

void pad2d(const KernelCtx& k, DType dt, const void* x, void* y, const Pad2d& p) {
  const int64_t n = p.planes * p.oh * p.ow;
  if (n == 0) return;
  LaunchScope s(k, "pad2d");
  LOOM_FLOAT_SWITCH(dt, T, {
    s.launch(pad2d_forward_kernel<T>, s.blocks(n), kThreads, static_cast<const T*>(x), static_cast<T*>(y), p);
  });
}

void pad2d_backward(const KernelCtx& k, DType dt, const void* gy, void* gx, const Pad2d& p) {
  const int64_t n = p.planes * p.h * p.w;
  if (n == 0) return;
  LaunchScope s(k, "pad2d_backward");
  LOOM_FLOAT_SWITCH(dt, T, {
    s.launch(pad2d_backward_gather_kernel<T>, s.blocks(n), kThreads, static_cast<const T*>(gy), static_cast<T*>(gx),
             p);
  });
}

void upsample_bilinear2d(const KernelCtx& k, DType dt, const void* x, void* y, const Resize2d& p) {
  const int64_t n = p.planes * p.oh * p.ow;
  if (n == 0) return;
  LaunchScope s(k, "upsample_bilinear2d");
  LOOM_FLOAT_SWITCH(dt, T, {
    s.launch(upsample_bilinear2d_forward_kernel<T>, s.blocks(n), kThreads, static_cast<const T*>(x),
             static_cast<T*>(y), p);
  });
}

void upsample_bilinear2d_backward(const KernelCtx& k, DType dt, const void* gy, void* gx, const Resize2d& p) {
  const int64_t n = p.planes * p.h * p.w;
  if (n == 0) return;
  LaunchScope s(k, "upsample_bilinear2d_backward");
  LOOM_FLOAT_SWITCH(dt, T, {
    s.launch(upsample_bilinear2d_backward_gather_kernel<T>, s.blocks(n), kThreads, static_cast<const T*>(gy),
             static_cast<T*>(gx), p);
  });
}

}  // namespace loom::kernels::cuda
