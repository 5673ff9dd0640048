#include "kernels/memory.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "kernels/block_cache.h"
#include "kernels/dispatch.h"
#include "kernels/graph.h"

// AddressSanitizer: a cached host block is poisoned until it is handed out again.
#if defined(__SANITIZE_ADDRESS__)
#define LOOM_HAS_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LOOM_HAS_ASAN 1
#endif
#endif
#if defined(LOOM_HAS_ASAN)
#include <sanitizer/asan_interface.h>
#define LOOM_ASAN_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define LOOM_ASAN_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define LOOM_ASAN_POISON(p, n) ((void)(p), (void)(n))
#define LOOM_ASAN_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

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

// Host blocks from this size on are cached (kernels/block_cache.h): glibc's mmap threshold.
constexpr size_t kHostCachedFrom = size_t(128) << 10;

// The host's cache and counters, leaked at exit: tensors in static storage are freed during
// static destruction, possibly after this file's statics.
BlockCache& host_cache() {
  static BlockCache* c = new BlockCache;
  return *c;
}
// 64-byte alignment: whole cache lines, and safe for 512-bit vector loads. Cached sizes are
// bins (multiples of 512 bytes), the others whole cache lines.
size_t host_block_size(size_t bytes) {
  if (bytes >= kHostCachedFrom) return cache_bin_size(bytes);
  return bytes == 0 ? 64 : ((bytes + 63) / 64) * 64;
}
// Returns a cached block to the C library (unpoisoned first: ASan checks the block free() is given).
void free_host_block(void* p) {
  LOOM_ASAN_UNPOISON(p, kCacheMinBlock);
  std::free(p);
}
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
  const size_t size = host_block_size(bytes);
  BlockCache& c = host_cache();
  void* p = nullptr;
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    if (size >= kHostCachedFrom && (p = c.take(size))) {
      LOOM_ASAN_UNPOISON(p, size);
    } else {
      p = std::aligned_alloc(64, size);
      if (!p && size >= kHostCachedFrom) {  // maybe the cache holds what we need: give it back, retry once
        c.release_all(free_host_block);
        p = std::aligned_alloc(64, size);
      }
      LOOM_CHECK(p, "allocate: out of host memory asking for ", bytes, " bytes (loom holds ", c.stats.allocated_bytes,
                 " bytes in live tensors)");
      c.obtained(size);
    }
    c.handed_out(size);
  }
  if (poison_allocations) std::memset(p, 0xFF, size);
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
  const size_t size = host_block_size(bytes);
  BlockCache& c = host_cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  c.stats.allocated_bytes -= size;
  if (size >= kHostCachedFrom) {
    LOOM_ASAN_POISON(p, size);  // a use after free of a cached block is still AddressSanitizer's to report
    c.put(size, p);
  } else {
    std::free(p);
    c.stats.reserved_bytes -= size;
    ++c.stats.device_frees;
  }
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
  BlockCache& c = host_cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return c.stats;
}

void empty_cache(Device d) {
  if (d.is_cpu()) {
    BlockCache& c = host_cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    c.release_all(free_host_block);
    return;
  }
#if LOOM_WITH_CUDA
  cuda::empty_cache(d.index);
#else
  no_cuda("empty_cache");
#endif
}

#if !LOOM_WITH_CUDA
// CUDA graphs (kernels/graph.h) without a CUDA backend: nothing is ever captured.
struct DeviceGraph {};
void begin_capture(Device) { no_cuda("CUDA graph capture"); }
std::shared_ptr<DeviceGraph> end_capture(Device) { no_cuda("CUDA graph capture"); }
void abandon_capture(Device) noexcept {}
bool capturing(Device) { return false; }
void* current_stream(Device) { return nullptr; }
std::pair<uint64_t*, const uint64_t*> capture_word(Device) { no_cuda("CUDA graph capture"); }
void replay(DeviceGraph&, const std::function<void()>&) { no_cuda("CUDA graph replay"); }
RestageScope::RestageScope(DeviceGraph& g) : g_(g) { no_cuda("CUDA graph replay"); }
RestageScope::~RestageScope() = default;
size_t RestageScope::done() const { return 0; }
size_t RestageScope::captured() const { return 0; }
#endif

}  // namespace loom::kernels
