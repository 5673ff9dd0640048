// Raw device memory: allocation, copies between devices, device queries.
// Both backends cache freed blocks (kernels/block_cache.h); CUDA's runtime is kernels/cuda/memory.cu.
#pragma once

#include "kernels/base.h"

namespace loom::kernels {

void* allocate(Device d, size_t bytes);
void deallocate(Device d, void* p, size_t bytes);
// Copies n bytes; either side may be CPU or CUDA. Synchronous when the
// destination is host memory (the caller is about to read it).
void copy_bytes(Device dst_dev, void* dst, Device src_dev, const void* src, size_t n);
int cuda_device_count();  // 0 in a CPU-only build or without a device
void synchronize(Device d);

// Allocator counters for one device. Blocks are rounded up to size bins and cached
// on free (kernels/block_cache.h), so allocated ≤ reserved. On CUDA every block is
// cached and device_allocs stops growing once a training step has run (steady state:
// no cudaMalloc). On the host only blocks of at least 128 KiB are cached (glibc serves
// those with mmap, a page fault per page on every reuse); smaller ones go straight to
// aligned_alloc and free, which reuse them well, and are counted in device_allocs/frees.
struct MemoryStats {
  size_t allocated_bytes = 0;       // blocks handed out and not yet freed (rounded sizes)
  size_t reserved_bytes = 0;        // obtained from the system: allocated + cached free blocks
  size_t peak_allocated_bytes = 0;  // high-water mark of allocated_bytes
  uint64_t device_allocs = 0;       // calls to cudaMalloc (host: aligned_alloc)
  uint64_t device_frees = 0;        // calls to cudaFree (host: free)
};
MemoryStats memory_stats(Device d);
// Returns the cached free blocks of d to the system.
void empty_cache(Device d);
// Debugging aid: fill every new allocation with 0xFF bytes (NaN for floats, -1
// for integers), so a kernel that leaves part of its output unwritten shows up
// in tests. Off by default.
void set_poison_allocations(bool on);

}  // namespace loom::kernels
