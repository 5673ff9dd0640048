// CUDA kernels for the reduce family (kernels/reduce.h), on a [outer, r, inner]
// view reduced over r:
//   reduce     sum: Σ_j x_j;  max/min: the extremum and its index (the first NaN
//              wins and sticks, else the first extremum, as the CPU's scan);
//              logsumexp: m + log Σ_j exp(x_j − m), m = max_j x_j ignoring NaN,
//              and m itself when m is ±inf
//   softmax    y_j = exp(x_j − m) / s (log: (x_j − m) − log s), m and s as above
//   softmax_backward   gx = y·(gy − Σ gy·y)   (log: gx = gy − exp(y)·Σ gy)
//   cumsum     y_j = Σ_{k ≤ j} x_k (reverse: Σ_{k ≥ j} x_k), along r
//   standardize        rows: y_j = (x_j − μ)·s·γ_c + β_c, s = 1/√(σ² + ε): the mean, then the
//              biased variance about it, then the values (the CPU's three passes)
//   standardize_backward   rows: gx = s·(g' − Σ g' / r − x̂·Σ g'·x̂ / r), g' = gy·γ_c; then, for γ's and
//              β's gradients, a block per channel as batch norm's: Σ gy·x̂ and Σ gy over its rows
//   batch_norm         per channel of x [n, c, inner]: standardize's statistics over its n·inner
//              values, then y = x̂·γ + β in the same kernel
//   batch_norm_backward    per channel: Σ gy, Σ gy·x̂ and gx = γ·s·(gy − Σ gy / m − x̂·Σ gy·x̂ / m)
// Accumulation is in double for float32 and float64 alike, as the CPU reference
// does (on sm_90 double arithmetic is not the bottleneck of a bandwidth-bound
// reduction), and every formula is the CPU's, in the same precision.
//
// Thread layout (one kernel each for reduce, softmax, softmax_backward, standardize and its backward's ∂x;
// batch_norm and its backward, and standardize's γ and β gradients, take a row block per channel, the
// channel's elements strided in x):
//   rows     inner == 1: the r elements of an output are contiguous. A warp per
//            output when r ≤ 1024 (eight per block), a 256-thread block per
//            output otherwise; lanes stride over j (coalesced), then combine by
//            warp shuffles and, for a block, through shared memory.
//   strided  inner > 1: a 32 × 8 block covers 32 consecutive outputs i
//            (coalesced) and 8 interleaved slices of j, combined through
//            shared memory.
//   cumsum   v1, the only variant: one thread per (outer, inner) line, scanning
//            j sequentially in double, so the result is the CPU's bit for bit.
//            Consecutive threads take consecutive i, so for inner > 1 each step
//            of j is a coalesced load and store; inner == 1 (rows) is strided
//            per thread and the obvious next variant is a warp-per-row scan.
// When there are too few outputs to fill the GPU (a full sum, a column sum of a
// tall matrix), reduce splits r across blockIdx.y: pass 1 writes one partial per
// (output, split), pass 2 folds the partials in split order. There are no
// atomics, and the tree shape depends only on the shapes and the SM count, so
// results are bitwise reproducible run to run. softmax keeps one group per
// output row (rows long enough to need splitting are not the use case).
//
// Benchmark: no CUDA benchmark harness exists yet; profile with
//   nsys profile --stats=true ./build/tests/loom_cuda_tests
//     --gtest_filter='CudaOps.Reduce*:CudaOps.Softmax*:CudaOps.Cumsum*'   (one command line)
#include "kernels/reduce.h"

#include <cmath>

#include "kernels/cuda/launch.h"

namespace loom::kernels::cuda {
namespace {

constexpr int64_t kWarpRowLimit = 1024;  // rows up to this length get a warp, longer ones a block
constexpr int kWarpRowsPerBlock = 8;     // blockDim.y of the warp-per-row layout
constexpr int kBlockRowThreads = 256;    // blockDim.x of the block-per-row layout
constexpr int kSlices = 8;               // blockDim.y of the strided layout

// ---- where a thread stands ------------------------------------------------------------------
// Work is cut into units (a block's rows, or a tile of 32 strided outputs); within
// a unit each thread serves output q, whose element j sits at base + j·step, as
// lane `lane` of the `group` threads that share q.
struct Slot {
  bool valid;
  int64_t q, base, step;
  int lane, group;
};

__device__ int64_t unit_count(int64_t outer, int64_t inner) {
  return inner == 1 ? (outer + blockDim.y - 1) / blockDim.y : outer * ((inner + 31) / 32);
}

__device__ Slot slot(int64_t unit, int64_t outer, int64_t r, int64_t inner) {
  Slot s;
  if (inner == 1) {
    s.q = unit * blockDim.y + threadIdx.y;
    s.valid = s.q < outer;
    s.base = s.q * r;
    s.step = 1;
    s.lane = threadIdx.x;
    s.group = blockDim.x;
  } else {
    const int64_t tiles = (inner + 31) / 32, o = unit / tiles, i = (unit % tiles) * 32 + threadIdx.x;
    s.valid = i < inner;
    s.q = o * inner + i;
    s.base = o * r * inner + i;
    s.step = inner;
    s.lane = threadIdx.y;
    s.group = blockDim.y;
  }
  return s;
}

// ---- combining across the threads that share an output ---------------------------------------
struct ArgAcc {  // a value and its index j; j < 0 marks "no element yet"
  double v;
  int64_t j;
};

__device__ double shfl_xor(double v, int lane_mask) { return __shfl_xor_sync(0xffffffffu, v, lane_mask); }
__device__ ArgAcc shfl_xor(ArgAcc a, int lane_mask) {
  return {__shfl_xor_sync(0xffffffffu, a.v, lane_mask), __shfl_xor_sync(0xffffffffu, a.j, lane_mask)};
}

// Every thread of the group gets the combination of the group's values. The
// butterfly gives all lanes the same result because each step combines the same
// two values (in either order: every combine here is commutative); the
// cross-warp and cross-slice steps read shared memory in a fixed order.
// All threads of the block must call it (it synchronizes).
template <class Acc, class Op>
__device__ Acc group_allreduce(Acc v, const Op& op, bool rows) {
  static_assert(kBlockRowThreads / 32 <= 32 * kSlices, "one slot per warp of a row block");
  __shared__ Acc shared[32 * kSlices];
  if (rows) {
    for (int m = 16; m > 0; m /= 2) v = op.combine(v, shfl_xor(v, m));
    if (blockDim.x == 32) return v;  // a warp per row
    const int warp = threadIdx.x / 32, warps = blockDim.x / 32;
    __syncthreads();  // earlier readers of `shared` are done
    if (threadIdx.x % 32 == 0) shared[warp] = v;
    __syncthreads();
    v = shared[0];
    for (int w = 1; w < warps; ++w) v = op.combine(v, shared[w]);
    return v;
  }
  __syncthreads();
  shared[threadIdx.y * 32 + threadIdx.x] = v;
  __syncthreads();
  v = shared[threadIdx.x];
  for (int y = 1; y < int(blockDim.y); ++y) v = op.combine(v, shared[y * 32 + threadIdx.x]);
  return v;
}

// ---- reduction ops: identity, load, combine, finish -------------------------------------------
template <class T>
struct SumOp {
  using Acc = double;
  T* out;
  __device__ Acc identity() const { return 0.0; }
  __device__ Acc context(int64_t) const { return 0.0; }
  __device__ Acc load(T x, int64_t, Acc) const { return double(x); }
  __device__ Acc combine(Acc a, Acc b) const { return a + b; }
  __device__ void finish(int64_t q, Acc a) const { out[q] = static_cast<T>(a); }
};

// The CPU scans j upwards keeping the first NaN, else the first strict
// extremum. The same element is the minimum of the total order "NaN first, then
// larger (max) or smaller (min) value, then smaller j", so any combining tree
// picks it.
template <class T>
struct ArgExtremumOp {
  using Acc = ArgAcc;
  T* out;
  int64_t* arg;  // may be null
  bool is_max;
  __device__ Acc identity() const { return {0.0, -1}; }
  __device__ double context(int64_t) const { return 0.0; }
  __device__ Acc load(T x, int64_t j, double) const { return {double(x), j}; }
  __device__ Acc combine(Acc a, Acc b) const {
    if (a.j < 0) return b;
    if (b.j < 0) return a;
    const bool a_nan = a.v != a.v, b_nan = b.v != b.v;
    if (a_nan != b_nan) return a_nan ? a : b;
    if (!a_nan && a.v != b.v) return (is_max ? a.v > b.v : a.v < b.v) ? a : b;
    return a.j < b.j ? a : b;
  }
  __device__ void finish(int64_t q, Acc a) const {
    out[q] = static_cast<T>(a.v);
    if (arg) arg[q] = a.j;
  }
};

// logsumexp, pass 1: m = fmax_j x_j from −inf (NaN ignored; −inf when all are NaN).
template <class T>
struct MaxIgnoringNanOp {
  using Acc = double;
  double* m;
  __device__ Acc identity() const { return -INFINITY; }
  __device__ Acc context(int64_t) const { return 0.0; }
  __device__ Acc load(T x, int64_t, Acc) const { return double(x); }
  __device__ Acc combine(Acc a, Acc b) const { return fmax(a, b); }
  __device__ void finish(int64_t q, Acc a) const { m[q] = a; }
};

// logsumexp, pass 2: out = m + log Σ_j exp(x_j − m), or m when m = ±inf.
template <class T>
struct LogSumExpOp {
  using Acc = double;
  const double* m;
  T* out;
  __device__ Acc identity() const { return 0.0; }
  __device__ Acc context(int64_t q) const { return m[q]; }
  __device__ Acc load(T x, int64_t, Acc mq) const { return exp(double(x) - mq); }
  __device__ Acc combine(Acc a, Acc b) const { return a + b; }
  __device__ void finish(int64_t q, Acc s) const {
    const double mq = m[q];
    out[q] = static_cast<T>(isinf(mq) ? mq : mq + log(s));
  }
};

struct FMaxOp {
  __device__ double combine(double a, double b) const { return fmax(a, b); }
};
struct PlusOp {
  __device__ double combine(double a, double b) const { return a + b; }
};

// ---- kernels ------------------------------------------------------------------------------------
// Reduces j ∈ [blockIdx.y·chunk, +chunk) of every output; writes the result
// (partial == null) or the partial for split blockIdx.y.
template <class T, class Op>
__global__ void reduce_kernel(Op op, const T* x, int64_t outer, int64_t r, int64_t inner, int64_t chunk,
                              typename Op::Acc* partial) {
  using Acc = typename Op::Acc;
  const int64_t j0 = blockIdx.y * chunk, j1 = min(r, j0 + chunk);
  const int64_t units = unit_count(outer, inner);
  for (int64_t u = blockIdx.x; u < units; u += gridDim.x) {
    const Slot s = slot(u, outer, r, inner);
    Acc acc = op.identity();
    if (s.valid) {
      const auto c = op.context(s.q);
      for (int64_t j = j0 + s.lane; j < j1; j += s.group) acc = op.combine(acc, op.load(x[s.base + j * s.step], j, c));
    }
    acc = group_allreduce(acc, op, inner == 1);
    if (s.valid && s.lane == 0) {
      if (partial) {
        partial[s.q * gridDim.y + blockIdx.y] = acc;
      } else {
        op.finish(s.q, acc);
      }
    }
  }
}

// Pass 2 of a split reduction: output q folds its partials in split order.
template <class Op>
__global__ void finish_kernel(Op op, const typename Op::Acc* partial, int64_t n_out, int splits) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t q = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; q < n_out; q += stride) {
    typename Op::Acc acc = partial[q * splits];
    for (int s = 1; s < splits; ++s) acc = op.combine(acc, partial[q * splits + s]);
    op.finish(q, acc);
  }
}

template <class T>
__global__ void softmax_kernel(const T* x, T* y, int64_t outer, int64_t r, int64_t inner, bool log) {
  const int64_t units = unit_count(outer, inner);
  for (int64_t u = blockIdx.x; u < units; u += gridDim.x) {
    const Slot s = slot(u, outer, r, inner);
    double m = -INFINITY, sum = 0;
    if (s.valid)
      for (int64_t j = s.lane; j < r; j += s.group) m = fmax(m, double(x[s.base + j * s.step]));
    m = group_allreduce(m, FMaxOp{}, inner == 1);
    if (s.valid)
      for (int64_t j = s.lane; j < r; j += s.group) sum += exp(double(x[s.base + j * s.step]) - m);
    sum = group_allreduce(sum, PlusOp{}, inner == 1);
    // (x − m) − log s, as the CPU reference: the shift x − m is exact, so a large
    // m (±1000) costs no cancellation against a rounded lse.
    const double log_sum = ::log(sum);
    if (s.valid)
      for (int64_t j = s.lane; j < r; j += s.group) {
        const int64_t t = s.base + j * s.step;
        const double shifted = double(x[t]) - m;
        y[t] = static_cast<T>(log ? shifted - log_sum : exp(shifted) / sum);
      }
  }
}

template <class T>
__global__ void softmax_backward_kernel(const T* y, const T* gy, T* gx, int64_t outer, int64_t r, int64_t inner,
                                        bool log) {
  const int64_t units = unit_count(outer, inner);
  for (int64_t u = blockIdx.x; u < units; u += gridDim.x) {
    const Slot s = slot(u, outer, r, inner);
    double sum = 0;
    if (s.valid)
      for (int64_t j = s.lane; j < r; j += s.group) {
        const int64_t t = s.base + j * s.step;
        sum += log ? double(gy[t]) : double(gy[t]) * y[t];
      }
    sum = group_allreduce(sum, PlusOp{}, inner == 1);
    if (s.valid)
      for (int64_t j = s.lane; j < r; j += s.group) {
        const int64_t t = s.base + j * s.step;
        gx[t] = static_cast<T>(log ? gy[t] - exp(double(y[t])) * sum : y[t] * (gy[t] - sum));
      }
  }
}

// A lane's elements j = lane, lane + group, … of a row of cpg channels of `inner` values, with its channel
// k = j / inner and t = j % inner kept up to date without dividing (as ChannelWalk below for batch norm).
struct RowWalk {
  int64_t k, t, dk, dt, inner;
  __device__ RowWalk(int64_t lane, int64_t group, int64_t inner_)
      : k(lane / inner_), t(lane % inner_), dk(group / inner_), dt(group % inner_), inner(inner_) {}
  __device__ void next() {
    k += dk;
    t += dt;
    if (t >= inner) t -= inner, ++k;
  }
};

// Rows only (inner = 1 in the layout's sense): a warp or a block per row, as softmax's rows; γ and β by the
// channel (row mod groups)·cpg + k.
template <class T>
__global__ void standardize_kernel(const T* x, const T* w, const T* b, T* y, T* mean, T* rstd, int64_t rows,
                                   int64_t groups, int64_t cpg, int64_t inner, double eps) {
  const int64_t r = cpg * inner, units = unit_count(rows, 1);
  for (int64_t u = blockIdx.x; u < units; u += gridDim.x) {
    const Slot s = slot(u, rows, r, 1);
    double sum = 0, ss = 0;
    if (s.valid)
      for (int64_t j = s.lane; j < r; j += s.group) sum += double(x[s.base + j]);
    const double mu = group_allreduce(sum, PlusOp{}, true) / double(r);
    if (s.valid)
      for (int64_t j = s.lane; j < r; j += s.group) ss += (double(x[s.base + j]) - mu) * (double(x[s.base + j]) - mu);
    const double sd = 1 / sqrt(group_allreduce(ss, PlusOp{}, true) / double(r) + eps);
    if (s.valid) {
      const int64_t c0 = (s.q % groups) * cpg;
      RowWalk p(s.lane, s.group, inner);
      for (int64_t j = s.lane; j < r; j += s.group, p.next()) {
        const double scale = sd * (w ? double(w[c0 + p.k]) : 1.0), shift = b ? double(b[c0 + p.k]) : 0.0;
        y[s.base + j] = static_cast<T>((double(x[s.base + j]) - mu) * scale + shift);
      }
      if (s.lane == 0) {
        mean[s.q] = static_cast<T>(mu);
        rstd[s.q] = static_cast<T>(sd);
      }
    }
  }
}

// gx per row, x̂ recomputed from x, μ and s; γ's and β's gradients in standardize_param_grad_kernel.
template <class T>
__global__ void standardize_backward_kernel(const T* x, const T* w, const T* mean, const T* rstd, const T* gy, T* gx,
                                            int64_t rows, int64_t groups, int64_t cpg, int64_t inner) {
  const int64_t r = cpg * inner, units = unit_count(rows, 1);
  for (int64_t u = blockIdx.x; u < units; u += gridDim.x) {
    const Slot s = slot(u, rows, r, 1);
    double a = 0, bsum = 0, mu = 0, sd = 0;  // Σ g' and Σ g'·x̂ over the row, g' = gy·γ
    int64_t c0 = 0;
    if (s.valid) {
      mu = double(mean[s.q]), sd = double(rstd[s.q]), c0 = (s.q % groups) * cpg;
      RowWalk p(s.lane, s.group, inner);
      for (int64_t j = s.lane; j < r; j += s.group, p.next()) {
        const int64_t t = s.base + j;
        const double g = double(gy[t]) * (w ? double(w[c0 + p.k]) : 1.0);
        a += g;
        bsum += g * ((double(x[t]) - mu) * sd);
      }
    }
    const double mean_g = group_allreduce(a, PlusOp{}, true) / double(r);
    const double mean_gx = group_allreduce(bsum, PlusOp{}, true) / double(r);
    if (s.valid) {
      RowWalk p(s.lane, s.group, inner);
      for (int64_t j = s.lane; j < r; j += s.group, p.next()) {
        const int64_t t = s.base + j;
        const double g = double(gy[t]) * (w ? double(w[c0 + p.k]) : 1.0);
        gx[t] = static_cast<T>(sd * (g - mean_g - (double(x[t]) - mu) * sd * mean_gx));
      }
    }
  }
}

// Batch norm: a block of kBlockRowThreads per channel (blocks stride over channels); the channel's
// element j of m = n·inner sits at ((j / inner)·c + ch)·inner + j % inner. A thread walks its
// elements j, j + blockDim, … keeping (j / inner, j % inner) up to date without dividing.
// Statistics as standardize's.
struct ChannelWalk {
  int64_t i, t;        // j / inner and j % inner of the thread's current element
  int64_t di, dt;      // blockDim / inner and blockDim % inner
  int64_t c, ch, inner;
  __device__ ChannelWalk(int64_t c_, int64_t ch_, int64_t inner_)
      : i(threadIdx.x / inner_), t(threadIdx.x % inner_), di(blockDim.x / inner_), dt(blockDim.x % inner_), c(c_),
        ch(ch_), inner(inner_) {}
  __device__ int64_t offset() const { return (i * c + ch) * inner + t; }
  __device__ void next() {
    i += di;
    t += dt;
    if (t >= inner) t -= inner, ++i;
  }
};

template <class T>
__global__ void batch_norm_kernel(const T* x, const T* w, const T* b, T* y, T* mean, T* var, T* rstd, int64_t n,
                                  int64_t c, int64_t inner, double eps) {
  const int64_t m = n * inner;
  for (int64_t ch = blockIdx.x; ch < c; ch += gridDim.x) {
    double sum = 0, ss = 0;
    ChannelWalk p(c, ch, inner);
    for (int64_t j = threadIdx.x; j < m; j += blockDim.x, p.next()) sum += double(x[p.offset()]);
    const double mu = group_allreduce(sum, PlusOp{}, true) / double(m);
    p = ChannelWalk(c, ch, inner);
    for (int64_t j = threadIdx.x; j < m; j += blockDim.x, p.next()) {
      const double d = double(x[p.offset()]) - mu;
      ss += d * d;
    }
    const double sigma2 = group_allreduce(ss, PlusOp{}, true) / double(m), sd = 1 / sqrt(sigma2 + eps);
    const double scale = sd * (w ? double(w[ch]) : 1.0), shift = b ? double(b[ch]) : 0.0;
    p = ChannelWalk(c, ch, inner);
    for (int64_t j = threadIdx.x; j < m; j += blockDim.x, p.next()) {
      const int64_t t = p.offset();
      y[t] = static_cast<T>((double(x[t]) - mu) * scale + shift);
    }
    if (threadIdx.x == 0) {
      mean[ch] = static_cast<T>(mu);
      if (var) var[ch] = static_cast<T>(sigma2);
      rstd[ch] = static_cast<T>(sd);
    }
  }
}

template <class T>
__global__ void batch_norm_backward_kernel(const T* x, const T* w, const T* mean, const T* rstd, const T* gy, T* gx,
                                           T* gw, T* gb, int64_t n, int64_t c, int64_t inner) {
  const int64_t m = n * inner;
  for (int64_t ch = blockIdx.x; ch < c; ch += gridDim.x) {
    const double mu = double(mean[ch]), sd = double(rstd[ch]);
    double a = 0, bsum = 0;
    ChannelWalk p(c, ch, inner);
    for (int64_t j = threadIdx.x; j < m; j += blockDim.x, p.next()) {
      const int64_t t = p.offset();
      a += double(gy[t]);
      bsum += double(gy[t]) * ((double(x[t]) - mu) * sd);
    }
    a = group_allreduce(a, PlusOp{}, true);
    bsum = group_allreduce(bsum, PlusOp{}, true);
    if (gx) {
      const double scale = sd * (w ? double(w[ch]) : 1.0), mean_g = a / double(m), mean_gy = bsum / double(m);
      p = ChannelWalk(c, ch, inner);
      for (int64_t j = threadIdx.x; j < m; j += blockDim.x, p.next()) {
        const int64_t t = p.offset();
        gx[t] = static_cast<T>(scale * (double(gy[t]) - mean_g - (double(x[t]) - mu) * sd * mean_gy));
      }
    }
    if (threadIdx.x == 0) {
      if (gw) gw[ch] = static_cast<T>(bsum);
      if (gb) gb[ch] = static_cast<T>(a);
    }
  }
}

// γ's and β's gradients of standardize: a block per channel ch of the groups·cpg, over its rows' `inner` runs
// (row i·groups + ch / cpg of each sample i: the channel's elements sit as batch norm's do, ChannelWalk), with each
// row's μ and s.
template <class T>
__global__ void standardize_param_grad_kernel(const T* x, const T* mean, const T* rstd, const T* gy, T* gw, T* gb,
                                              int64_t rows, int64_t groups, int64_t cpg, int64_t inner) {
  const int64_t c = groups * cpg, m = rows / groups * inner;
  for (int64_t ch = blockIdx.x; ch < c; ch += gridDim.x) {
    const int64_t g = ch / cpg;
    double a = 0, bsum = 0;
    ChannelWalk p(c, ch, inner);
    for (int64_t j = threadIdx.x; j < m; j += blockDim.x, p.next()) {
      const int64_t t = p.offset(), o = p.i * groups + g;
      a += double(gy[t]);
      bsum += double(gy[t]) * ((double(x[t]) - double(mean[o])) * double(rstd[o]));
    }
    a = group_allreduce(a, PlusOp{}, true);
    bsum = group_allreduce(bsum, PlusOp{}, true);
    if (threadIdx.x == 0) {
      if (gw) gw[ch] = static_cast<T>(bsum);
      if (gb) gb[ch] = static_cast<T>(a);
    }
  }
}

template <class T>
__global__ void cumsum_kernel(const T* x, T* y, int64_t outer, int64_t r, int64_t inner, bool reverse) {
  const int64_t lines = outer * inner, stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t q = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; q < lines; q += stride) {
    const int64_t base = (q / inner) * r * inner + q % inner;
    double acc = 0;
    for (int64_t s = 0; s < r; ++s) {
      const int64_t t = base + (reverse ? r - 1 - s : s) * inner;
      acc += double(x[t]);
      y[t] = static_cast<T>(acc);
    }
  }
}

// ---- launchers -----------------------------------------------------------------------------------
struct Layout {
  dim3 block;
  int64_t units;
};

Layout layout(int64_t outer, int64_t r, int64_t inner) {
  if (inner > 1) return {dim3(32, kSlices), outer * ((inner + 31) / 32)};
  if (r <= kWarpRowLimit) return {dim3(32, kWarpRowsPerBlock), (outer + kWarpRowsPerBlock - 1) / kWarpRowsPerBlock};
  return {dim3(kBlockRowThreads, 1), outer};
}

// One block per unit, capped at one full wave (8 blocks of 256 threads per SM);
// the kernels' unit loop covers the rest.
unsigned grid_for(const LaunchScope& s, int64_t units) {
  return static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>(units, int64_t(sm_count(s.device())) * 8)));
}

template <class T, class Op>
void run_reduce(const LaunchScope& s, Op op, const T* x, int64_t outer, int64_t r, int64_t inner) {
  using Acc = typename Op::Acc;
  const int64_t n_out = outer * inner;
  if (n_out == 0) return;
  const Layout L = layout(outer, r, inner);
  // Split r when the outputs alone leave the GPU idle: aim at 4 blocks per SM,
  // with at least 64 elements per thread per split.
  const int64_t target = int64_t(sm_count(s.device())) * 4;
  const int64_t lanes = inner > 1 ? kSlices : L.block.x;
  int64_t splits = 1;
  if (L.units < target && r > 0)
    splits = std::clamp<int64_t>(std::min((target + L.units - 1) / L.units, (r + lanes * 64 - 1) / (lanes * 64)), 1,
                                 1024);
  const int64_t chunk = r > 0 ? (r + splits - 1) / splits : 0;
  if (chunk > 0) splits = (r + chunk - 1) / chunk;
  const dim3 grid(grid_for(s, L.units), static_cast<unsigned>(splits));
  if (splits == 1) {
    s.launch(reduce_kernel<T, Op>, grid, L.block, op, x, outer, r, inner, chunk, nullptr);
    return;
  }
  Workspace partial(s.device(), n_out * splits * sizeof(Acc));
  s.launch(reduce_kernel<T, Op>, grid, L.block, op, x, outer, r, inner, chunk, partial.as<Acc>());
  s.launch(finish_kernel<Op>, s.blocks(n_out), kThreads, op, partial.as<Acc>(), n_out, int(splits));
}

template <class T>
void reduce_impl(const LaunchScope& s, ReduceOp op, const T* x, T* out, int64_t* arg, int64_t outer, int64_t r,
                 int64_t inner) {
  switch (op) {
    case ReduceOp::Sum:
      run_reduce(s, SumOp<T>{out}, x, outer, r, inner);
      break;
    case ReduceOp::Max:
    case ReduceOp::Min:
      LOOM_CHECK(r > 0 || outer * inner == 0, "reduce: ", op == ReduceOp::Max ? "max" : "min",
                 " over an empty axis (outer ", outer, ", r 0, inner ", inner, ")");
      run_reduce(s, ArgExtremumOp<T>{out, arg, op == ReduceOp::Max}, x, outer, r, inner);
      break;
    case ReduceOp::LogSumExp: {
      Workspace m(s.device(), std::max<int64_t>(1, outer * inner) * sizeof(double));
      run_reduce(s, MaxIgnoringNanOp<T>{m.as<double>()}, x, outer, r, inner);
      run_reduce(s, LogSumExpOp<T>{m.as<double>(), out}, x, outer, r, inner);
      break;
    }
  }
}

}  // namespace

void reduce(const KernelCtx& k, ReduceOp op, DType dt, const void* x, void* out, int64_t* arg, int64_t outer,
            int64_t r, int64_t inner) {
  if (outer * inner == 0) return;
  constexpr const char* kNames[] = {"sum", "max", "min", "logsumexp"};
  LaunchScope s(k, kNames[static_cast<int>(op)]);
  LOOM_FLOAT_SWITCH(dt, T,
                    reduce_impl<T>(s, op, static_cast<const T*>(x), static_cast<T*>(out), arg, outer, r, inner));
}

void softmax(const KernelCtx& k, DType dt, const void* x, void* y, int64_t outer, int64_t r, int64_t inner, bool log) {
  if (outer * r * inner == 0) return;
  LaunchScope s(k, log ? "log_softmax" : "softmax");
  const Layout L = layout(outer, r, inner);
  LOOM_FLOAT_SWITCH(dt, T, {
    s.launch(softmax_kernel<T>, grid_for(s, L.units), L.block, static_cast<const T*>(x), static_cast<T*>(y), outer, r,
             inner, log);
  });
}

void softmax_backward(const KernelCtx& k, DType dt, const void* y, const void* gy, void* gx, int64_t outer, int64_t r,
                      int64_t inner, bool log) {
  if (outer * r * inner == 0) return;
  LaunchScope s(k, log ? "log_softmax_backward" : "softmax_backward");
  const Layout L = layout(outer, r, inner);
  LOOM_FLOAT_SWITCH(dt, T, {
    s.launch(softmax_backward_kernel<T>, grid_for(s, L.units), L.block, static_cast<const T*>(y),
             static_cast<const T*>(gy), static_cast<T*>(gx), outer, r, inner, log);
  });
}

void cumsum(const KernelCtx& k, DType dt, const void* x, void* y, int64_t outer, int64_t r, int64_t inner,
            bool reverse) {
  if (outer * r * inner == 0) return;
  LaunchScope s(k, "cumsum");
  LOOM_FLOAT_SWITCH(dt, T, {
    s.launch(cumsum_kernel<T>, s.blocks(outer * inner), kThreads, static_cast<const T*>(x), static_cast<T*>(y), outer,
             r, inner, reverse);
  });
}

void standardize(const KernelCtx& k, DType dt, const void* x, const void* weight, const void* bias, void* y, void* mean,
                 void* rstd, int64_t rows, int64_t groups, int64_t cpg, int64_t inner, double eps) {
  const int64_t r = cpg * inner;
  if (rows * r == 0) return;
  LaunchScope s(k, "standardize");
  const Layout L = layout(rows, r, 1);
  LOOM_FLOAT_SWITCH(dt, T, {
    s.launch(standardize_kernel<T>, grid_for(s, L.units), L.block, static_cast<const T*>(x),
             static_cast<const T*>(weight), static_cast<const T*>(bias), static_cast<T*>(y), static_cast<T*>(mean),
             static_cast<T*>(rstd), rows, groups, cpg, inner, eps);
  });
}

void standardize_backward(const KernelCtx& k, DType dt, const void* x, const void* weight, const void* mean,
                          const void* rstd, const void* gy, void* gx, void* gweight, void* gbias, int64_t rows,
                          int64_t groups, int64_t cpg, int64_t inner) {
  const int64_t r = cpg * inner;
  if (rows * r == 0) return;
  LaunchScope s(k, "standardize_backward");
  const Layout L = layout(rows, r, 1);
  LOOM_FLOAT_SWITCH(dt, T, {
    if (gx)
      s.launch(standardize_backward_kernel<T>, grid_for(s, L.units), L.block, static_cast<const T*>(x),
               static_cast<const T*>(weight), static_cast<const T*>(mean), static_cast<const T*>(rstd),
               static_cast<const T*>(gy), static_cast<T*>(gx), rows, groups, cpg, inner);
    if (gweight || gbias)
      s.launch(standardize_param_grad_kernel<T>, grid_for(s, groups * cpg), dim3(kBlockRowThreads),
               static_cast<const T*>(x), static_cast<const T*>(mean), static_cast<const T*>(rstd),
               static_cast<const T*>(gy), static_cast<T*>(gweight), static_cast<T*>(gbias), rows, groups, cpg, inner);
  });
}

void batch_norm(const KernelCtx& k, DType dt, const void* x, const void* weight, const void* bias, void* y, void* mean,
                void* var, void* rstd, int64_t n, int64_t c, int64_t inner, double eps) {
  if (n * c * inner == 0) return;
  LaunchScope s(k, "batch_norm");
  LOOM_FLOAT_SWITCH(dt, T, {
    s.launch(batch_norm_kernel<T>, grid_for(s, c), dim3(kBlockRowThreads), static_cast<const T*>(x),
             static_cast<const T*>(weight), static_cast<const T*>(bias), static_cast<T*>(y), static_cast<T*>(mean),
             static_cast<T*>(var), static_cast<T*>(rstd), n, c, inner, eps);
  });
}

void batch_norm_backward(const KernelCtx& k, DType dt, const void* x, const void* weight, const void* mean,
                         const void* rstd, const void* gy, void* gx, void* gweight, void* gbias, int64_t n, int64_t c,
                         int64_t inner) {
  if (n * c * inner == 0) return;
  LaunchScope s(k, "batch_norm_backward");
  LOOM_FLOAT_SWITCH(dt, T, {
    s.launch(batch_norm_backward_kernel<T>, grid_for(s, c), dim3(kBlockRowThreads), static_cast<const T*>(x),
             static_cast<const T*>(weight), static_cast<const T*>(mean), static_cast<const T*>(rstd),
             static_cast<const T*>(gy), static_cast<T*>(gx), static_cast<T*>(gweight), static_cast<T*>(gbias), n, c,
             inner);
  });
}

}  // namespace loom::kernels::cuda
