// CUDA GEMM (kernels/gemm.h): C[b] = α·op(A[b])·op(B[b]) + β·C[b], row-major,
// through cuBLAS (v0, the baseline every handwritten GEMM must beat).
//
// cuBLAS is column-major. A row-major M × N matrix with leading dimension ld is,
// read column-major, its transpose with the same ld, so the row-major product
// is computed as the column-major  Cᵀ = op(B)ᵀ · op(A)ᵀ : B and A swap places,
// m and n swap, and the transpose flags pass through unchanged.
// Batches go through one cublas{S,D}gemmStridedBatched call; a stride of 0
// broadcasts one matrix over the batch.
//
// Precision: float32 GEMMs use CUBLAS_DEFAULT_MATH, which keeps full FP32
// (no TF32 tensor cores) unless set_gemm_allow_tf32(true) opts in; float64 is
// always FP64. One cuBLAS handle per device, created on first use and guarded by
// a mutex (a handle is not safe to share between threads). The handles are
// leaked at exit on purpose, like the allocator's cache (see memory.cu).
// k = 0 does not reach cuBLAS: C = β·C by a small kernel, exactly as the CPU.
//
// Benchmark: no CUDA benchmark harness exists yet; profile with
//   nsys profile --stats=true ./build/tests/loom_cuda_tests --gtest_filter='CudaOps.Matmul*'
#include "kernels/gemm.h"

#include <climits>
#include <memory>
#include <mutex>

#include "kernels/cuda/launch.h"

namespace loom::kernels::cuda {
namespace {

struct Handle {
  std::mutex mutex;
  cublasHandle_t handle = nullptr;
};

Handle& handle_for(int device) {
  static Handle* handles = new Handle[std::max(1, device_count())];  // leaked: see the top
  return handles[device];
}

// C = β·C over a batch of m × n matrices (the k = 0 case); β = 0 writes zeros
// whatever C held, NaN included, as BLAS's β = 0 convention and the CPU do.
template <class T>
__global__ void scale_kernel(T* c, int64_t m, int64_t n, int64_t ldc, int64_t stride_c, int64_t batch, T beta) {
  const int64_t total = batch * m * n, step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += step) {
    const int64_t j = t % n, r = (t / n) % m, b = t / (m * n);
    T& v = c[b * stride_c + r * ldc + j];
    v = beta == T(0) ? T(0) : beta * v;
  }
}

int to_int(int64_t v, const char* what) {
  LOOM_CHECK(v >= 0 && v <= INT_MAX, "gemm: ", what, " = ", v, " exceeds cuBLAS's 32-bit int range");
  return static_cast<int>(v);
}

cublasStatus_t gemm_strided_batched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                    const float* alpha, const float* a, int lda, long long sa, const float* b,
                                    int ldb, long long sb, const float* beta, float* c, int ldc, long long sc,
                                    int batch) {
  return cublasSgemmStridedBatched(h, ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc, sc, batch);
}
cublasStatus_t gemm_strided_batched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                    const double* alpha, const double* a, int lda, long long sa, const double* b,
                                    int ldb, long long sb, const double* beta, double* c, int ldc, long long sc,
                                    int batch) {
  return cublasDgemmStridedBatched(h, ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc, sc, batch);
}

template <class T>
void gemm_impl(const LaunchScope& s, bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
               int64_t lda, int64_t sa, const T* b, int64_t ldb, int64_t sb, T beta, T* c, int64_t ldc, int64_t sc,
               int64_t batch) {
  if (k == 0) {
    s.launch(scale_kernel<T>, s.blocks(batch * m * n), kThreads, c, m, n, ldc, sc, batch, beta);
    return;
  }
  Handle& h = handle_for(s.device());
  std::lock_guard<std::mutex> lock(h.mutex);
  if (!h.handle) LOOM_CUBLAS_CHECK(cublasCreate(&h.handle));  // binds to the current device (the scope's)
  LOOM_CUBLAS_CHECK(cublasSetStream(h.handle, s.stream()));
  LOOM_CUBLAS_CHECK(cublasSetMathMode(h.handle, gemm_allow_tf32() ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
  // Row-major C = op(A)·op(B) is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ: swap the operands and m, n.
  const cublasOperation_t op_a = ta ? CUBLAS_OP_T : CUBLAS_OP_N, op_b = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  LOOM_CUBLAS_CHECK(gemm_strided_batched(h.handle, op_b, op_a, to_int(n, "n"), to_int(m, "m"), to_int(k, "k"), &alpha,
                                         b, to_int(ldb, "ldb"), sb, a, to_int(lda, "lda"), sa, &beta, c,
                                         to_int(ldc, "ldc"), sc, to_int(batch, "batch")));
}

}  // namespace

void gemm(const KernelCtx& ctx, DType dt, bool ta, bool tb, int64_t m, int64_t n, int64_t kk, double alpha,
          const void* a, int64_t lda, int64_t sa, const void* b, int64_t ldb, int64_t sb, double beta, void* c,
          int64_t ldc, int64_t sc, int64_t batch) {
  if (m == 0 || n == 0 || batch == 0) return;
  LaunchScope s(ctx, "gemm");
  LOOM_FLOAT_SWITCH(dt, T,
                    gemm_impl<T>(s, ta, tb, m, n, kk, T(alpha), static_cast<const T*>(a), lda, sa,
                                 static_cast<const T*>(b), ldb, sb, T(beta), static_cast<T*>(c), ldc, sc, batch));
}

}  // namespace loom::kernels::cuda
