// The allocator API of kernels/memory.h on the host: statistics, poisoning,
// and clear errors for CUDA devices that are not there.
#include <cmath>

#include "kernels/memory.h"
#include "tests/gradcheck.h"

using namespace loom;
using namespace loom::testing;

TEST(Memory, HostStatsCountLiveBlocks) {
  const kernels::MemoryStats before = kernels::memory_stats(Device::cpu());
  {
    Tensor t = empty({1000}, TensorOptions{DType::Float64});  // 8000 bytes, a multiple of the 64-byte block
    const kernels::MemoryStats during = kernels::memory_stats(Device::cpu());
    EXPECT_EQ(during.allocated_bytes, before.allocated_bytes + 8000);
    EXPECT_EQ(during.reserved_bytes, during.allocated_bytes);  // no cache on the host
    EXPECT_EQ(during.device_allocs, before.device_allocs + 1);
    EXPECT_GE(during.peak_allocated_bytes, during.allocated_bytes);
  }
  const kernels::MemoryStats after = kernels::memory_stats(Device::cpu());
  EXPECT_EQ(after.allocated_bytes, before.allocated_bytes);
  EXPECT_EQ(after.device_frees, before.device_frees + 1);
  kernels::empty_cache(Device::cpu());  // a no-op on the host
  EXPECT_EQ(kernels::memory_stats(Device::cpu()).allocated_bytes, before.allocated_bytes);
}

TEST(Memory, PoisonedAllocationsAreNanOrMinusOne) {
  kernels::set_poison_allocations(true);
  Tensor f = empty({5}), i = empty({2}, TensorOptions{DType::Int32});
  kernels::set_poison_allocations(false);
  for (float v : f.to_vector<float>()) EXPECT_TRUE(std::isnan(v));
  EXPECT_EQ(i.to_vector<int32_t>(), (std::vector<int32_t>{-1, -1}));
}

TEST(Memory, StatsOfAMissingCudaDeviceAreAClearError) {
  if (cuda_device_count() > 0) GTEST_SKIP() << "a CUDA device is present; this test covers CPU-only machines";
  expect_error([] { kernels::memory_stats(Device::cuda()); }, {"CUDA"});
  expect_error([] { kernels::empty_cache(Device::cuda()); }, {"CUDA"});
}
