// CPU reference for the resample family (kernels/resample.h). Parallel over
// planes; the adjoints gather (each input element sums the outputs that read
// it) in the order the CUDA kernels use, accumulating in double.
#include "kernels/resample.h"

namespace loom::kernels::cpu {
namespace {

template <class T>
void pad2d_impl(const T* x, T* y, const Pad2d& p) {
#pragma omp parallel for schedule(static) if (p.planes * p.oh * p.ow > 65536)
  for (int64_t pl = 0; pl < p.planes; ++pl) {
    const T* xp = x + pl * p.h * p.w;
    T* yp = y + pl * p.oh * p.ow;
    for (int64_t i = 0; i < p.oh; ++i) {
      const int64_t r = pad_source(i - p.top, p.h, p.replicate);
      for (int64_t j = 0; j < p.ow; ++j) yp[i * p.ow + j] = xp[r * p.w + pad_source(j - p.left, p.w, p.replicate)];
    }
  }
}

template <class T>
void pad2d_backward_impl(const T* gy, T* gx, const Pad2d& p) {
  const int64_t bottom = p.oh - p.h - p.top, right = p.ow - p.w - p.left;
#pragma omp parallel for schedule(static) if (p.planes * p.oh * p.ow > 65536)
  for (int64_t pl = 0; pl < p.planes; ++pl) {
    const T* gp = gy + pl * p.oh * p.ow;
    for (int64_t r = 0; r < p.h; ++r) {
      int64_t rlo[3], rhi[3];
      const int nr = pad_preimage(r, p.h, p.top, bottom, p.replicate, rlo, rhi);
      for (int64_t c = 0; c < p.w; ++c) {
        int64_t clo[3], chi[3];
        const int nc = pad_preimage(c, p.w, p.left, right, p.replicate, clo, chi);
        double acc = 0;
        for (int a = 0; a < nr; ++a)
          for (int64_t u = rlo[a]; u <= rhi[a]; ++u)
            for (int b = 0; b < nc; ++b)
              for (int64_t v = clo[b]; v <= chi[b]; ++v) acc += double(gp[(u + p.top) * p.ow + v + p.left]);
        gx[(pl * p.h + r) * p.w + c] = static_cast<T>(acc);
      }
    }
  }
}

template <class T>
void upsample_bilinear2d_impl(const T* x, T* y, const Resize2d& p) {
#pragma omp parallel for schedule(static) if (p.planes * p.oh * p.ow > 65536)
  for (int64_t pl = 0; pl < p.planes; ++pl) {
    const T* xp = x + pl * p.h * p.w;
    T* yp = y + pl * p.oh * p.ow;
    for (int64_t i = 0; i < p.oh; ++i) {
      const LerpTap ti = lerp_tap(i, p.h, p.oh);
      for (int64_t j = 0; j < p.ow; ++j) {
        const LerpTap tj = lerp_tap(j, p.w, p.ow);
        const double top = tj.w0 * double(xp[ti.i0 * p.w + tj.i0]) + tj.w1 * double(xp[ti.i0 * p.w + tj.i1]);
        const double bot = tj.w0 * double(xp[ti.i1 * p.w + tj.i0]) + tj.w1 * double(xp[ti.i1 * p.w + tj.i1]);
        yp[i * p.ow + j] = static_cast<T>(ti.w0 * top + ti.w1 * bot);
      }
    }
  }
}

template <class T>
void upsample_bilinear2d_backward_impl(const T* gy, T* gx, const Resize2d& p) {
#pragma omp parallel for schedule(static) if (p.planes * p.oh * p.ow > 65536)
  for (int64_t pl = 0; pl < p.planes; ++pl) {
    const T* gp = gy + pl * p.oh * p.ow;
    for (int64_t r = 0; r < p.h; ++r) {
      int64_t i0, i1;
      lerp_readers(r, p.h, p.oh, &i0, &i1);
      for (int64_t c = 0; c < p.w; ++c) {
        int64_t j0, j1;
        lerp_readers(c, p.w, p.ow, &j0, &j1);
        double acc = 0;
        for (int64_t i = i0; i <= i1; ++i) {
          const double wr = lerp_weight(i, r, p.h, p.oh);
          if (wr == 0) continue;
          for (int64_t j = j0; j <= j1; ++j) {
            const double wc = lerp_weight(j, c, p.w, p.ow);
            if (wc != 0) acc += wr * wc * double(gp[i * p.ow + j]);
          }
        }
        gx[(pl * p.h + r) * p.w + c] = static_cast<T>(acc);
      }
    }
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
  LOOM_FLOAT_SWITCH(dt, T, upsample_bilinear2d_impl<T>(static_cast<const T*>(x), static_cast<T*>(y), p));
}

void upsample_bilinear2d_backward(const KernelCtx&, DType dt, const void* gy, void* gx, const Resize2d& p) {
  LOOM_FLOAT_SWITCH(dt, T, upsample_bilinear2d_backward_impl<T>(static_cast<const T*>(gy), static_cast<T*>(gx), p));
}

}  // namespace loom::kernels::cpu
