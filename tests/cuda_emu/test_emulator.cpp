// The CUDA emulator's own tests (built only with -DLOOM_CUDA=EMULATE). The
// emulated CUDA suite is only worth something if the emulator runs kernels the
// way a GPU does where it matters: barriers order shared-memory traffic, warp
// shuffles exchange lanes, and what would fault or hang on a GPU fails here too
// instead of quietly working on the host.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <functional>
#include <numeric>
#include <thread>
#include <vector>

#include "autograd/ops.h"
#include "cuda_runtime.h"
#include "tests/cuda_emu/emulator.h"

namespace {

cudaLaunchConfig_t config(dim3 grid, dim3 block) { return {grid, block, 0, nullptr, nullptr, 0}; }

template <class T>
T* device_array(size_t n) {
  void* p = nullptr;
  EXPECT_EQ(cudaMalloc(&p, n * sizeof(T)), cudaSuccess);
  return static_cast<T*>(p);
}

// Block sums by a shared-memory tree: each level reads what other threads wrote
// at the level before, so it is right only if __syncthreads orders the levels;
// the last 32 partials fold through warp shuffles.
__global__ void block_sums(const double* x, int64_t n, double* sums) {
  __shared__ double tree[512];
  const unsigned t = threadIdx.x;
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + t;
  tree[t] = i < n ? x[i] : 0.0;
  __syncthreads();
  for (unsigned half = blockDim.x / 2; half >= 32; half /= 2) {
    if (t < half) tree[t] += tree[t + half];
    __syncthreads();
  }
  if (t < 32) {
    double v = tree[t];
    for (int m = 16; m > 0; m /= 2) v += __shfl_xor_sync(0xffffffffu, v, m);
    if (t == 0) sums[blockIdx.x] = v;
  }
}

TEST(CudaEmulator, BarriersAndShufflesMakeABlockReductionExact) {
  for (int64_t n : {1, 31, 33, 257, 4099}) {
    const unsigned block = 512, blocks = unsigned((n + block - 1) / block);
    std::vector<double> host(n);
    std::iota(host.begin(), host.end(), 1.0);  // integers: every sum is exact
    double* x = device_array<double>(n);
    double* sums = device_array<double>(blocks);
    ASSERT_EQ(cudaMemcpy(x, host.data(), n * sizeof(double), cudaMemcpyHostToDevice), cudaSuccess);
    const cudaLaunchConfig_t c = config(blocks, block);
    ASSERT_EQ(cudaLaunchKernelEx(&c, block_sums, static_cast<const double*>(x), n, sums), cudaSuccess);
    std::vector<double> got(blocks);
    ASSERT_EQ(cudaMemcpy(got.data(), sums, blocks * sizeof(double), cudaMemcpyDeviceToHost), cudaSuccess);
    for (unsigned b = 0; b < blocks; ++b) {
      const double lo = b * block, hi = std::min<double>(n, (b + 1.0) * block);  // Σ_{k=lo+1}^{hi} k
      EXPECT_EQ(got[b], (hi * (hi + 1) - lo * (lo + 1)) / 2) << "n = " << n << ", block " << b;
    }
    cudaFree(x);
    cudaFree(sums);
  }
}

__global__ void coordinates(unsigned* out) {
  const unsigned t = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  const unsigned b = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  out[b * blockDim.x * blockDim.y * blockDim.z + t] = b * 1000 + t;
}

TEST(CudaEmulator, EveryThreadOfAThreeDimensionalGridRunsOnceWithItsCoordinates) {
  const dim3 grid(3, 2, 2), block(5, 3, 2);
  const unsigned n = 12 * 30;
  unsigned* out = device_array<unsigned>(n);
  const cudaLaunchConfig_t c = config(grid, block);
  ASSERT_EQ(cudaLaunchKernelEx(&c, coordinates, out), cudaSuccess);
  std::vector<unsigned> got(n);
  ASSERT_EQ(cudaMemcpy(got.data(), out, n * sizeof(unsigned), cudaMemcpyDeviceToHost), cudaSuccess);
  for (unsigned i = 0; i < n; ++i) EXPECT_EQ(got[i], i / 30 * 1000 + i % 30) << i;
  cudaFree(out);
}

__global__ void divergent_barrier(int* flag) {
  if (threadIdx.x == 0) {
    __syncthreads();
  } else {
    __syncwarp();
  }
  *flag = 1;
}

__global__ void shuffle_from_exited_lane(float* out) {
  if (threadIdx.x == 5) return;
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, float(threadIdx.x), 1);
}

__global__ void write_one(float* out) { out[threadIdx.x] = 1; }

TEST(CudaEmulator, WhatWouldHangOrFaultOnAGpuFailsTheLaunch) {
  int* flag = device_array<int>(1);
  float* out = device_array<float>(64);
  const cudaLaunchConfig_t c = config(1, 64);
  EXPECT_EQ(cudaLaunchKernelEx(&c, divergent_barrier, flag), cudaErrorLaunchFailure);
  EXPECT_EQ(cudaGetLastError(), cudaErrorLaunchFailure);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess) << "reading the error clears it";
  EXPECT_EQ(cudaLaunchKernelEx(&c, shuffle_from_exited_lane, out), cudaErrorLaunchFailure);
  std::vector<float> host(64);
  EXPECT_EQ(cudaLaunchKernelEx(&c, write_one, host.data()), cudaErrorLaunchFailure) << "a host pointer";
  float* freed = device_array<float>(64);
  cudaFree(freed);
  EXPECT_EQ(cudaLaunchKernelEx(&c, write_one, freed), cudaErrorLaunchFailure) << "a freed pointer";
  const cudaLaunchConfig_t too_big = config(1, 1025), empty = config(0, 32);
  EXPECT_EQ(cudaLaunchKernelEx(&too_big, write_one, out), cudaErrorInvalidConfiguration);
  EXPECT_EQ(cudaLaunchKernelEx(&empty, write_one, out), cudaErrorInvalidConfiguration);
  cudaGetLastError();
  cudaFree(flag);
  cudaFree(out);
}

TEST(CudaEmulator, DeviceMemoryStartsAsGarbageAndCopiesMustSayWhereTheirPointersAre) {
  float* d = device_array<float>(4);
  std::vector<float> host(4, 0.0f);
  ASSERT_EQ(cudaMemcpy(host.data(), d, 4 * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
  for (float v : host) EXPECT_TRUE(std::isnan(v)) << "fresh device memory must not read as zeros";
  EXPECT_EQ(cudaMemcpy(d, host.data(), 4 * sizeof(float), cudaMemcpyDeviceToHost), cudaErrorInvalidValue);
  EXPECT_EQ(cudaMemcpy(host.data(), d, 5 * sizeof(float), cudaMemcpyDeviceToHost), cudaErrorInvalidValue)
      << "past the end of the block";
  void* huge = nullptr;
  EXPECT_EQ(cudaMalloc(&huge, size_t(1) << 40), cudaErrorMemoryAllocation);
  cudaGetLastError();
  cudaFree(d);
}

TEST(CudaEmulator, DevicePropertiesNameTheEmulatorNotAGpu) {
  cudaDeviceProp prop;
  ASSERT_EQ(cudaGetDeviceProperties(&prop, 0), cudaSuccess);
  EXPECT_STREQ(prop.name, "loom CUDA emulator");
  int sms = 0;
  ASSERT_EQ(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0), cudaSuccess);
  EXPECT_EQ(prop.multiProcessorCount, sms);
  EXPECT_EQ(cudaGetDeviceProperties(&prop, 1), cudaErrorInvalidDevice);
  cudaGetLastError();
}

// Events keep the host time of their record; what a GPU refuses to time fails here too.
TEST(CudaEmulator, EventsTimeTheHostClockAndRefuseWhatAGpuWould) {
  cudaEvent_t start = nullptr, stop = nullptr, untimed = nullptr;
  ASSERT_EQ(cudaEventCreate(&start), cudaSuccess);
  ASSERT_EQ(cudaEventCreate(&stop), cudaSuccess);
  ASSERT_EQ(cudaEventCreateWithFlags(&untimed, cudaEventDisableTiming), cudaSuccess);
  float ms = -1;
  EXPECT_EQ(cudaEventRecord(start), cudaSuccess);
  EXPECT_EQ(cudaEventElapsedTime(&ms, start, stop), cudaErrorInvalidResourceHandle) << "stop never recorded";
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(cudaEventRecord(stop), cudaSuccess);
  ASSERT_EQ(cudaEventElapsedTime(&ms, start, stop), cudaSuccess);
  EXPECT_GE(ms, 5.0f);
  EXPECT_LT(ms, 5000.0f);
  EXPECT_EQ(cudaEventRecord(untimed), cudaSuccess);
  EXPECT_EQ(cudaEventElapsedTime(&ms, start, untimed), cudaErrorInvalidResourceHandle) << "created without timing";
  EXPECT_EQ(cudaEventRecord(nullptr), cudaErrorInvalidResourceHandle);
  cudaGetLastError();
  for (cudaEvent_t e : {start, stop, untimed}) EXPECT_EQ(cudaEventDestroy(e), cudaSuccess);
}

TEST(CudaEmulator, LoomKernelsLaunchInsideTheNvtxRangeOfTheirOp) {
  using namespace loom;
  const Tensor a = ones({3, 5}).to(Device::cuda(0)), b = ones({5}).to(Device::cuda(0));
  const int64_t before = loom_emu::launches();
  const Tensor c = add(a, b);
  EXPECT_GT(loom_emu::launches(), before);
  const std::vector<std::string> ranges = loom_emu::last_launch_ranges();
  ASSERT_FALSE(ranges.empty());
  EXPECT_EQ(ranges.front(), "add") << "the op's range, outermost";
  EXPECT_EQ(ranges.back(), "binary") << "the launcher's range, innermost";
  EXPECT_EQ(sum(c.to(Device::cpu())).item(), 30.0);
}

// x[i] += *add for every i: reads a device word a copy node fills.
__global__ void add_word(float* x, int n, const float* add) {
  const int i = int(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < n) x[i] += *add;
}

TEST(CudaEmulator, ACapturedStreamRecordsWorkAndAGraphLaunchRunsItAgainReadingPinnedMemoryAnew) {
  constexpr int n = 37;
  float* x = device_array<float>(n);
  float* word = device_array<float>(1);
  ASSERT_EQ(cudaMemsetAsync(x, 0, n * sizeof(float)), cudaSuccess);
  void* pinned = nullptr;
  ASSERT_EQ(cudaMallocHost(&pinned, sizeof(float)), cudaSuccess);
  float* host_word = static_cast<float*>(pinned);
  *host_word = 1;
  cudaStream_t s = nullptr;
  ASSERT_EQ(cudaStreamCreate(&s), cudaSuccess);
  ASSERT_EQ(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal), cudaSuccess);
  cudaStreamCaptureStatus status{};
  ASSERT_EQ(cudaStreamIsCapturing(s, &status), cudaSuccess);
  EXPECT_EQ(status, cudaStreamCaptureStatusActive);
  ASSERT_EQ(cudaMemcpyAsync(word, host_word, sizeof(float), cudaMemcpyHostToDevice, s), cudaSuccess);
  const cudaLaunchConfig_t c{dim3(2), dim3(32), 0, s, nullptr, 0};
  const int64_t launches = loom_emu::launches();
  ASSERT_EQ(cudaLaunchKernelEx(&c, add_word, x, n, static_cast<const float*>(word)), cudaSuccess);
  EXPECT_EQ(loom_emu::launches(), launches) << "a captured launch runs nothing";
  cudaGraph_t graph = nullptr;
  ASSERT_EQ(cudaStreamEndCapture(s, &graph), cudaSuccess);
  cudaGraphExec_t exec = nullptr;
  ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  ASSERT_EQ(cudaGraphDestroy(graph), cudaSuccess);
  std::vector<float> got(n);
  ASSERT_EQ(cudaMemcpy(got.data(), x, n * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(got, std::vector<float>(n, 0.0f)) << "nothing ran during the capture";
  for (float v : {1.0f, 10.0f, 100.0f}) {  // each launch copies the pinned word as it is then
    *host_word = v;
    ASSERT_EQ(cudaGraphLaunch(exec, s), cudaSuccess);
  }
  ASSERT_EQ(cudaMemcpy(got.data(), x, n * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(got, std::vector<float>(n, 111.0f));
  ASSERT_EQ(cudaGraphExecDestroy(exec), cudaSuccess);
  ASSERT_EQ(cudaStreamDestroy(s), cudaSuccess);
  ASSERT_EQ(cudaFreeHost(pinned), cudaSuccess);
  ASSERT_EQ(cudaFree(x), cudaSuccess);
  ASSERT_EQ(cudaFree(word), cudaSuccess);
}

TEST(CudaEmulator, WhatAGraphCannotHoldInvalidatesTheCaptureAsOnAGpu) {
  float* x = device_array<float>(4);
  float host[4] = {};
  cudaStream_t s = nullptr;
  ASSERT_EQ(cudaStreamCreate(&s), cudaSuccess);
  cudaGraph_t graph = nullptr;
  // Each of these, during a strict capture, fails and invalidates it.
  const std::vector<std::pair<const char*, std::function<cudaError_t()>>> forbidden = {
      {"cudaMalloc", [] { void* p = nullptr; return cudaMalloc(&p, 16); }},
      {"cudaMemcpy", [&] { return cudaMemcpy(host, x, sizeof host, cudaMemcpyDeviceToHost); }},
      {"cudaDeviceSynchronize", [] { return cudaDeviceSynchronize(); }},
      {"a copy from pageable memory", [&] { return cudaMemcpyAsync(x, host, sizeof host, cudaMemcpyHostToDevice, s); }},
      {"the legacy stream", [&] { return cudaMemsetAsync(x, 0, sizeof host, nullptr); }},
  };
  for (const auto& [what, call] : forbidden) {
    ASSERT_EQ(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal), cudaSuccess);
    EXPECT_NE(call(), cudaSuccess) << what;
    cudaStreamCaptureStatus status{};
    ASSERT_EQ(cudaStreamIsCapturing(s, &status), cudaSuccess);
    EXPECT_EQ(status, cudaStreamCaptureStatusInvalidated) << what;
    EXPECT_EQ(cudaStreamEndCapture(s, &graph), cudaErrorStreamCaptureInvalidated) << what;
    EXPECT_EQ(graph, nullptr);
    cudaGetLastError();
  }
  // A thread switched to relaxed mode may allocate (the allocator's own cudaMalloc).
  ASSERT_EQ(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal), cudaSuccess);
  cudaStreamCaptureMode mode = cudaStreamCaptureModeRelaxed;
  ASSERT_EQ(cudaThreadExchangeStreamCaptureMode(&mode), cudaSuccess);
  void* p = nullptr;
  EXPECT_EQ(cudaMalloc(&p, 16), cudaSuccess);
  ASSERT_EQ(cudaThreadExchangeStreamCaptureMode(&mode), cudaSuccess);
  EXPECT_EQ(mode, cudaStreamCaptureModeRelaxed);
  ASSERT_EQ(cudaStreamEndCapture(s, &graph), cudaSuccess);
  ASSERT_EQ(cudaGraphDestroy(graph), cudaSuccess);
  EXPECT_EQ(cudaFree(p), cudaSuccess) << "after the capture, everything is allowed again";
  EXPECT_EQ(cudaMemcpy(host, x, sizeof host, cudaMemcpyDeviceToHost), cudaSuccess);
  ASSERT_EQ(cudaStreamDestroy(s), cudaSuccess);
  ASSERT_EQ(cudaFree(x), cudaSuccess);
}

}  // namespace
