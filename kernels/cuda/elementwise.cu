// CUDA kernels for the elementwise family (kernels/elementwise.h):
//   unary           y = f(x)                  unary_backward  gx = gy · f'(x, y)
//   binary          out = a ∘ b over a Broadcast (comparisons give 1 or 0)
//   where           out = cond != 0 ? a : b over a Broadcast
//   fill, cast, iota (out[i] = start + i·step)
// The scalar formulas are kernels/elementwise_math.h, the very functions the CPU
// reference calls, so NaN and edge-case behaviour is the same by construction.
//
// Variants (picked per call, not by the caller):
//   v1 strided   any Broadcast: each output index is decomposed into per-operand
//                offsets (at most kMaxRank div/mod steps). Used whenever an
//                operand is broadcast or a pointer is not 16-byte aligned.
//   v2 packed    every operand contiguous and 16-byte aligned: each thread moves
//                128-bit packs (4 floats / 2 doubles), so a warp issues one
//                fully used 512-byte transaction per operand, the fastest form
//                of a bandwidth-bound map; the ragged tail runs scalar.
// Both are grid-stride loops with the grid capped to one full wave of the GPU.
// iota computes in double with non-fused arithmetic, so it equals the CPU bit
// for bit.
//
// Benchmark: no CUDA benchmark harness exists yet; profile the op tests with
//   nsys profile --stats=true ./build/tests/loom_cuda_tests --gtest_filter='CudaOps.Unary*:CudaOps.Binary*'
// (every launch is an NVTX range named after the kernel).
#include "kernels/elementwise.h"

#include <cstdint>

#include "kernels/cuda/launch.h"
#include "kernels/elementwise_math.h"

namespace loom::kernels::cuda {
namespace {

// A 128-bit pack of T: the unit of the v2 loads and stores.
template <class T>
struct alignas(16) Pack {
  static constexpr int kSize = 16 / sizeof(T);
  T v[kSize];
};

template <class T, int N>
struct Operands {
  const T* p[N];
};

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// ---- functors: one output value from N operand values -------------------------------
template <class T>
struct UnaryF {
  UnaryOp op;
  UnaryParams p;
  __device__ T operator()(const T* v) const { return unary_fn(op, v[0], p); }
};
template <class T>
struct UnaryBackwardF {  // operands x, y, gy
  UnaryOp op;
  UnaryParams p;
  __device__ T operator()(const T* v) const { return v[2] * unary_grad(op, v[0], v[1], p); }
};
template <class T>
struct BinaryF {
  BinaryOp op;
  __device__ T operator()(const T* v) const { return binary_fn(op, v[0], v[1]); }
};
template <class T>
struct WhereF {  // operands cond, a, b
  __device__ T operator()(const T* v) const { return v[0] != T(0) ? v[1] : v[2]; }
};

// ---- kernels -----------------------------------------------------------------------------
// v2: contiguous operands; `packed` says every pointer is 16-byte aligned.
template <class T, int N, class F>
__global__ void map_contiguous(F f, Operands<T, N> in, T* out, int64_t n, bool packed) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  const int64_t tid = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  int64_t done = 0;
  if (packed) {
    constexpr int V = Pack<T>::kSize;
    const int64_t packs = n / V;
    for (int64_t i = tid; i < packs; i += stride) {
      Pack<T> a[N], r;
#pragma unroll
      for (int k = 0; k < N; ++k) a[k] = reinterpret_cast<const Pack<T>*>(in.p[k])[i];
#pragma unroll
      for (int e = 0; e < V; ++e) {
        T v[N];
#pragma unroll
        for (int k = 0; k < N; ++k) v[k] = a[k].v[e];
        r.v[e] = f(v);
      }
      reinterpret_cast<Pack<T>*>(out)[i] = r;
    }
    done = packs * V;
  }
  for (int64_t i = done + tid; i < n; i += stride) {
    T v[N];
#pragma unroll
    for (int k = 0; k < N; ++k) v[k] = in.p[k][i];
    out[i] = f(v);
  }
}

// v1: out (contiguous) = f(operands) over the Broadcast; operand k walks stride[k].
template <class T, int N, class F>
__global__ void map_broadcast(F f, Operands<T, N> in, T* out, Broadcast bc, int64_t n) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    int64_t off[N] = {};
    int64_t rem = i;
    for (int d = bc.rank - 1; d >= 0; --d) {
      const int64_t idx = rem % bc.shape[d];
      rem /= bc.shape[d];
#pragma unroll
      for (int k = 0; k < N; ++k) off[k] += idx * bc.stride[k][d];
    }
    T v[N];
#pragma unroll
    for (int k = 0; k < N; ++k) v[k] = in.p[k][off[k]];
    out[i] = f(v);
  }
}

template <class T>
__global__ void fill_kernel(T* out, int64_t n, T value) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) out[i] = value;
}

template <class S, class D>
__global__ void cast_kernel(const S* x, D* y, int64_t n) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) y[i] = static_cast<D>(x[i]);
}

template <class T>
__global__ void iota_kernel(T* out, int64_t n, double start, double step) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    out[i] = static_cast<T>(add_rn(start, mul_rn(static_cast<double>(i), step)));  // = CPU: start + i * step
}

// ---- launchers -------------------------------------------------------------------------
template <class T, int N, class F>
void launch_contiguous(const LaunchScope& s, F f, Operands<T, N> in, T* out, int64_t n) {
  bool packed = aligned16(out) && n >= Pack<T>::kSize;
  for (int k = 0; k < N; ++k) packed = packed && aligned16(in.p[k]);
  const int64_t work = packed ? n / Pack<T>::kSize + n % Pack<T>::kSize : n;
  s.launch(map_contiguous<T, N, F>, s.blocks(work), kThreads, f, in, out, n, packed);
}

// Contiguous when the Broadcast collapsed to one dimension every operand walks with stride 1.
template <int N>
bool is_contiguous(const Broadcast& bc) {
  if (bc.rank != 1) return bc.rank == 0;
  for (int k = 0; k < N; ++k)
    if (bc.stride[k][0] != 1) return false;
  return true;
}

template <class T, int N, class F>
void launch_broadcast(const LaunchScope& s, F f, Operands<T, N> in, T* out, const Broadcast& bc) {
  const int64_t n = bc.numel();
  if (n == 0) return;
  if (is_contiguous<N>(bc)) {
    launch_contiguous<T, N>(s, f, in, out, n);
    return;
  }
  s.launch(map_broadcast<T, N, F>, s.blocks(n), kThreads, f, in, out, bc, n);
}

}  // namespace

void unary(const KernelCtx& k, UnaryOp op, DType dt, const void* x, void* y, int64_t n, UnaryParams p) {
  if (n == 0) return;
  LaunchScope s(k, "unary");
  LOOM_FLOAT_SWITCH(dt, T,
                    launch_contiguous<T, 1>(s, UnaryF<T>{op, p}, Operands<T, 1>{{static_cast<const T*>(x)}},
                                            static_cast<T*>(y), n));
}

void unary_backward(const KernelCtx& k, UnaryOp op, DType dt, const void* x, const void* y, const void* gy, void* gx,
                    int64_t n, UnaryParams p) {
  if (n == 0) return;
  LaunchScope s(k, "unary_backward");
  LOOM_FLOAT_SWITCH(dt, T,
                    launch_contiguous<T, 3>(s, UnaryBackwardF<T>{op, p},
                                            Operands<T, 3>{{static_cast<const T*>(x), static_cast<const T*>(y),
                                                            static_cast<const T*>(gy)}},
                                            static_cast<T*>(gx), n));
}

void binary(const KernelCtx& k, BinaryOp op, DType dt, const void* a, const void* b, void* out, const Broadcast& bc) {
  if (bc.numel() == 0) return;
  LaunchScope s(k, "binary");
  LOOM_ANY_SWITCH(dt, T,
                  launch_broadcast<T, 2>(s, BinaryF<T>{op},
                                         Operands<T, 2>{{static_cast<const T*>(a), static_cast<const T*>(b)}},
                                         static_cast<T*>(out), bc));
}

void where(const KernelCtx& k, DType dt, const void* cond, const void* a, const void* b, void* out,
           const Broadcast& bc) {
  if (bc.numel() == 0) return;
  LaunchScope s(k, "where");
  LOOM_ANY_SWITCH(dt, T,
                  launch_broadcast<T, 3>(s, WhereF<T>{},
                                         Operands<T, 3>{{static_cast<const T*>(cond), static_cast<const T*>(a),
                                                         static_cast<const T*>(b)}},
                                         static_cast<T*>(out), bc));
}

void fill(const KernelCtx& k, DType dt, void* out, int64_t n, double value) {
  if (n == 0) return;
  LaunchScope s(k, "fill");
  LOOM_ANY_SWITCH(dt, T, {
    s.launch(fill_kernel<T>, s.blocks(n), kThreads, static_cast<T*>(out), n, static_cast<T>(value));
  });
}

void cast(const KernelCtx& k, DType from, const void* x, DType to, void* y, int64_t n) {
  if (n == 0) return;
  LaunchScope s(k, "cast");
  LOOM_ANY_SWITCH(from, S, LOOM_ANY_SWITCH(to, D, {
    s.launch(cast_kernel<S, D>, s.blocks(n), kThreads, static_cast<const S*>(x), static_cast<D*>(y), n);
  }));
}

void iota(const KernelCtx& k, DType dt, void* out, int64_t n, double start, double step) {
  if (n == 0) return;
  LaunchScope s(k, "iota");
  LOOM_ANY_SWITCH(dt, T, {
    s.launch(iota_kernel<T>, s.blocks(n), kThreads, static_cast<T*>(out), n, start, step);
  });
}

}  // namespace loom::kernels::cuda
