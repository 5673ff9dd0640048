#include "kernels/memory.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "kernels/dispatch.h"

namespace loom::kernels {

#if LOOM_WITH_CUDA
namespace cuda {
void* allocate(int device, size_t bytes);
void deallocate(int device, void* p, size_t bytes);
void copy_bytes(Device dst_dev, void* dst, Device src_dev, const void* src, size_t n);
void fill_bytes(int device, void* p, int value, size_t n);
int device_count();
void synchronize(int device);
MemoryStats memory_stats(int device);
void empty_cache(int device);
}  // namespace cuda
#endif

[[noreturn]] void no_cuda_kernel(const char* fn) {
#if LOOM_WITH_CUDA
  throw Error(str("kernel '", fn, "' has no CUDA implementation yet; move the tensors to the CPU"));
#else
  throw Error(str("kernel '", fn, "' was asked to run on CUDA, but this loom build has no CUDA backend "
                  "(rebuild with the CUDA toolkit installed, or use --device cpu)"));
#endif
}

#if !LOOM_WITH_CUDA
[[noreturn]] static void no_cuda(const char* what) {
  throw Error(str(what, ": this loom build has no CUDA backend (configure with the CUDA toolkit "
                        "installed and -DLOOM_CUDA=ON, or use the CPU)"));
}
#endif

namespace {
std::atomic<bool> poison_allocations{false};

// Host counters (the host allocator has no cache, so reserved == allocated).
struct HostCounters {
  std::atomic<size_t> allocated{0}, peak{0};
  std::atomic<uint64_t> allocs{0}, frees{0};
};
HostCounters& host_counters() {
  static HostCounters c;
  return c;
}
// 64-byte alignment: whole cache lines, and safe for 512-bit vector loads.
size_t host_block_size(size_t bytes) { return bytes == 0 ? 64 : ((bytes + 63) / 64) * 64; }
}  // namespace

void set_poison_allocations(bool on) { poison_allocations = on; }

void* allocate(Device d, size_t bytes) {
  if (d.is_cuda()) {
#if LOOM_WITH_CUDA
    void* p = cuda::allocate(d.index, bytes);
    if (poison_allocations) cuda::fill_bytes(d.index, p, 0xFF, bytes);
    return p;
#else
    no_cuda("allocate");
#endif
  }
  const size_t rounded = host_block_size(bytes);
  void* p = std::aligned_alloc(64, rounded);
  LOOM_CHECK(p, "allocate: out of host memory asking for ", bytes, " bytes");
  if (poison_allocations) std::memset(p, 0xFF, rounded);
  HostCounters& c = host_counters();
  const size_t now = c.allocated += rounded;
  size_t peak = c.peak.load();
  while (now > peak && !c.peak.compare_exchange_weak(peak, now)) {
  }
  ++c.allocs;
  return p;
}

void deallocate(Device d, void* p, size_t bytes) {
  if (!p) return;
  if (d.is_cuda()) {
#if LOOM_WITH_CUDA
    cuda::deallocate(d.index, p, bytes);
#endif
    return;
  }
  std::free(p);
  HostCounters& c = host_counters();
  c.allocated -= host_block_size(bytes);
  ++c.frees;
}

void copy_bytes(Device dst_dev, void* dst, Device src_dev, const void* src, size_t n) {
  if (n == 0) return;
  if (dst_dev.is_cpu() && src_dev.is_cpu()) {
    std::memcpy(dst, src, n);
    return;
  }
#if LOOM_WITH_CUDA
  cuda::copy_bytes(dst_dev, dst, src_dev, src, n);
#else
  no_cuda("copy");
#endif
}

int cuda_device_count() {
#if LOOM_WITH_CUDA
  return cuda::device_count();
#else
  return 0;
#endif
}

void synchronize(Device d) {
#if LOOM_WITH_CUDA
  if (d.is_cuda()) cuda::synchronize(d.index);
#endif
}

MemoryStats memory_stats(Device d) {
  if (d.is_cuda()) {
#if LOOM_WITH_CUDA
    return cuda::memory_stats(d.index);
#else
    no_cuda("memory_stats");
#endif
  }
  const HostCounters& c = host_counters();
  MemoryStats s;
  s.allocated_bytes = s.reserved_bytes = c.allocated;
  s.peak_allocated_bytes = c.peak;
  s.device_allocs = c.allocs;
  s.device_frees = c.frees;
  return s;
}

void empty_cache(Device d) {
  if (!d.is_cuda()) return;
#if LOOM_WITH_CUDA
  cuda::empty_cache(d.index);
#else
  no_cuda("empty_cache");
#endif
}

}  // namespace loom::kernels
