// GEMM: C[b] = alpha * op(A[b]) @ op(B[b]) + beta * C[b] for b < batch, row-major,
// op = transpose when trans_* is set. Strides between batch items in elements
// (0 broadcasts one matrix over the batch). CPU: OpenBLAS when found, else a
// blocked fallback; CUDA: cuBLAS (kernels/cuda/gemm.cu).
#pragma once

#include "kernels/dispatch.h"

#define LOOM_GEMM_API                                                                            \
  void gemm(const KernelCtx& k, DType dt, bool trans_a, bool trans_b, int64_t m, int64_t n,     \
            int64_t kk, double alpha, const void* a, int64_t lda, int64_t stride_a,             \
            const void* b, int64_t ldb, int64_t stride_b, double beta, void* c, int64_t ldc,    \
            int64_t stride_c, int64_t batch);

LOOM_DECLARE_KERNELS(LOOM_CUDA_GEMM, LOOM_GEMM_API)

namespace loom::kernels {
// Opt-in TF32: float32 GEMMs on CUDA may then run on tensor cores with inputs
// rounded to a 10-bit mantissa (relative error ~1e-3, several times faster).
// Off by default: float32 means FP32 unless asked, and every benchmark states
// the setting. The CPU has no TF32 and ignores it; float64 is unaffected.
void set_gemm_allow_tf32(bool on);
bool gemm_allow_tf32();
}  // namespace loom::kernels
