// Reductions over the middle axis of a [outer, r, inner] view: any set of
// contiguous axes maps onto it, and autograd/ops/reduce.cpp reduces a
// non-contiguous axis set one contiguous run at a time.
//
//   sum/max/min:  out[o, i] = ⊕_j x[o, j, i]; max/min also write the arg index
//   logsumexp:    out = m + log Σ_j exp(x_j - m), m = max_j x_j (no overflow)
//   softmax:      y_j = exp(x_j - m) / Σ exp(x_k - m), along r, same shape as x
//   log_softmax:  y_j = x_j - logsumexp(x)
//   cumsum:       y_j = Σ_{k ≤ j} x_k (reverse: Σ_{k ≥ j} x_k), along r, same shape as x
//   standardize:  each of `rows` contiguous rows of r = cpg·inner values (x [rows, cpg, inner]):
//                 x̂_j = (x_j − μ) · s, μ = Σ_j x_j / r, s = 1/√(σ² + ε), σ² = Σ_j (x_j − μ)² / r
//                 (biased, about μ: no cancellation), then y = x̂·γ_c + β_c with the channel c =
//                 (row mod groups)·cpg + j / inner (γ, β optional; group norm's rows are the [N, G] groups
//                 of cpg channels, instance norm's cpg = 1, layer norm's a trailing block with no affine)
//   batch_norm:   x [n, c, inner] standardized per channel over its n·inner values (the n runs
//                 x[i, ch, :]), as standardize does a row, then y = x̂·γ + β in the same pass;
//                 the channels' μ and s written (batch norm's training forward, γ and β fused)
// Sums accumulate in double on the CPU (the reference is the accurate side).
#pragma once

#include "kernels/dispatch.h"

namespace loom {
enum class ReduceOp : uint8_t { Sum, Max, Min, LogSumExp };
}

#define LOOM_REDUCE_API                                                                           \
  /* arg (int64, may be null) receives the index j of the max/min */                              \
  void reduce(const KernelCtx& k, ReduceOp op, DType dt, const void* x, void* out, int64_t* arg, \
              int64_t outer, int64_t r, int64_t inner);                                           \
  void softmax(const KernelCtx& k, DType dt, const void* x, void* y, int64_t outer, int64_t r,   \
               int64_t inner, bool log);                                                          \
  /* softmax:     gx = y * (gy - Σ_j gy_j y_j)                                                     \
     log_softmax: gx = gy - exp(y) * Σ_j gy_j */                                                   \
  void softmax_backward(const KernelCtx& k, DType dt, const void* y, const void* gy, void* gx,   \
                        int64_t outer, int64_t r, int64_t inner, bool log);                    \
  void cumsum(const KernelCtx& k, DType dt, const void* x, void* y, int64_t outer, int64_t r,    \
              int64_t inner, bool reverse);                                                       \
  /* weight (γ), bias (β) [groups·cpg] may be null (1 and 0); mean and rstd [rows] receive the rows' μ and s, in \
     x's dtype */                                                                                        \
  void standardize(const KernelCtx& k, DType dt, const void* x, const void* weight, const void* bias, void* y,   \
                   void* mean, void* rstd, int64_t rows, int64_t groups, int64_t cpg, int64_t inner, double eps); \
  /* per row, with x̂ from x, μ and s and g' = gy·γ_c: gx = s · (g' − Σ_j g'_j / r − x̂ · Σ_j g'_j x̂_j / r); per  \
     channel over its rows: gweight = Σ gy·x̂, gbias = Σ gy; gx, gweight, gbias may each be null (not wanted) */  \
  void standardize_backward(const KernelCtx& k, DType dt, const void* x, const void* weight, const void* mean,   \
                            const void* rstd, const void* gy, void* gx, void* gweight, void* gbias, int64_t rows, \
                            int64_t groups, int64_t cpg, int64_t inner);                                        \
  /* weight (γ), bias (β) [c] may be null (1 and 0); mean, var and rstd [c] receive μ, the biased σ²  \
     and s, in x's dtype (var may be null) */                                                            \
  void batch_norm(const KernelCtx& k, DType dt, const void* x, const void* weight, const void* bias, void* y, \
                  void* mean, void* var, void* rstd, int64_t n, int64_t c, int64_t inner, double eps);  \
  /* per channel, with x̂ = (x − μ)·s, m = n·inner: gbias = Σ gy, gweight = Σ gy·x̂ and                   \
     gx = γ·s·(gy − Σ gy / m − x̂ · Σ gy·x̂ / m); gx, gweight, gbias may each be null (not wanted) */     \
  void batch_norm_backward(const KernelCtx& k, DType dt, const void* x, const void* weight,            \
                           const void* mean, const void* rstd, const void* gy, void* gx, void* gweight, \
                           void* gbias, int64_t n, int64_t c, int64_t inner);

LOOM_DECLARE_KERNELS(LOOM_CUDA_REDUCE, LOOM_REDUCE_API)
