// CPU convolution (kernels/conv.h): im2col / col2im around GEMMs, a chunk of images at a time.
//
// im2col lays the receptive fields of nb images side by side as the columns of
//   cols[(c·kh + a)·kw + b, n·P + p] = x[n, c, i·sh − ph + a·dh, j·sw − pw + b·dw],  p = i·OW + j,
// so that with K = (C/G)·kh·kw rows per group and P = OH·OW, each pass is a GEMM per group:
//   forward          Y[o, n·P + p] = W[o, :] · cols[:, n·P + p]          (Og × K)·(K × nb·P)
//   backward_data    cols = Wᵀ · GY, then col2im scatters cols back       (K × Og)·(Og × nb·P)
//   backward_weight  gW += GY · colsᵀ                                      (Og × nb·P)·(nb·P × K)
// Y and GY are [O, nb·P] (channel-major over the chunk) while y and gy are NCHW ([nb, O, P]), so
// batching a chunk into one GEMM costs a transposing copy (fused with the bias); it buys one wide GEMM
// instead of nb narrow ones, which pays for small images (P < kPerImagePositions, DCGAN's 7x7 layer).
// Larger images skip the copies: each image's GEMM runs straight on its NCHW block, batched through
// the gemm kernel's strides. A chunk is as many images as fit kChunkElements of cols.
//
// Threads: the GEMMs run on OpenBLAS's (kernels/gemm.h); im2col, col2im and the copies run on the
// calling thread. Parallelizing them with OpenMP made every pass slower, up to 4x (64→128 forward,
// 2 threads, 9-11 ms serial vs 19-34 ms): after each parallel region libgomp's idle workers spin
// (OMP_WAIT_POLICY unset) on the very cores the pthread OpenBLAS then needs for the GEMM. With
// OMP_WAIT_POLICY=passive both were equal. Arithmetic is plain FP32/FP64 (no reduced precision) and
// loom's own loops add in a fixed order.
//
// Benchmark: OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 ./build/tools/loom-bench-cpu (tools/bench_cpu.cpp).
#include "kernels/conv.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "kernels/gemm.h"

namespace loom::kernels::cpu {
namespace {

// Upper bound on the cols buffer of one chunk (elements): 512 Ki floats = 2 MiB, about one core's L2,
// so that the GEMM reads cols from cache right after im2col wrote them. (A 16 MiB chunk, one GEMM for
// the whole DCGAN batch, ran the 64→128 layer 1.5x slower.)
constexpr int64_t kChunkElements = int64_t(1) << 19;
// Images with at least this many output positions get a GEMM each, run straight on the NCHW tensors;
// smaller ones are batched into one GEMM per chunk, which costs transposing copies of y or gy but
// keeps the GEMM wide. (DCGAN-28: P = 196 runs 1.6x faster per image, P = 49 1.3x faster chunked.)
constexpr int64_t kPerImagePositions = 128;

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
  bool per_image;            // GEMM per image straight on NCHW, or per chunk through a transposed copy
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
                                  std::max<int64_t>(1, geo.batch))),
        per_image(p >= kPerImagePositions) {
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

// cols for images [n0, n0 + nb) of x, [C·kh·kw, nb·P]. Planes are staged in one buffer, zeroed
// once: staging writes the same interior slots every time, so the padding stays zero.
template <class T>
void im2col(const Dims& d, const T* x, int64_t n0, int64_t nb, T* cols) {
  const ConvGeometry& g = d.g;
  const int64_t ld = nb * d.p, rows_per_channel = g.kernel_h * g.kernel_w;
  std::vector<T> staged(d.staged() ? d.staged_plane() : 0, T(0));
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

// gx[n0 + n, c] = bias[c] (or 0) + col2im(cols) for the chunk's images, each plane accumulated in
// a staged buffer and read back from its interior.
template <class T>
void col2im(const Dims& d, const T* cols, const T* bias, int64_t n0, int64_t nb, T* gx) {
  const ConvGeometry& g = d.g;
  const int64_t ld = nb * d.p, rows_per_channel = g.kernel_h * g.kernel_w;
  std::vector<T> staged(d.staged() ? d.staged_plane() : 0);
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

// The chunk's output-side matrix (y or gy) has a row per output channel and a column per output
// position of each image. It lives either in the NCHW tensor itself (per-image blocks: [O, P] per
// image, image stride O·P) or in a chunk buffer [O, nb·P] that one GEMM covers.
struct Layout {
  int64_t image, channel;  // strides in elements
};
Layout nchw_layout(const Dims& d) { return {d.g.out_channels * d.p, d.p}; }
Layout chunk_layout(const Dims& d, int64_t nb) { return {d.p, nb * d.p}; }

// dst[n, o, :] = src[n, o, :] + bias[o] (bias may be null) for the chunk's nb images; src may be dst.
template <class T>
void copy_planes(const Dims& d, const T* src, Layout ls, const T* bias, T* dst, Layout ld, int64_t nb) {
  const int64_t o_total = d.g.out_channels;
  for (int64_t n = 0; n < nb; ++n)
    for (int64_t o = 0; o < o_total; ++o) {
      const T* s = src + n * ls.image + o * ls.channel;
      T* t = dst + n * ld.image + o * ld.channel;
      const T b = bias ? bias[o] : T(0);
      for (int64_t q = 0; q < d.p; ++q) t[q] = s[q] + b;
    }
}

// The GEMMs of one chunk, one per group and column block: a single block of nb·P columns when the
// output side is a chunk buffer, nb blocks of P columns (one per image, batched through the gemm
// kernel's strides) when it is the NCHW tensor. cols is [rows, nb·P] either way.
struct Blocks {
  int64_t count, width;   // blocks and columns per block
  int64_t cols_stride;    // between blocks in cols
  int64_t ld, stride;     // of the output-side matrix: row stride, between blocks
};
Blocks blocks(const Dims& d, int64_t nb) {
  if (d.per_image) return {nb, d.p, d.p, d.p, d.g.out_channels * d.p};
  return {1, nb * d.p, 0, nb * d.p, 0};
}

//   out-side[o, :] = W[o, :] · cols          (forward)
template <class T>
void gemm_forward(const KernelCtx& kc, DType dt, const Dims& d, const Blocks& b, const T* w, const T* cols,
                  int64_t ld_cols, T* out) {
  for (int64_t gi = 0; gi < d.g.groups; ++gi)
    gemm(kc, dt, false, false, d.o_group, b.width, d.k, 1.0, w + gi * d.o_group * d.k, d.k, 0,
         cols + gi * d.k * ld_cols, ld_cols, b.cols_stride, 0.0, out + gi * d.o_group * b.ld, b.ld, b.stride,
         b.count);
}
//   cols = Wᵀ · out-side                      (backward_data)
template <class T>
void gemm_backward_data(const KernelCtx& kc, DType dt, const Dims& d, const Blocks& b, const T* w, const T* gy,
                        T* cols, int64_t ld_cols) {
  for (int64_t gi = 0; gi < d.g.groups; ++gi)
    gemm(kc, dt, true, false, d.k, b.width, d.o_group, 1.0, w + gi * d.o_group * d.k, d.k, 0,
         gy + gi * d.o_group * b.ld, b.ld, b.stride, 0.0, cols + gi * d.k * ld_cols, ld_cols, b.cols_stride,
         b.count);
}
//   gW (+)= out-side · colsᵀ, block after block (backward_weight); `accumulate` false overwrites gW.
template <class T>
void gemm_backward_weight(const KernelCtx& kc, DType dt, const Dims& d, const Blocks& b, const T* gy,
                          const T* cols, int64_t ld_cols, bool accumulate, T* gw) {
  for (int64_t gi = 0; gi < d.g.groups; ++gi)
    for (int64_t blk = 0; blk < b.count; ++blk)
      gemm(kc, dt, false, true, d.o_group, d.k, b.width, 1.0, gy + gi * d.o_group * b.ld + blk * b.stride, b.ld, 0,
           cols + gi * d.k * ld_cols + blk * b.cols_stride, ld_cols, 0, accumulate || blk > 0 ? 1.0 : 0.0,
           gw + gi * d.o_group * d.k, d.k, 0, 1);
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
  auto ychunk = d.per_image ? nullptr : scratch<T>(g.out_channels * d.chunk * d.p);
  for (int64_t n0 = 0; n0 < g.batch; n0 += d.chunk) {
    const int64_t nb = std::min(d.chunk, g.batch - n0);
    T* yn = y + n0 * g.out_channels * d.p;
    im2col(d, x, n0, nb, cols.get());
    gemm_forward(kc, dt, d, blocks(d, nb), w, cols.get(), nb * d.p, d.per_image ? yn : ychunk.get());
    if (!d.per_image) {
      copy_planes(d, ychunk.get(), chunk_layout(d, nb), bias, yn, nchw_layout(d), nb);
    } else if (bias) {
      copy_planes(d, yn, nchw_layout(d), bias, yn, nchw_layout(d), nb);
    }
  }
}

template <class T>
void backward_data_impl(const KernelCtx& kc, DType dt, const ConvGeometry& g, const T* gy, const T* w, const T* bias,
                        T* gx) {
  const Dims d(g);
  auto cols = scratch<T>(d.rows() * d.chunk * d.p);
  auto gychunk = d.per_image ? nullptr : scratch<T>(g.out_channels * d.chunk * d.p);
  for (int64_t n0 = 0; n0 < g.batch; n0 += d.chunk) {
    const int64_t nb = std::min(d.chunk, g.batch - n0);
    const T* gyn = gy + n0 * g.out_channels * d.p;
    if (!d.per_image) {
      copy_planes(d, gyn, nchw_layout(d), static_cast<const T*>(nullptr), gychunk.get(), chunk_layout(d, nb), nb);
      gyn = gychunk.get();
    }
    gemm_backward_data(kc, dt, d, blocks(d, nb), w, gyn, cols.get(), nb * d.p);
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
  auto gychunk = d.per_image ? nullptr : scratch<T>(g.out_channels * d.chunk * d.p);
  for (int64_t n0 = 0; n0 < g.batch; n0 += d.chunk) {
    const int64_t nb = std::min(d.chunk, g.batch - n0);
    im2col(d, x, n0, nb, cols.get());
    const T* gyn = gy + n0 * g.out_channels * d.p;
    if (!d.per_image) {
      copy_planes(d, gyn, nchw_layout(d), static_cast<const T*>(nullptr), gychunk.get(), chunk_layout(d, nb), nb);
      gyn = gychunk.get();
    }
    // The first block of the first chunk overwrites gw, every later one adds: a fixed summation order.
    gemm_backward_weight(kc, dt, d, blocks(d, nb), gyn, cols.get(), nb * d.p, n0 > 0, gw);
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

namespace loom::kernels {
// The switch lives in the family's always-built file, so a CPU-only build links code that sets it (and
// refuses cuDNN with a clear error); kernels/cuda/conv.cu reads it at every call.
namespace {
#ifdef LOOM_HAVE_CUDNN
constexpr bool kHaveCudnn = true;
#else
constexpr bool kHaveCudnn = false;
#endif

void check_available(ConvImpl impl) {
  LOOM_CHECK(impl != ConvImpl::CuDnn || kHaveCudnn,
             "conv: cuDNN was selected (set_conv_impl or LOOM_CONV=cudnn) but this build has no cuDNN",
             LOOM_WITH_CUDA ? " (libcudnn was not found at configure time)" : " (it is a CPU-only build)");
}

ConvImpl impl_from_env() {
  const char* env = std::getenv("LOOM_CONV");
  if (!env || !*env) return ConvImpl::Loom;
  const std::string v = env;
  ConvImpl impl = ConvImpl::Loom;
  if (v == "loom") {
    impl = ConvImpl::Loom;
  } else if (v == "direct") {
    impl = ConvImpl::LoomDirect;
  } else if (v == "cudnn") {
    impl = ConvImpl::CuDnn;
  } else {
    throw Error(str("LOOM_CONV=", v, " is not one of loom, direct, cudnn"));
  }
  check_available(impl);
  return impl;
}

std::atomic<int>& selected() {
  static std::atomic<int> impl{static_cast<int>(impl_from_env())};  // read once, at first use
  return impl;
}
}  // namespace

void set_conv_impl(ConvImpl impl) {
  check_available(impl);
  selected() = static_cast<int>(impl);
}
ConvImpl conv_impl() { return static_cast<ConvImpl>(selected().load()); }
const char* conv_impl_name(ConvImpl impl) {
  switch (impl) {
    case ConvImpl::Loom: return "loom (v2 tiled implicit GEMM)";
    case ConvImpl::LoomDirect: return "loom-direct (v1 naive)";
    case ConvImpl::CuDnn: return "cudnn (v0)";
  }
  return "?";
}
}  // namespace loom::kernels
