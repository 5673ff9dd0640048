// What the CUDA emulator (include/cuda_runtime.h) tells its own tests beyond
// the CUDA API: how many kernels ran, and under which NVTX ranges.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace loom_emu {

// Kernel launches so far (every launch that passed the configuration checks).
int64_t launches();
// The NVTX range stack (outermost first) when the last kernel was launched.
std::vector<std::string> last_launch_ranges();

}  // namespace loom_emu
