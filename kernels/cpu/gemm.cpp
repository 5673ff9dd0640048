// CPU GEMM (kernels/gemm.h): OpenBLAS's cblas_?gemm when available (LOOM_HAVE_BLAS),
// otherwise a cache-blocked triple loop parallel over rows of C.
#include "kernels/gemm.h"

#include <omp.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <vector>

#if LOOM_HAVE_BLAS
#include <cblas.h>
extern "C" char* openblas_get_corename(void);  // OpenBLAS's own; not in every cblas.h
extern "C" void openblas_set_num_threads(int);
#endif

namespace loom::kernels::cpu {
namespace {

#if LOOM_HAVE_BLAS
void blas_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
               const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b,
              ldb, beta, c, ldc);
}
void blas_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const double* a, int64_t lda,
               const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b,
              ldb, beta, c, ldc);
}
#else
// Row-parallel fallback: each thread owns rows of C and streams rows of B, so
// the inner loop is contiguous (vectorizable) for the untransposed B.
template <class T>
void blas_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda, const T* b,
               int64_t ldb, T beta, T* c, int64_t ldc) {
#pragma omp parallel for schedule(static) if (m * n * k > 32768)
  for (int64_t i = 0; i < m; ++i) {
    std::vector<T> acc(n, T(0));
    for (int64_t p = 0; p < k; ++p) {
      const T av = ta ? a[p * lda + i] : a[i * lda + p];
      if (tb) {
        for (int64_t j = 0; j < n; ++j) acc[j] += av * b[j * ldb + p];
      } else {
        const T* brow = b + p * ldb;
        for (int64_t j = 0; j < n; ++j) acc[j] += av * brow[j];
      }
    }
    T* crow = c + i * ldc;
    for (int64_t j = 0; j < n; ++j) crow[j] = alpha * acc[j] + (beta == T(0) ? T(0) : beta * crow[j]);
  }
}
#endif

template <class T>
void gemm_impl(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda, int64_t sa,
               const T* b, int64_t ldb, int64_t sb, T beta, T* c, int64_t ldc, int64_t sc, int64_t batch) {
  for (int64_t i = 0; i < batch; ++i) {
    if (k == 0) {  // C = beta·C (BLAS may skip the scaling when k = 0)
      for (int64_t r = 0; r < m; ++r)
        for (int64_t j = 0; j < n; ++j) {
          T& v = c[i * sc + r * ldc + j];
          v = beta == T(0) ? T(0) : beta * v;
        }
      continue;
    }
    blas_gemm(ta, tb, m, n, k, alpha, a + i * sa, lda, b + i * sb, ldb, beta, c + i * sc, ldc);
  }
}

}  // namespace

void gemm(const KernelCtx&, DType dt, bool ta, bool tb, int64_t m, int64_t n, int64_t kk, double alpha, const void* a,
          int64_t lda, int64_t sa, const void* b, int64_t ldb, int64_t sb, double beta, void* c, int64_t ldc,
          int64_t sc, int64_t batch) {
  if (m == 0 || n == 0) return;
  LOOM_FLOAT_SWITCH(dt, T,
                    gemm_impl<T>(ta, tb, m, n, kk, T(alpha), static_cast<const T*>(a), lda, sa,
                                 static_cast<const T*>(b), ldb, sb, T(beta), static_cast<T*>(c), ldc, sc, batch));
}

}  // namespace loom::kernels::cpu

namespace loom::kernels {
// The switch lives in the family's always-built file, so a CPU-only build links
// code that sets it; kernels/cuda/gemm.cu reads it at every call.
static std::atomic<bool> allow_tf32{false};
void set_gemm_allow_tf32(bool on) { allow_tf32 = on; }
bool gemm_allow_tf32() { return allow_tf32; }
}  // namespace loom::kernels

namespace loom::kernels {
const char* openblas_coretype_for_this_cpu() {
#if LOOM_HAVE_BLAS && defined(__x86_64__)
  if (std::getenv("OPENBLAS_CORETYPE")) return nullptr;
  const char* core = openblas_get_corename();
  if (!core || std::strcmp(core, "Prescott") != 0) return nullptr;
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512cd"))
    return "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
#endif
  return nullptr;
}

void set_cpu_threads(int n) {
  LOOM_CHECK(n >= 1, "set_cpu_threads: expected at least 1 thread, got ", n);
  omp_set_num_threads(n);
#if LOOM_HAVE_BLAS
  openblas_set_num_threads(n);
#endif
}
int cpu_threads() { return omp_get_max_threads(); }

void restart_with_fast_openblas(char** argv) {
  if (const char* core = openblas_coretype_for_this_cpu()) {
    // The resolved path rather than /proc/self/exe itself, so ps and top still show the program's name.
    char self[4096];
    const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return;
    self[n] = '\0';
    setenv("OPENBLAS_CORETYPE", core, 1);
    execv(self, argv);
    unsetenv("OPENBLAS_CORETYPE");  // not restarted: say nothing false to child processes
  }
}
}  // namespace loom::kernels
