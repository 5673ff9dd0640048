// What every CUDA launcher needs, in one place: the device guard (DeviceGuard),
// the NVTX range, stream and checked kernel launches of a launcher (LaunchScope),
// grid sizes for grid-stride loops, scratch memory from the caching allocator
// (Workspace), and round-to-nearest arithmetic for results that must match the
// CPU bit for bit.
#pragma once

#include <algorithm>
#include <memory>
#include <utility>

#include <cuda_runtime.h>
#include <nvtx3/nvToolsExt.h>

#include "kernels/base.h"
#include "kernels/cuda/check.h"
#include "kernels/memory.h"

namespace loom::kernels::cuda {

// Defined in memory.cu, the device runtime.
int device_count();             // 0 without a driver or a GPU
void check_device(int device);  // a loom::Error naming the device unless cuda:<device> exists
int sm_count(int device);       // streaming multiprocessors (cached)

constexpr int kThreads = 256;  // threads per block of the one-dimensional kernels

// Graph capture (kernels/graph.h), defined in graph.cu. The memory pool of a
// capture is memory.cu's (GraphPool): while a pool is open on a device, its
// allocations come from the pool and its frees go to it.
struct GraphPool;
std::shared_ptr<GraphPool> open_graph_pool(int device);
void close_graph_pool(int device);
bool capturing(int device);
// True while a RestageScope is alive on this thread (launches are refused then,
// but for the optimizer's restaging).
bool restaging();
// The pinned staging buffer of an optimizer call: during a capture of `device`
// a new one the graph owns; during a RestageScope the captured call's own
// (an Error if `op` or `bytes` differ from the captured call's); else null.
// `values`: whether the call stages per-call values (a learning rate) that a
// replay's refresh restages; a call without any (scale, sum_squares) is skipped
// by the restaging.
void* graph_staging(int device, size_t bytes, const char* op, bool values);

// Lets this thread make calls a strict capture forbids (cudaMalloc, cudaMallocHost)
// while its scope lives: the allocator's own, which are not part of the graph.
class RelaxedCaptureMode {
 public:
  RelaxedCaptureMode() { cudaThreadExchangeStreamCaptureMode(&mode_); }
  ~RelaxedCaptureMode() { cudaThreadExchangeStreamCaptureMode(&mode_); }
  RelaxedCaptureMode(const RelaxedCaptureMode&) = delete;
  RelaxedCaptureMode& operator=(const RelaxedCaptureMode&) = delete;

 private:
  cudaStreamCaptureMode mode_ = cudaStreamCaptureModeRelaxed;
};

// Makes cuda:<device> current for the guard's lifetime (restoring the previous
// device on exit), after checking that it exists.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) : device_(device) {
    check_device(device);
    LOOM_CUDA_CHECK(cudaGetDevice(&previous_));
    if (previous_ != device_) LOOM_CUDA_CHECK(cudaSetDevice(device_));
  }
  ~DeviceGuard() {
    if (previous_ != device_) cudaSetDevice(previous_);  // best effort: a destructor must not throw
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int device_;
  int previous_ = 0;
};

// One launcher's scope: the device guard for ctx.device, an NVTX range named
// after the op (so profiles show loom's ops), the stream (ctx.stream; null is
// the legacy default stream), and launch(), the one way kernels are launched.
class LaunchScope {
 public:
  LaunchScope(const KernelCtx& k, const char* name)
      : guard_(k.device.index), name_(name), device_(k.device.index), stream_(static_cast<cudaStream_t>(k.stream)) {
    nvtxRangePushA(name_);
  }
  ~LaunchScope() { nvtxRangePop(); }
  LaunchScope(const LaunchScope&) = delete;
  LaunchScope& operator=(const LaunchScope&) = delete;

  cudaStream_t stream() const { return stream_; }
  const char* name() const { return name_; }
  int device() const { return device_; }
  // Blocks for a grid-stride loop over `items` threads' worth of work: one per
  // `threads` items, capped at what fills every SM once (2048 resident threads
  // per SM on sm_80/sm_90); the loop covers the rest.
  unsigned blocks(int64_t items, int threads = kThreads) const {
    const int64_t want = (items + threads - 1) / threads;
    const int64_t cap = int64_t(sm_count(device_)) * (2048 / threads);
    return static_cast<unsigned>(std::max<int64_t>(1, std::min(want, cap)));
  }
  // kernel<<<grid, block, 0, stream()>>>(args...), through cudaLaunchKernelEx: the typed runtime
  // entry point that <<<>>> lowers to, which also returns a bad configuration at once, so every
  // launch is checked here and its error names the op. Being an ordinary C++ call (no nvcc-only
  // syntax), it also lets the launchers compile against a CPU emulation of the CUDA runtime.
  // Faults inside a kernel are asynchronous and surface at the next synchronizing call.
  template <class... Params, class... Args>
  void launch(void (*kernel)(Params...), dim3 grid, dim3 block, Args&&... args) const {
    if (restaging())
      throw Error(str(name_, ": a kernel launch while a CUDA graph's optimizer calls are restaged (only the "
                             "optimizer's step() may run in a replay's refresh)"));
    cudaLaunchConfig_t config{};
    config.gridDim = grid;
    config.blockDim = block;
    config.dynamicSmemBytes = 0;
    config.stream = stream_;
    config.attrs = nullptr;
    config.numAttrs = 0;
    const cudaError_t status = cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...);
    if (status != cudaSuccess)
      throw_cuda_error(str("kernel launch in ", name_), __FILE__, __LINE__, cudaGetErrorName(status),
                       cudaGetErrorString(status));
  }

 private:
  DeviceGuard guard_;
  const char* name_;
  int device_;
  cudaStream_t stream_;
};

// Scratch device memory from the caching allocator, given back at scope exit.
// Giving it back while kernels that use it are still queued is safe: launches
// and the allocator's reuse are ordered on the one stream loom uses.
class Workspace {
 public:
  Workspace(int device, size_t bytes)
      : device_(Device::cuda(device)), bytes_(bytes), p_(::loom::kernels::allocate(device_, bytes)) {}
  ~Workspace() { ::loom::kernels::deallocate(device_, p_, bytes_); }
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
  template <class T>
  T* as() const {
    return static_cast<T*>(p_);
  }

 private:
  Device device_;
  size_t bytes_;
  void* p_;
};

// Round-to-nearest arithmetic that nvcc will not contract into an FMA, for
// results that must equal the CPU's bit for bit (the x86-64 reference build
// does not fuse either: the baseline instruction set has no FMA).
__device__ __forceinline__ float add_rn(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ double add_rn(double a, double b) { return __dadd_rn(a, b); }
__device__ __forceinline__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double mul_rn(double a, double b) { return __dmul_rn(a, b); }

}  // namespace loom::kernels::cuda
