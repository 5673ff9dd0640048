// The one place where CPU and CUDA split.
//
// Each kernel family declares its entry points once, as a macro over a backend
// namespace (see elementwise.h), and implements them in kernels/cpu/<family>.cpp
// and kernels/cuda/<family>.cu. The generated kernels/config.h (included by
// kernels/base.h) defines LOOM_CUDA_<FAMILY> to 1 when the family's .cu file is
// part of a CUDA build and to 0 otherwise, so a CPU-only
// build compiles the CUDA side out entirely and an op on a CUDA tensor whose
// family has no CUDA kernel is a clear error instead of a link failure.
#pragma once

#include "kernels/base.h"

namespace loom::kernels {
[[noreturn]] void no_cuda_kernel(const char* fn);
}  // namespace loom::kernels

#define LOOM_CAT_(a, b) a##b
#define LOOM_CAT(a, b) LOOM_CAT_(a, b)
#define LOOM_CUDA_CALL_1(fn, ...) ::loom::kernels::cuda::fn(__VA_ARGS__)
#define LOOM_CUDA_CALL_0(fn, ...) ::loom::kernels::no_cuda_kernel(#fn)

// LOOM_DISPATCH(ctx, LOOM_CUDA_ELEMENTWISE, unary, ctx, ...): run kernel `fn` on
// the device of `ctx`.
#define LOOM_DISPATCH(ctx, has_cuda, fn, ...)                  \
  do {                                                        \
    if ((ctx).device.is_cuda()) {                             \
      LOOM_CAT(LOOM_CUDA_CALL_, has_cuda)(fn, __VA_ARGS__);   \
    } else {                                                  \
      ::loom::kernels::cpu::fn(__VA_ARGS__);                  \
    }                                                         \
  } while (0)

// Declares a family's entry points for the CPU and, when built, for CUDA.
#define LOOM_DECLARE_KERNELS(has_cuda, API) \
  namespace loom::kernels::cpu {            \
  API                                       \
  }                                         \
  LOOM_CAT(LOOM_DECLARE_CUDA_, has_cuda)(API)
#define LOOM_DECLARE_CUDA_1(API) \
  namespace loom::kernels::cuda { \
  API                            \
  }
#define LOOM_DECLARE_CUDA_0(API)
