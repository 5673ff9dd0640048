// CUDA convolution (kernels/conv.h): three variants of each pass, chosen at run time by
// set_conv_variant / LOOM_CONV (kernels/conv.h; auto is v2):
//   v0  cuDNN's legacy API (kernels/cuda/conv_cudnn.cu), the baseline
//   v1  naive direct kernels: one thread per output element, summing its taps in a fixed order (the
//       readable reference; backward_weight serially sums N·OH·OW products per weight)
//   v2  tiled implicit GEMM (the default): no im2col buffer, the GEMM operands are gathered from the
//       NCHW tensors as the K-loop stages them through shared memory.
//
// v2: each pass is, per group g, a GEMM C[m, n] = Σ_k A[m, k]·B[k, n] whose operands are views of the
// tensors (K = C/G·kh·kw for the taps (c', a, b); P = OH·OW; pixel (h, w) = (i·sh − ph + a·dh, j·sw − pw + b·dw)):
//   forward          m = (n, i, j) < N·P     n = o' < O/G         k = (c', a, b)
//                    A = x[n, g·C/G + c', h, w] (0 outside), B = w[g·O/G + o', c', a, b], C → y (+ bias)
//   backward_data    m = (n, h, w) < N·H·W   n = c' < C/G         k = (o', a, b) < O/G·kh·kw
//                    A = gy[n, g·O/G + o', i, j] where i = (h + ph − a·dh)/sh is an integer in [0, OH)
//                    (likewise j), else 0; B = w[g·O/G + o', c', a, b]; C → gx (+ bias). Whether
//                    i is an integer depends only on h mod sh, so the pixels are split into sh·sw
//                    stride phases, one GEMM each, whose K runs over only the taps that reach them.
//   backward_weight  m = o' < O/G            n = (c', a, b)       k = (n, i, j) < N·P
//                    A = gy[n, g·O/G + o', i, j], B = x gathered as in forward; C → gw
// One kernel runs all three (the problem structs below supply the gathers): a 64 × 64 tile of C per
// block of 256 threads, each thread accumulating a 4 × 4 register block (rows tm + 16r, columns
// tn + 16c: a warp's loads from shared memory are broadcasts or consecutive, its stores to C
// consecutive along m), the K-loop in slices of 16 staged through shared memory (rows padded by 2 so
// a warp's k-fastest stores, 16 k × 2 columns, hit 32 distinct banks), the next slice's gathers
// issued before the current slice's FMAs. backward_weight's K (N·OH·OW) is long and its C small,
// so K is split across blockIdx.z to fill the GPU: each split writes its partial C to a workspace and a
// second kernel adds the partials in split order. No atomics anywhere: results are bitwise
// reproducible run to run (the split count depends only on the shapes and the SM count).
// Accumulation is in T (FP32 for float32, like cuBLAS and the CPU's BLAS GEMM).
//
// Known costs of v2, left for the next iterations: depthwise convs (C/G = O/G = 1) fill 1/64 of a
// tile; one shared-memory buffer (the prefetch is into registers), scalar loads, FP32 FMA only (no
// TF32 tensor cores); backward_data's phases are separate launches; a split-K tail may be empty.
//
// Benchmark: ./build/tools/loom-bench --filter conv (tools/bench_kernels.cpp).
#include "kernels/conv.h"

#include <climits>
#include <numeric>

#include "kernels/cuda/conv_cudnn.h"
#include "kernels/cuda/launch.h"

namespace loom::kernels::cuda {
namespace {

// ConvGeometry in 32-bit ints for the kernels' index arithmetic (every tensor's size is checked to fit).
struct Geo {
  int n, c, h, w, o, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw, groups, cg, og;
};

Geo to_geo(const ConvGeometry& g) {
  const int64_t biggest = std::max({g.batch * g.in_channels * g.in_h * g.in_w,
                                    g.batch * g.out_channels * g.out_h * g.out_w,
                                    g.out_channels * (g.in_channels / g.groups) * g.kernel_h * g.kernel_w});
  LOOM_CHECK(biggest < INT_MAX, "conv (CUDA): a tensor of ", biggest,
             " elements exceeds the kernels' 32-bit indexing; split the batch");
  auto i = [](int64_t v) { return static_cast<int>(v); };
  return {i(g.batch),    i(g.in_channels), i(g.in_h),       i(g.in_w),       i(g.out_channels), i(g.out_h),
          i(g.out_w),    i(g.kernel_h),    i(g.kernel_w),   i(g.stride_h),   i(g.stride_w),     i(g.pad_h),
          i(g.pad_w),    i(g.dilation_h),  i(g.dilation_w), i(g.groups),     i(g.in_channels / g.groups),
          i(g.out_channels / g.groups)};
}

// x[n, c, h, w] for the tap (a, b) of output pixel (i, j), 0 in the padding.
template <class T>
__device__ __forceinline__ T tap(const Geo& g, const T* x, int n, int c, int i, int j, int a, int b) {
  const int h = i * g.sh - g.ph + a * g.dh, w = j * g.sw - g.pw + b * g.dw;
  if (h < 0 || h >= g.h || w < 0 || w >= g.w) return T(0);
  return x[((n * g.c + c) * g.h + h) * g.w + w];
}

// gy[n, o, i, j] for the output pixel (i, j) that reads input pixel (h, w) through tap (a, b), 0 if none:
// h = i·sh − ph + a·dh  ⇔  i = (h + ph − a·dh) / sh, which must divide exactly and land in [0, OH).
template <class T>
__device__ __forceinline__ T tap_adjoint(const Geo& g, const T* gy, int n, int o, int h, int w, int a, int b) {
  const int ti = h + g.ph - a * g.dh, tj = w + g.pw - b * g.dw;
  if (ti < 0 || tj < 0 || ti % g.sh != 0 || tj % g.sw != 0) return T(0);
  const int i = ti / g.sh, j = tj / g.sw;
  if (i >= g.oh || j >= g.ow) return T(0);
  return gy[((n * g.o + o) * g.oh + i) * g.ow + j];
}

// ---- v1: direct ----------------------------------------------------------------------------------

template <class T>
__global__ void forward_direct(Geo g, const T* x, const T* w, const T* bias, T* y) {
  const int total = g.n * g.o * g.oh * g.ow, step = gridDim.x * blockDim.x;
  for (int t = blockIdx.x * blockDim.x + threadIdx.x; t < total; t += step) {
    const int j = t % g.ow, i = (t / g.ow) % g.oh, o = (t / (g.ow * g.oh)) % g.o, n = t / (g.ow * g.oh * g.o);
    const int c0 = (o / g.og) * g.cg;
    T acc = 0;
    for (int c = 0; c < g.cg; ++c)
      for (int a = 0; a < g.kh; ++a)
        for (int b = 0; b < g.kw; ++b)
          acc += w[((o * g.cg + c) * g.kh + a) * g.kw + b] * tap(g, x, n, c0 + c, i, j, a, b);
    y[t] = bias ? acc + bias[o] : acc;
  }
}

template <class T>
__global__ void backward_data_direct(Geo g, const T* gy, const T* w, const T* bias, T* gx) {
  const int total = g.n * g.c * g.h * g.w, step = gridDim.x * blockDim.x;
  for (int t = blockIdx.x * blockDim.x + threadIdx.x; t < total; t += step) {
    const int wi = t % g.w, hi = (t / g.w) % g.h, c = (t / (g.w * g.h)) % g.c, n = t / (g.w * g.h * g.c);
    const int o0 = (c / g.cg) * g.og, cc = c % g.cg;
    T acc = 0;
    for (int o = o0; o < o0 + g.og; ++o)
      for (int a = 0; a < g.kh; ++a)
        for (int b = 0; b < g.kw; ++b)
          acc += w[((o * g.cg + cc) * g.kh + a) * g.kw + b] * tap_adjoint(g, gy, n, o, hi, wi, a, b);
    gx[t] = bias ? acc + bias[c] : acc;
  }
}

template <class T>
__global__ void backward_weight_direct(Geo g, const T* x, const T* gy, T* gw) {
  const int total = g.o * g.cg * g.kh * g.kw, step = gridDim.x * blockDim.x;
  for (int t = blockIdx.x * blockDim.x + threadIdx.x; t < total; t += step) {
    const int b = t % g.kw, a = (t / g.kw) % g.kh, cc = (t / (g.kw * g.kh)) % g.cg, o = t / (g.kw * g.kh * g.cg);
    const int c = (o / g.og) * g.cg + cc;
    T acc = 0;
    for (int n = 0; n < g.n; ++n)
      for (int i = 0; i < g.oh; ++i)
        for (int j = 0; j < g.ow; ++j)
          acc += gy[((n * g.o + o) * g.oh + i) * g.ow + j] * tap(g, x, n, c, i, j, a, b);
    gw[t] = acc;
  }
}

// ---- v2: tiled implicit GEMM -------------------------------------------------------------------------

constexpr int kTileM = 64, kTileN = 64, kTileK = 16, kTileThreads = 256, kMicro = 4;
constexpr int kTileRows = kTileM / kMicro;  // 16 threads along m, 16 along n
constexpr int kSmemPad = 4;
constexpr int kLoadsA = kTileK * kTileM / kTileThreads, kLoadsB = kTileK * kTileN / kTileThreads;
static_assert(kTileRows * (kTileN / kMicro) == kTileThreads, "one 4 x 4 register block per thread");
static_assert(kTileThreads % kTileM == 0 && kTileThreads % kTileK == 0, "load slots keep their row across slices");

// The problems: A[m, k] = a(row(m), k), B[k, n] = b(col(n), k), C[m, n] → store. What depends only on
// m (or n) is computed once per thread into a Row (Col): each thread loads the same rows of every slice.
template <class T>
struct ForwardProblem {
  static constexpr bool kAKFastest = false;  // consecutive m are consecutive j: coalesced x reads
  struct Row {
    int base, h0, w0;  // x's offset of (n, the group's first channel); the window's top-left pixel
  };
  struct Col {
    int base;  // w's offset of output channel o
  };
  Geo g;
  const T *x, *w, *bias;
  T* y;
  int m, n, k;
  __device__ Row row(int grp, int mm) const {
    const int j = mm % g.ow, i = (mm / g.ow) % g.oh, nn = mm / (g.ow * g.oh);
    return {(nn * g.c + grp * g.cg) * g.h * g.w, i * g.sh - g.ph, j * g.sw - g.pw};
  }
  __device__ Col col(int grp, int nn) const { return {(grp * g.og + nn) * k}; }
  __device__ T a(const Row& r, int kk) const {
    const int b = kk % g.kw, a = (kk / g.kw) % g.kh, c = kk / (g.kw * g.kh);
    const int h = r.h0 + a * g.dh, w = r.w0 + b * g.dw;
    return h < 0 || h >= g.h || w < 0 || w >= g.w ? T(0) : x[r.base + (c * g.h + h) * g.w + w];
  }
  __device__ T b(const Col& c, int kk) const { return w[c.base + kk]; }
  __device__ void store(int grp, int, int mm, int col, T v) const {
    const int j = mm % g.ow, i = (mm / g.ow) % g.oh, nn = mm / (g.ow * g.oh), o = grp * g.og + col;
    y[((nn * g.o + o) * g.oh + i) * g.ow + j] = bias ? v + bias[o] : v;
  }
};

// Taps of one stride phase, along one axis: a = first + step·t for t < count.
struct Taps {
  int first, step, count;
};

// One stride phase of backward_data: the pixels h ≡ qh (mod sh), w ≡ qw (mod sw), with only the taps
// that reach them (see phase_taps).
template <class T>
struct BackwardDataProblem {
  static constexpr bool kAKFastest = false;  // consecutive m are consecutive w of the phase
  struct Row {
    int base, th, tw;  // gy's offset of (n, the group's first channel); h + ph and w + pw
  };
  struct Col {
    int base;  // w's offset of (the group's first output channel, c')
  };
  Geo g;
  const T *gy, *w, *bias;
  T* gx;
  int qh, qw;   // the phase
  Taps ta, tb;  // its taps along h and w
  int u, v;     // its pixels per image: u rows (h = qh + sh·row), v columns
  int m, n, k;
  __device__ Row row(int grp, int mm) const {
    const int col = mm % v, row = (mm / v) % u, nn = mm / (u * v);
    return {(nn * g.o + grp * g.og) * g.oh * g.ow, qh + g.sh * row + g.ph, qw + g.sw * col + g.pw};
  }
  __device__ Col col(int grp, int nn) const { return {(grp * g.og * g.cg + nn) * g.kh * g.kw}; }
  // k = (o', t_a, t_b) over the phase's taps.
  __device__ void tap(int kk, int& o, int& a, int& b) const {
    b = tb.first + tb.step * (kk % tb.count);
    a = ta.first + ta.step * ((kk / tb.count) % ta.count);
    o = kk / (tb.count * ta.count);
  }
  __device__ T a(const Row& r, int kk) const {
    int o, a, b;
    tap(kk, o, a, b);
    // Exact divisions: the phase's taps are the ones with sh | h + ph − a·dh (likewise w).
    const int i = (r.th - a * g.dh) / g.sh, j = (r.tw - b * g.dw) / g.sw;
    return i < 0 || i >= g.oh || j < 0 || j >= g.ow ? T(0) : gy[r.base + (o * g.oh + i) * g.ow + j];
  }
  __device__ T b(const Col& c, int kk) const {
    int o, a, b;
    tap(kk, o, a, b);
    return w[c.base + (o * g.cg * g.kh + a) * g.kw + b];
  }
  __device__ void store(int grp, int, int mm, int col, T val) const {
    const int cc = mm % v, row = (mm / v) % u, nn = mm / (u * v), c = grp * g.cg + col;
    gx[((nn * g.c + c) * g.h + qh + g.sh * row) * g.w + qw + g.sw * cc] = bias ? val + bias[c] : val;
  }
};

template <class T>
struct BackwardWeightProblem {
  static constexpr bool kAKFastest = true;  // consecutive k are consecutive j of gy
  struct Row {
    int base;  // gy's offset of channel o (image 0)
  };
  struct Col {
    int base, ah, bw;  // x's offset of channel c (image 0); a·dh − ph and b·dw − pw of the tap
  };
  Geo g;
  const T *x, *gy;
  T* out;                // gw itself, or the workspace of split partials [splits][O·C/G·kh·kw]
  int64_t split_stride;  // elements between two splits' partials
  int m, n, k;
  __device__ Row row(int grp, int mm) const { return {(grp * g.og + mm) * g.oh * g.ow}; }
  __device__ Col col(int grp, int nn) const {
    const int b = nn % g.kw, a = (nn / g.kw) % g.kh, c = nn / (g.kw * g.kh);
    return {(grp * g.cg + c) * g.h * g.w, a * g.dh - g.ph, b * g.dw - g.pw};
  }
  __device__ T a(const Row& r, int kk) const {
    const int p = g.oh * g.ow;
    return gy[(kk / p) * g.o * p + r.base + kk % p];
  }
  __device__ T b(const Col& c, int kk) const {
    const int j = kk % g.ow, i = (kk / g.ow) % g.oh, nn = kk / (g.ow * g.oh);
    const int h = i * g.sh + c.ah, w = j * g.sw + c.bw;
    return h < 0 || h >= g.h || w < 0 || w >= g.w ? T(0) : x[nn * g.c * g.h * g.w + c.base + h * g.w + w];
  }
  __device__ void store(int grp, int split, int mm, int col, T v) const {
    out[split * split_stride + (grp * g.og + mm) * n + col] = v;
  }
};

// Load slot i of thread t holds element e = t + i·256 of a slice: (kk, mm) for A, (kk, nn) for B.
template <bool kKFastest, int kCols>
__device__ __forceinline__ void slot(int e, int& kk, int& mm) {
  kk = kKFastest ? e % kTileK : e / kCols;
  mm = kKFastest ? e / kTileK : e % kCols;
}

// C = A·B over K range [split·k_per_split, …) of group blockIdx.z / splits; see the top of the file.
// The next slice's global loads are issued into registers before the current slice's FMAs, so their
// latency hides behind the arithmetic; shared memory holds one slice.
template <class T, class Problem>
__global__ void __launch_bounds__(kTileThreads) tiled_gemm(Problem p, int splits, int k_per_split) {
  __shared__ T as[kTileK][kTileM + kSmemPad];
  __shared__ T bs[kTileK][kTileN + kSmemPad];
  const int grp = blockIdx.z / splits, split = blockIdx.z % splits;
  const int m0 = blockIdx.x * kTileM, n0 = blockIdx.y * kTileN;
  const int k_begin = split * k_per_split, k_end = min(p.k, k_begin + k_per_split);
  const int tid = threadIdx.x, tm = tid % kTileRows, tn = tid / kTileRows;

  typename Problem::Row rows[kLoadsA];
  typename Problem::Col cols[kLoadsB];
  bool row_ok[kLoadsA], col_ok[kLoadsB];
#pragma unroll
  for (int i = 0; i < kLoadsA; ++i) {
    int kk, mm;
    slot<Problem::kAKFastest, kTileM>(tid + i * kTileThreads, kk, mm);
    row_ok[i] = m0 + mm < p.m;
    rows[i] = p.row(grp, row_ok[i] ? m0 + mm : 0);
  }
#pragma unroll
  for (int i = 0; i < kLoadsB; ++i) {
    int kk, nn;
    slot<true, kTileN>(tid + i * kTileThreads, kk, nn);
    col_ok[i] = n0 + nn < p.n;
    cols[i] = p.col(grp, col_ok[i] ? n0 + nn : 0);
  }
  T ra[kLoadsA], rb[kLoadsB];
  auto fetch = [&](int k0) {
#pragma unroll
    for (int i = 0; i < kLoadsA; ++i) {
      int kk, mm;
      slot<Problem::kAKFastest, kTileM>(tid + i * kTileThreads, kk, mm);
      ra[i] = row_ok[i] && k0 + kk < k_end ? p.a(rows[i], k0 + kk) : T(0);
    }
#pragma unroll
    for (int i = 0; i < kLoadsB; ++i) {
      int kk, nn;
      slot<true, kTileN>(tid + i * kTileThreads, kk, nn);
      rb[i] = col_ok[i] && k0 + kk < k_end ? p.b(cols[i], k0 + kk) : T(0);
    }
  };

  T acc[kMicro][kMicro] = {};
  if (k_begin < k_end) fetch(k_begin);
  for (int k0 = k_begin; k0 < k_end; k0 += kTileK) {
#pragma unroll
    for (int i = 0; i < kLoadsA; ++i) {
      int kk, mm;
      slot<Problem::kAKFastest, kTileM>(tid + i * kTileThreads, kk, mm);
      as[kk][mm] = ra[i];
    }
#pragma unroll
    for (int i = 0; i < kLoadsB; ++i) {
      int kk, nn;
      slot<true, kTileN>(tid + i * kTileThreads, kk, nn);
      bs[kk][nn] = rb[i];
    }
    __syncthreads();
    if (k0 + kTileK < k_end) fetch(k0 + kTileK);
#pragma unroll
    for (int kk = 0; kk < kTileK; ++kk) {
      T av[kMicro], bv[kMicro];
#pragma unroll
      for (int r = 0; r < kMicro; ++r) av[r] = as[kk][tm + kTileRows * r];
#pragma unroll
      for (int c = 0; c < kMicro; ++c) bv[c] = bs[kk][tn + kTileRows * c];
#pragma unroll
      for (int r = 0; r < kMicro; ++r)
#pragma unroll
        for (int c = 0; c < kMicro; ++c) acc[r][c] += av[r] * bv[c];
    }
    __syncthreads();
  }
#pragma unroll
  for (int r = 0; r < kMicro; ++r)
#pragma unroll
    for (int c = 0; c < kMicro; ++c) {
      const int m = m0 + tm + kTileRows * r, n = n0 + tn + kTileRows * c;
      if (m < p.m && n < p.n) p.store(grp, split, m, n, acc[r][c]);
    }
}

// gw[t] = Σ_s partial[s][t], s in order.
template <class T>
__global__ void sum_splits(const T* partial, int64_t total, int splits, T* gw) {
  const int64_t step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += step) {
    T acc = partial[t];
    for (int s = 1; s < splits; ++s) acc += partial[s * total + t];
    gw[t] = acc;
  }
}

int ceil_div(int64_t a, int64_t b) { return static_cast<int>((a + b - 1) / b); }

// The taps of phase q along an axis: a reaches pixels ≡ q (mod stride) iff stride | q + pad − a·dil,
// i.e. a·dil ≡ q + pad (mod stride), whose solutions in [0, k) are an arithmetic progression with
// step stride / gcd(stride, dil) from the first one (count 0 if there is none).
Taps phase_taps(int q, int pad, int dil, int stride, int k) {
  const int step = stride / std::gcd(stride, dil);
  for (int a = 0; a < std::min(k, step); ++a)
    if ((q + pad - a * dil) % stride == 0) return {a, step, (k - 1 - a) / step + 1};
  return {0, 1, 0};
}

template <class T, class Problem>
void launch_tiled(const LaunchScope& s, const Problem& p, int groups, int splits) {
  const int k_per_split = ceil_div(ceil_div(p.k, splits), kTileK) * kTileK;
  const dim3 grid(ceil_div(p.m, kTileM), ceil_div(p.n, kTileN), groups * splits);
  LOOM_CHECK(grid.y <= 65535 && grid.z <= 65535, s.name(), ": grid ", grid.x, "x", grid.y, "x", grid.z,
             " exceeds CUDA's limits");
  s.launch(tiled_gemm<T, Problem>, grid, kTileThreads, p, splits, k_per_split);
}

// ---- the passes, per variant ---------------------------------------------------------------------------

template <class T>
void forward_impl(const LaunchScope& s, ConvVariant impl, const Geo& g, const T* x, const T* w, const T* bias, T* y) {
  if (impl == ConvVariant::V1) {
    s.launch(forward_direct<T>, s.blocks(int64_t(g.n) * g.o * g.oh * g.ow), kThreads, g, x, w, bias, y);
    return;
  }
  const ForwardProblem<T> p{g, x, w, bias, y, g.n * g.oh * g.ow, g.og, g.cg * g.kh * g.kw};
  launch_tiled<T>(s, p, g.groups, 1);
}

template <class T>
void backward_data_impl(const LaunchScope& s, ConvVariant impl, const Geo& g, const T* gy, const T* w, const T* bias,
                        T* gx) {
  if (impl == ConvVariant::V1) {
    s.launch(backward_data_direct<T>, s.blocks(int64_t(g.n) * g.c * g.h * g.w), kThreads, g, gy, w, bias, gx);
    return;
  }
  // One GEMM per stride phase (pixels h ≡ qh mod sh, w ≡ qw mod sw), each over only the taps that
  // reach its pixels: sh·sw times less work than gathering every tap for every pixel.
  for (int qh = 0; qh < std::min(g.sh, g.h); ++qh)
    for (int qw = 0; qw < std::min(g.sw, g.w); ++qw) {
      const Taps ta = phase_taps(qh, g.ph, g.dh, g.sh, g.kh), tb = phase_taps(qw, g.pw, g.dw, g.sw, g.kw);
      const int u = ceil_div(g.h - qh, g.sh), v = ceil_div(g.w - qw, g.sw);
      const BackwardDataProblem<T> p{g, gy, w, bias, gx, qh, qw, ta, tb, u, v, g.n * u * v, g.cg,
                                     g.og * ta.count * tb.count};
      launch_tiled<T>(s, p, g.groups, 1);  // K = 0 (no tap reaches the phase) writes the bias, or 0
    }
}

template <class T>
void backward_weight_impl(const LaunchScope& s, ConvVariant impl, const Geo& g, const T* x, const T* gy, T* gw) {
  const int64_t total = int64_t(g.o) * g.cg * g.kh * g.kw;
  if (impl == ConvVariant::V1) {
    s.launch(backward_weight_direct<T>, s.blocks(total), kThreads, g, x, gy, gw);
    return;
  }
  BackwardWeightProblem<T> p{g, x, gy, gw, total, g.og, g.cg * g.kh * g.kw, g.n * g.oh * g.ow};
  // Split K until the grid covers every SM twice, keeping each split at least 16 slices long.
  const int64_t tiles = int64_t(ceil_div(p.m, kTileM)) * ceil_div(p.n, kTileN) * g.groups;
  const int64_t want = ceil_div(2 * sm_count(s.device()), tiles);
  const int64_t most = std::max<int64_t>(1, std::min<int64_t>(p.k / (16 * kTileK), 65535 / g.groups));
  const int splits = static_cast<int>(std::clamp<int64_t>(want, 1, most));
  if (splits == 1) {
    launch_tiled<T>(s, p, g.groups, 1);
    return;
  }
  LOOM_CHECK(total * splits < INT_MAX, s.name(), ": ", splits, " partials of ", total, " weights overflow");
  Workspace partials(s.device(), size_t(total) * splits * sizeof(T));
  p.out = partials.as<T>();
  launch_tiled<T>(s, p, g.groups, splits);
  s.launch(sum_splits<T>, s.blocks(total), kThreads, partials.as<T>(), total, splits, gw);
}

#ifndef LOOM_HAVE_CUDNN
[[noreturn]] void no_cudnn() { throw Error("conv: variant v0 (cuDNN) is selected but this build has no cuDNN"); }
#endif

// The selected variant; auto is v2 on CUDA.
ConvVariant pick() {
  const ConvVariant v = conv_variant();
  return v == ConvVariant::Auto ? ConvVariant::V2 : v;
}

}  // namespace

void conv2d_forward(const KernelCtx& k, DType dt, const ConvGeometry& g, const void* x, const void* w,
                    const void* bias, void* y) {
  if (g.batch == 0) return;
  LaunchScope s(k, "conv2d_forward");
  const ConvVariant impl = pick();
  if (impl == ConvVariant::V0) {
#ifdef LOOM_HAVE_CUDNN
    return cudnn::conv2d_forward(s, dt, g, x, w, bias, y);
#else
    no_cudnn();
#endif
  }
  LOOM_FLOAT_SWITCH(dt, T,
                    forward_impl<T>(s, impl, to_geo(g), static_cast<const T*>(x), static_cast<const T*>(w),
                                    static_cast<const T*>(bias), static_cast<T*>(y)));
}

void conv2d_backward_data(const KernelCtx& k, DType dt, const ConvGeometry& g, const void* gy, const void* w,
                          const void* bias, void* gx) {
  if (g.batch == 0) return;
  LaunchScope s(k, "conv2d_backward_data");
  const ConvVariant impl = pick();
  if (impl == ConvVariant::V0) {
#ifdef LOOM_HAVE_CUDNN
    return cudnn::conv2d_backward_data(s, dt, g, gy, w, bias, gx);
#else
    no_cudnn();
#endif
  }
  LOOM_FLOAT_SWITCH(dt, T,
                    backward_data_impl<T>(s, impl, to_geo(g), static_cast<const T*>(gy), static_cast<const T*>(w),
                                          static_cast<const T*>(bias), static_cast<T*>(gx)));
}

void conv2d_backward_weight(const KernelCtx& k, DType dt, const ConvGeometry& g, const void* x, const void* gy,
                            void* gw) {
  LaunchScope s(k, "conv2d_backward_weight");
  if (g.batch == 0) {  // an empty sum: gw = 0
    LOOM_CUDA_CHECK(cudaMemsetAsync(gw, 0, size_t(g.out_channels * (g.in_channels / g.groups) * g.kernel_h *
                                                  g.kernel_w) * dtype_size(dt), s.stream()));
    return;
  }
  const ConvVariant impl = pick();
  if (impl == ConvVariant::V0) {
#ifdef LOOM_HAVE_CUDNN
    return cudnn::conv2d_backward_weight(s, dt, g, x, gy, gw);
#else
    no_cudnn();
#endif
  }
  LOOM_FLOAT_SWITCH(dt, T,
                    backward_weight_impl<T>(s, impl, to_geo(g), static_cast<const T*>(x), static_cast<const T*>(gy),
                                            static_cast<T*>(gw)));
}

}  // namespace loom::kernels::cuda
