// CPU reference for the shape family (kernels/shape.h).
#include "kernels/shape.h"

#include <algorithm>
#include <cstring>

namespace loom::kernels::cpu {
namespace {

template <class T>
void copy_strided_impl(T* d, const T* s, const Broadcast& bc) {
  const int r = bc.rank;
  if (r == 0) {
    d[0] = s[0];
    return;
  }
  const int64_t inner = bc.shape[r - 1];
  const int64_t sd = bc.stride[0][r - 1], ss = bc.stride[1][r - 1];
  int64_t outer = 1;
  for (int i = 0; i < r - 1; ++i) outer *= bc.shape[i];
#pragma omp parallel for schedule(static) if (outer * inner > 65536)
  for (int64_t o = 0; o < outer; ++o) {
    int64_t od = 0, os = 0, rem = o;
    for (int i = r - 2; i >= 0; --i) {
      const int64_t idx = rem % bc.shape[i];
      rem /= bc.shape[i];
      od += idx * bc.stride[0][i];
      os += idx * bc.stride[1][i];
    }
    if (sd == 1 && ss == 1) {
      std::memcpy(d + od, s + os, sizeof(T) * inner);
    } else {
      for (int64_t i = 0; i < inner; ++i) d[od + i * sd] = s[os + i * ss];
    }
  }
}

template <class T>
void index_select_impl(const T* x, const int64_t* idx, T* out, int64_t outer, int64_t n_src, int64_t n_idx,
                       int64_t inner) {
#pragma omp parallel for collapse(2) schedule(static) if (outer * n_idx * inner > 65536)
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < n_idx; ++j)
      std::memcpy(out + (o * n_idx + j) * inner, x + (o * n_src + idx[j]) * inner, sizeof(T) * inner);
}

template <class T>
void index_add_impl(const T* g, const int64_t* idx, T* out, int64_t outer, int64_t n_src, int64_t n_idx,
                    int64_t inner) {
  // Parallel over outer only: two j may name the same row, so j stays sequential.
#pragma omp parallel for schedule(static) if (outer * n_idx * inner > 65536)
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < n_idx; ++j) {
      T* dst = out + (o * n_src + idx[j]) * inner;
      const T* src = g + (o * n_idx + j) * inner;
      for (int64_t i = 0; i < inner; ++i) dst[i] += src[i];
    }
}

template <class T>
void gather_impl(const T* x, const int64_t* idx, T* out, int64_t outer, int64_t n, int64_t m, int64_t inner) {
#pragma omp parallel for schedule(static) if (outer * m * inner > 65536)
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < m; ++j)
      for (int64_t i = 0; i < inner; ++i) {
        const int64_t t = (o * m + j) * inner + i;
        out[t] = x[(o * n + idx[t]) * inner + i];
      }
}

template <class T>
void scatter_add_impl(const T* src, const int64_t* idx, T* out, int64_t outer, int64_t n, int64_t m, int64_t inner) {
#pragma omp parallel for schedule(static) if (outer * m * inner > 65536)
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < m; ++j)
      for (int64_t i = 0; i < inner; ++i) {
        const int64_t t = (o * m + j) * inner + i;
        out[(o * n + idx[t]) * inner + i] += src[t];
      }
}

}  // namespace

void copy_strided(const KernelCtx&, DType dt, void* dst, int64_t dst_offset, const void* src, int64_t src_offset,
                  const Broadcast& bc) {
  LOOM_ANY_SWITCH(dt, T,
                  copy_strided_impl<T>(static_cast<T*>(dst) + dst_offset, static_cast<const T*>(src) + src_offset, bc));
}

void index_select(const KernelCtx&, DType dt, const void* x, const int64_t* idx, void* out, int64_t outer,
                  int64_t n_src, int64_t n_idx, int64_t inner) {
  LOOM_ANY_SWITCH(dt, T,
                  index_select_impl<T>(static_cast<const T*>(x), idx, static_cast<T*>(out), outer, n_src, n_idx, inner));
}

void index_add(const KernelCtx&, DType dt, const void* g, const int64_t* idx, void* out, int64_t outer, int64_t n_src,
               int64_t n_idx, int64_t inner) {
  LOOM_ANY_SWITCH(dt, T,
                  index_add_impl<T>(static_cast<const T*>(g), idx, static_cast<T*>(out), outer, n_src, n_idx, inner));
}

void gather(const KernelCtx&, DType dt, const void* x, const int64_t* idx, void* out, int64_t outer, int64_t n,
            int64_t m, int64_t inner) {
  LOOM_ANY_SWITCH(dt, T, gather_impl<T>(static_cast<const T*>(x), idx, static_cast<T*>(out), outer, n, m, inner));
}

void scatter_add(const KernelCtx&, DType dt, const void* src, const int64_t* idx, void* out, int64_t outer, int64_t n,
                 int64_t m, int64_t inner) {
  LOOM_ANY_SWITCH(dt, T,
                  scatter_add_impl<T>(static_cast<const T*>(src), idx, static_cast<T*>(out), outer, n, m, inner));
}

void find_bad_index(const KernelCtx&, const int64_t* idx, int64_t n, int64_t bound, int64_t* first) {
  for (int64_t j = 0; j < n; ++j)
    if (idx[j] < 0 || idx[j] >= bound) {
      *first = j;
      return;
    }
}

}  // namespace loom::kernels::cpu
