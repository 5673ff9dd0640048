// The tests' main: gtest's, started with the OpenBLAS kernels this CPU supports
// (kernels/gemm.h), as the `loom` command is.
#include <gtest/gtest.h>

#include "kernels/gemm.h"

int main(int argc, char** argv) {
  loom::kernels::restart_with_fast_openblas(argv);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
