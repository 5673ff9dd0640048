// CPU convolution (kernels/conv.h): im2col / col2im + one GEMM per chunk of images.
//
// im2col lays the receptive fields of nb images side by side as the columns of
//   cols[(c·kh + a)·kw + b, n·P + p] = x[n, c, i·sh − ph + a·dh, j·sw − pw + b·dw],  p = i·OW + j,
// so that with K = (C/G)·kh·kw rows per group and P = OH·OW, each pass is one GEMM per group:
//   forward          Y[o, n·P + p] = W[o, :] · cols[:, n·P + p]          (Og × K)·(K × nb·P)
//   backward_data    cols = Wᵀ · GY, then col2im scatters cols back       (K × Og)·(Og × nb·P)
//   backward_weight  gW += GY · colsᵀ                                      (Og × nb·P)·(nb·P × K)
// Y and GY are [O, nb·P] (channel-major over the chunk) while y and gy are NCHW ([nb, O, P]), so a
// chunk of more than one image costs a transposing copy, fused with the bias; it buys one large GEMM
// instead of nb small ones, which is what makes small images (P = 49) fast. A chunk is as many
// images as fit kChunkElements of cols. im2col, col2im and the copies run in parallel (OpenMP) over
// (image, channel); the GEMM is OpenBLAS's (kernels/gemm.h) with its own threads. Everything is
// exact FP32/FP64 arithmetic with a fixed summation order: results do not depend on the thread count.
//
// Benchmark: OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 ./build/tools/loom-bench-cpu (tools/bench_cpu.cpp).
#include "kernels/conv.h"

#include <algorithm>
#include <cstring>
#include <memory>

#include "kernels/gemm.h"

namespace loom::kernels::cpu {
namespace {

// Upper bound on the cols buffer of one chunk (elements): 4 Mi floats = 16 MiB.
constexpr int64_t kChunkElements = int64_t(1) << 22;
// Below this many elements moved, a parallel region costs more than it saves.
constexpr int64_t kParallelElements = 32768;

// Output positions o in [lo, hi) whose input index o·stride + offset lies in [0, in_len).
struct Range {
  int64_t lo, hi;
};
Range valid_range(int64_t out_len, int64_t in_len, int64_t stride, int64_t offset) {
  int64_t lo = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  int64_t hi = in_len - 1 - offset < 0 ? 0 : (in_len - 1 - offset) / stride + 1;
  lo = std::min(lo, out_len);
  hi = std::clamp(hi, lo, out_len);
  return {lo, hi};
}

// The sizes every pass needs, derived once from the geometry.
struct Dims {
  const ConvGeometry& g;
  int64_t c_group, o_group;  // channels per group, input and output
  int64_t k;                 // GEMM depth per group: c_group · kh · kw
  int64_t p;                 // output positions per image: OH · OW
  int64_t chunk;             // images per chunk
  explicit Dims(const ConvGeometry& geo)
      : g(geo),
        c_group(geo.in_channels / geo.groups),
        o_group(geo.out_channels / geo.groups),
        k(c_group * geo.kernel_h * geo.kernel_w),
        p(geo.out_h * geo.out_w),
        chunk(std::clamp<int64_t>(kChunkElements / std::max<int64_t>(1, geo.in_channels * geo.kernel_h *
                                                                            geo.kernel_w * p),
                                  1, std::max<int64_t>(1, geo.batch))) {}
  int64_t in_plane() const { return g.in_h * g.in_w; }
};

// The kh·kw rows of cols that channel c of one image contributes (row stride ld), reading plane x.
template <class T>
void im2col_channel(const Dims& d, const T* x, T* cols, int64_t ld) {
  const ConvGeometry& g = d.g;
  for (int64_t a = 0; a < g.kernel_h; ++a) {
    const Range rows = valid_range(g.out_h, g.in_h, g.stride_h, a * g.dilation_h - g.pad_h);
    for (int64_t b = 0; b < g.kernel_w; ++b, cols += ld) {
      const int64_t x_off = b * g.dilation_w - g.pad_w;
      const Range cs = valid_range(g.out_w, g.in_w, g.stride_w, x_off);
      for (int64_t i = 0; i < g.out_h; ++i) {
        T* dst = cols + i * g.out_w;
        if (i < rows.lo || i >= rows.hi) {
          std::fill(dst, dst + g.out_w, T(0));
          continue;
        }
        const T* src = x + (i * g.stride_h + a * g.dilation_h - g.pad_h) * g.in_w + x_off;
        std::fill(dst, dst + cs.lo, T(0));
        if (g.stride_w == 1) {
          std::memcpy(dst + cs.lo, src + cs.lo, sizeof(T) * (cs.hi - cs.lo));
        } else {
          for (int64_t j = cs.lo; j < cs.hi; ++j) dst[j] = src[j * g.stride_w];
        }
        std::fill(dst + cs.hi, dst + g.out_w, T(0));
      }
    }
  }
}

// The adjoint of im2col_channel: adds the kh·kw rows of channel c back into plane gx.
template <class T>
void col2im_channel(const Dims& d, const T* cols, int64_t ld, T* gx) {
  const ConvGeometry& g = d.g;
  for (int64_t a = 0; a < g.kernel_h; ++a) {
    const Range rows = valid_range(g.out_h, g.in_h, g.stride_h, a * g.dilation_h - g.pad_h);
    for (int64_t b = 0; b < g.kernel_w; ++b, cols += ld) {
      const int64_t x_off = b * g.dilation_w - g.pad_w;
      const Range cs = valid_range(g.out_w, g.in_w, g.stride_w, x_off);
      for (int64_t i = rows.lo; i < rows.hi; ++i) {
        const T* src = cols + i * g.out_w;
        T* dst = gx + (i * g.stride_h + a * g.dilation_h - g.pad_h) * g.in_w + x_off;
        for (int64_t j = cs.lo; j < cs.hi; ++j) dst[j * g.stride_w] += src[j];
      }
    }
  }
}

// cols for images [n0, n0 + nb) of x, [C·kh·kw, nb·P].
template <class T>
void im2col(const Dims& d, const T* x, int64_t n0, int64_t nb, T* cols) {
  const ConvGeometry& g = d.g;
  const int64_t ld = nb * d.p, rows_per_channel = g.kernel_h * g.kernel_w;
#pragma omp parallel for collapse(2) schedule(static) if (nb * g.in_channels * rows_per_channel * d.p > \
                                                             kParallelElements)
  for (int64_t n = 0; n < nb; ++n)
    for (int64_t c = 0; c < g.in_channels; ++c)
      im2col_channel(d, x + ((n0 + n) * g.in_channels + c) * d.in_plane(), cols + c * rows_per_channel * ld + n * d.p,
                     ld);
}

// gx[n0 + n, c] = bias[c] (or 0) + col2im(cols) for the chunk's images.
template <class T>
void col2im(const Dims& d, const T* cols, const T* bias, int64_t n0, int64_t nb, T* gx) {
  const ConvGeometry& g = d.g;
  const int64_t ld = nb * d.p, rows_per_channel = g.kernel_h * g.kernel_w;
#pragma omp parallel for collapse(2) schedule(static) if (nb * g.in_channels * rows_per_channel * d.p > \
                                                             kParallelElements)
  for (int64_t n = 0; n < nb; ++n)
    for (int64_t c = 0; c < g.in_channels; ++c) {
      T* plane = gx + ((n0 + n) * g.in_channels + c) * d.in_plane();
      std::fill(plane, plane + d.in_plane(), bias ? bias[c] : T(0));
      col2im_channel(d, cols + c * rows_per_channel * ld + n * d.p, ld, plane);
    }
}

// Between the NCHW tensor t[n0 + n, o, p] and the chunk matrix m[o, n·P + p] (o < O), adding
// bias[o] on the way to t when given.
template <class T>
void nchw_to_chunk(const Dims& d, const T* t, int64_t n0, int64_t nb, T* m) {
  const int64_t o_total = d.g.out_channels;
#pragma omp parallel for collapse(2) schedule(static) if (nb * o_total * d.p > kParallelElements)
  for (int64_t n = 0; n < nb; ++n)
    for (int64_t o = 0; o < o_total; ++o)
      std::memcpy(m + (o * nb + n) * d.p, t + ((n0 + n) * o_total + o) * d.p, sizeof(T) * d.p);
}
template <class T>
void chunk_to_nchw(const Dims& d, const T* m, const T* bias, int64_t n0, int64_t nb, T* t) {
  const int64_t o_total = d.g.out_channels;
#pragma omp parallel for collapse(2) schedule(static) if (nb * o_total * d.p > kParallelElements)
  for (int64_t n = 0; n < nb; ++n)
    for (int64_t o = 0; o < o_total; ++o) {
      const T* src = m + (o * nb + n) * d.p;
      T* dst = t + ((n0 + n) * o_total + o) * d.p;
      const T b = bias ? bias[o] : T(0);
      for (int64_t q = 0; q < d.p; ++q) dst[q] = src[q] + b;
    }
}

template <class T>
std::unique_ptr<T[]> scratch(int64_t n) {
  return std::unique_ptr<T[]>(new T[n]);  // uninitialized: every element is written before it is read
}

template <class T>
void forward_impl(const KernelCtx& kc, DType dt, const ConvGeometry& g, const T* x, const T* w, const T* bias,
                  T* y) {
  const Dims d(g);
  auto cols = scratch<T>(g.in_channels * g.kernel_h * g.kernel_w * d.chunk * d.p);
  auto ychunk = d.chunk > 1 ? scratch<T>(g.out_channels * d.chunk * d.p) : nullptr;
  for (int64_t n0 = 0; n0 < g.batch; n0 += d.chunk) {
    const int64_t nb = std::min(d.chunk, g.batch - n0), ld = nb * d.p;
    im2col(d, x, n0, nb, cols.get());
    // One image: its [O, P] block of y is the GEMM's output already.
    T* out = nb == 1 ? y + n0 * g.out_channels * d.p : ychunk.get();
    gemm(kc, dt, false, false, d.o_group, ld, d.k, 1.0, w, d.k, d.o_group * d.k, cols.get(), ld, d.k * ld, 0.0, out,
         ld, d.o_group * ld, g.groups);
    if (nb > 1 || bias) chunk_to_nchw(d, out, bias, n0, nb, y);
  }
}

template <class T>
void backward_data_impl(const KernelCtx& kc, DType dt, const ConvGeometry& g, const T* gy, const T* w, const T* bias,
                        T* gx) {
  const Dims d(g);
  auto cols = scratch<T>(g.in_channels * g.kernel_h * g.kernel_w * d.chunk * d.p);
  auto gychunk = d.chunk > 1 ? scratch<T>(g.out_channels * d.chunk * d.p) : nullptr;
  for (int64_t n0 = 0; n0 < g.batch; n0 += d.chunk) {
    const int64_t nb = std::min(d.chunk, g.batch - n0), ld = nb * d.p;
    const T* in = gy + n0 * g.out_channels * d.p;
    if (nb > 1) {
      nchw_to_chunk(d, gy, n0, nb, gychunk.get());
      in = gychunk.get();
    }
    gemm(kc, dt, true, false, d.k, ld, d.o_group, 1.0, w, d.k, d.o_group * d.k, in, ld, d.o_group * ld, 0.0,
         cols.get(), ld, d.k * ld, g.groups);
    col2im(d, cols.get(), bias, n0, nb, gx);
  }
}

template <class T>
void backward_weight_impl(const KernelCtx& kc, DType dt, const ConvGeometry& g, const T* x, const T* gy, T* gw) {
  const Dims d(g);
  if (g.batch == 0) {
    std::fill(gw, gw + g.out_channels * d.k, T(0));
    return;
  }
  auto cols = scratch<T>(g.in_channels * g.kernel_h * g.kernel_w * d.chunk * d.p);
  auto gychunk = d.chunk > 1 ? scratch<T>(g.out_channels * d.chunk * d.p) : nullptr;
  for (int64_t n0 = 0; n0 < g.batch; n0 += d.chunk) {
    const int64_t nb = std::min(d.chunk, g.batch - n0), ld = nb * d.p;
    im2col(d, x, n0, nb, cols.get());
    const T* in = gy + n0 * g.out_channels * d.p;
    if (nb > 1) {
      nchw_to_chunk(d, gy, n0, nb, gychunk.get());
      in = gychunk.get();
    }
    // The first chunk overwrites gw, the others accumulate: a fixed summation order.
    gemm(kc, dt, false, true, d.o_group, d.k, ld, 1.0, in, ld, d.o_group * ld, cols.get(), ld, d.k * ld,
         n0 == 0 ? 0.0 : 1.0, gw, d.k, d.o_group * d.k, g.groups);
  }
}

}  // namespace

void conv2d_forward(const KernelCtx& k, DType dt, const ConvGeometry& g, const void* x, const void* w,
                    const void* bias, void* y) {
  LOOM_FLOAT_SWITCH(dt, T,
                    forward_impl<T>(k, dt, g, static_cast<const T*>(x), static_cast<const T*>(w),
                                    static_cast<const T*>(bias), static_cast<T*>(y)));
}

void conv2d_backward_data(const KernelCtx& k, DType dt, const ConvGeometry& g, const void* gy, const void* w,
                          const void* bias, void* gx) {
  LOOM_FLOAT_SWITCH(dt, T,
                    backward_data_impl<T>(k, dt, g, static_cast<const T*>(gy), static_cast<const T*>(w),
                                          static_cast<const T*>(bias), static_cast<T*>(gx)));
}

void conv2d_backward_weight(const KernelCtx& k, DType dt, const ConvGeometry& g, const void* x, const void* gy,
                            void* gw) {
  LOOM_FLOAT_SWITCH(dt, T,
                    backward_weight_impl<T>(k, dt, g, static_cast<const T*>(x), static_cast<const T*>(gy),
                                            static_cast<T*>(gw)));
}

}  // namespace loom::kernels::cpu
