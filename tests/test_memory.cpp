// The allocator API of kernels/memory.h on the host: statistics, poisoning,
// and clear errors for CUDA devices that are not there.
#include <cmath>

#include "kernels/block_cache.h"
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
    EXPECT_EQ(during.reserved_bytes, before.reserved_bytes + 8000);  // small blocks are not cached
    EXPECT_EQ(during.device_allocs, before.device_allocs + 1);
    EXPECT_GE(during.peak_allocated_bytes, during.allocated_bytes);
  }
  const kernels::MemoryStats after = kernels::memory_stats(Device::cpu());
  EXPECT_EQ(after.allocated_bytes, before.allocated_bytes);
  EXPECT_EQ(after.reserved_bytes, before.reserved_bytes);
  EXPECT_EQ(after.device_frees, before.device_frees + 1);
}

// Blocks of 128 KiB and more are cached in size bins (kernels/block_cache.h): a loop that frees and
// allocates the same sizes asks the C library for nothing after its first pass, and empty_cache gives
// the cached blocks back.
TEST(Memory, LargeHostBlocksAreCachedInBinsAndReused) {
  EXPECT_EQ(kernels::cache_bin_size(1), 512u);
  EXPECT_EQ(kernels::cache_bin_size(513), 1024u);
  EXPECT_EQ(kernels::cache_bin_size(size_t(1) << 20), size_t(1) << 20);
  EXPECT_EQ(kernels::cache_bin_size((size_t(1) << 20) + 1), (size_t(5) << 18));  // a quarter of 2^20 up
  EXPECT_EQ(kernels::cache_bin_size(size_t(3) << 20), size_t(3) << 20);
  kernels::empty_cache(Device::cpu());
  const kernels::MemoryStats before = kernels::memory_stats(Device::cpu());
  EXPECT_EQ(before.reserved_bytes, before.allocated_bytes) << "empty_cache leaves only live blocks";
  const int64_t n = 300001;  // 1 200 004 bytes: the bin of 1 310 720 (5·2^18)
  for (int pass = 0; pass < 3; ++pass) {
    Tensor a = full({n}, 1.0), b = full({n}, 2.0);  // two blocks of the bin live at once
    const kernels::MemoryStats during = kernels::memory_stats(Device::cpu());
    EXPECT_EQ(during.allocated_bytes, before.allocated_bytes + 2 * 1310720);
    EXPECT_EQ(during.device_allocs, before.device_allocs + 2) << "pass " << pass << " asked the C library again";
  }
  const kernels::MemoryStats cached = kernels::memory_stats(Device::cpu());
  EXPECT_EQ(cached.allocated_bytes, before.allocated_bytes);
  EXPECT_EQ(cached.reserved_bytes, before.reserved_bytes + 2 * 1310720);
  kernels::empty_cache(Device::cpu());
  const kernels::MemoryStats emptied = kernels::memory_stats(Device::cpu());
  EXPECT_EQ(emptied.reserved_bytes, before.reserved_bytes);
  EXPECT_EQ(emptied.device_frees, before.device_frees + 2);
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
