// CUDA kernels for the resample family (kernels/resample.h): grid-stride loops
// over the flat output (forward) or input (adjoint) index. The adjoints gather
// in the CPU reference's order with double accumulation and round-to-nearest
// arithmetic (no contraction into multiply-adds), so there are no atomics and
// the result is deterministic.
#include "kernels/resample.h"

#include "kernels/cuda/launch.h"

namespace loom::kernels::cuda {
namespace {

template <class T>
__global__ void pad2d_forward_kernel(const T* x, T* y, Pad2d p) {
  const int64_t n = p.planes * p.oh * p.ow, stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t o = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; o < n; o += stride) {
    const int64_t j = o % p.ow, i = (o / p.ow) % p.oh, pl = o / (p.ow * p.oh);
    const int64_t r = pad_source(i - p.top, p.h, p.replicate), c = pad_source(j - p.left, p.w, p.replicate);
    y[o] = x[(pl * p.h + r) * p.w + c];
  }
}

template <class T>
__global__ void pad2d_backward_gather_kernel(const T* gy, T* gx, Pad2d p) {
  const int64_t bottom = p.oh - p.h - p.top, right = p.ow - p.w - p.left;
  const int64_t n = p.planes * p.h * p.w, stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < n; e += stride) {
    const int64_t c = e % p.w, r = (e / p.w) % p.h, pl = e / (p.w * p.h);
    const T* gp = gy + pl * p.oh * p.ow;
    int64_t rlo[3], rhi[3], clo[3], chi[3];
    const int nr = pad_preimage(r, p.h, p.top, bottom, p.replicate, rlo, rhi);
    const int nc = pad_preimage(c, p.w, p.left, right, p.replicate, clo, chi);
    double acc = 0;
    for (int a = 0; a < nr; ++a)
      for (int64_t u = rlo[a]; u <= rhi[a]; ++u)
        for (int b = 0; b < nc; ++b)
          for (int64_t v = clo[b]; v <= chi[b]; ++v) acc = add_rn(acc, double(gp[(u + p.top) * p.ow + v + p.left]));
    gx[e] = static_cast<T>(acc);
  }
}

template <class T>
__global__ void upsample_bilinear2d_forward_kernel(const T* x, T* y, Resize2d p) {
  const int64_t n = p.planes * p.oh * p.ow, stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t o = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; o < n; o += stride) {
    const int64_t j = o % p.ow, i = (o / p.ow) % p.oh, pl = o / (p.ow * p.oh);
    const T* xp = x + pl * p.h * p.w;
    const LerpTap ti = lerp_tap(i, p.h, p.oh), tj = lerp_tap(j, p.w, p.ow);
    const double top = add_rn(mul_rn(tj.w0, double(xp[ti.i0 * p.w + tj.i0])), mul_rn(tj.w1, double(xp[ti.i0 * p.w + tj.i1])));
    const double bot = add_rn(mul_rn(tj.w0, double(xp[ti.i1 * p.w + tj.i0])), mul_rn(tj.w1, double(xp[ti.i1 * p.w + tj.i1])));
    y[o] = static_cast<T>(add_rn(mul_rn(ti.w0, top), mul_rn(ti.w1, bot)));
  }
}

template <class T>
__global__ void upsample_bilinear2d_backward_gather_kernel(const T* gy, T* gx, Resize2d p) {
  const int64_t n = p.planes * p.h * p.w, stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < n; e += stride) {
    const int64_t c = e % p.w, r = (e / p.w) % p.h, pl = e / (p.w * p.h);
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
        if (wc != 0) acc = add_rn(acc, mul_rn(mul_rn(wr, wc), double(gp[i * p.ow + j])));
      }
    }
    gx[e] = static_cast<T>(acc);
  }
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
