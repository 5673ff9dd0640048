// Data movement for shape ops: one strided copy covers permute, expand,
// slice, pad and concat (each is a copy between two strided views of a
// contiguous buffer); index ops move rows by an index tensor.
#pragma once

#include "kernels/broadcast.h"
#include "kernels/dispatch.h"

#define LOOM_SHAPE_API                                                                           \
  /* dst[off_d + Σ i_k dst_stride[k]] = src[off_s + Σ i_k src_stride[k]] over shape;             \
     operand 0 of bc = dst, 1 = src (Broadcast reused as a shape + strides record). */           \
  void copy_strided(const KernelCtx& k, DType dt, void* dst, int64_t dst_offset, const void* src, \
                    int64_t src_offset, const Broadcast& bc);                                     \
  /* Along axis with [outer, n_src, inner] → [outer, n_idx, inner]:                              \
     out[o, j, i] = x[o, idx[j], i]. idx is int64, each in [0, n_src). */                         \
  void index_select(const KernelCtx& k, DType dt, const void* x, const int64_t* idx, void* out,  \
                    int64_t outer, int64_t n_src, int64_t n_idx, int64_t inner);                  \
  /* out[o, idx[j], i] += g[o, j, i] (out must be pre-filled). */                                 \
  void index_add(const KernelCtx& k, DType dt, const void* g, const int64_t* idx, void* out,     \
                 int64_t outer, int64_t n_src, int64_t n_idx, int64_t inner);                     \
  /* gather along the middle axis of [outer, n, inner]: idx has shape [outer, m, inner]:          \
     out[o, j, i] = x[o, idx[o, j, i], i] */                                                      \
  void gather(const KernelCtx& k, DType dt, const void* x, const int64_t* idx, void* out,        \
              int64_t outer, int64_t n, int64_t m, int64_t inner);                                \
  /* out[o, idx[o, j, i], i] += src[o, j, i] (out pre-filled) */                                   \
  void scatter_add(const KernelCtx& k, DType dt, const void* src, const int64_t* idx, void* out, \
                   int64_t outer, int64_t n, int64_t m, int64_t inner);                          \
  /* The index ops' range check without reading idx [n] on the host: *first (in memory on the   \
     kernel's device, set to n by the caller) becomes the least position j with idx[j] outside   \
     [0, bound), and stays n when there is none. */                                               \
  void find_bad_index(const KernelCtx& k, const int64_t* idx, int64_t n, int64_t bound, int64_t* first);

LOOM_DECLARE_KERNELS(LOOM_CUDA_SHAPE, LOOM_SHAPE_API)
