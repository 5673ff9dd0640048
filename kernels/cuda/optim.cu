// CUDA kernels for the optim family (kernels/optim.h) as multi-tensor kernels:
// one launch updates every tensor of a TensorList, however many there are.
//
// The list is staged once per call: the pointers of each role, the prefix
// sums offset[t] = Σ_{u<t} numel[u] and the per-tensor scalars of the update
// (Adam's bias corrections, SGD's step, from each parameter's own step) are
// packed into a pinned host buffer and copied to a device workspace with one
// cudaMemcpyAsync on the launch stream.
// The kernel views the tensors as one virtual concatenation of offset[count]
// elements cut into chunks of kChunk; a block takes chunks in a grid-stride
// loop, and each of its threads finds the tensor holding its element by binary
// search over the prefix sums, then walks forward within the chunk as its
// element index grows (a chunk may span several small tensors).
//
// Pinned staging: a ring of kStagingSlots buffers per device, each with an
// event recorded after its copy. A slot is rewritten only after its event
// completed, so the host never overwrites bytes a queued copy has yet to read,
// and the host runs ahead of the GPU by up to kStagingSlots calls.
// In a CUDA graph (kernels/graph.h) each call stages into a pinned buffer the
// graph owns, which its copy node reads on every replay; the per-call values
// (the learning rate; EMA's decay likewise) travel there too, not as kernel
// arguments, so that a replay's restaging (the optimizer's step() on the host,
// launching nothing) gives them anew (EMA::update restages its decay the same way).
// sum_squares and scale carry no per-call value: their result and their factor
// live in device memory (a clip_grad_norm inside a graph computes both there), so
// nothing of theirs is restaged.
//
// Arithmetic is the CPU reference's, in T, with add_rn/mul_rn wherever nvcc
// could fuse a multiply-add: the update equals the CPU's bit for bit.
// sum_squares is a deterministic two-pass reduction: pass 1 writes one double
// partial per block (a fixed tree over a fixed element → thread map), pass 2
// folds the partials in one block in a fixed order into the caller's device word.
#include "kernels/optim.h"

#include <array>
#include <atomic>
#include <cmath>
#include <cstring>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "kernels/cuda/launch.h"

namespace loom::kernels::cuda {

namespace {

constexpr int kRoles = 4;
constexpr int64_t kChunk = 4096;  // elements of the virtual concatenation per block iteration
constexpr int kStagingSlots = 4;
std::atomic<uint64_t> g_launches{0};  // see optim_launch_count()

// The device copy of a TensorList: ptr[r] points at count pointers of role r,
// offset at count + 1 prefix sums, scalar at the per-tensor scalars (a fixed
// number per tensor, set by the entry point; null when it stages none).
struct DeviceList {
  void* const* ptr[kRoles];
  const int64_t* offset;
  const double* scalar;
  int64_t count, total;
};

// Element e of the concatenation: tensor t (offset[t] ≤ e < offset[t+1]) and
// index e − offset[t] within it. `t` is the caller's cursor: a first call with
// t < 0 binary-searches, later calls with a larger e walk forward.
__device__ int64_t locate(const DeviceList& l, int64_t e, int64_t t) {
  if (t < 0) {
    int64_t lo = 0, hi = l.count - 1;  // the last t with offset[t] ≤ e
    while (lo < hi) {
      const int64_t mid = (lo + hi + 1) / 2;
      if (l.offset[mid] <= e) lo = mid; else hi = mid - 1;
    }
    return lo;
  }
  while (l.offset[t + 1] <= e) ++t;
  return t;
}

// Calls f(t, i) for every element (tensor t, index i) of the list: blocks take
// chunks of the concatenation, threads stride through a chunk.
template <class F>
__device__ void for_each_element(const DeviceList& l, const F& f) {
  for (int64_t c0 = int64_t(blockIdx.x) * kChunk; c0 < l.total; c0 += int64_t(gridDim.x) * kChunk) {
    const int64_t c1 = min(l.total, c0 + kChunk);
    int64_t t = -1;  // searched afresh per chunk: the next chunk may lie many small tensors further on
    for (int64_t e = c0 + threadIdx.x; e < c1; e += blockDim.x) {
      t = locate(l, e, t);
      f(t, e - l.offset[t]);
    }
  }
}

template <class T>
__device__ T* at(const DeviceList& l, int r, int64_t t) {
  return static_cast<T*>(l.ptr[r][t]);
}

// l.scalar: the learning rate, then each tensor's bias corrections (c₁, √c₂).
template <class T>
__global__ void adam_multi_tensor_kernel(DeviceList l, AdamHyper h) {
  const T b1 = T(h.beta1), b2 = T(h.beta2), lr = T(l.scalar[0]), wd = T(h.weight_decay), eps = T(h.eps);
  for_each_element(l, [&](int64_t t, int64_t i) {
    const T c1 = T(l.scalar[1 + 2 * t]), sqrt_c2 = T(l.scalar[2 + 2 * t]);  // tensor t's own bias corrections
    T *p = at<T>(l, 0, t), *g = at<T>(l, 1, t), *m = at<T>(l, 2, t), *v = at<T>(l, 3, t);
    T gi = g[i], pi = p[i];
    if (h.decoupled) {
      pi = add_rn(pi, -mul_rn(mul_rn(lr, wd), pi));
    } else {
      gi = add_rn(gi, mul_rn(wd, pi));
    }
    const T mi = add_rn(mul_rn(b1, m[i]), mul_rn(T(1) - b1, gi));
    const T vi = add_rn(mul_rn(b2, v[i]), mul_rn(mul_rn(T(1) - b2, gi), gi));
    m[i] = mi;
    v[i] = vi;
    // m̂ / (√v̂ + ε) with m̂ = m/c₁, √v̂ = √v/√c₂ (IEEE division and square root)
    p[i] = add_rn(pi, -mul_rn(lr, mi / c1) / add_rn(::sqrt(vi) / sqrt_c2, eps));
  });
}

// l.scalar: the learning rate, then each tensor's own step.
template <class T>
__global__ void sgd_multi_tensor_kernel(DeviceList l, SgdHyper h) {
  const T mu = T(h.momentum), lr = T(l.scalar[0]), wd = T(h.weight_decay), damp = T(h.dampening);
  const bool has_buffer = h.momentum != 0;
  for_each_element(l, [&](int64_t t, int64_t i) {
    T *p = at<T>(l, 0, t), *g = at<T>(l, 1, t);
    T gi = add_rn(g[i], mul_rn(wd, p[i]));
    if (has_buffer) {
      T* b = at<T>(l, 2, t);
      const bool first_step = l.scalar[1 + t] == 1;
      const T bi = first_step ? gi : add_rn(mul_rn(mu, b[i]), mul_rn(T(1) - damp, gi));
      b[i] = bi;
      gi = h.nesterov ? add_rn(gi, mul_rn(mu, bi)) : bi;
    }
    p[i] = add_rn(p[i], -mul_rn(lr, gi));
  });
}

// *factor: a double in device memory; 1 leaves the list as it is (a clip that did not clip).
template <class T>
__global__ void scale_multi_tensor_kernel(DeviceList l, const double* factor) {
  if (*factor == 1) return;
  const T s = T(*factor);
  for_each_element(l, [&](int64_t t, int64_t i) {
    T* x = at<T>(l, 0, t);
    x[i] = mul_rn(x[i], s);
  });
}

// l.scalar: decay and 1 − decay, as T rounds them.
template <class T>
__global__ void lerp_to_multi_tensor_kernel(DeviceList l) {
  const T decay = T(l.scalar[0]), one_minus_decay = T(l.scalar[1]);
  for_each_element(l, [&](int64_t t, int64_t i) {
    T* a = at<T>(l, 0, t);
    const T* x = at<T>(l, 1, t);
    a[i] = add_rn(mul_rn(decay, a[i]), mul_rn(one_minus_decay, x[i]));
  });
}

// Σ of one value per thread of the block, in a fixed tree. All threads call it;
// thread 0 gets the result.
__device__ double block_sum(double v) {
  __shared__ double shared[kThreads];
  shared[threadIdx.x] = v;
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half /= 2) {
    if (int(threadIdx.x) < half) shared[threadIdx.x] += shared[threadIdx.x + half];
    __syncthreads();
  }
  return shared[0];
}

template <class T>
__global__ void sum_squares_partials_kernel(DeviceList l, double* partial) {
  double s = 0;
  for_each_element(l, [&](int64_t t, int64_t i) {
    const double x = at<T>(l, 0, t)[i];
    s = add_rn(s, mul_rn(x, x));
  });
  const double total = block_sum(s);
  if (threadIdx.x == 0) partial[blockIdx.x] = total;
}

__global__ void sum_squares_fold_kernel(const double* partial, int n, double* out) {
  double s = 0;
  for (int b = threadIdx.x; b < n; b += blockDim.x) s = add_rn(s, partial[b]);
  const double total = block_sum(s);
  if (threadIdx.x == 0) *out = total;
}

int64_t total_numel(const TensorList& l) {
  int64_t n = 0;
  for (int64_t t = 0; t < l.count; ++t) n += l.numel[t];
  return n;
}

// The pinned staging ring of one device (see the top).
struct Staging {
  std::mutex mutex;
  struct Slot {
    void* host = nullptr;
    size_t bytes = 0;
    cudaEvent_t copied = nullptr;
  };
  std::array<Slot, kStagingSlots> slots;
  int next = 0;
};

Staging& staging(int device) {
  static Staging* all = new Staging[std::max(1, device_count())];  // leaked like the allocator: see memory.cu
  return all[device];
}

// A TensorList on the device for one launch on s's stream, with `scalars`
// (the call's values, then a whole number of doubles per tensor, or none); the
// workspace holds the arrays until the kernels queued behind the copy have run.
// While a graph's optimizer calls are restaged (RestageScope), it only rewrites
// the values (`scalars`) in the captured call's pinned buffer: restaged() is true
// and nothing may launch.
class StagedList {
 public:
  StagedList(const LaunchScope& s, const char* op, const TensorList& l, int roles,
             const std::vector<double>& scalars = {})
      : bytes_((roles * l.count + l.count + 1 + scalars.size()) * sizeof(int64_t)) {
    static_assert(sizeof(void*) == sizeof(int64_t) && sizeof(double) == sizeof(int64_t),
                  "pointers, offsets and scalars share one 8-byte-slot buffer");
    restaged_ = restaging();
    void* host = graph_staging(s.device(), bytes_, op, !scalars.empty());  // a graph's own buffer, or null
    if (restaged_) {
      // Only the values: the pointers are the capture's, which the graph's kernels use. (At a
      // replay's refresh a gradient may be another tensor than it was at this call in the capture:
      // a later backward of the step may have replaced it.)
      if (!scalars.empty())
        std::memcpy(static_cast<int64_t*>(host) + roles * l.count + l.count + 1, scalars.data(),
                    scalars.size() * sizeof(double));
      return;
    }
    device_.emplace(s.device(), bytes_);
    if (host) {
      // Captured: the copy node reads this buffer on every replay; no event, no ring.
      pack(static_cast<int64_t*>(host), l, roles, scalars);
      LOOM_CUDA_CHECK(cudaMemcpyAsync(device_->as<int64_t>(), host, bytes_, cudaMemcpyHostToDevice, s.stream()));
    } else {
      Staging& st = staging(s.device());
      std::lock_guard<std::mutex> lock(st.mutex);
      Staging::Slot& slot = st.slots[st.next];
      st.next = (st.next + 1) % kStagingSlots;
      if (slot.copied) LOOM_CUDA_CHECK(cudaEventSynchronize(slot.copied));  // its previous copy has read the bytes
      if (slot.bytes < bytes_) {
        if (slot.host) LOOM_CUDA_CHECK(cudaFreeHost(slot.host));
        slot.bytes = std::max<size_t>(bytes_, 4096);
        LOOM_CUDA_CHECK(cudaMallocHost(&slot.host, slot.bytes));
      }
      if (!slot.copied) LOOM_CUDA_CHECK(cudaEventCreateWithFlags(&slot.copied, cudaEventDisableTiming));
      pack(static_cast<int64_t*>(slot.host), l, roles, scalars);
      LOOM_CUDA_CHECK(cudaMemcpyAsync(device_->as<int64_t>(), slot.host, bytes_, cudaMemcpyHostToDevice, s.stream()));
      LOOM_CUDA_CHECK(cudaEventRecord(slot.copied, s.stream()));
    }
    auto* dev = device_->as<int64_t>();
    for (int r = 0; r < kRoles; ++r) list_.ptr[r] = r < roles ? reinterpret_cast<void* const*>(dev + r * l.count) : nullptr;
    list_.offset = dev + roles * l.count;
    list_.scalar = scalars.empty() ? nullptr : reinterpret_cast<const double*>(list_.offset + l.count + 1);
    list_.count = l.count;
    list_.total = total_numel(l);
  }
  bool restaged() const { return restaged_; }
  const DeviceList& list() const { return list_; }
  // Blocks for the chunked grid-stride loop: one per chunk, capped at one full wave
  // (2048 resident threads per SM).
  unsigned blocks(const LaunchScope& s) const {
    const int64_t chunks = (list_.total + kChunk - 1) / kChunk, wave = int64_t(sm_count(s.device())) * (2048 / kThreads);
    return static_cast<unsigned>(std::max<int64_t>(1, std::min(chunks, wave)));
  }

 private:
  // The words the device reads: each role's pointers, the prefix sums of the sizes, the scalars.
  static void pack(int64_t* words, const TensorList& l, int roles, const std::vector<double>& scalars) {
    for (int r = 0; r < roles; ++r) std::memcpy(words + r * l.count, l.ptr[r], l.count * sizeof(void*));
    int64_t* offset = words + roles * l.count;
    offset[0] = 0;
    for (int64_t t = 0; t < l.count; ++t) offset[t + 1] = offset[t] + l.numel[t];
    if (!scalars.empty())  // memcpy from an empty vector's null data() is undefined even for 0 bytes
      std::memcpy(offset + l.count + 1, scalars.data(), scalars.size() * sizeof(double));
  }
  size_t bytes_;
  bool restaged_ = false;
  std::optional<Workspace> device_;
  DeviceList list_{};
};

// s.launch of a kernel with kThreads threads per block, counted for optim_launch_count().
template <class... Params, class... Args>
void counted_launch(const LaunchScope& s, void (*kernel)(Params...), unsigned blocks, Args&&... args) {
  s.launch(kernel, blocks, kThreads, std::forward<Args>(args)...);
  g_launches.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

uint64_t optim_launch_count() { return g_launches.load(std::memory_order_relaxed); }

void adam_step(const KernelCtx& k, DType dt, const TensorList& l, const AdamHyper& h) {
  if (total_numel(l) == 0) return;
  LaunchScope s(k, "adam_step");
  std::vector<double> scalars{h.lr};
  for (int64_t t = 0; t < l.count; ++t) {
    const AdamBiasCorrection bc = adam_bias_correction(h, l.step[t]);
    scalars.insert(scalars.end(), {bc.c1, bc.sqrt_c2});
  }
  StagedList d(s, "adam_step", l, 4, scalars);
  if (d.restaged()) return;
  LOOM_FLOAT_SWITCH(dt, T, counted_launch(s, adam_multi_tensor_kernel<T>, d.blocks(s), d.list(), h));
}

void sgd_step(const KernelCtx& k, DType dt, const TensorList& l, const SgdHyper& h) {
  if (total_numel(l) == 0) return;
  LaunchScope s(k, "sgd_step");
  std::vector<double> scalars{h.lr};
  scalars.insert(scalars.end(), l.step, l.step + l.count);
  StagedList d(s, "sgd_step", l, h.momentum != 0 ? 3 : 2, scalars);
  if (d.restaged()) return;
  LOOM_FLOAT_SWITCH(dt, T, counted_launch(s, sgd_multi_tensor_kernel<T>, d.blocks(s), d.list(), h));
}

void sum_squares(const KernelCtx& k, DType dt, const TensorList& l, double* out) {
  LaunchScope s(k, "sum_squares");
  if (total_numel(l) == 0) {  // the fold of no partials writes the 0
    counted_launch(s, sum_squares_fold_kernel, 1, static_cast<const double*>(nullptr), 0, out);
    return;
  }
  StagedList d(s, "sum_squares", l, 1);
  const unsigned blocks = d.blocks(s);
  Workspace partial(s.device(), blocks * sizeof(double));
  LOOM_FLOAT_SWITCH(dt, T, counted_launch(s, sum_squares_partials_kernel<T>, blocks, d.list(), partial.as<double>()));
  counted_launch(s, sum_squares_fold_kernel, 1, static_cast<const double*>(partial.as<double>()), int(blocks), out);
}

void scale(const KernelCtx& k, DType dt, const TensorList& l, const double* factor) {
  if (total_numel(l) == 0) return;
  LaunchScope s(k, "scale");
  StagedList d(s, "scale", l, 1);
  LOOM_FLOAT_SWITCH(dt, T, counted_launch(s, scale_multi_tensor_kernel<T>, d.blocks(s), d.list(), factor));
}

void lerp_to(const KernelCtx& k, DType dt, const TensorList& l, double decay) {
  if (total_numel(l) == 0) return;
  LaunchScope s(k, "lerp_to");
  StagedList d(s, "lerp_to", l, 2, {decay, 1 - decay});
  if (d.restaged()) return;
  LOOM_FLOAT_SWITCH(dt, T, counted_launch(s, lerp_to_multi_tensor_kernel<T>, d.blocks(s), d.list()));
}

}  // namespace loom::kernels::cuda
