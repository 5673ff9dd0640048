// The CUDA emulator's stand-in for NVTX (see cuda_runtime.h): the ranges loom
// pushes are kept on a stack, so tests can check which op a launch ran under.
#pragma once

namespace loom_emu {
void range_push(const char* name);
void range_pop();
}  // namespace loom_emu

inline int nvtxRangePushA(const char* name) {
  loom_emu::range_push(name);
  return 0;
}
inline int nvtxRangePop() {
  loom_emu::range_pop();
  return 0;
}
