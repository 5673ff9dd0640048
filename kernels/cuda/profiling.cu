// NVTX ranges behind kernels/profiling.h (the op ranges of autograd/; each
// kernel launch has its own range from LaunchScope).
#include <nvtx3/nvToolsExt.h>

#include "kernels/profiling.h"

namespace loom::kernels {

void range_push(const char* name) { nvtxRangePushA(name); }
void range_pop() { nvtxRangePop(); }

}  // namespace loom::kernels
