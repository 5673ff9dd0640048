// The CUDA emulator's runtime: devices, memory, copies, launches (blocks of
// fibers with barriers and warp shuffles), NVTX ranges and the cuBLAS GEMM.
// What it is for and what it cannot see: include/cuda_runtime.h.
#include "tests/cuda_emu/emulator.h"

#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "cublas_v2.h"
#include "cuda_runtime.h"
#include "nvtx3/nvToolsExt.h"

// Streams and graphs (see cuda_runtime.h): a graph is the list of work its
// capture recorded; an instantiated graph a copy of it.
struct CUgraph_st {
  std::vector<std::function<cudaError_t()>> work;
};
struct CUgraphExec_st {
  std::vector<std::function<cudaError_t()>> work;
};
struct CUstream_st {
  bool capturing = false;
  bool invalidated = false;
  cudaStreamCaptureMode mode = cudaStreamCaptureModeGlobal;
  std::vector<std::function<cudaError_t()>> recorded;
};

// GCC defines __SANITIZE_ADDRESS__ under -fsanitize=address; clang (before 16) says so only through __has_feature.
#if defined(__SANITIZE_ADDRESS__)
#define LOOM_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LOOM_EMU_ASAN 1
#endif
#endif
#if defined(LOOM_EMU_ASAN)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#else
#define LOOM_EMU_ASAN 0
#endif

// The fiber switch: saves the callee-saved registers on the current stack,
// stores its stack pointer in *save, loads `next` and pops the registers saved
// there. ucontext's swapcontext would also save the signal mask, a system call
// per switch, and under AddressSanitizer clear the target stack's shadow, which
// made the emulated suite several times slower.
extern "C" void loom_emu_switch(void** save, void* next);
#if !defined(__x86_64__)
#error "the CUDA emulator's fiber switch is written for x86-64 (System V ABI)"
#endif
asm(R"(
  .pushsection .text
  .globl loom_emu_switch
  .type loom_emu_switch, @function
loom_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size loom_emu_switch, .-loom_emu_switch
  .popsection
)");

namespace loom_emu {

namespace {

// A pretend device: small enough that a grid-stride loop over a few thousand
// elements already wraps (more blocks than fit in "one wave"), large enough for
// the tests; the memory budget makes an out-of-memory request fail like a GPU's.
constexpr int kMultiprocessors = 4;
constexpr size_t kDeviceMemory = size_t(8) << 30;
constexpr unsigned kMaxThreadsPerBlock = 1024;

thread_local cudaError_t last_error = cudaSuccess;
thread_local int current_device = 0;

cudaError_t fail(cudaError_t e) {
  last_error = e;
  return e;
}

// ---- device memory ---------------------------------------------------------
struct Memory {
  std::mutex mutex;
  std::map<const char*, size_t> blocks;  // start → bytes, of every live cudaMalloc
  size_t in_use = 0;
};
Memory& memory() {
  static Memory* m = new Memory;  // leaked: device memory may be freed during static destruction
  return *m;
}

// ---- pinned host memory (cudaMallocHost): the only host memory a captured copy may read or write --
struct Pinned {
  std::mutex mutex;
  std::map<const char*, size_t> blocks;
};
Pinned& pinned() {
  static Pinned* p = new Pinned;
  return *p;
}
// True when [p, p + bytes) lies inside one of `blocks` (start → bytes).
bool inside_one(const std::map<const char*, size_t>& blocks, const void* p, size_t bytes) {
  const char* c = static_cast<const char*>(p);
  auto it = blocks.upper_bound(c);
  if (it == blocks.begin()) return false;
  --it;
  return c >= it->first && c + bytes <= it->first + it->second;
}
bool is_pinned_range(const void* p, size_t bytes) {
  Pinned& m = pinned();
  std::lock_guard<std::mutex> lock(m.mutex);
  return inside_one(m.blocks, p, bytes);
}

// ---- capture -----------------------------------------------------------------
// The captures under way (at most one per stream); a capture not begun in
// relaxed mode forbids unsafe calls to every thread not switched to relaxed.
struct Captures {
  std::mutex mutex;
  int strict = 0;  // captures begun in global or thread-local mode
};
Captures& captures() {
  static Captures* c = new Captures;
  return *c;
}
thread_local cudaStreamCaptureMode thread_mode = cudaStreamCaptureModeGlobal;
std::vector<CUstream_st*>& capturing_streams() {
  static std::vector<CUstream_st*>* v = new std::vector<CUstream_st*>;
  return *v;
}
void invalidate_all_captures() {
  std::lock_guard<std::mutex> lock(captures().mutex);
  for (CUstream_st* s : capturing_streams()) s->invalidated = true;
}
// An unsafe call (a synchronization, cudaMemcpy, cudaMalloc, ...) while a strict
// capture is under way: the capture is invalidated and the call fails, as on a GPU.
bool unsafe_now(const char* call) {
  if (thread_mode == cudaStreamCaptureModeRelaxed) return false;
  {
    std::lock_guard<std::mutex> lock(captures().mutex);
    if (captures().strict == 0) return false;
  }
  std::fprintf(stderr, "cuda emulator: %s during stream capture: the capture is invalidated\n", call);
  invalidate_all_captures();
  return true;
}

// ---- fibers ----------------------------------------------------------------
// ASan needs a larger stack (redzones) and to be told about every switch.
constexpr size_t kStackBytes = LOOM_EMU_ASAN ? size_t(1) << 20 : size_t(256) << 10;
constexpr size_t kGuardBytes = 4096;

enum class State { ready, at_block_barrier, at_warp_barrier, done };

struct ThreadCoords {
  dim3 thread_idx, block_idx, block_dim, grid_dim;
};

struct Fiber {
  void* sp = nullptr;     // the saved stack pointer while the fiber is switched out
  char* stack = nullptr;  // kStackBytes above a PROT_NONE guard page: an overflow faults, never corrupts
  State state = State::ready;
  ThreadCoords coords;
  void* asan_fake_stack = nullptr;
};

struct Block {
  std::vector<Fiber> fibers;
  std::vector<uint64_t> lanes;  // the shuffle slot of each thread
  Fiber* current = nullptr;
  void* scheduler_sp = nullptr;
  const void* scheduler_stack = nullptr;  // for ASan's fiber annotations
  size_t scheduler_stack_size = 0;
  void (*body)(void*) = nullptr;
  void* closure = nullptr;
  std::string fault;  // set by a thread; ends the launch
};

thread_local Block* running = nullptr;  // the block whose fibers are running, else null

char* new_stack() {
  void* p = mmap(nullptr, kStackBytes + kGuardBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    std::fprintf(stderr, "cuda emulator: out of memory for thread stacks\n");
    std::abort();
  }
  mprotect(p, kGuardBytes, PROT_NONE);
  return static_cast<char*>(p) + kGuardBytes;
}

// Fiber → scheduler. `exiting`: the fiber never resumes (ASan frees its fake stack).
void to_scheduler(Fiber& f, bool exiting) {
  Block& b = *running;
#if LOOM_EMU_ASAN
  __sanitizer_start_switch_fiber(exiting ? nullptr : &f.asan_fake_stack, b.scheduler_stack, b.scheduler_stack_size);
#endif
  loom_emu_switch(&f.sp, b.scheduler_sp);
#if LOOM_EMU_ASAN
  __sanitizer_finish_switch_fiber(f.asan_fake_stack, &b.scheduler_stack, &b.scheduler_stack_size);
#endif
  (void)exiting;
}

// Scheduler → fiber, back when the fiber waits or ends.
void to_fiber(Block& b, Fiber& f) {
  b.current = &f;
  threadIdx = f.coords.thread_idx;
  blockIdx = f.coords.block_idx;
  blockDim = f.coords.block_dim;
  gridDim = f.coords.grid_dim;
  void* fake_stack = nullptr;
#if LOOM_EMU_ASAN
  __sanitizer_start_switch_fiber(&fake_stack, f.stack, kStackBytes);
#endif
  loom_emu_switch(&b.scheduler_sp, f.sp);
#if LOOM_EMU_ASAN
  __sanitizer_finish_switch_fiber(fake_stack, nullptr, nullptr);
#endif
  (void)fake_stack;
}

void fiber_main() {
  Block& b = *running;
  Fiber& f = *b.current;
#if LOOM_EMU_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &b.scheduler_stack, &b.scheduler_stack_size);
#endif
  try {
    b.body(b.closure);
  } catch (const std::exception& e) {
    if (b.fault.empty()) b.fault = std::string("a thread threw: ") + e.what();
  }
  f.state = State::done;
  to_scheduler(f, true);
}

Block* in_kernel(const char* what) {
  if (!running) {
    std::fprintf(stderr, "cuda emulator: %s called outside a kernel\n", what);
    std::abort();
  }
  return running;
}

void wait(State s) {
  Fiber& f = *in_kernel("a barrier")->current;
  f.state = s;
  to_scheduler(f, false);
}

std::string describe(const ThreadCoords& c) {
  return "thread (" + std::to_string(c.thread_idx.x) + "," + std::to_string(c.thread_idx.y) + "," +
         std::to_string(c.thread_idx.z) + ") of block (" + std::to_string(c.block_idx.x) + "," +
         std::to_string(c.block_idx.y) + "," + std::to_string(c.block_idx.z) + ")";
}

// Opens the barriers every live thread of a warp, or of the block, waits at.
// False when live threads wait and none can move: a deadlock.
bool open_barriers(Block& b) {
  const size_t n = b.fibers.size();
  bool opened = false;
  for (size_t w = 0; w < n; w += warpSize) {
    const size_t end = std::min(n, w + warpSize);
    size_t live = 0, waiting = 0;
    for (size_t t = w; t < end; ++t) {
      live += b.fibers[t].state != State::done;
      waiting += b.fibers[t].state == State::at_warp_barrier;
    }
    if (live > 0 && waiting == live) {
      for (size_t t = w; t < end; ++t)
        if (b.fibers[t].state == State::at_warp_barrier) b.fibers[t].state = State::ready;
      opened = true;
    }
  }
  if (opened) return true;
  size_t live = 0, waiting = 0;
  for (const Fiber& f : b.fibers) {
    live += f.state != State::done;
    waiting += f.state == State::at_block_barrier;
  }
  if (waiting != live) return false;
  for (Fiber& f : b.fibers)
    if (f.state == State::at_block_barrier) f.state = State::ready;
  return true;
}

std::string deadlock_report(const Block& b) {
  size_t at_block = 0, at_warp = 0;
  const Fiber *first_block = nullptr, *first_warp = nullptr;
  for (const Fiber& f : b.fibers) {
    if (f.state == State::at_block_barrier && !at_block++) first_block = &f;
    if (f.state == State::at_warp_barrier && !at_warp++) first_warp = &f;
  }
  return "deadlock: the live threads of a block wait at different barriers: " + std::to_string(at_block) +
         " at __syncthreads (the first: " + describe(first_block->coords) + "), " + std::to_string(at_warp) +
         " at a warp barrier, a shuffle or __syncwarp, whose warp cannot complete it (the first: " +
         describe(first_warp->coords) + ")";
}

// Readies a fiber to run the block's body from the top: its stack holds what
// loom_emu_switch pops (six zero registers) and then "returns" to, fiber_main,
// placed so that fiber_main starts with the stack alignment of a call (rsp ≡ 8
// mod 16). fiber_main never returns: it switches away for good.
void start_fiber(Fiber& f, char* stack, const ThreadCoords& c) {
  f.state = State::ready;
  f.stack = stack;
  f.coords = c;
  auto* top = reinterpret_cast<uintptr_t*>(stack + kStackBytes);  // 16-byte aligned (page-aligned mapping)
  top[-1] = 0;                                                     // fiber_main's return address: none
  top[-2] = reinterpret_cast<uintptr_t>(&fiber_main);
  for (int r = 3; r <= 8; ++r) top[-r] = 0;  // rbp, rbx, r12–r15
  f.sp = top - 8;
}

// Every thread stack ever made, reused by later launches.
std::vector<char*>& stack_pool() {
  static thread_local std::vector<char*> pool;
  return pool;
}

std::mutex& launch_mutex() {  // kernels run one at a time, whichever host thread launches them
  static std::mutex m;
  return m;
}

std::vector<std::string>& ranges() {
  static thread_local std::vector<std::string> stack;
  return stack;
}
std::vector<std::string>& last_ranges() {
  static thread_local std::vector<std::string> r;
  return r;
}

int64_t& launch_counter() {
  static int64_t n = 0;
  return n;
}

}  // namespace

void sync_block() { wait(State::at_block_barrier); }
void sync_warp() { wait(State::at_warp_barrier); }

uint64_t shuffle_xor_bits(uint64_t bits, int lane_mask, int width) {
  Block& b = *in_kernel("a warp shuffle");
  const size_t t = static_cast<size_t>(b.current - b.fibers.data());
  b.lanes[t] = bits;
  sync_warp();
  const int lane = int(t % warpSize);
  int src_lane = lane ^ lane_mask;
  if (src_lane / width != lane / width) src_lane = lane;  // outside the caller's segment: its own value
  const size_t src = t - lane + src_lane;
  uint64_t r = bits;
  if (src >= b.fibers.size() || b.fibers[src].state == State::done) {
    if (b.fault.empty())
      b.fault = "warp shuffle: " + describe(b.current->coords) + " reads lane " + std::to_string(src_lane) +
                ", which " + (src >= b.fibers.size() ? "the block does not have" : "has exited");
  } else {
    r = b.lanes[src];
  }
  sync_warp();  // no lane may overwrite its slot before every lane has read
  return r;
}

cudaError_t launch_failure(const char* why) {
  std::fprintf(stderr, "cuda emulator: kernel launch failed: %s\n", why);
  return fail(cudaErrorLaunchFailure);
}

cudaError_t run_grid(const cudaLaunchConfig_t& config, void (*body)(void*), void* closure) {
  const dim3 g = config.gridDim, bd = config.blockDim;
  const uint64_t threads = uint64_t(bd.x) * bd.y * bd.z;
  if (threads == 0 || threads > kMaxThreadsPerBlock || bd.z > 64 || g.x == 0 || g.y == 0 || g.z == 0 ||
      g.x > 0x7fffffffu || g.y > 65535 || g.z > 65535)
    return fail(cudaErrorInvalidConfiguration);
  if (config.dynamicSmemBytes != 0) return launch_failure("dynamic shared memory is not emulated");

  std::lock_guard<std::mutex> lock(launch_mutex());
  ++launch_counter();
  last_ranges() = ranges();
  std::vector<char*>& pool = stack_pool();
  while (pool.size() < threads) pool.push_back(new_stack());

  Block b;
  b.fibers.resize(threads);
  b.lanes.assign(threads, 0);
  b.body = body;
  b.closure = closure;
  running = &b;
  for (unsigned bz = 0; bz < g.z; ++bz)
    for (unsigned by = 0; by < g.y; ++by)
      for (unsigned bx = 0; bx < g.x; ++bx) {
        for (uint64_t t = 0; t < threads; ++t)
          start_fiber(b.fibers[t], pool[t],
                      {dim3(unsigned(t % bd.x), unsigned(t / bd.x % bd.y), unsigned(t / (uint64_t(bd.x) * bd.y))),
                       dim3(bx, by, bz), bd, g});
        for (;;) {
          bool live = false;
          for (Fiber& f : b.fibers) {
            if (f.state == State::ready) to_fiber(b, f);
            live |= f.state != State::done;
            if (!b.fault.empty()) break;
          }
          if (!b.fault.empty() || !live) break;
          if (!open_barriers(b)) {
            b.fault = deadlock_report(b);
            break;
          }
        }
        if (!b.fault.empty()) {
          running = nullptr;
          // The fibers still waiting are abandoned: kernels hold no resources, but
          // under ASan their frames' redzones stay poisoned on stacks the next launch reuses.
#if LOOM_EMU_ASAN
          for (char* stack : pool) __asan_unpoison_memory_region(stack, kStackBytes);
#endif
          return launch_failure(b.fault.c_str());
        }
      }
  running = nullptr;
  return cudaSuccess;
}

bool is_device_range(const void* p, size_t bytes) {
  Memory& m = memory();
  std::lock_guard<std::mutex> lock(m.mutex);
  return inside_one(m.blocks, p, bytes);
}

void range_push(const char* name) { ranges().emplace_back(name); }
void range_pop() {
  if (!ranges().empty()) ranges().pop_back();
}

std::vector<std::string> last_launch_ranges() { return last_ranges(); }
int64_t launches() { return launch_counter(); }

}  // namespace loom_emu

using loom_emu::fail;

// ---- devices, errors, synchronization ---------------------------------------
cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}
cudaError_t cudaGetDevice(int* device) {
  *device = loom_emu::current_device;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) {
  if (device != 0) return fail(cudaErrorInvalidDevice);
  loom_emu::current_device = device;
  return cudaSuccess;
}
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (device != 0) return fail(cudaErrorInvalidDevice);
  if (attr != cudaDevAttrMultiProcessorCount) return fail(cudaErrorInvalidValue);
  *value = loom_emu::kMultiprocessors;
  return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (device != 0) return fail(cudaErrorInvalidDevice);
  *prop = {};
  // A name no one can mistake for hardware: it heads every report the bench prints.
  std::snprintf(prop->name, sizeof prop->name, "loom CUDA emulator");
  prop->multiProcessorCount = loom_emu::kMultiprocessors;
  return cudaSuccess;
}
// Launches and copies finish before they return: there is nothing to wait for
// (but waiting is one of the things a capture forbids).
cudaError_t cudaDeviceSynchronize() {
  return loom_emu::unsafe_now("cudaDeviceSynchronize") ? fail(cudaErrorStreamCaptureUnsupported) : cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t) {
  return loom_emu::unsafe_now("cudaStreamSynchronize") ? fail(cudaErrorStreamCaptureUnsupported) : cudaSuccess;
}
cudaError_t cudaGetLastError() {
  const cudaError_t e = loom_emu::last_error;
  loom_emu::last_error = cudaSuccess;
  return e;
}

const char* cudaGetErrorName(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorStreamCaptureUnsupported: return "cudaErrorStreamCaptureUnsupported";
    case cudaErrorStreamCaptureInvalidated: return "cudaErrorStreamCaptureInvalidated";
    case cudaErrorStreamCaptureImplicit: return "cudaErrorStreamCaptureImplicit";
  }
  return "cudaErrorUnknown";
}
const char* cudaGetErrorString(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorLaunchFailure: return "unspecified launch failure (emulated; the reason is on stderr)";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
    case cudaErrorStreamCaptureImplicit:
      return "operation would make the legacy stream depend on a capturing blocking stream";
  }
  return "unknown error";
}

// ---- memory ----------------------------------------------------------------
cudaError_t cudaMalloc(void** p, size_t bytes) {
  *p = nullptr;
  if (loom_emu::unsafe_now("cudaMalloc")) return fail(cudaErrorStreamCaptureUnsupported);
  loom_emu::Memory& m = loom_emu::memory();
  std::lock_guard<std::mutex> lock(m.mutex);
  *p = nullptr;
  if (bytes > loom_emu::kDeviceMemory - m.in_use) return fail(cudaErrorMemoryAllocation);
  const size_t rounded = (std::max<size_t>(bytes, 1) + 255) / 256 * 256;  // cudaMalloc aligns to 256 bytes
  char* q = static_cast<char*>(std::aligned_alloc(256, rounded));
  if (!q) return fail(cudaErrorMemoryAllocation);
  // Fresh device memory holds whatever was there: all-ones bytes read as NaN
  // (float and double) and -1 (integers), so a read before a write shows.
  std::memset(q, 0xff, rounded);
  m.blocks[q] = bytes;
  m.in_use += bytes;
  *p = q;
  return cudaSuccess;
}
cudaError_t cudaFree(void* p) {
  if (!p) return cudaSuccess;
  if (loom_emu::unsafe_now("cudaFree")) return fail(cudaErrorStreamCaptureUnsupported);
  loom_emu::Memory& m = loom_emu::memory();
  std::lock_guard<std::mutex> lock(m.mutex);
  auto it = m.blocks.find(static_cast<const char*>(p));
  if (it == m.blocks.end()) return fail(cudaErrorInvalidDevicePointer);
  m.in_use -= it->second;
  m.blocks.erase(it);
  std::free(p);
  return cudaSuccess;
}
cudaError_t cudaMallocHost(void** p, size_t bytes) {
  *p = nullptr;
  if (loom_emu::unsafe_now("cudaMallocHost")) return fail(cudaErrorStreamCaptureUnsupported);
  *p = std::malloc(std::max<size_t>(bytes, 1));
  if (!*p) return fail(cudaErrorMemoryAllocation);
  loom_emu::Pinned& m = loom_emu::pinned();
  std::lock_guard<std::mutex> lock(m.mutex);
  m.blocks[static_cast<const char*>(*p)] = bytes;
  return cudaSuccess;
}
cudaError_t cudaFreeHost(void* p) {
  if (!p) return cudaSuccess;
  if (loom_emu::unsafe_now("cudaFreeHost")) return fail(cudaErrorStreamCaptureUnsupported);
  loom_emu::Pinned& m = loom_emu::pinned();
  std::lock_guard<std::mutex> lock(m.mutex);
  if (m.blocks.erase(static_cast<const char*>(p)) == 0) return fail(cudaErrorInvalidValue);
  std::free(p);
  return cudaSuccess;
}
cudaError_t cudaMemGetInfo(size_t* free, size_t* total) {
  loom_emu::Memory& m = loom_emu::memory();
  std::lock_guard<std::mutex> lock(m.mutex);
  *total = loom_emu::kDeviceMemory;
  *free = loom_emu::kDeviceMemory - m.in_use;
  return cudaSuccess;
}

namespace loom_emu {
namespace {
// The pointers of a copy are where its kind says (checked when it is issued and when it runs).
cudaError_t copy_now(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  const bool dst_ok = is_device_range(dst, bytes) == (kind != cudaMemcpyDeviceToHost);
  const bool src_ok = is_device_range(src, bytes) == (kind != cudaMemcpyHostToDevice);
  if (!dst_ok || !src_ok) {
    std::fprintf(stderr, "cuda emulator: cudaMemcpy of %zu bytes: the %s pointer is not where kind %d says\n", bytes,
                 dst_ok ? "source" : "destination", int(kind));
    return fail(cudaErrorInvalidValue);
  }
  std::memmove(dst, src, bytes);
  return cudaSuccess;
}
}  // namespace
}  // namespace loom_emu

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  if (loom_emu::unsafe_now("cudaMemcpy")) return fail(cudaErrorStreamCaptureUnsupported);
  if (bytes == 0) return cudaSuccess;
  return loom_emu::copy_now(dst, src, bytes, kind);
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream) {
  if (bytes == 0) return cudaSuccess;
  // A graph's copy node reads and writes host memory when it runs: pinned memory only.
  const void* host = kind == cudaMemcpyHostToDevice ? src : kind == cudaMemcpyDeviceToHost ? dst : nullptr;
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  if (stream) cudaStreamIsCapturing(stream, &status);
  if (host && status == cudaStreamCaptureStatusActive && !loom_emu::is_pinned_range(host, bytes)) {
    std::fprintf(stderr, "cuda emulator: cudaMemcpyAsync from or to pageable host memory during stream capture\n");
    loom_emu::invalidate_all_captures();
    return fail(cudaErrorStreamCaptureUnsupported);
  }
  return loom_emu::issue(stream, [=] { return loom_emu::copy_now(dst, src, bytes, kind); });
}
cudaError_t cudaMemcpyPeer(void* dst, int dst_device, const void* src, int src_device, size_t bytes) {
  if (dst_device != 0 || src_device != 0) return fail(cudaErrorInvalidDevice);
  return cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice);
}
cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t stream) {
  if (bytes == 0) return cudaSuccess;
  if (!loom_emu::is_device_range(p, bytes)) return fail(cudaErrorInvalidValue);
  return loom_emu::issue(stream, [=] {
    if (!loom_emu::is_device_range(p, bytes)) return fail(cudaErrorInvalidValue);
    std::memset(p, value, bytes);
    return cudaSuccess;
  });
}

// ---- streams and graphs ------------------------------------------------------
namespace loom_emu {

cudaError_t issue(cudaStream_t stream, std::function<cudaError_t()> work) {
  if (stream && stream->capturing) {
    if (stream->invalidated) return fail(cudaErrorStreamCaptureInvalidated);
    stream->recorded.push_back(std::move(work));
    return cudaSuccess;
  }
  if (!stream) {
    // The legacy stream waits for every blocking stream, a capturing one too: that
    // dependency cannot be captured, so the capture is invalidated.
    bool any = false;
    {
      std::lock_guard<std::mutex> lock(captures().mutex);
      any = !capturing_streams().empty();
    }
    if (any) {
      std::fprintf(stderr, "cuda emulator: work on the legacy default stream during stream capture\n");
      invalidate_all_captures();
      return fail(cudaErrorStreamCaptureImplicit);
    }
  }
  return work();
}

}  // namespace loom_emu

cudaError_t cudaStreamCreate(cudaStream_t* stream) {
  *stream = new CUstream_st;
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  if (!stream || stream->capturing) return fail(cudaErrorInvalidResourceHandle);
  delete stream;
  return cudaSuccess;
}
cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode) {
  if (!stream || stream->capturing) return fail(cudaErrorInvalidValue);  // the legacy stream cannot be captured
  stream->capturing = true;
  stream->invalidated = false;
  stream->mode = mode;
  stream->recorded.clear();
  std::lock_guard<std::mutex> lock(loom_emu::captures().mutex);
  loom_emu::capturing_streams().push_back(stream);
  if (mode != cudaStreamCaptureModeRelaxed) ++loom_emu::captures().strict;
  return cudaSuccess;
}
cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph) {
  *graph = nullptr;
  if (!stream || !stream->capturing) return fail(cudaErrorInvalidValue);
  {
    std::lock_guard<std::mutex> lock(loom_emu::captures().mutex);
    auto& v = loom_emu::capturing_streams();
    v.erase(std::find(v.begin(), v.end(), stream));
    if (stream->mode != cudaStreamCaptureModeRelaxed) --loom_emu::captures().strict;
  }
  stream->capturing = false;
  std::vector<std::function<cudaError_t()>> work = std::move(stream->recorded);
  stream->recorded.clear();
  if (stream->invalidated) return fail(cudaErrorStreamCaptureInvalidated);
  *graph = new CUgraph_st{std::move(work)};
  return cudaSuccess;
}
cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus* status) {
  *status = !stream || !stream->capturing ? cudaStreamCaptureStatusNone
            : stream->invalidated         ? cudaStreamCaptureStatusInvalidated
                                          : cudaStreamCaptureStatusActive;
  return cudaSuccess;
}
cudaError_t cudaThreadExchangeStreamCaptureMode(cudaStreamCaptureMode* mode) {
  std::swap(*mode, loom_emu::thread_mode);
  return cudaSuccess;
}
cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long) {
  if (!graph) return fail(cudaErrorInvalidValue);
  *exec = new CUgraphExec_st{graph->work};
  return cudaSuccess;
}
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
  if (!exec) return fail(cudaErrorInvalidResourceHandle);
  return loom_emu::issue(stream, [exec] {
    for (auto& w : exec->work)
      if (const cudaError_t e = w(); e != cudaSuccess) return e;
    return cudaSuccess;
  });
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  if (!exec) return fail(cudaErrorInvalidResourceHandle);
  delete exec;
  return cudaSuccess;
}
cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  if (!graph) return fail(cudaErrorInvalidResourceHandle);
  delete graph;
  return cudaSuccess;
}

// Events mark points in a stream that has always finished already, so an event
// completes when it is recorded, at the host time it keeps. As on a GPU,
// cudaEventElapsedTime needs both events recorded and created with timing.
struct CUevent_st {
  bool timing;
  bool recorded = false;
  std::chrono::steady_clock::time_point at{};
};
cudaError_t cudaEventCreate(cudaEvent_t* event) { return cudaEventCreateWithFlags(event, 0); }
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned flags) {
  *event = new CUevent_st{!(flags & cudaEventDisableTiming)};
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  if (!event) return fail(cudaErrorInvalidResourceHandle);
  return loom_emu::issue(stream, [event] {
    event->recorded = true;
    event->at = std::chrono::steady_clock::now();
    return cudaSuccess;
  });
}
cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  if (!event) return fail(cudaErrorInvalidResourceHandle);
  return loom_emu::unsafe_now("cudaEventSynchronize") ? fail(cudaErrorStreamCaptureUnsupported) : cudaSuccess;
}
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  if (!start || !end || !start->timing || !end->timing || !start->recorded || !end->recorded)
    return fail(cudaErrorInvalidResourceHandle);
  *ms = std::chrono::duration<float, std::milli>(end->at - start->at).count();
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t event) {
  if (!event) return fail(cudaErrorInvalidResourceHandle);
  delete event;
  return cudaSuccess;
}

// ---- cuBLAS ----------------------------------------------------------------
struct cublasContext {
  cudaStream_t stream = nullptr;
};
cublasStatus_t cublasCreate(cublasHandle_t* handle) {
  *handle = new cublasContext;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  handle->stream = stream;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t) {
  return handle ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_INITIALIZED;
}
const char* cublasGetStatusName(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
  }
  return "CUBLAS_STATUS_UNKNOWN";
}
const char* cublasGetStatusString(cublasStatus_t status) { return cublasGetStatusName(status); }

namespace {

// Column-major C[b] = α·op(A[b])·op(B[b]) + β·C[b], as cuBLAS defines it;
// β = 0 ignores C (NaN included).
template <class T>
cublasStatus_t gemm_strided_batched(cublasHandle_t handle, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                    int k, const T* alpha, const T* a, int lda, long long sa, const T* b, int ldb,
                                    long long sb, const T* beta, T* c, int ldc, long long sc, int batch) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (m < 0 || n < 0 || k < 0 || batch < 0 || lda < std::max(1, ta == CUBLAS_OP_N ? m : k) ||
      ldb < std::max(1, tb == CUBLAS_OP_N ? k : n) || ldc < std::max(1, m))
    return CUBLAS_STATUS_INVALID_VALUE;
  // Issued on the handle's stream (recorded under capture); α and β are read now,
  // as cuBLAS reads host scalars when it is called.
  const T alpha_v = *alpha, beta_v = *beta;
  const cudaError_t e = loom_emu::issue(handle->stream, [=]() {
    using loom_emu::is_device_range;
    for (int i = 0; i < batch; ++i) {
      const T* ai = a + i * sa;
      const T* bi = b + i * sb;
      T* ci = c + i * sc;
      if (!is_device_range(ci, sizeof(T)) ||
          (k > 0 && (!is_device_range(ai, sizeof(T)) || !is_device_range(bi, sizeof(T)))))
        return cudaErrorInvalidDevicePointer;  // a GPU faults on a host pointer
      for (int col = 0; col < n; ++col)
        for (int row = 0; row < m; ++row) {
          double acc = 0;
          for (int p = 0; p < k; ++p) {
            const T av = ta == CUBLAS_OP_N ? ai[row + int64_t(p) * lda] : ai[p + int64_t(row) * lda];
            const T bv = tb == CUBLAS_OP_N ? bi[p + int64_t(col) * ldb] : bi[col + int64_t(p) * ldb];
            acc += double(av) * double(bv);
          }
          T& out = ci[row + int64_t(col) * ldc];
          out = beta_v == T(0) ? T(alpha_v * T(acc)) : T(alpha_v * T(acc) + beta_v * out);
        }
    }
    return cudaSuccess;
  });
  if (e != cudaSuccess) return CUBLAS_STATUS_EXECUTION_FAILED;
  return CUBLAS_STATUS_SUCCESS;
}

}  // namespace

cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t handle, cublasOperation_t ta, cublasOperation_t tb, int m,
                                         int n, int k, const float* alpha, const float* a, int lda, long long sa,
                                         const float* b, int ldb, long long sb, const float* beta, float* c, int ldc,
                                         long long sc, int batch) {
  return gemm_strided_batched(handle, ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc, sc, batch);
}
cublasStatus_t cublasDgemmStridedBatched(cublasHandle_t handle, cublasOperation_t ta, cublasOperation_t tb, int m,
                                         int n, int k, const double* alpha, const double* a, int lda, long long sa,
                                         const double* b, int ldb, long long sb, const double* beta, double* c,
                                         int ldc, long long sc, int batch) {
  return gemm_strided_batched(handle, ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc, sc, batch);
}
