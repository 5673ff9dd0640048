// CUDA kernels for the shape family (kernels/shape.h):
//   copy_strided   dst[off_d + Σ_k i_k·sd_k] = src[off_s + Σ_k i_k·ss_k] over a shape
//                  (permute, expand, slice, pad and concat are all this copy)
//   index_select   out[o, j, i] = x[o, idx[j], i]
//   index_add      out[o, idx[j], i] += g[o, j, i]
//   gather         out[o, j, i] = x[o, idx[o, j, i], i]
//   scatter_add    out[o, idx[o, j, i], i] += src[o, j, i]
// Pure data movement is instantiated per element size (4 or 8 bytes), not per
// dtype, since the copy does not care what the bits mean.
//
// Variants: copy_strided v0 is cudaMemcpyAsync when both sides are one
// contiguous run; v1 decomposes each destination index into the two offsets
// (at most kMaxRank div/mod steps) in a grid-stride loop: writes of a permute
// are coalesced, reads are strided. (A shared-memory tiled transpose is the
// natural v2 once a benchmark shows permute matters.)
//
// index_add and scatter_add use atomicAdd, so with repeated indices the order
// of the floating-point additions, and hence the last bits of the result, may
// differ from run to run: the one non-deterministic kernel family in loom.
// Indices are validated by the ops (autograd/ops/shape.cpp); an index out of
// range is still never dereferenced here (select/gather write 0, the adds skip
// it), so a bad index cannot corrupt memory.
//
// Benchmark: no CUDA benchmark harness exists yet; profile with
//   nsys profile --stats=true ./build/tests/loom_cuda_tests --gtest_filter='CudaOps.Shape*:CudaOps.Index*'
#include "kernels/shape.h"

#include "kernels/cuda/launch.h"

namespace loom::kernels::cuda {
namespace {

// The bits of one element of a 4- or 8-byte dtype.
template <size_t Size>
using Bits = std::conditional_t<Size == 4, uint32_t, uint64_t>;

template <class E>
__global__ void copy_strided_kernel(E* dst, const E* src, Broadcast bc, int64_t n) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t l = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; l < n; l += stride) {
    int64_t od = 0, os = 0, rem = l;
    for (int d = bc.rank - 1; d >= 0; --d) {
      const int64_t idx = rem % bc.shape[d];
      rem /= bc.shape[d];
      od += idx * bc.stride[0][d];
      os += idx * bc.stride[1][d];
    }
    dst[od] = src[os];
  }
}

// Threads with an index outside [0, bound) race to the least position through atomicMin.
__global__ void find_bad_index_kernel(const int64_t* idx, int64_t n, int64_t bound, int64_t* first) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; j < n; j += stride)
    if (idx[j] < 0 || idx[j] >= bound)
      atomicMin(reinterpret_cast<long long*>(first), static_cast<long long>(j));
}

template <class E>
__global__ void index_select_kernel(const E* x, const int64_t* idx, E* out, int64_t outer, int64_t n_src,
                                    int64_t n_idx, int64_t inner) {
  const int64_t n = outer * n_idx * inner, stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; t < n; t += stride) {
    const int64_t i = t % inner, j = (t / inner) % n_idx, o = t / (inner * n_idx);
    const int64_t src = idx[j];
    out[t] = (src >= 0 && src < n_src) ? x[(o * n_src + src) * inner + i] : E(0);
  }
}

template <class E>
__global__ void gather_kernel(const E* x, const int64_t* idx, E* out, int64_t outer, int64_t n, int64_t m,
                              int64_t inner) {
  const int64_t total = outer * m * inner, stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += stride) {
    const int64_t i = t % inner, o = t / (inner * m);
    const int64_t src = idx[t];
    out[t] = (src >= 0 && src < n) ? x[(o * n + src) * inner + i] : E(0);
  }
}

// atomicAdd for every dtype: int64 adds as unsigned long long (the same two's
// complement bits).
__device__ void atomic_add(float* p, float v) { atomicAdd(p, v); }
__device__ void atomic_add(double* p, double v) { atomicAdd(p, v); }
__device__ void atomic_add(int32_t* p, int32_t v) { atomicAdd(p, v); }
__device__ void atomic_add(int64_t* p, int64_t v) {
  atomicAdd(reinterpret_cast<unsigned long long*>(p), static_cast<unsigned long long>(v));
}

// out[o, idx[...], i] += src[t] for every t of an [outer, m, inner] source;
// per_row: idx has one entry per j (index_add), else one per element (scatter_add).
template <class T>
__global__ void add_at_kernel(const T* src, const int64_t* idx, T* out, int64_t outer, int64_t n, int64_t m,
                              int64_t inner, bool per_row) {
  const int64_t total = outer * m * inner, stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += stride) {
    const int64_t i = t % inner, j = (t / inner) % m, o = t / (inner * m);
    const int64_t dst = per_row ? idx[j] : idx[t];
    if (dst >= 0 && dst < n) atomic_add(&out[(o * n + dst) * inner + i], src[t]);
  }
}

#define LOOM_SIZE_SWITCH(dt, E, ...)                     \
  if (dtype_size(dt) == 4) {                             \
    using E = Bits<4>;                                   \
    __VA_ARGS__;                                         \
  } else {                                               \
    using E = Bits<8>;                                   \
    __VA_ARGS__;                                         \
  }

}  // namespace

void copy_strided(const KernelCtx& k, DType dt, void* dst, int64_t dst_offset, const void* src, int64_t src_offset,
                  const Broadcast& bc) {
  const int64_t n = bc.numel();
  if (n == 0) return;
  LaunchScope s(k, "copy_strided");
  const size_t size = dtype_size(dt);
  char* d = static_cast<char*>(dst) + dst_offset * size;
  const char* from = static_cast<const char*>(src) + src_offset * size;
  if (bc.rank == 0 || (bc.rank == 1 && bc.stride[0][0] == 1 && bc.stride[1][0] == 1)) {
    LOOM_CUDA_CHECK(cudaMemcpyAsync(d, from, n * size, cudaMemcpyDeviceToDevice, s.stream()));
    return;
  }
  LOOM_SIZE_SWITCH(dt, E, {
    s.launch(copy_strided_kernel<E>, s.blocks(n), kThreads, reinterpret_cast<E*>(d), reinterpret_cast<const E*>(from),
             bc, n);
  });
}

void index_select(const KernelCtx& k, DType dt, const void* x, const int64_t* idx, void* out, int64_t outer,
                  int64_t n_src, int64_t n_idx, int64_t inner) {
  const int64_t n = outer * n_idx * inner;
  if (n == 0) return;
  LaunchScope s(k, "index_select");
  LOOM_SIZE_SWITCH(dt, E, {
    s.launch(index_select_kernel<E>, s.blocks(n), kThreads, static_cast<const E*>(x), idx, static_cast<E*>(out), outer,
             n_src, n_idx, inner);
  });
}

void index_add(const KernelCtx& k, DType dt, const void* g, const int64_t* idx, void* out, int64_t outer, int64_t n_src,
               int64_t n_idx, int64_t inner) {
  const int64_t n = outer * n_idx * inner;
  if (n == 0) return;
  LaunchScope s(k, "index_add");
  LOOM_ANY_SWITCH(dt, T, {
    s.launch(add_at_kernel<T>, s.blocks(n), kThreads, static_cast<const T*>(g), idx, static_cast<T*>(out), outer,
             n_src, n_idx, inner, true);
  });
}

void gather(const KernelCtx& k, DType dt, const void* x, const int64_t* idx, void* out, int64_t outer, int64_t n,
            int64_t m, int64_t inner) {
  const int64_t total = outer * m * inner;
  if (total == 0) return;
  LaunchScope s(k, "gather");
  LOOM_SIZE_SWITCH(dt, E, {
    s.launch(gather_kernel<E>, s.blocks(total), kThreads, static_cast<const E*>(x), idx, static_cast<E*>(out), outer,
             n, m, inner);
  });
}

void scatter_add(const KernelCtx& k, DType dt, const void* src, const int64_t* idx, void* out, int64_t outer, int64_t n,
                 int64_t m, int64_t inner) {
  const int64_t total = outer * m * inner;
  if (total == 0) return;
  LaunchScope s(k, "scatter_add");
  LOOM_ANY_SWITCH(dt, T, {
    s.launch(add_at_kernel<T>, s.blocks(total), kThreads, static_cast<const T*>(src), idx, static_cast<T*>(out), outer,
             n, m, inner, false);
  });
}

void find_bad_index(const KernelCtx& k, const int64_t* idx, int64_t n, int64_t bound, int64_t* first) {
  if (n == 0) return;
  LaunchScope s(k, "find_bad_index");
  s.launch(find_bad_index_kernel, s.blocks(n), kThreads, idx, n, bound, first);
}

}  // namespace loom::kernels::cuda
