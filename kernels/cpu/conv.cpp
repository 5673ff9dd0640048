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
// (image, channel); the GEMM is OpenBLAS's (kernels/gemm.h) with its own threads. Arithmetic is plain
// FP32/FP64 (no reduced precision) and loom's own loops add in a fixed order.
//
// Benchmark: OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 ./build/tools/loom-bench-cpu (tools/bench_cpu.cpp).
#include "kernels/conv.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "kernels/gemm.h"

namespace loom::kernels::cpu {
namespace {

// Upper bound on the cols buffer of one chunk (elements): 512 Ki floats = 2 MiB, about one core's L2,
// so that the GEMM reads cols from cache right after im2col wrote them. (A 16 MiB chunk, one GEMM for
// the whole DCGAN batch, ran the 64→128 layer 1.5x slower.)
constexpr int64_t kChunkElements = int64_t(1) << 19;
// Below this many elements moved, a parallel region costs more than it saves.
constexpr int64_t kParallelElements = 32768;

// The sizes every pass needs, derived once from the geometry.
//
// Taps read the input through a staged plane, so that no tap needs a bounds check and every tap row
// is a contiguous copy: the plane is zero-padded to hp × wp, and its columns are split by phase
// modulo the stride, column q of a row stored at (q mod sw)·wq + q div sw (wq = ⌈wp / sw⌉). Tap
// (i, j, a, b) reads padded pixel (i·sh + a·dh, j·sw + b·dw), so for j = 0 … OW−1 it reads phase
// (b·dw) mod sw contiguously from (b·dw) div sw. Without padding and stride the plane is x itself.
struct Dims {
  const ConvGeometry& g;
  int64_t c_group, o_group;  // channels per group, input and output
  int64_t k;                 // GEMM depth per group: c_group · kh · kw
  int64_t p;                 // output positions per image: OH · OW
  int64_t hp, wp, wq;        // padded plane height and width, phase length
  int64_t chunk;             // images per chunk
  explicit Dims(const ConvGeometry& geo)
      : g(geo),
        c_group(geo.in_channels / geo.groups),
        o_group(geo.out_channels / geo.groups),
        k(c_group * geo.kernel_h * geo.kernel_w),
        p(geo.out_h * geo.out_w),
        hp(geo.in_h + 2 * geo.pad_h),
        wp(geo.in_w + 2 * geo.pad_w),
        wq((wp + geo.stride_w - 1) / geo.stride_w),
        chunk(std::clamp<int64_t>(kChunkElements / std::max<int64_t>(1, rows() * p), 1,
                                  std::max<int64_t>(1, geo.batch))) {
    // The last tap of the last output must lie inside the padded plane: out_h may be smaller than
    // conv2d's ⌊(hp − dh·(kh − 1) − 1) / sh⌋ + 1 (conv_transpose2d's output_padding), never larger.
    LOOM_CHECK((geo.out_h - 1) * geo.stride_h + (geo.kernel_h - 1) * geo.dilation_h < hp &&
                   (geo.out_w - 1) * geo.stride_w + (geo.kernel_w - 1) * geo.dilation_w < wp,
               "conv kernels: output ", geo.out_h, "x", geo.out_w, " is larger than input ", geo.in_h, "x",
               geo.in_w, " admits");
  }
  int64_t rows() const { return g.in_channels * g.kernel_h * g.kernel_w; }  // of cols, all groups
  bool staged() const { return g.pad_h > 0 || g.pad_w > 0 || g.stride_w > 1; }
  int64_t staged_row() const { return g.stride_w * wq; }
  int64_t staged_plane() const { return hp * staged_row(); }
  int64_t in_plane() const { return g.in_h * g.in_w; }
};

// Staged columns m of phase f that hold input (not padding): 0 ≤ m·sw + f − pw < W.
struct Range {
  int64_t lo, hi;
};
Range phase_range(const Dims& d, int64_t f) {
  const int64_t sw = d.g.stride_w, first = d.g.pad_w - f;  // m·sw ≥ first
  const int64_t lo = first <= 0 ? 0 : (first + sw - 1) / sw;
  const int64_t hi = std::max(lo, (d.g.in_w + d.g.pad_w - f + sw - 1) / sw);  // m·sw < W + pw − f
  return {lo, hi};
}

// Copies plane x into the interior of staged plane s (whose padding is zero already), or back out of
// it adding `init`: staged column m of phase f is padded column m·sw + f, input column m·sw + f − pw.
template <class T>
void stage(const Dims& d, const T* x, T* s) {
  const ConvGeometry& g = d.g;
  for (int64_t f = 0; f < g.stride_w; ++f) {
    const Range m = phase_range(d, f);
    for (int64_t r = 0; r < g.in_h; ++r) {
      const T* src = x + r * g.in_w + f - g.pad_w;
      T* dst = s + (r + g.pad_h) * d.staged_row() + f * d.wq;
      for (int64_t j = m.lo; j < m.hi; ++j) dst[j] = src[j * g.stride_w];
    }
  }
}
template <class T>
void unstage(const Dims& d, const T* s, T init, T* x) {
  const ConvGeometry& g = d.g;
  for (int64_t f = 0; f < g.stride_w; ++f) {
    const Range m = phase_range(d, f);
    for (int64_t r = 0; r < g.in_h; ++r) {
      const T* src = s + (r + g.pad_h) * d.staged_row() + f * d.wq;
      T* dst = x + r * g.in_w + f - g.pad_w;
      for (int64_t j = m.lo; j < m.hi; ++j) dst[j * g.stride_w] = init + src[j];
    }
  }
}

// The kh·kw rows of cols (row stride ld) that one input channel contributes, from its staged plane.
template <class T>
void im2col_channel(const Dims& d, const T* plane, T* cols, int64_t ld) {
  const ConvGeometry& g = d.g;
  for (int64_t a = 0; a < g.kernel_h; ++a)
    for (int64_t b = 0; b < g.kernel_w; ++b, cols += ld) {
      const int64_t col = b * g.dilation_w, phase = (col % g.stride_w) * d.wq + col / g.stride_w;
      for (int64_t i = 0; i < g.out_h; ++i) {
        const T* src = plane + (i * g.stride_h + a * g.dilation_h) * d.staged_row() + phase;
        T* dst = cols + i * g.out_w;
        for (int64_t j = 0; j < g.out_w; ++j) dst[j] = src[j];
      }
    }
}

// The adjoint of im2col_channel: adds the channel's kh·kw rows of cols into its staged plane.
template <class T>
void col2im_channel(const Dims& d, const T* cols, int64_t ld, T* plane) {
  const ConvGeometry& g = d.g;
  for (int64_t a = 0; a < g.kernel_h; ++a)
    for (int64_t b = 0; b < g.kernel_w; ++b, cols += ld) {
      const int64_t col = b * g.dilation_w, phase = (col % g.stride_w) * d.wq + col / g.stride_w;
      for (int64_t i = 0; i < g.out_h; ++i) {
        T* dst = plane + (i * g.stride_h + a * g.dilation_h) * d.staged_row() + phase;
        const T* src = cols + i * g.out_w;
        for (int64_t j = 0; j < g.out_w; ++j) dst[j] += src[j];
      }
    }
}

// cols for images [n0, n0 + nb) of x, [C·kh·kw, nb·P]. Each thread stages planes in its own buffer,
// zeroed once: staging writes the same interior slots every time, so the padding stays zero.
template <class T>
void im2col(const Dims& d, const T* x, int64_t n0, int64_t nb, T* cols) {
  const ConvGeometry& g = d.g;
  const int64_t ld = nb * d.p, rows_per_channel = g.kernel_h * g.kernel_w;
#pragma omp parallel if (nb * g.in_channels * rows_per_channel * d.p > kParallelElements)
  {
    std::vector<T> staged(d.staged() ? d.staged_plane() : 0, T(0));
#pragma omp for collapse(2) schedule(static)
    for (int64_t n = 0; n < nb; ++n)
      for (int64_t c = 0; c < g.in_channels; ++c) {
        const T* plane = x + ((n0 + n) * g.in_channels + c) * d.in_plane();
        if (d.staged()) {
          stage(d, plane, staged.data());
          plane = staged.data();
        }
        im2col_channel(d, plane, cols + c * rows_per_channel * ld + n * d.p, ld);
      }
  }
}

// gx[n0 + n, c] = bias[c] (or 0) + col2im(cols) for the chunk's images, accumulated in a staged
// plane per thread and read back from its interior.
template <class T>
void col2im(const Dims& d, const T* cols, const T* bias, int64_t n0, int64_t nb, T* gx) {
  const ConvGeometry& g = d.g;
  const int64_t ld = nb * d.p, rows_per_channel = g.kernel_h * g.kernel_w;
#pragma omp parallel if (nb * g.in_channels * rows_per_channel * d.p > kParallelElements)
  {
    std::vector<T> staged(d.staged() ? d.staged_plane() : 0);
#pragma omp for collapse(2) schedule(static)
    for (int64_t n = 0; n < nb; ++n)
      for (int64_t c = 0; c < g.in_channels; ++c) {
        T* plane = gx + ((n0 + n) * g.in_channels + c) * d.in_plane();
        const T init = bias ? bias[c] : T(0);
        if (!d.staged()) {
          std::fill(plane, plane + d.in_plane(), init);
          col2im_channel(d, cols + c * rows_per_channel * ld + n * d.p, ld, plane);
          continue;
        }
        std::fill(staged.begin(), staged.end(), T(0));
        col2im_channel(d, cols + c * rows_per_channel * ld + n * d.p, ld, staged.data());
        unstage(d, staged.data(), init, plane);
      }
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
  auto cols = scratch<T>(d.rows() * d.chunk * d.p);
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
  auto cols = scratch<T>(d.rows() * d.chunk * d.p);
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
  auto cols = scratch<T>(d.rows() * d.chunk * d.p);
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
