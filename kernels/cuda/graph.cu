// CUDA graph capture and replay (kernels/graph.h): the capture stream of each
// device, the graph with its memory pool and pinned memory, and the optimizer
// calls' restaging.
//
// Capture runs in cudaStreamCaptureModeGlobal, the strict mode: a call that
// cannot be part of a graph, from any thread, invalidates the capture, and
// end_capture reports it. The allocator's own cudaMalloc and the pinned buffers
// of the graph are made in relaxed mode (RelaxedCaptureMode): they are not
// recorded, they belong to the graph's lifetime.
//
// The capture stream is a blocking stream (cudaStreamCreate's default): work
// on it waits for the legacy default stream's earlier work and the other way
// round, so eager steps and replays order as if on one stream.
#include <algorithm>
#include <atomic>
#include <mutex>
#include <string>
#include <vector>

#include "kernels/cuda/launch.h"
#include "kernels/graph.h"
#include "kernels/memory.h"

namespace loom::kernels {

// A pinned buffer a captured call's copy reads (an optimizer's step, EMA::update), and which call made it.
struct StagingRecord {
  void* host = nullptr;
  size_t bytes = 0;
  const char* op = "";
  bool values = false;  // it holds per-call values, restaged by each replay's refresh
};

struct DeviceGraph {
  int device = 0;
  cudaStream_t stream = nullptr;
  cudaGraphExec_t exec = nullptr;
  std::shared_ptr<cuda::GraphPool> pool;
  std::vector<StagingRecord> staging;
  std::vector<void*> pinned;        // the host words of capture_word
  std::vector<void*> device_words;  // their device words (from the pool)

  ~DeviceGraph() {
    // Best effort: a destructor must not throw. The graph may still run.
    if (stream) cudaStreamSynchronize(stream);
    if (exec) cudaGraphExecDestroy(exec);
    for (void* p : device_words) deallocate(Device::cuda(device), p, sizeof(uint64_t));
    for (void* p : pinned) cudaFreeHost(p);
    for (const StagingRecord& r : staging) cudaFreeHost(r.host);
    pool.reset();  // the pool's blocks go back to the device's cache
    if (stream) cudaStreamDestroy(stream);
    cudaGetLastError();
  }
};

namespace cuda {
namespace {

// The capture under way on each device (null: none). Written by the capturing
// thread between the capture's begin and end, read by current_stream on every op.
struct Active {
  std::atomic<cudaStream_t> stream{nullptr};
  std::unique_ptr<DeviceGraph> graph;  // being filled: stream, pool, staging, words
  std::mutex mutex;
};
Active& active(int device) {
  static Active* all = new Active[std::max(1, device_count())];  // leaked like the allocator: see memory.cu
  return all[device];
}

// The RestageScope alive on this thread: its graph, the staging record it has reached
// and how many calls it has restaged.
struct Restage {
  DeviceGraph* graph = nullptr;
  size_t next = 0, done = 0;
};
thread_local Restage restage;

void* pinned_buffer(size_t bytes) {
  RelaxedCaptureMode relaxed;
  void* p = nullptr;
  LOOM_CUDA_CHECK(cudaMallocHost(&p, bytes));
  return p;
}

// The captured calls a replay's refresh restages: those with per-call values.
size_t restaged_calls(const DeviceGraph& g) {
  return static_cast<size_t>(
      std::count_if(g.staging.begin(), g.staging.end(), [](const StagingRecord& r) { return r.values; }));
}

}  // namespace

bool capturing(int device) { return device < device_count() && active(device).stream.load() != nullptr; }

bool restaging() { return restage.graph != nullptr; }

void* graph_staging(int device, size_t bytes, const char* op, bool values) {
  if (restage.graph) {
    DeviceGraph& g = *restage.graph;
    LOOM_CHECK(g.device == device, op, ": restaging a graph of cuda:", g.device, " with a call on cuda:", device);
    LOOM_CHECK(values, op, ": a call without per-call values in a replay's refresh (only an optimizer's "
               "step() and EMA::update restage there)");
    while (restage.next < g.staging.size() && !g.staging[restage.next].values) ++restage.next;
    LOOM_CHECK(restage.next < g.staging.size(), op, ": a replay's refresh makes more restaged calls (optimizer steps, "
               "EMA updates: ",
               restage.done + 1, ") than the capture did (", restaged_calls(g), ")");
    const StagingRecord& r = g.staging[restage.next++];
    ++restage.done;
    LOOM_CHECK(std::string(r.op) == op && r.bytes == bytes, "restaged call ", restage.done,
               " of a replay's refresh is ", op, " over ", bytes, " staged bytes, but the captured one was ", r.op,
               " over ", r.bytes, " (did the set of parameters with gradients, or the order of the optimizer steps and "
               "EMA updates, change since the capture?)");
    return r.host;
  }
  if (!capturing(device)) return nullptr;
  Active& a = active(device);
  std::lock_guard<std::mutex> lock(a.mutex);
  a.graph->staging.push_back({pinned_buffer(bytes), bytes, op, values});
  return a.graph->staging.back().host;
}

}  // namespace cuda

using cuda::active;

// Ends the bookkeeping of d's capture (its stream no longer current, its pool closed) and
// hands over the graph being filled; the caller ends the CUDA capture itself.
static std::unique_ptr<DeviceGraph> take_capture(Device d) {
  cuda::Active& a = active(d.index);
  std::unique_ptr<DeviceGraph> g;
  {
    std::lock_guard<std::mutex> lock(a.mutex);
    g = std::move(a.graph);
    a.stream = nullptr;
  }
  cuda::close_graph_pool(d.index);
  return g;
}

void begin_capture(Device d) {
  LOOM_CHECK(d.is_cuda(), "CUDA graph capture: needs a CUDA device, got ", d);
  cuda::check_device(d.index);
  cuda::Active& a = active(d.index);
  std::lock_guard<std::mutex> lock(a.mutex);
  LOOM_CHECK(!a.graph, "CUDA graph capture: ", d, " is already being captured");
  auto g = std::make_unique<DeviceGraph>();
  g->device = d.index;
  cuda::DeviceGuard guard(d.index);
  // Work issued before the capture (on the legacy stream) must be finished or
  // ordered before the graph's first launch: the blocking capture stream sees to that.
  LOOM_CUDA_CHECK(cudaStreamCreate(&g->stream));
  g->pool = cuda::open_graph_pool(d.index);
  const cudaError_t e = cudaStreamBeginCapture(g->stream, cudaStreamCaptureModeGlobal);
  if (e != cudaSuccess) {
    cuda::close_graph_pool(d.index);
    cuda::throw_cuda_error("cudaStreamBeginCapture", __FILE__, __LINE__, cudaGetErrorName(e), cudaGetErrorString(e));
  }
  a.stream = g->stream;
  a.graph = std::move(g);
}

std::shared_ptr<DeviceGraph> end_capture(Device d) {
  LOOM_CHECK(capturing(d), "CUDA graph capture: ", d, " is not being captured");
  std::unique_ptr<DeviceGraph> g = take_capture(d);
  cuda::DeviceGuard guard(d.index);
  cudaGraph_t graph = nullptr;
  const cudaError_t e = cudaStreamEndCapture(g->stream, &graph);
  if (e != cudaSuccess)
    throw Error(str("CUDA graph capture of ", d, " failed: ", cudaGetErrorName(e), " (", cudaGetErrorString(e),
                    "): the captured work made a call a graph cannot hold (a synchronization, a copy from "
                    "pageable host memory, a cudaMalloc); see the runtime's message"));
  const cudaError_t ie = cudaGraphInstantiate(&g->exec, graph, 0);
  cudaGraphDestroy(graph);
  if (ie != cudaSuccess)
    cuda::throw_cuda_error("cudaGraphInstantiate", __FILE__, __LINE__, cudaGetErrorName(ie), cudaGetErrorString(ie));
  return std::shared_ptr<DeviceGraph>(std::move(g));
}

void abandon_capture(Device d) noexcept {
  if (!capturing(d)) return;
  std::unique_ptr<DeviceGraph> g = take_capture(d);
  cudaGraph_t graph = nullptr;
  if (cudaStreamEndCapture(g->stream, &graph) == cudaSuccess && graph) cudaGraphDestroy(graph);
  cudaGetLastError();
}

bool capturing(Device d) { return d.is_cuda() && cuda::capturing(d.index); }

void* current_stream(Device d) {
  if (!d.is_cuda() || d.index >= cuda::device_count()) return nullptr;
  return active(d.index).stream.load(std::memory_order_relaxed);
}

std::pair<uint64_t*, const uint64_t*> capture_word(Device d) {
  LOOM_CHECK(capturing(d), "capture_word: ", d, " is not being captured");
  cuda::Active& a = active(d.index);
  std::lock_guard<std::mutex> lock(a.mutex);
  DeviceGraph& g = *a.graph;
  auto* host = static_cast<uint64_t*>(cuda::pinned_buffer(sizeof(uint64_t)));
  *host = 0;
  g.pinned.push_back(host);
  void* dev = allocate(d, sizeof(uint64_t));  // from the capture's pool
  g.device_words.push_back(dev);
  cuda::DeviceGuard guard(d.index);
  LOOM_CUDA_CHECK(cudaMemcpyAsync(dev, host, sizeof(uint64_t), cudaMemcpyHostToDevice, g.stream));
  return {host, static_cast<const uint64_t*>(dev)};
}

void replay(DeviceGraph& g, const std::function<void()>& refresh) {
  cuda::DeviceGuard guard(g.device);
  LOOM_CUDA_CHECK(cudaStreamSynchronize(g.stream));  // the pinned memory is read by the last launch until it ends
  refresh();
  LOOM_CUDA_CHECK(cudaGraphLaunch(g.exec, g.stream));
}

RestageScope::RestageScope(DeviceGraph& g) : g_(g) {
  LOOM_CHECK(!cuda::restage.graph, "RestageScope: one is already alive on this thread");
  cuda::restage = {&g, 0};
}
RestageScope::~RestageScope() { cuda::restage = {}; }
size_t RestageScope::done() const { return cuda::restage.done; }
size_t RestageScope::captured() const { return cuda::restaged_calls(g_); }

}  // namespace loom::kernels
