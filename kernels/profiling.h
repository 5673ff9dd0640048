// Named ranges for profilers: NVTX ranges in a CUDA build (kernels/cuda/profiling.cu),
// shown by Nsight Systems and selectable by Nsight Compute (docs/profiling.md);
// nothing at all in a CPU-only build, where both functions are empty inlines.
// Ranges nest: every push is matched by a pop on the same thread.
#pragma once

#include "kernels/config.h"  // LOOM_WITH_CUDA

namespace loom::kernels {

inline constexpr bool kProfilingRanges = LOOM_WITH_CUDA;

#if LOOM_WITH_CUDA
void range_push(const char* name);  // name must outlive the range (a string literal or a static table)
void range_pop();
#else
inline void range_push(const char*) {}
inline void range_pop() {}
#endif

}  // namespace loom::kernels
