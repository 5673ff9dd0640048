// The free-block cache behind loom's allocators, host (kernels/memory.cpp) and CUDA
// (kernels/cuda/memory.cu). Asking the system for memory costs more than most of loom's
// kernels take: cudaMalloc tens of microseconds and a device synchronization in cudaFree;
// on the host, glibc serves a large block with mmap, and every page of it faults and is
// zeroed again on first touch (a fifth of a NADE or PixelCNN step). So a freed block goes
// to a free list keyed by its size bin and is handed out again to the next request of the
// same bin. Bins: multiples of 512 bytes up to 1 MiB, then four per power of two (at most
// 25 % waste). Blocks are never split or merged, so a lookup is one hash probe; once a
// training step has run, every bin it uses holds a block and the loop asks the system for
// nothing (memory_stats(...).device_allocs stops growing; the tests check it).
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "kernels/memory.h"

namespace loom::kernels {

inline constexpr size_t kCacheMinBlock = 512;
inline constexpr size_t kCacheSmallLimit = size_t(1) << 20;

// The block size a request of `bytes` gets.
inline size_t cache_bin_size(size_t bytes) {
  if (bytes <= kCacheMinBlock) return kCacheMinBlock;
  if (bytes <= kCacheSmallLimit) return (bytes + kCacheMinBlock - 1) / kCacheMinBlock * kCacheMinBlock;
  const size_t step = std::bit_floor(bytes) / 4;
  return (bytes + step - 1) / step * step;
}

// One device's cached blocks and counters. Every member function expects `mutex` held.
struct BlockCache {
  std::mutex mutex;
  std::unordered_map<size_t, std::vector<void*>> free_blocks;  // bin size → cached blocks
  MemoryStats stats;

  // A cached block of bin `size`, or nullptr when the bin is empty.
  void* take(size_t size) {
    auto it = free_blocks.find(size);
    if (it == free_blocks.end() || it->second.empty()) return nullptr;
    void* p = it->second.back();
    it->second.pop_back();
    return p;
  }
  void put(size_t size, void* p) { free_blocks[size].push_back(p); }
  // Counts a block of `size` fresh from the system.
  void obtained(size_t size) {
    stats.reserved_bytes += size;
    ++stats.device_allocs;
  }
  // Counts a block of `size` handed to a caller, and the peak.
  void handed_out(size_t size) {
    stats.allocated_bytes += size;
    stats.peak_allocated_bytes = std::max(stats.peak_allocated_bytes, stats.allocated_bytes);
  }
  // Gives every cached block back through give_back(p) and forgets it.
  template <class GiveBack>
  void release_all(GiveBack&& give_back) {
    for (auto& [size, blocks] : free_blocks) {
      for (void* p : blocks) {
        give_back(p);
        stats.reserved_bytes -= size;
        ++stats.device_frees;
      }
    }
    free_blocks.clear();
  }
};

}  // namespace loom::kernels
