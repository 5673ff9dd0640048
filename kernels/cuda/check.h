// Checking macros for every CUDA runtime, cuBLAS and cuDNN call: a failure becomes a
// loom::Error naming the call, the file and line, and the library's error
// name and description.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "kernels/base.h"

namespace loom::kernels::cuda {

[[noreturn]] inline void throw_cuda_error(const std::string& call, const char* file, int line, const char* name,
                                          const char* what) {
  // Clear the runtime's last-error slot: a non-sticky error (out of memory, a
  // bad argument) must not resurface at a later, unrelated cudaGetLastError.
  cudaGetLastError();
  throw Error(str("CUDA error: ", call, " failed at ", file, ":", line, ": ", name, " (", what, ")"));
}

}  // namespace loom::kernels::cuda

#define LOOM_CUDA_CHECK(call)                                                                               \
  do {                                                                                                      \
    const cudaError_t loom_status_ = (call);                                                                \
    if (loom_status_ != cudaSuccess)                                                                        \
      ::loom::kernels::cuda::throw_cuda_error(#call, __FILE__, __LINE__, cudaGetErrorName(loom_status_),    \
                                              cudaGetErrorString(loom_status_));                            \
  } while (0)

#define LOOM_CUBLAS_CHECK(call)                                                                             \
  do {                                                                                                      \
    const cublasStatus_t loom_status_ = (call);                                                             \
    if (loom_status_ != CUBLAS_STATUS_SUCCESS)                                                              \
      ::loom::kernels::cuda::throw_cuda_error(#call, __FILE__, __LINE__, cublasGetStatusName(loom_status_), \
                                              cublasGetStatusString(loom_status_));                         \
  } while (0)

#ifdef LOOM_HAVE_CUDNN
#include <cudnn.h>

namespace loom::kernels::cuda {
// cuDNN 9 keeps a detailed message for the last failure (which parameter was bad, and why).
inline std::string cudnn_last_error() {
  char message[1024] = {0};
  cudnnGetLastErrorString(message, sizeof message);
  return message;
}
}  // namespace loom::kernels::cuda

#define LOOM_CUDNN_CHECK(call)                                                                               \
  do {                                                                                                      \
    const cudnnStatus_t loom_status_ = (call);                                                              \
    if (loom_status_ != CUDNN_STATUS_SUCCESS)                                                               \
      ::loom::kernels::cuda::throw_cuda_error(#call, __FILE__, __LINE__, cudnnGetErrorString(loom_status_), \
                                              ::loom::kernels::cuda::cudnn_last_error().c_str());           \
  } while (0)
#endif
