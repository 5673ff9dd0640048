// The fixture every CUDA test derives from.
#pragma once

#include <gtest/gtest.h>

#include "autograd/tensor.h"
#include "kernels/memory.h"

namespace loom::testing {

// Skips without a device, with the message "no CUDA device" (never a vacuous
// pass), and poisons every allocation (NaN / -1 bytes) while the test runs, so
// an output element a kernel forgets to write fails the comparison.
class CudaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
    kernels::set_poison_allocations(true);
  }
  void TearDown() override { kernels::set_poison_allocations(false); }
};

}  // namespace loom::testing
