// CPU convolution (kernels/conv.h). v0 is oneDNN (kernels/cpu/conv_dnnl.cpp); loom's own variants, here,
// run every pass as GEMMs through kernels/gemm.h (OpenBLAS), fed by one of two layouts of the input. Let K = (C/G)·kh·kw, P = OH·OW, and write a tap t = (a, b).
//
// Staging. Taps read the input through a staged copy: zero-padded to hp × wp and split by phase
// modulo the stride, so that the pixels one tap reads for consecutive outputs are consecutive.
// Padded pixel (R, Q) of image n (of a chunk of nb) lands in phase plane (R mod sh, Q mod sw) at
// row R div sh, column Q div sw, with the images of a chunk interleaved row by row:
//   staged[((R mod sh)·sw + Q mod sw)·hq·nb·wq + ((R div sh)·nb + n)·wq + Q div sw]
// Output (i, j) of tap t reads padded pixel (i·sh + a·dh, j·sw + b·dw), i.e. the tap's origin
// origin(t) = plane (a·dh mod sh, b·dw mod sw), row a·dh div sh, column b·dw div sw, plus
// (i·nb + n)·wq + j. So for fixed t, outputs are a unit-stride window of the staged channel.
//
// v1, im2col (one image at a time, nb = 1): copies every tap's window into
//   cols[(c'·kh + a)·kw + b, i·OW + j]  (K × P per group), then per image and group
//   forward  y = W · cols    backward_data  cols = Wᵀ · gy, col2im adds cols back    backward_weight  gW += gy · colsᵀ
// GEMMs run straight on the NCHW tensors (batched over the chunk's images by strides). im2col
// writes K·P elements per image: cheap when C/G is small (K = 16 for DCGAN's 1→64), the main cost
// when it is large (K = 1024 for 64→128, where it is also serial work next to the threaded GEMM).
//
// v2, shifted views (implicit GEMM, no im2col): the output grid of a chunk is taken as
// (i, n, j) with j < wq instead of OW, so that each tap's window over the whole chunk is a single
// contiguous run of M = OH·nb·wq elements per channel and the GEMM can read the staged input in
// place (row stride = the staged channel size). Per group and tap, with Wt[t] the [O, C/G] slice:
//   forward          Y[:, M]  += Wt[t] · window_t            (Y then copied to NCHW, + bias)
//   backward_data    window_t += Wt[t]ᵀ · GY                 (accumulated in a staged gx, read back)
//   backward_weight  gWt[t]   += GY · window_tᵀ
// The wq − OW extra columns per output row are waste (≤ 25% where auto picks this; 14% for
// DCGAN's 7x7 layer): their outputs are dropped, their GY entries are zero. Those zeros multiply
// finite data from neighbouring pixels, so results are exact, but a non-finite x (backward_weight)
// or w (backward_data) can leak NaN = 0·inf into a neighbouring tap's sum.
//
// ConvVariant::Auto runs float32 through v0, oneDNN (kernels/cpu/conv_dnnl.cpp), in builds that have it, where it
// measured faster (from 16 input channels per group; below that, except for a plain 1x1 conv, from 3 forward and
// for the weights and from 8 in and out for the data: kOneDnnMinChannels*); otherwise it picks v2 when C/G ≥ kShiftedMinChannels and the waste is at most 25%, else
// v1. A chunk is as many images as fit kChunkElements of scratch (cols for 1; staged input + output for 2).
//
// Threads: the GEMMs run on OpenBLAS's threads; staging, im2col, col2im and the copies on the
// calling thread. (Parallelizing those with OpenMP made every pass slower, up to 4x: after each
// parallel region libgomp's idle workers spin, OMP_WAIT_POLICY unset, on the very cores the pthread
// OpenBLAS then needs for the GEMM.) Arithmetic is plain FP32/FP64, no reduced precision, and loom's
// own loops add in a fixed order. (v0 runs on oneDNN's own OpenMP threads, as many as loom's.)
//
// Benchmark: OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 ./build/tools/loom-bench-cpu (tools/bench_cpu.cpp).
#include "kernels/conv.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/cpu/conv_dnnl.h"
#include "kernels/gemm.h"

namespace loom::kernels::cpu {
namespace {

// Upper bound on the scratch of one chunk (elements): 512 Ki floats = 2 MiB, about one core's L2, so
// the GEMM reads what staging/im2col just wrote from cache (a 16 MiB chunk ran DCGAN's 64→128 layer
// 1.5x slower).
constexpr int64_t kChunkElements = int64_t(1) << 19;
// Auto uses shifted views (v2) from this many input channels per group: each tap's GEMM has depth
// C/G, and a shallow GEMM re-reads and re-writes its whole output per tap.
constexpr int64_t kShiftedMinChannels = 32;
// Auto runs float32 through oneDNN (v0) per pass, by the channels per group, C/G in and O/G out. Measured
// (docs/results/cpu.md, loom-bench-cpu, each pass at 1 and 2 threads): at C/G = 16, 32, 64 and 128 (DCGAN's
// and the classifier's deep layers) oneDNN took 0.4-0.7x of loom's best time in every pass. Below 16, where
// the kernel is larger than 1x1: forward and backward_weight from C/G = 3 (CycleGAN's width-8 layers, RGB inputs),
// 0.2-0.75x of im2col's time at 1 thread and 0.2-0.5x at 2, where im2col runs on one thread (at C/G = 1 its
// forward took 1.4-1.75x im2col's at 1 thread); backward_data, which writes the C/G channels, from C/G = 8 when
// it reads O/G ≥ 8 (0.3-0.9x at 1 thread, 0.3-0.45x at 2), since writing 1 or 3 channels, or 8 → 3, took it
// 1.6-9x im2col's time at 1 thread and 1-3.9x at 2. A 1x1 conv at stride 1 without padding, which loom's v1 runs
// as one GEMM on the input in place, stays on loom below 16: oneDNN took 1.4-7.4x its time in 11 of the 12
// passes measured on ProGAN's 3→32 from-RGB layers.
constexpr int64_t kOneDnnMinChannels = 16;
constexpr int64_t kOneDnnMinChannelsFwdWeight = 3;
constexpr int64_t kOneDnnMinChannelsData = 8;  // with O/G ≥ this too

// Staged positions m of phase f that hold input (not padding): 0 ≤ m·s + f − pad < len.
struct Range {
  int64_t lo, hi;
};
Range phase_range(int64_t len, int64_t pad, int64_t s, int64_t f) {
  const int64_t first = pad - f;  // m·s ≥ first
  const int64_t lo = first <= 0 ? 0 : (first + s - 1) / s;
  return {lo, std::max(lo, (len + pad - f + s - 1) / s)};  // m·s < len + pad − f
}

// The sizes every pass needs, derived once from the geometry and the variant.
struct Dims {
  const ConvGeometry& g;
  int64_t c_group, o_group;  // channels per group, input and output
  int64_t taps, k, p;        // kh·kw; GEMM depth of v1, (C/G)·taps; OH·OW
  int64_t hq, wq;            // rows and columns of a phase plane: ⌈hp / sh⌉, ⌈wp / sw⌉
  bool shifted;              // v2
  int64_t chunk;             // images per chunk

  // variant: v1, v2 or auto (v0 never gets here).
  Dims(const ConvGeometry& geo, ConvVariant variant)
      : g(geo),
        c_group(geo.in_channels / geo.groups),
        o_group(geo.out_channels / geo.groups),
        taps(geo.kernel_h * geo.kernel_w),
        k(c_group * taps),
        p(geo.out_h * geo.out_w),
        hq((geo.in_h + 2 * geo.pad_h + geo.stride_h - 1) / geo.stride_h),
        wq((geo.in_w + 2 * geo.pad_w + geo.stride_w - 1) / geo.stride_w) {
    shifted = variant == ConvVariant::V2 || (variant == ConvVariant::Auto && c_group >= kShiftedMinChannels && wq * 4 <= geo.out_w * 5);
    const int64_t per_image = shifted ? geo.in_channels * staged_size(1) + geo.out_channels * geo.out_h * wq
                                      : geo.in_channels * taps * p;
    chunk = std::clamp<int64_t>(kChunkElements / std::max<int64_t>(1, per_image), 1, std::max<int64_t>(1, geo.batch));
  }
  // Elements of one staged channel for nb images, plus a row of slack: a window's last row reads
  // up to wq − 1 past its phase plane (into columns whose results are dropped).
  int64_t staged_size(int64_t nb) const { return g.stride_h * g.stride_w * hq * nb * wq + wq; }
  // v1 reads the input planes in place when staging would only copy them.
  bool stage_images() const { return g.pad_h > 0 || g.pad_w > 0 || g.stride_h > 1 || g.stride_w > 1; }
  int64_t in_plane() const { return g.in_h * g.in_w; }
  // Offset of tap t's window in a staged channel of nb images.
  int64_t origin(int64_t t, int64_t nb) const {
    const int64_t ra = (t / g.kernel_w) * g.dilation_h, cb = (t % g.kernel_w) * g.dilation_w;
    const int64_t plane = (ra % g.stride_h) * g.stride_w + cb % g.stride_w;
    return (plane * hq + ra / g.stride_h) * nb * wq + cb / g.stride_w;
  }
};

// Copies plane x (image n of nb) into staged channel s, or back out of it adding `init`; padding
// slots are not touched. Staged column m of phase f is input column m·sw + f − pw. Strides 1 and 2
// (most nets) are compile-time constants in the inner loop, so that it vectorizes.
template <class T, bool kIn>
void stage_copy(const Dims& d, int64_t nb, int64_t n, std::conditional_t<kIn, const T*, T*> x,
                std::conditional_t<kIn, T*, const T*> s, T init = T(0)) {
  const ConvGeometry& g = d.g;
  const int64_t sh = g.stride_h, row_size = nb * d.wq;
  auto run = [&](auto sw) {
    for (int64_t f = 0; f < sw; ++f) {
      const Range m = phase_range(g.in_w, g.pad_w, sw, f);
      for (int64_t r = 0; r < g.in_h; ++r) {
        const int64_t row = r + g.pad_h;
        auto xr = x + r * g.in_w + f - g.pad_w;
        auto sr = s + (((row % sh) * sw + f) * d.hq + row / sh) * row_size + n * d.wq;
        for (int64_t j = m.lo; j < m.hi; ++j) {
          if constexpr (kIn) {
            sr[j] = xr[j * sw];
          } else {
            xr[j * sw] = sr[j] + init;
          }
        }
      }
    }
  };
  if (g.stride_w == 1) {
    run(std::integral_constant<int64_t, 1>{});
  } else if (g.stride_w == 2) {
    run(std::integral_constant<int64_t, 2>{});
  } else {
    run(g.stride_w);
  }
}
template <class T>
void stage(const Dims& d, int64_t nb, int64_t n, const T* x, T* s) {
  stage_copy<T, true>(d, nb, n, x, s);
}
template <class T>
void unstage(const Dims& d, int64_t nb, int64_t n, const T* s, T init, T* x) {
  stage_copy<T, false>(d, nb, n, x, s, init);
}

// The last tap of the last output must lie inside the padded input: out_h may be smaller than
// conv2d's ⌊(hp − dh·(kh − 1) − 1) / sh⌋ + 1 (conv_transpose2d's output_padding), never larger.
void check_geometry(const ConvGeometry& g) {
  LOOM_CHECK((g.out_h - 1) * g.stride_h + (g.kernel_h - 1) * g.dilation_h < g.in_h + 2 * g.pad_h &&
                 (g.out_w - 1) * g.stride_w + (g.kernel_w - 1) * g.dilation_w < g.in_w + 2 * g.pad_w,
             "conv kernels: output ", g.out_h, "x", g.out_w, " is larger than input ", g.in_h, "x", g.in_w, " admits");
}

#ifdef LOOM_HAVE_DNNL
constexpr bool kHaveDnnl = true;
#else
constexpr bool kHaveDnnl = false;
#endif
// Whether this pass runs v0, oneDNN (kernels/cpu/conv_dnnl.cpp): when auto chooses it (above), and when v0
// is selected, where it must be available and the data float32 (oneDNN has no float64 conv on the CPU), else a
// loom::Error.
bool use_onednn(ConvVariant v, DType dt, const ConvGeometry& g, ConvPass pass) {
  if (v == ConvVariant::Auto) {
    if (!kHaveDnnl || dt != DType::Float32) return false;
    const int64_t c = g.in_channels / g.groups, o = g.out_channels / g.groups;
    if (c >= kOneDnnMinChannels) return true;
    // A 1x1 conv at stride 1 without padding: no im2col to save, loom's v1 is one GEMM on the input in place.
    if (g.kernel_h * g.kernel_w == 1 && g.stride_h * g.stride_w == 1 && g.pad_h == 0 && g.pad_w == 0) return false;
    if (pass != ConvPass::BackwardData) return c >= kOneDnnMinChannelsFwdWeight;
    return c >= kOneDnnMinChannelsData && o >= kOneDnnMinChannelsData;
  }
  if (v != ConvVariant::V0) return false;
  LOOM_CHECK(kHaveDnnl, "conv on the CPU: variant v0 (oneDNN) is selected (set_conv_variant or LOOM_CONV=v0) but "
             "this build has no oneDNN (libdnnl-dev was not found at configure time); v1, v2 and auto run loom's kernels");
  LOOM_CHECK(dt == DType::Float32, "conv on the CPU: variant v0 (oneDNN) is float32 only, got ", dt,
             "; select v1, v2 or auto (set_conv_variant or LOOM_CONV) for float64");
  return true;
}

template <class T>
std::unique_ptr<T[]> scratch(int64_t n) {
  return std::unique_ptr<T[]>(new T[n]);  // uninitialized: each use says how it is filled
}

// ---- v1: im2col + a GEMM per image ---------------------------------------------------------

// The taps·OW·OH block of cols (row stride ld) that one channel contributes, from its staged plane
// (or the input plane itself, which has the same layout when nothing is staged).
template <class T>
void im2col_channel(const Dims& d, const T* s, T* cols, int64_t ld) {
  const ConvGeometry& g = d.g;
  for (int64_t t = 0; t < d.taps; ++t, cols += ld) {
    const T* src = s + d.origin(t, 1);
    for (int64_t i = 0; i < g.out_h; ++i)
      for (int64_t j = 0; j < g.out_w; ++j) cols[i * g.out_w + j] = src[i * d.wq + j];
  }
}
// The adjoint: adds the channel's block of cols into its staged plane.
template <class T>
void col2im_channel(const Dims& d, const T* cols, int64_t ld, T* s) {
  const ConvGeometry& g = d.g;
  for (int64_t t = 0; t < d.taps; ++t, cols += ld) {
    T* dst = s + d.origin(t, 1);
    for (int64_t i = 0; i < g.out_h; ++i)
      for (int64_t j = 0; j < g.out_w; ++j) dst[i * d.wq + j] += cols[i * g.out_w + j];
  }
}

// cols [C·taps, nb·P] for images [n0, n0 + nb). `staged` is one plane, its padding zero.
template <class T>
void im2col(const Dims& d, const T* x, int64_t n0, int64_t nb, T* staged, T* cols) {
  const ConvGeometry& g = d.g;
  const int64_t ld = nb * d.p;
  for (int64_t n = 0; n < nb; ++n)
    for (int64_t c = 0; c < g.in_channels; ++c) {
      const T* plane = x + ((n0 + n) * g.in_channels + c) * d.in_plane();
      if (d.stage_images()) {
        stage(d, 1, 0, plane, staged);
        plane = staged;
      }
      im2col_channel(d, plane, cols + c * d.taps * ld + n * d.p, ld);
    }
}

template <class T>
void add_bias(const Dims& d, const T* bias, int64_t nb, T* y) {
  for (int64_t n = 0; n < nb; ++n)
    for (int64_t o = 0; o < d.g.out_channels; ++o) {
      T* row = y + (n * d.g.out_channels + o) * d.p;
      for (int64_t q = 0; q < d.p; ++q) row[q] += bias[o];
    }
}

template <class T>
void im2col_forward(const KernelCtx& kc, DType dt, const Dims& d, const T* x, const T* w, const T* bias, T* y) {
  const ConvGeometry& g = d.g;
  auto cols = scratch<T>(g.in_channels * d.taps * d.chunk * d.p);
  std::vector<T> staged(d.stage_images() ? d.staged_size(1) : 0, T(0));
  for (int64_t n0 = 0; n0 < g.batch; n0 += d.chunk) {
    const int64_t nb = std::min(d.chunk, g.batch - n0), ld = nb * d.p;
    T* yn = y + n0 * g.out_channels * d.p;
    im2col(d, x, n0, nb, staged.data(), cols.get());
    for (int64_t gi = 0; gi < g.groups; ++gi)  // y[n] = W · cols[n], batched over n by strides
      gemm(kc, dt, false, false, d.o_group, d.p, d.k, 1.0, w + gi * d.o_group * d.k, d.k, 0,
           cols.get() + gi * d.k * ld, ld, d.p, 0.0, yn + gi * d.o_group * d.p, d.p, g.out_channels * d.p, nb);
    if (bias) add_bias(d, bias, nb, yn);
  }
}

template <class T>
void im2col_backward_data(const KernelCtx& kc, DType dt, const Dims& d, const T* gy, const T* w, const T* bias,
                          T* gx) {
  const ConvGeometry& g = d.g;
  auto cols = scratch<T>(g.in_channels * d.taps * d.chunk * d.p);
  std::vector<T> staged(d.stage_images() ? d.staged_size(1) : 0);
  for (int64_t n0 = 0; n0 < g.batch; n0 += d.chunk) {
    const int64_t nb = std::min(d.chunk, g.batch - n0), ld = nb * d.p;
    for (int64_t gi = 0; gi < g.groups; ++gi)  // cols[n] = Wᵀ · gy[n]
      gemm(kc, dt, true, false, d.k, d.p, d.o_group, 1.0, w + gi * d.o_group * d.k, d.k, 0,
           gy + n0 * g.out_channels * d.p + gi * d.o_group * d.p, d.p, g.out_channels * d.p, 0.0,
           cols.get() + gi * d.k * ld, ld, d.p, nb);
    for (int64_t n = 0; n < nb; ++n)
      for (int64_t c = 0; c < g.in_channels; ++c) {
        T* plane = gx + ((n0 + n) * g.in_channels + c) * d.in_plane();
        const T init = bias ? bias[c] : T(0);
        const T* block = cols.get() + c * d.taps * ld + n * d.p;
        if (!d.stage_images()) {
          std::fill(plane, plane + d.in_plane(), init);
          col2im_channel(d, block, ld, plane);
          continue;
        }
        std::fill(staged.begin(), staged.end(), T(0));
        col2im_channel(d, block, ld, staged.data());
        unstage(d, 1, 0, staged.data(), init, plane);
      }
  }
}

template <class T>
void im2col_backward_weight(const KernelCtx& kc, DType dt, const Dims& d, const T* x, const T* gy, T* gw) {
  const ConvGeometry& g = d.g;
  auto cols = scratch<T>(g.in_channels * d.taps * d.chunk * d.p);
  std::vector<T> staged(d.stage_images() ? d.staged_size(1) : 0, T(0));
  for (int64_t n0 = 0; n0 < g.batch; n0 += d.chunk) {
    const int64_t nb = std::min(d.chunk, g.batch - n0), ld = nb * d.p;
    im2col(d, x, n0, nb, staged.data(), cols.get());
    // gW += gy[n] · cols[n]ᵀ image after image; the very first product overwrites gW.
    for (int64_t gi = 0; gi < g.groups; ++gi)
      for (int64_t n = 0; n < nb; ++n)
        gemm(kc, dt, false, true, d.o_group, d.k, d.p, 1.0,
             gy + ((n0 + n) * g.out_channels + gi * d.o_group) * d.p, d.p, 0, cols.get() + gi * d.k * ld + n * d.p,
             ld, 0, n0 + n == 0 ? 0.0 : 1.0, gw + gi * d.o_group * d.k, d.k, 0, 1);
  }
}

// ---- v2: shifted views (implicit GEMM) -------------------------------------------------------

// Wt[t, o, c'] = w[o, c', t]: each tap's [O, C/G] slice as a contiguous matrix; and back, for gW.
template <class T>
void to_taps_major(const Dims& d, const T* w, T* wt) {
  const int64_t oc_total = d.g.out_channels * d.c_group;
  for (int64_t t = 0; t < d.taps; ++t)
    for (int64_t oc = 0; oc < oc_total; ++oc) wt[t * oc_total + oc] = w[oc * d.taps + t];
}
template <class T>
void from_taps_major(const Dims& d, const T* wt, T* w) {
  const int64_t oc_total = d.g.out_channels * d.c_group;
  for (int64_t oc = 0; oc < oc_total; ++oc)
    for (int64_t t = 0; t < d.taps; ++t) w[oc * d.taps + t] = wt[t * oc_total + oc];
}

// The staged input of a chunk: C channels of staged_size(nb) each. Slots that hold padding must be
// zero, so the buffer is cleared whenever the chunk layout (nb) changes; staging then rewrites the
// same data slots chunk after chunk.
template <class T>
struct StagedChunk {
  std::vector<T> data;
  int64_t nb = -1, size = 0;
  void layout(const Dims& d, int64_t chunk_nb) {
    if (chunk_nb == nb) return;
    nb = chunk_nb;
    size = d.staged_size(nb);
    data.assign(d.g.in_channels * size, T(0));
  }
  void load(const Dims& d, const T* x, int64_t n0) {
    for (int64_t c = 0; c < d.g.in_channels; ++c)
      for (int64_t n = 0; n < nb; ++n)
        stage(d, nb, n, x + ((n0 + n) * d.g.in_channels + c) * d.in_plane(), data.data() + c * size);
  }
};

// Between NCHW t[n0 + n, o, i, j] and the chunk grid m[o, (i·nb + n)·wq + j]: `to_grid` copies in and
// zeroes the wq − OW extra columns; otherwise copies the OW real ones out, adding bias[o] if given.
template <class T>
void grid_copy(const Dims& d, int64_t nb, bool to_grid, const T* bias, const T* from, T* to) {
  const ConvGeometry& g = d.g;
  const int64_t m_size = g.out_h * nb * d.wq;
  for (int64_t n = 0; n < nb; ++n)
    for (int64_t o = 0; o < g.out_channels; ++o)
      for (int64_t i = 0; i < g.out_h; ++i) {
        const int64_t at_t = ((n * g.out_channels + o) * g.out_h + i) * g.out_w;
        const int64_t at_m = o * m_size + (i * nb + n) * d.wq;
        if (to_grid) {
          std::memcpy(to + at_m, from + at_t, sizeof(T) * g.out_w);
          std::fill(to + at_m + g.out_w, to + at_m + d.wq, T(0));
        } else {
          const T b = bias ? bias[o] : T(0);
          for (int64_t j = 0; j < g.out_w; ++j) to[at_t + j] = from[at_m + j] + b;
        }
      }
}

template <class T>
void shifted_forward(const KernelCtx& kc, DType dt, const Dims& d, const T* x, const T* w, const T* bias, T* y) {
  const ConvGeometry& g = d.g;
  auto wt = scratch<T>(g.out_channels * d.k);
  to_taps_major(d, w, wt.get());
  auto grid = scratch<T>(g.out_channels * g.out_h * d.chunk * d.wq);
  StagedChunk<T> st;
  for (int64_t n0 = 0; n0 < g.batch; n0 += d.chunk) {
    const int64_t nb = std::min(d.chunk, g.batch - n0), m = g.out_h * nb * d.wq;
    st.layout(d, nb);
    st.load(d, x, n0);
    for (int64_t gi = 0; gi < g.groups; ++gi)
      for (int64_t t = 0; t < d.taps; ++t)  // Y += Wt[t] · window_t, the first tap overwrites
        gemm(kc, dt, false, false, d.o_group, m, d.c_group, 1.0, wt.get() + (t * g.out_channels + gi * d.o_group) * d.c_group,
             d.c_group, 0, st.data.data() + gi * d.c_group * st.size + d.origin(t, nb), st.size, 0, t == 0 ? 0.0 : 1.0,
             grid.get() + gi * d.o_group * m, m, 0, 1);
    grid_copy(d, nb, false, bias, grid.get(), y + n0 * g.out_channels * d.p);
  }
}

template <class T>
void shifted_backward_data(const KernelCtx& kc, DType dt, const Dims& d, const T* gy, const T* w, const T* bias,
                           T* gx) {
  const ConvGeometry& g = d.g;
  auto wt = scratch<T>(g.out_channels * d.k);
  to_taps_major(d, w, wt.get());
  auto grid = scratch<T>(g.out_channels * g.out_h * d.chunk * d.wq);
  std::vector<T> acc;  // the staged gx of a chunk: an accumulator, cleared every chunk
  for (int64_t n0 = 0; n0 < g.batch; n0 += d.chunk) {
    const int64_t nb = std::min(d.chunk, g.batch - n0), m = g.out_h * nb * d.wq, size = d.staged_size(nb);
    grid_copy(d, nb, true, static_cast<const T*>(nullptr), gy + n0 * g.out_channels * d.p, grid.get());
    acc.assign(g.in_channels * size, T(0));
    for (int64_t gi = 0; gi < g.groups; ++gi)
      for (int64_t t = 0; t < d.taps; ++t)  // window_t += Wt[t]ᵀ · GY
        gemm(kc, dt, true, false, d.c_group, m, d.o_group, 1.0, wt.get() + (t * g.out_channels + gi * d.o_group) * d.c_group,
             d.c_group, 0, grid.get() + gi * d.o_group * m, m, 0, 1.0, acc.data() + gi * d.c_group * size + d.origin(t, nb),
             size, 0, 1);
    for (int64_t c = 0; c < g.in_channels; ++c)
      for (int64_t n = 0; n < nb; ++n)
        unstage(d, nb, n, acc.data() + c * size, bias ? bias[c] : T(0),
                gx + ((n0 + n) * g.in_channels + c) * d.in_plane());
  }
}

template <class T>
void shifted_backward_weight(const KernelCtx& kc, DType dt, const Dims& d, const T* x, const T* gy, T* gw) {
  const ConvGeometry& g = d.g;
  auto gwt = scratch<T>(g.out_channels * d.k);
  auto grid = scratch<T>(g.out_channels * g.out_h * d.chunk * d.wq);
  StagedChunk<T> st;
  for (int64_t n0 = 0; n0 < g.batch; n0 += d.chunk) {
    const int64_t nb = std::min(d.chunk, g.batch - n0), m = g.out_h * nb * d.wq;
    st.layout(d, nb);
    st.load(d, x, n0);
    grid_copy(d, nb, true, static_cast<const T*>(nullptr), gy + n0 * g.out_channels * d.p, grid.get());
    for (int64_t gi = 0; gi < g.groups; ++gi)
      for (int64_t t = 0; t < d.taps; ++t)  // gWt[t] += GY · window_tᵀ, the first chunk overwrites
        gemm(kc, dt, false, true, d.o_group, d.c_group, m, 1.0, grid.get() + gi * d.o_group * m, m, 0,
             st.data.data() + gi * d.c_group * st.size + d.origin(t, nb), st.size, 0, n0 == 0 ? 0.0 : 1.0,
             gwt.get() + (t * g.out_channels + gi * d.o_group) * d.c_group, d.c_group, 0, 1);
  }
  from_taps_major(d, gwt.get(), gw);
}

// ---- entry points ---------------------------------------------------------------------------------

// loom's kernels for one pass, (a, b, bias, out) as in kernels/cpu/conv_dnnl.h.
template <class T>
void loom_pass(ConvPass pass, const KernelCtx& kc, DType dt, const Dims& d, const T* a, const T* b, const T* bias,
               T* out) {
  switch (pass) {
    case ConvPass::Forward:
      return d.shifted ? shifted_forward(kc, dt, d, a, b, bias, out) : im2col_forward(kc, dt, d, a, b, bias, out);
    case ConvPass::BackwardData:
      return d.shifted ? shifted_backward_data(kc, dt, d, a, b, bias, out)
                       : im2col_backward_data(kc, dt, d, a, b, bias, out);
    case ConvPass::BackwardWeight:
      if (d.g.batch == 0) return std::fill(out, out + d.g.out_channels * d.k, T(0));
      return d.shifted ? shifted_backward_weight(kc, dt, d, a, b, out) : im2col_backward_weight(kc, dt, d, a, b, out);
  }
}

// Runs a pass with the variant selected, read once so that a pass never mixes variants.
void run_pass(ConvPass pass, const KernelCtx& k, DType dt, const ConvGeometry& g, const void* a, const void* b,
              const void* bias, void* out) {
  const ConvVariant v = conv_variant();
  check_geometry(g);
  if (use_onednn(v, dt, g, pass)) {  // never true without oneDNN: v0 is an error there
#ifdef LOOM_HAVE_DNNL
    return onednn::conv2d(pass, g, static_cast<const float*>(a), static_cast<const float*>(b),
                          static_cast<const float*>(bias), static_cast<float*>(out));
#endif
  }
  const Dims d(g, v);
  LOOM_FLOAT_SWITCH(dt, T,
                    loom_pass<T>(pass, k, dt, d, static_cast<const T*>(a), static_cast<const T*>(b),
                                 static_cast<const T*>(bias), static_cast<T*>(out)));
}

}  // namespace

void conv2d_forward(const KernelCtx& k, DType dt, const ConvGeometry& g, const void* x, const void* w,
                    const void* bias, void* y) {
  run_pass(ConvPass::Forward, k, dt, g, x, w, bias, y);
}

void conv2d_backward_data(const KernelCtx& k, DType dt, const ConvGeometry& g, const void* gy, const void* w,
                          const void* bias, void* gx) {
  run_pass(ConvPass::BackwardData, k, dt, g, gy, w, bias, gx);
}

void conv2d_backward_weight(const KernelCtx& k, DType dt, const ConvGeometry& g, const void* x, const void* gy,
                            void* gw) {
  run_pass(ConvPass::BackwardWeight, k, dt, g, x, gy, nullptr, gw);
}

}  // namespace loom::kernels::cpu

namespace loom::kernels {
// The selector (kernels/conv.h) lives in the family's always-built file, so a CPU-only build links code
// that sets it (and refuses v0 with a clear error); both backends read it at every call.
namespace {
#ifdef LOOM_HAVE_CUDNN
constexpr bool kHaveCudnn = true;
#else
constexpr bool kHaveCudnn = false;
#endif

// v0 exists when either backend has its library; running it on the backend that lacks one is the
// kernels' error (kernels/cuda/conv.cu, use_onednn above).
void check_available(ConvVariant v) {
  LOOM_CHECK(v != ConvVariant::V0 || kHaveCudnn || cpu::kHaveDnnl,
             "conv: variant v0 (oneDNN on the CPU, cuDNN on CUDA) was selected (set_conv_variant or LOOM_CONV=v0) but "
             "this build has neither: libdnnl-dev was not found at configure time",
             LOOM_WITH_CUDA ? ", nor libcudnn" : " (and it is a CPU-only build)");
}

ConvVariant variant_from_env() {
  const char* env = std::getenv("LOOM_CONV");
  const ConvVariant v = env && *env ? parse_conv_variant(env) : ConvVariant::Auto;
  check_available(v);
  return v;
}

std::atomic<int>& selected() {
  static std::atomic<int> v{static_cast<int>(variant_from_env())};  // read once, at first use
  return v;
}
}  // namespace

ConvVariant parse_conv_variant(const std::string& s) {
  if (s == "auto") return ConvVariant::Auto;
  if (s == "v0" || s == "0") return ConvVariant::V0;
  if (s == "v1" || s == "1") return ConvVariant::V1;
  if (s == "v2" || s == "2") return ConvVariant::V2;
  throw Error(str("LOOM_CONV=", s, " is not one of auto, v0, v1, v2 (kernels/conv.h; the former names cudnn, "
                  "direct and loom are v0, v1 and v2)"));
}

void set_conv_variant(ConvVariant v) {
  LOOM_CHECK(v == ConvVariant::Auto || v == ConvVariant::V0 || v == ConvVariant::V1 || v == ConvVariant::V2,
             "set_conv_variant: no conv variant ", static_cast<int>(v), " (auto, v0, v1, v2)");
  check_available(v);
  selected() = static_cast<int>(v);
}
ConvVariant conv_variant() { return static_cast<ConvVariant>(selected().load()); }
const char* conv_variant_name(ConvVariant v, DeviceType backend) {
  const bool cuda = backend == DeviceType::CUDA;
  switch (v) {
    case ConvVariant::Auto:
      if (cuda) return "auto (v2 tiled implicit GEMM)";
      return cpu::kHaveDnnl ? "auto (v0, v1 or v2 per shape)" : "auto (v1 or v2 per shape)";
    case ConvVariant::V0: return cuda ? "v0 cuDNN" : "v0 oneDNN";
    case ConvVariant::V1: return cuda ? "v1 direct" : "v1 im2col";
    case ConvVariant::V2: return cuda ? "v2 tiled implicit GEMM" : "v2 shifted views";
  }
  return "?";
}
}  // namespace loom::kernels
