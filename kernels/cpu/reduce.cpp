// CPU reference for the reduce family (kernels/reduce.h). Accumulates in
// double: the reference is the accurate side of every CUDA comparison. The
// loops are compiled per instruction set (kernels/cpu/clones.h).
#include "kernels/reduce.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/clones.h"

namespace loom::kernels::cpu {
namespace {

// A sum over an axis that is not the last (inner > 1): rows of the axis added into a block of double
// accumulators, so the loads run along memory and vectorize, where one output at a time strided through
// r rows `inner` apart (a TLB miss per load once a row spans pages: a fifth of a NADE step). Each output
// still adds its r values in order j = 0, 1, ..., so the result is the same bits.
template <class T>
LOOM_CPU_CLONES void sum_inner_impl(const T* x, T* out, int64_t outer, int64_t r, int64_t inner) {
  constexpr int64_t kBlock = 512;
  const int64_t blocks = (inner + kBlock - 1) / kBlock;
#pragma omp parallel for collapse(2) schedule(static) if (outer * inner * r > 65536)
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t i0 = b * kBlock, len = std::min(kBlock, inner - i0);
      double acc[kBlock];
      std::fill_n(acc, len, 0.0);
      const T* p = x + o * r * inner + i0;
      for (int64_t j = 0; j < r; ++j, p += inner)
        for (int64_t i = 0; i < len; ++i) acc[i] += p[i];
      for (int64_t i = 0; i < len; ++i) out[o * inner + i0 + i] = static_cast<T>(acc[i]);
    }
  }
}

// Σ_{j < r} f(j) in double, in eight partial sums combined pairwise. One running sum is a chain of
// dependent adds, four cycles an element (a batch-norm statistic over 64 × 14 × 14 values per
// channel); eight independent ones vectorize. (Pairwise combination is also the more accurate order.)
// Always inlined: its callers are compiled per instruction set (kernels/cpu/clones.h), and GCC inlines
// a function of the baseline's into them only when it is small or always_inline; called, it ran scalar
// (row_sum was 13 % of a CycleGAN step as a call).
template <class F>
[[gnu::always_inline]] inline double row_sum(int64_t r, F&& f) {
  double part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t j = 0;
  for (; j + 8 <= r; j += 8)
    for (int k = 0; k < 8; ++k) part[k] += f(j + k);
  for (int k = 0; j < r; ++j, ++k) part[k] += f(j);
  return ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
}

template <class T>
LOOM_CPU_CLONES void reduce_impl(ReduceOp op, const T* x, T* out, int64_t* arg, int64_t outer, int64_t r, int64_t inner) {
  if (op == ReduceOp::Sum && inner > 1) return sum_inner_impl(x, out, outer, r, inner);
#pragma omp parallel for collapse(2) schedule(static) if (outer * inner * r > 65536)
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      const T* p = x + o * r * inner + i;
      double acc = 0;
      int64_t best = 0;
      if (op == ReduceOp::Sum) {
        acc = row_sum(r, [p](int64_t j) { return double(p[j]); });  // inner == 1: sum_inner_impl takes the rest
      } else if (op == ReduceOp::Max || op == ReduceOp::Min) {
        acc = p[0];
        for (int64_t j = 1; j < r; ++j) {
          const double v = p[j * inner];
          const bool better = op == ReduceOp::Max ? v > acc : v < acc;
          if (acc == acc && (better || v != v)) acc = v, best = j;  // the first NaN wins and sticks
        }
      } else {  // LogSumExp: m + log Σ exp(x − m)
        double m = -INFINITY;
        for (int64_t j = 0; j < r; ++j) m = std::fmax(m, double(p[j * inner]));
        if (std::isinf(m)) {
          acc = m;  // all −inf → −inf; any +inf → +inf
        } else {
          double s = 0;
          for (int64_t j = 0; j < r; ++j) s += std::exp(double(p[j * inner]) - m);
          acc = m + std::log(s);
        }
      }
      out[o * inner + i] = static_cast<T>(acc);
      if (arg) arg[o * inner + i] = best;
    }
  }
}

template <class T>
LOOM_CPU_CLONES void softmax_impl(const T* x, T* y, int64_t outer, int64_t r, int64_t inner, bool log) {
#pragma omp parallel for collapse(2) schedule(static) if (outer * inner * r > 65536)
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      const T* p = x + o * r * inner + i;
      T* q = y + o * r * inner + i;
      double m = -INFINITY;
      for (int64_t j = 0; j < r; ++j) m = std::fmax(m, double(p[j * inner]));
      double s = 0;
      for (int64_t j = 0; j < r; ++j) s += std::exp(double(p[j * inner]) - m);
      // (x − m) − log s rather than x − (m + log s): the shift x − m is exact, so a
      // large m (±1000) costs no cancellation against the rounded lse.
      const double log_s = std::log(s);
      for (int64_t j = 0; j < r; ++j) {
        const double shifted = double(p[j * inner]) - m;
        q[j * inner] = static_cast<T>(log ? shifted - log_s : std::exp(shifted) / s);
      }
    }
  }
}

template <class T>
LOOM_CPU_CLONES void softmax_backward_impl(const T* y, const T* gy, T* gx, int64_t outer, int64_t r, int64_t inner, bool log) {
#pragma omp parallel for collapse(2) schedule(static) if (outer * inner * r > 65536)
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      const int64_t base = o * r * inner + i;
      double s = 0;
      for (int64_t j = 0; j < r; ++j) {
        const int64_t t = base + j * inner;
        s += log ? double(gy[t]) : double(gy[t]) * y[t];
      }
      for (int64_t j = 0; j < r; ++j) {
        const int64_t t = base + j * inner;
        gx[t] = static_cast<T>(log ? gy[t] - std::exp(double(y[t])) * s : y[t] * (gy[t] - s));
      }
    }
  }
}

// Lines along r run side by side in tiles of up to kScanTile consecutive i, each
// tile with its own double accumulators: every pass over j reads and writes a
// contiguous stretch (vectorizable), and tiles are independent (parallel).
constexpr int64_t kScanTile = 64;

template <class T>
LOOM_CPU_CLONES void cumsum_impl(const T* x, T* y, int64_t outer, int64_t r, int64_t inner, bool reverse) {
  const int64_t tiles = (inner + kScanTile - 1) / kScanTile;
#pragma omp parallel for collapse(2) schedule(static) if (outer * inner * r > 65536)
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t t = 0; t < tiles; ++t) {
      const int64_t i0 = t * kScanTile, w = std::min(kScanTile, inner - i0);
      double acc[kScanTile] = {};
      for (int64_t s = 0; s < r; ++s) {
        const int64_t off = (o * r + (reverse ? r - 1 - s : s)) * inner + i0;
        for (int64_t c = 0; c < w; ++c) {
          acc[c] += x[off + c];
          y[off + c] = static_cast<T>(acc[c]);
        }
      }
    }
  }
}

// Each row standardized in two passes over its statistics (the mean, then the biased variance about
// it: no cancellation, as in the composition of mean, sub and square this replaces) and one over its
// values, in double, with γ and β applied channel by channel in that pass.
template <class T>
LOOM_CPU_CLONES void standardize_impl(const T* x, const T* w, const T* b, T* y, T* mean, T* rstd, int64_t rows,
                                      int64_t groups, int64_t cpg, int64_t inner, double eps) {
  const int64_t r = cpg * inner;
#pragma omp parallel for schedule(static) if (rows * r > 65536)
  for (int64_t o = 0; o < rows; ++o) {
    const T* p = x + o * r;
    const double mu = row_sum(r, [p](int64_t j) { return double(p[j]); }) / double(r);
    const double ss = row_sum(r, [p, mu](int64_t j) { return (double(p[j]) - mu) * (double(p[j]) - mu); });
    const double s = 1 / std::sqrt(ss / double(r) + eps);
    const int64_t c0 = (o % groups) * cpg;
    for (int64_t k = 0; k < cpg; ++k) {
      const double scale = s * (w ? double(w[c0 + k]) : 1.0), shift = b ? double(b[c0 + k]) : 0.0;
      const T* pk = p + k * inner;
      T* q = y + o * r + k * inner;
      for (int64_t j = 0; j < inner; ++j) q[j] = static_cast<T>((double(pk[j]) - mu) * scale + shift);
    }
    mean[o] = static_cast<T>(mu);
    rstd[o] = static_cast<T>(s);
  }
}

// A row's sums are its channels' (Σ gy and Σ gy·x̂ over each channel's `inner` values, weighted by γ); with γ's or
// β's gradient wanted, the channels' sums are kept per row and added over each channel's rows in row order
// afterwards, so that x and gy are read twice in all (sums, then gx) and the result is the same for any thread count.
template <class T>
LOOM_CPU_CLONES void standardize_backward_impl(const T* x, const T* w, const T* mean, const T* rstd, const T* gy, T* gx,
                                               T* gw, T* gb, int64_t rows, int64_t groups, int64_t cpg, int64_t inner) {
  const int64_t r = cpg * inner;
  std::vector<double> part(gw || gb ? rows * cpg * 2 : 0);  // [rows, cpg, (Σ gy, Σ gy·x̂)]
#pragma omp parallel for schedule(static) if (rows * r > 65536)
  for (int64_t o = 0; o < rows; ++o) {
    const double mu = double(mean[o]), s = double(rstd[o]);
    const int64_t c0 = (o % groups) * cpg;
    double a = 0, bsum = 0;  // Σ g' and Σ g'·x̂ over the row, g' = gy·γ
    for (int64_t k = 0; k < cpg; ++k) {
      const T *p = x + o * r + k * inner, *g = gy + o * r + k * inner;
      const double ak = row_sum(inner, [g](int64_t j) { return double(g[j]); });
      const double bk = row_sum(inner, [p, g, mu, s](int64_t j) { return double(g[j]) * ((double(p[j]) - mu) * s); });
      const double wk = w ? double(w[c0 + k]) : 1.0;
      a += wk * ak;
      bsum += wk * bk;
      if (!part.empty()) part[(o * cpg + k) * 2] = ak, part[(o * cpg + k) * 2 + 1] = bk;
    }
    if (!gx) continue;
    const double mean_g = a / double(r), mean_gx = bsum / double(r);
    for (int64_t k = 0; k < cpg; ++k) {
      const double wk = w ? double(w[c0 + k]) : 1.0;
      const T *p = x + o * r + k * inner, *g = gy + o * r + k * inner;
      T* q = gx + o * r + k * inner;
      for (int64_t j = 0; j < inner; ++j)
        q[j] = static_cast<T>(s * (wk * double(g[j]) - mean_g - (double(p[j]) - mu) * s * mean_gx));
    }
  }
  for (int64_t c = 0; c < groups * cpg && !part.empty(); ++c) {
    double a = 0, bsum = 0;
    for (int64_t o = c / cpg; o < rows; o += groups) {
      a += part[(o * cpg + c % cpg) * 2];
      bsum += part[(o * cpg + c % cpg) * 2 + 1];
    }
    if (gw) gw[c] = static_cast<T>(bsum);
    if (gb) gb[c] = static_cast<T>(a);
  }
}

// Batch norm over x [n, c, inner], a channel at a time (a channel's n runs of `inner` values are its
// set); the statistics as standardize takes them (the mean, then the biased variance about it, in double).
// Channels are split across threads: each is written by one thread, in one order, whatever the count.
template <class T>
LOOM_CPU_CLONES void batch_norm_impl(const T* x, const T* w, const T* b, T* y, T* mean, T* var, T* rstd, int64_t n,
                                     int64_t c, int64_t inner, double eps) {
  const double m = double(n * inner);
#pragma omp parallel for schedule(static) if (n * c * inner > 65536)
  for (int64_t ch = 0; ch < c; ++ch) {
    double sum = 0, ss = 0;
    for (int64_t i = 0; i < n; ++i) {
      const T* p = x + (i * c + ch) * inner;
      sum += row_sum(inner, [p](int64_t j) { return double(p[j]); });
    }
    const double mu = sum / m;
    for (int64_t i = 0; i < n; ++i) {
      const T* p = x + (i * c + ch) * inner;
      ss += row_sum(inner, [p, mu](int64_t j) { return (double(p[j]) - mu) * (double(p[j]) - mu); });
    }
    const double s = 1 / std::sqrt(ss / m + eps), scale = s * (w ? double(w[ch]) : 1.0), shift = b ? double(b[ch]) : 0.0;
    for (int64_t i = 0; i < n; ++i) {
      const T* p = x + (i * c + ch) * inner;
      T* q = y + (i * c + ch) * inner;
      for (int64_t j = 0; j < inner; ++j) q[j] = static_cast<T>((double(p[j]) - mu) * scale + shift);
    }
    mean[ch] = static_cast<T>(mu);
    if (var) var[ch] = static_cast<T>(ss / m);
    rstd[ch] = static_cast<T>(s);
  }
}

template <class T>
LOOM_CPU_CLONES void batch_norm_backward_impl(const T* x, const T* w, const T* mean, const T* rstd, const T* gy, T* gx,
                                              T* gw, T* gb, int64_t n, int64_t c, int64_t inner) {
  const double m = double(n * inner);
#pragma omp parallel for schedule(static) if (n * c * inner > 65536)
  for (int64_t ch = 0; ch < c; ++ch) {
    const double mu = double(mean[ch]), s = double(rstd[ch]);
    double a = 0, bsum = 0;  // Σ gy and Σ gy·x̂ over the channel
    for (int64_t i = 0; i < n; ++i) {
      const int64_t off = (i * c + ch) * inner;
      const T *p = x + off, *g = gy + off;
      a += row_sum(inner, [g](int64_t j) { return double(g[j]); });
      bsum += row_sum(inner, [p, g, mu, s](int64_t j) { return double(g[j]) * ((double(p[j]) - mu) * s); });
    }
    if (gx) {
      const double scale = s * (w ? double(w[ch]) : 1.0), mean_g = a / m, mean_gy = bsum / m;
      for (int64_t i = 0; i < n; ++i) {
        const int64_t off = (i * c + ch) * inner;
        const T *p = x + off, *g = gy + off;
        T* q = gx + off;
        for (int64_t j = 0; j < inner; ++j)
          q[j] = static_cast<T>(scale * (double(g[j]) - mean_g - (double(p[j]) - mu) * s * mean_gy));
      }
    }
    if (gw) gw[ch] = static_cast<T>(bsum);
    if (gb) gb[ch] = static_cast<T>(a);
  }
}

}  // namespace

void reduce(const KernelCtx&, ReduceOp op, DType dt, const void* x, void* out, int64_t* arg, int64_t outer,
            int64_t r, int64_t inner) {
  LOOM_FLOAT_SWITCH(dt, T, reduce_impl<T>(op, static_cast<const T*>(x), static_cast<T*>(out), arg, outer, r, inner));
}

void softmax(const KernelCtx&, DType dt, const void* x, void* y, int64_t outer, int64_t r, int64_t inner, bool log) {
  LOOM_FLOAT_SWITCH(dt, T, softmax_impl<T>(static_cast<const T*>(x), static_cast<T*>(y), outer, r, inner, log));
}

void softmax_backward(const KernelCtx&, DType dt, const void* y, const void* gy, void* gx, int64_t outer, int64_t r,
                      int64_t inner, bool log) {
  LOOM_FLOAT_SWITCH(dt, T,
                    softmax_backward_impl<T>(static_cast<const T*>(y), static_cast<const T*>(gy), static_cast<T*>(gx),
                                             outer, r, inner, log));
}

void cumsum(const KernelCtx&, DType dt, const void* x, void* y, int64_t outer, int64_t r, int64_t inner,
            bool reverse) {
  LOOM_FLOAT_SWITCH(dt, T, cumsum_impl<T>(static_cast<const T*>(x), static_cast<T*>(y), outer, r, inner, reverse));
}

void standardize(const KernelCtx&, DType dt, const void* x, const void* weight, const void* bias, void* y, void* mean,
                 void* rstd, int64_t rows, int64_t groups, int64_t cpg, int64_t inner, double eps) {
  LOOM_FLOAT_SWITCH(dt, T,
                    standardize_impl<T>(static_cast<const T*>(x), static_cast<const T*>(weight),
                                        static_cast<const T*>(bias), static_cast<T*>(y), static_cast<T*>(mean),
                                        static_cast<T*>(rstd), rows, groups, cpg, inner, eps));
}

void standardize_backward(const KernelCtx&, DType dt, const void* x, const void* weight, const void* mean,
                          const void* rstd, const void* gy, void* gx, void* gweight, void* gbias, int64_t rows,
                          int64_t groups, int64_t cpg, int64_t inner) {
  LOOM_FLOAT_SWITCH(dt, T,
                    standardize_backward_impl<T>(static_cast<const T*>(x), static_cast<const T*>(weight),
                                                 static_cast<const T*>(mean), static_cast<const T*>(rstd),
                                                 static_cast<const T*>(gy), static_cast<T*>(gx), static_cast<T*>(gweight),
                                                 static_cast<T*>(gbias), rows, groups, cpg, inner));
}

void batch_norm(const KernelCtx&, DType dt, const void* x, const void* weight, const void* bias, void* y, void* mean,
                void* var, void* rstd, int64_t n, int64_t c, int64_t inner, double eps) {
  LOOM_FLOAT_SWITCH(dt, T,
                    batch_norm_impl<T>(static_cast<const T*>(x), static_cast<const T*>(weight),
                                       static_cast<const T*>(bias), static_cast<T*>(y), static_cast<T*>(mean),
                                       static_cast<T*>(var), static_cast<T*>(rstd), n, c, inner, eps));
}

void batch_norm_backward(const KernelCtx&, DType dt, const void* x, const void* weight, const void* mean,
                         const void* rstd, const void* gy, void* gx, void* gweight, void* gbias, int64_t n, int64_t c,
                         int64_t inner) {
  LOOM_FLOAT_SWITCH(dt, T,
                    batch_norm_backward_impl<T>(static_cast<const T*>(x), static_cast<const T*>(weight),
                                                static_cast<const T*>(mean), static_cast<const T*>(rstd),
                                                static_cast<const T*>(gy), static_cast<T*>(gx), static_cast<T*>(gweight),
                                                static_cast<T*>(gbias), n, c, inner));
}

}  // namespace loom::kernels::cpu
