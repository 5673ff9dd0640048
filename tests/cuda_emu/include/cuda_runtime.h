// The CUDA emulator's stand-in for <cuda_runtime.h>: the slice of the CUDA
// language and runtime that loom's kernels use, for g++ on a machine with no GPU.
//
// Why: CI (and most development machines) have the CUDA toolkit but no GPU, so
// without this the handwritten kernels in kernels/cuda/ would only ever be
// compiled. With -DLOOM_CUDA=EMULATE the same .cu files are compiled as C++
// against this header and run on the CPU, and tests/cuda/ compares them with the
// CPU backend exactly as it does on a GPU. It checks what a kernel computes:
// indexing, tiling, grid-stride loops, barriers, warp shuffles, host/device
// pointer mix-ups, launch configurations. It says nothing about speed, and it
// cannot see what only hardware shows (data races between threads that the
// emulator happens to run in a safe order, the memory model, occupancy). It is a
// test harness, never a backend: nothing outside tests/ and the EMULATE build
// sees it.
//
// Model: one launch runs its blocks one after another; the threads of a block
// are fibers (ucontext) on one host thread. A fiber runs until it finishes or
// waits at a barrier (__syncthreads, a warp shuffle, __syncwarp); when every
// live thread of the block (or warp) waits there, the barrier opens. Threads
// waiting at different barriers with none able to move is a deadlock, reported
// as a failed launch. "Device memory" is host memory from cudaMalloc, tracked,
// so a kernel argument or a copy that mixes up host and device pointers fails
// as it would on a GPU instead of silently working.
//
// Streams and graphs: work on a stream runs when it is issued (there is nothing
// to overlap), except on a stream under capture (cudaStreamBeginCapture): there
// kernels, copies, fills and cuBLAS calls are recorded, in order, into the
// graph cudaStreamEndCapture returns, and cudaGraphLaunch runs them again,
// reading their arguments and host source buffers as they are then. What a
// capture forbids on a GPU fails here too: using the legacy default stream,
// synchronizing, cudaMemcpy, cudaMalloc/cudaFree (unless the thread switched
// to cudaStreamCaptureModeRelaxed) and asynchronous copies from pageable host
// memory invalidate the capture (cudaErrorStreamCaptureUnsupported /
// cudaErrorStreamCaptureImplicit, then cudaErrorStreamCaptureInvalidated).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <cmath>
#include <functional>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>

// ---- the language ----------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
// Shared memory is per block; blocks run one at a time, so a function-local
// static is exactly one block's shared array.
#define __shared__ static

struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

constexpr int warpSize = 32;

// The running thread's coordinates, set by the scheduler before it switches to
// a thread (variables, not macros: cudaLaunchConfig_t has members of these names).
inline thread_local dim3 threadIdx, blockIdx, blockDim, gridDim;

namespace loom_emu {

void sync_block();  // __syncthreads
void sync_warp();   // __syncwarp, and the two halves of a shuffle
// A warp shuffle moves 8 bytes through the block's lane slots: deposit, wait for
// the warp, read the source lane's slot, wait again so no lane overwrites a slot
// another has yet to read.
uint64_t shuffle_xor_bits(uint64_t bits, int lane_mask, int width);

template <class T>
T shuffle_xor(T v, int lane_mask, int width) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8, "warp shuffles move at most 8 bytes");
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  bits = shuffle_xor_bits(bits, lane_mask, width);
  std::memcpy(&v, &bits, sizeof(T));
  return v;
}

}  // namespace loom_emu

inline void __syncthreads() { loom_emu::sync_block(); }
inline void __syncwarp(unsigned = 0xffffffffu) { loom_emu::sync_warp(); }
template <class T>
T __shfl_xor_sync(unsigned, T v, int lane_mask, int width = warpSize) {
  return loom_emu::shuffle_xor(v, lane_mask, width);
}
// Fibers switch only at barriers, so a read-modify-write is atomic here.
template <class T>
T atomicAdd(T* address, T v) {
  const T old = *address;
  *address = old + v;
  return old;
}
template <class T>
T atomicMin(T* address, T v) {
  const T old = *address;
  *address = v < old ? v : old;
  return old;
}

// CUDA declares the float overloads of the math functions in the global
// namespace (::sqrt(float) is single precision on a GPU); so do we.
using std::ceil, std::cos, std::erf, std::exp, std::expm1, std::fabs, std::floor, std::fmax, std::fmin, std::log,
    std::isfinite, std::isinf, std::isnan, std::log1p, std::pow, std::sin, std::sqrt, std::tanh;

// CUDA's global min/max overloads (device code calls them unqualified).
template <class A, class B>
constexpr std::common_type_t<A, B> min(A a, B b) {
  return b < a ? b : a;
}
template <class A, class B>
constexpr std::common_type_t<A, B> max(A a, B b) {
  return a < b ? b : a;
}

// Round-to-nearest intrinsics: plain IEEE operations on the host (x86-64
// without -ffp-contract=fast does not fuse them either).
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dmul_rn(double a, double b) { return a * b; }

// ---- the runtime -----------------------------------------------------------
enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDevicePointer = 17,
  cudaErrorInvalidDevice = 101,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorLaunchFailure = 719,
  cudaErrorStreamCaptureUnsupported = 900,
  cudaErrorStreamCaptureInvalidated = 901,
  cudaErrorStreamCaptureImplicit = 906,
};
using cudaError = cudaError_t;

enum cudaMemcpyKind {
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
};

enum cudaDeviceAttr { cudaDevAttrMultiProcessorCount = 16 };

// Only the fields loom reads (a real cudaDeviceProp has about a hundred): code
// that reads another one must fail to compile here, not read a made-up value.
struct cudaDeviceProp {
  char name[256];
  int multiProcessorCount;
};

constexpr unsigned cudaEventDisableTiming = 2;

struct CUstream_st;
struct CUevent_st;
struct CUgraph_st;
struct CUgraphExec_st;
using cudaStream_t = CUstream_st*;
using cudaEvent_t = CUevent_st*;
using cudaGraph_t = CUgraph_st*;
using cudaGraphExec_t = CUgraphExec_st*;

enum cudaStreamCaptureMode {
  cudaStreamCaptureModeGlobal = 0,
  cudaStreamCaptureModeThreadLocal = 1,
  cudaStreamCaptureModeRelaxed = 2,
};
enum cudaStreamCaptureStatus {
  cudaStreamCaptureStatusNone = 0,
  cudaStreamCaptureStatusActive = 1,
  cudaStreamCaptureStatusInvalidated = 2,
};

struct cudaLaunchAttribute;
struct cudaLaunchConfig_t {
  dim3 gridDim;
  dim3 blockDim;
  size_t dynamicSmemBytes;
  cudaStream_t stream;
  cudaLaunchAttribute* attrs;
  unsigned numAttrs;
};

cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaGetLastError();
const char* cudaGetErrorName(cudaError_t error);
const char* cudaGetErrorString(cudaError_t error);

cudaError_t cudaMalloc(void** p, size_t bytes);
cudaError_t cudaFree(void* p);
cudaError_t cudaMallocHost(void** p, size_t bytes);
cudaError_t cudaFreeHost(void* p);
cudaError_t cudaMemGetInfo(size_t* free, size_t* total);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream = nullptr);
cudaError_t cudaMemcpyPeer(void* dst, int dst_device, const void* src, int src_device, size_t bytes);
cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t stream = nullptr);

cudaError_t cudaStreamCreate(cudaStream_t* stream);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph);
cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus* status);
cudaError_t cudaThreadExchangeStreamCaptureMode(cudaStreamCaptureMode* mode);
cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long flags = 0);
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec);
cudaError_t cudaGraphDestroy(cudaGraph_t graph);

cudaError_t cudaEventCreate(cudaEvent_t* event);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned flags);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t event);
// Milliseconds of the host clock between the two records. Work finishes before
// its call returns, so this times the emulator on the CPU: a test of the timing
// code around it, never a measurement of a kernel.
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end);
cudaError_t cudaEventDestroy(cudaEvent_t event);

namespace loom_emu {

// True when [p, p + bytes) lies inside one live cudaMalloc block.
bool is_device_range(const void* p, size_t bytes);

// Issues work on `stream`: runs it now, or records it when the stream is being
// captured (a graph launch runs it again); an error when the capture rules
// forbid it (see the top).
cudaError_t issue(cudaStream_t stream, std::function<cudaError_t()> work);

// Runs `body(closure)` once per thread of every block (see the top). Returns
// cudaErrorInvalidConfiguration for a launch a GPU would refuse, and
// cudaErrorLaunchFailure (after printing why) for a deadlock.
cudaError_t run_grid(const cudaLaunchConfig_t& config, void (*body)(void*), void* closure);
// Prints why a launch failed and returns cudaErrorLaunchFailure (also kept for cudaGetLastError).
cudaError_t launch_failure(const char* why);

// A pointer argument must point into device memory (or be null): a host
// pointer handed to a kernel works here but faults on a GPU.
template <class A>
bool is_device_argument(const A& a) {
  if constexpr (std::is_pointer_v<A> && !std::is_function_v<std::remove_pointer_t<A>>)
    return a == nullptr || is_device_range(a, 1);
  return true;
}

}  // namespace loom_emu

// The typed launch of <cuda_runtime.h> (what <<<>>> lowers to): the arguments are
// converted to the kernel's parameter types once; each thread gets its own copy
// of them, as each GPU thread reads its own.
template <class... Params, class... Args>
cudaError_t cudaLaunchKernelEx(const cudaLaunchConfig_t* config, void (*kernel)(Params...), Args&&... args) {
  std::tuple<std::decay_t<Params>...> params(static_cast<Params>(std::forward<Args>(args))...);
  const bool device_pointers = std::apply([](const auto&... p) { return (loom_emu::is_device_argument(p) && ...); },
                                          params);
  if (!device_pointers) return loom_emu::launch_failure("a pointer argument is not in device memory (host or freed)");
  struct Closure {
    void (*kernel)(Params...);
    std::tuple<std::decay_t<Params>...>* params;
  };
  // Shared with a graph that records the launch: a replay runs it with the same arguments.
  auto held = std::make_shared<std::tuple<std::decay_t<Params>...>>(std::move(params));
  const cudaLaunchConfig_t c = *config;
  return loom_emu::issue(c.stream, [c, kernel, held] {
    Closure closure{kernel, held.get()};
    return loom_emu::run_grid(
        c,
        [](void* p) {
          auto* self = static_cast<Closure*>(p);
          std::apply(self->kernel, *self->params);  // by-value parameters: each thread copies them
        },
        &closure);
  });
}
