// The CUDA device runtime behind kernels/memory.h: the caching allocator,
// copies between host and devices, device queries.
//
// Caching allocator: kernels/block_cache.h (the bins, the free lists, the counters), one
// cache per device. When cudaMalloc fails the device's cached blocks are released and the
// call is retried once; a second failure is a loom::Error giving the request and
// cudaMemGetInfo's free/total.
//
// Streams: a freed block is reused at once, without waiting for the kernels
// that last used it, because every loom launch goes to one stream (ctx.stream:
// the default stream, or during a graph capture the capture stream, a blocking
// stream ordered with it): the next user's kernels queue behind them. Work on
// several streams would need per-block stream tracking (PyTorch's
// recordStream) before it could share this cache.
//
// Graph pools (kernels/graph.h): while a device is captured, its allocations
// come from the capture's pool (its own free lists, or cudaMalloc in relaxed
// capture mode) and every block freed meanwhile joins the pool, wherever it
// came from: the graph may read or write it on every replay. A pool block freed
// later goes back to its pool while the pool lives; a pool dies with its graph
// and gives its free blocks to the device's cache (those still held by tensors
// go there when they are freed).
//
// The allocator state is leaked at exit on purpose: tensors held in static
// storage are freed during static destruction, possibly after this file's
// statics, and the driver may already be tearing the context down then.
#include <iomanip>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "kernels/block_cache.h"
#include "kernels/cuda/launch.h"
#include "kernels/graph.h"

namespace loom::kernels::cuda {
namespace {

// "1.5 GiB (1610612736 bytes)": readable, and exact.
std::string format_bytes(size_t n) {
  constexpr const char* kUnits[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(n);
  int u = 0;
  for (; v >= 1024 && u < 5; ++u) v /= 1024;
  if (u == 0) return str(n, " bytes");
  std::ostringstream os;
  os << std::setprecision(3) << v << ' ' << kUnits[u] << " (" << n << " bytes)";
  return os.str();
}

struct Devices {
  int count = 0;
  std::string why_none;  // cudaGetDeviceCount's error when count == 0
  std::vector<int> sm_counts;
};

// Queried once: CUDA_VISIBLE_DEVICES and the driver are fixed for the process.
// No driver or no GPU is not an error here: count is 0.
const Devices& devices() {
  static const Devices d = [] {
    Devices r;
    const cudaError_t e = cudaGetDeviceCount(&r.count);
    if (e != cudaSuccess) {
      cudaGetLastError();
      r.count = 0;
      r.why_none = str(cudaGetErrorName(e), ": ", cudaGetErrorString(e));
    } else if (r.count == 0) {
      r.why_none = "the driver reports none";
    }
    for (int i = 0; i < r.count; ++i) {
      int sms = 0;
      LOOM_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, i));
      r.sm_counts.push_back(sms);
    }
    return r;
  }();
  return d;
}

BlockCache& cache(int device) {
  static BlockCache* caches = new BlockCache[std::max(1, devices().count)];  // leaked: see the top
  return caches[device];
}

// Per device, guarded by its cache's mutex: the pool being filled by a capture,
// and the owner of every block that belongs to a pool.
struct Pools {
  GraphPool* open = nullptr;
  std::unordered_map<void*, GraphPool*> owner;
};
Pools& pools(int device) {
  static Pools* all = new Pools[std::max(1, devices().count)];  // leaked: see the top
  return all[device];
}

// Returns every cached block of the device to the driver. Caller holds c.mutex.
void release_cached(int device, BlockCache& c) {
  DeviceGuard guard(device);
  c.release_all([](void* p) { LOOM_CUDA_CHECK(cudaFree(p)); });
}

// A fresh block of `size` bytes for a request of `requested`. Caller holds c.mutex.
void* device_malloc(int device, size_t size, size_t requested, BlockCache& c) {
  DeviceGuard guard(device);
  RelaxedCaptureMode relaxed;  // an allocation during a capture is the graph pool's, not part of the graph
  void* p = nullptr;
  cudaError_t e = cudaMalloc(&p, size);
  if (e == cudaErrorMemoryAllocation) {  // maybe the cache holds what we need: give it back, retry once
    cudaGetLastError();
    release_cached(device, c);
    e = cudaMalloc(&p, size);
  }
  if (e == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    size_t free = 0, total = 0;
    if (cudaMemGetInfo(&free, &total) != cudaSuccess) cudaGetLastError();
    throw Error(str("CUDA out of memory on cuda:", device, ": asked for ", format_bytes(requested), " (a block of ",
                    format_bytes(size), "); the device has ", format_bytes(free), " free of ", format_bytes(total),
                    "; loom holds ", format_bytes(c.stats.allocated_bytes), " in live tensors"));
  }
  if (e != cudaSuccess)
    throw_cuda_error(str("cudaMalloc(", size, " bytes)"), __FILE__, __LINE__, cudaGetErrorName(e),
                     cudaGetErrorString(e));
  c.obtained(size);
  return p;
}

}  // namespace

struct GraphPool {
  int device;
  BlockCache free;  // its free blocks by bin (only the lists: the counters are the device cache's)
  ~GraphPool() {
    BlockCache& c = cache(device);
    std::lock_guard<std::mutex> lock(c.mutex);
    Pools& ps = pools(device);
    for (auto it = ps.owner.begin(); it != ps.owner.end();)
      it = it->second == this ? ps.owner.erase(it) : std::next(it);
    for (auto& [size, blocks] : free.free_blocks)
      for (void* p : blocks) c.put(size, p);
  }
};

std::shared_ptr<GraphPool> open_graph_pool(int device) {
  BlockCache& c = cache(device);
  std::lock_guard<std::mutex> lock(c.mutex);
  Pools& ps = pools(device);
  LOOM_CHECK(!ps.open, "CUDA graph capture: cuda:", device, " already has a memory pool open");
  auto pool = std::make_shared<GraphPool>();
  pool->device = device;
  ps.open = pool.get();
  return pool;
}

void close_graph_pool(int device) {
  BlockCache& c = cache(device);
  std::lock_guard<std::mutex> lock(c.mutex);
  pools(device).open = nullptr;
}

namespace {
cudaStream_t stream_of(int device) { return static_cast<cudaStream_t>(current_stream(Device::cuda(device))); }

// What a graph cannot hold, refused before CUDA would invalidate the capture.
void refuse_during_capture(int device, const char* what) {
  if (capturing(device))
    throw Error(str(what, " on cuda:", device, " during CUDA graph capture: a captured step cannot ",
                    "read device values on the host (item(), to_vector(), printing), copy host data in "
                    "(a new batch, from_vector) or wait for the device; do that outside the captured step"));
}
}  // namespace

void check_device(int device) {
  const Devices& d = devices();
  if (device >= 0 && device < d.count) return;
  if (d.count == 0)
    throw Error(str("cuda:", device, " was requested, but no CUDA device is visible (", d.why_none, ")"));
  throw Error(str("cuda:", device, " was requested, but only ", d.count, " CUDA device", d.count == 1 ? "" : "s",
                  " exist (cuda:0 .. cuda:", d.count - 1, ")"));
}

int sm_count(int device) { return devices().sm_counts.at(device); }

int device_count() { return devices().count; }

void* allocate(int device, size_t bytes) {
  check_device(device);
  const size_t size = cache_bin_size(bytes);
  BlockCache& c = cache(device);
  std::lock_guard<std::mutex> lock(c.mutex);
  Pools& ps = pools(device);
  void* p = nullptr;
  if (ps.open) {
    p = ps.open->free.take(size);
    if (!p) p = device_malloc(device, size, bytes, c);
    ps.owner[p] = ps.open;
  } else {
    p = c.take(size);
    if (!p) p = device_malloc(device, size, bytes, c);
  }
  c.handed_out(size);
  return p;
}

void deallocate(int device, void* p, size_t bytes) {
  const size_t size = cache_bin_size(bytes);
  BlockCache& c = cache(device);
  std::lock_guard<std::mutex> lock(c.mutex);
  c.stats.allocated_bytes -= size;
  Pools& ps = pools(device);
  if (ps.owner.empty() && !ps.open) {  // no graph: the common case
    c.put(size, p);
    return;
  }
  const auto it = ps.owner.find(p);
  GraphPool* pool = it != ps.owner.end() ? it->second : ps.open;
  if (!pool) {
    c.put(size, p);
    return;
  }
  ps.owner[p] = pool;  // a block freed during a capture joins its pool
  pool->free.put(size, p);
}

MemoryStats memory_stats(int device) {
  check_device(device);
  BlockCache& c = cache(device);
  std::lock_guard<std::mutex> lock(c.mutex);
  return c.stats;
}

void empty_cache(int device) {
  check_device(device);
  refuse_during_capture(device, "empty_cache");
  BlockCache& c = cache(device);
  std::lock_guard<std::mutex> lock(c.mutex);
  release_cached(device, c);
}

void fill_bytes(int device, void* p, int value, size_t n) {
  DeviceGuard guard(device);
  LOOM_CUDA_CHECK(cudaMemsetAsync(p, value, n, stream_of(device)));
}

void copy_bytes(Device dst_dev, void* dst, Device src_dev, const void* src, size_t n) {
  if (dst_dev.is_cuda() && !src_dev.is_cuda()) refuse_during_capture(dst_dev.index, "a copy from the host");
  if (src_dev.is_cuda() && !dst_dev.is_cuda()) refuse_during_capture(src_dev.index, "a copy to the host");
  if (dst_dev.is_cuda() && src_dev.is_cuda() && dst_dev.index != src_dev.index) {
    refuse_during_capture(dst_dev.index, "a copy between devices");
    refuse_during_capture(src_dev.index, "a copy between devices");
    check_device(dst_dev.index);
    check_device(src_dev.index);
    // Serialized with all work on both devices, so it sees src complete.
    LOOM_CUDA_CHECK(cudaMemcpyPeer(dst, dst_dev.index, src, src_dev.index, n));
    return;
  }
  DeviceGuard guard(dst_dev.is_cuda() ? dst_dev.index : src_dev.index);
  if (dst_dev.is_cuda() && src_dev.is_cuda()) {
    // Same device: queued on loom's stream behind the kernels that wrote src.
    LOOM_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, stream_of(dst_dev.index)));
  } else {
    // Pageable host memory: cudaMemcpy runs after the default stream's queued work
    // and returns once the host buffer may be read (device → host) or reused
    // (host → device; later kernels on the stream queue behind the transfer).
    LOOM_CUDA_CHECK(cudaMemcpy(dst, src, n, dst_dev.is_cuda() ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToHost));
  }
}

void synchronize(int device) {
  refuse_during_capture(device, "a synchronization");
  DeviceGuard guard(device);
  LOOM_CUDA_CHECK(cudaDeviceSynchronize());
}

}  // namespace loom::kernels::cuda
