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

// OpenBLAS picks its kernels by CPU model at load time, and 0.3.21 (Debian 12)
// falls back to the generic SSE3 "Prescott" kernels on models it does not know
// (virtualized Xeons report a bare "Intel(R) Xeon(R) Processor"), which run
// GEMM 2-2.5× slower than the AVX-512 ones on the same core. When that happened
// and the CPU has AVX-512 (F, BW, DQ, VL, CD) or AVX2 + FMA, this returns the
// OPENBLAS_CORETYPE value that selects the right kernels ("SkylakeX",
// "Haswell"); otherwise (a known CPU, another BLAS, OPENBLAS_CORETYPE already
// set) nullptr. The setting takes effect only in a process started with it.
const char* openblas_coretype_for_this_cpu();
// The CPU backend's threads: OpenMP's (loom's loops) and OpenBLAS's GEMM pool
// together, as OMP_NUM_THREADS and OPENBLAS_NUM_THREADS do at start-up. n >= 1
// (an Error otherwise). cpu_threads() is OpenMP's current maximum.
void set_cpu_threads(int n);
int cpu_threads();
// For a program's main(): when openblas_coretype_for_this_cpu() names a core,
// sets OPENBLAS_CORETYPE and re-executes the program with the same argv (once:
// the new process finds the variable set). Returns only when nothing was to be
// done or the re-execution failed (then the generic kernels stay).
void restart_with_fast_openblas(char** argv);
}  // namespace loom::kernels
