// v0 of the CUDA conv family: cuDNN's legacy convolution API (cudnnConvolutionForward, BackwardData,
// BackwardFilter), selected at run time by set_conv_variant(ConvVariant::V0) or LOOM_CONV=v0, never
// silently. It is the baseline loom's own kernels (kernels/cuda/conv.cu) are measured against and a
// second reference in tests/cuda/test_cuda_conv.cpp.
//
// Algorithms: the first of cudnnGet*Algorithm_v7's heuristic ranking that succeeds and is
// deterministic (bitwise reproducible results, as loom's kernels promise), remembered per pass and
// geometry so that later calls skip the query. No benchmarking Find: its choice varies run to run.
// Workspace comes from loom's caching allocator.
// Precision: float32 runs with CUDNN_FMA_MATH (plain FP32: cuDNN's default math allows TF32 tensor cores
// on Ampere and later) unless set_gemm_allow_tf32(true) opted in, the switch cuBLAS honours too.
// One cuDNN handle per device behind a mutex, leaked at exit like cuBLAS's (kernels/cuda/gemm.cu).
#include "kernels/cuda/conv_cudnn.h"

#ifdef LOOM_HAVE_CUDNN
#include <array>
#include <climits>
#include <map>
#include <mutex>

#include "kernels/gemm.h"

namespace loom::kernels::cuda::cudnn {
namespace {

struct Handle {
  std::mutex mutex;
  cudnnHandle_t handle = nullptr;
};

Handle& handle_for(int device) {
  static Handle* handles = new Handle[std::max(1, device_count())];  // leaked: see the top
  return handles[device];
}

int to_int(int64_t v, const char* what) {
  LOOM_CHECK(v >= 0 && v <= INT_MAX, "conv (cuDNN): ", what, " = ", v, " exceeds cuDNN's 32-bit int range");
  return static_cast<int>(v);
}

// The descriptors of one conv2d geometry: x [N, C, H, W], y [N, O, OH, OW], w [O, C/G, kh, kw].
struct Descriptors {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr, bias = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;

  Descriptors(DType dt, const ConvGeometry& g) {
    const cudnnDataType_t type = dt == DType::Float64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
    LOOM_CUDNN_CHECK(cudnnCreateTensorDescriptor(&x));
    LOOM_CUDNN_CHECK(cudnnCreateTensorDescriptor(&y));
    LOOM_CUDNN_CHECK(cudnnCreateTensorDescriptor(&bias));
    LOOM_CUDNN_CHECK(cudnnCreateFilterDescriptor(&w));
    LOOM_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&conv));
    LOOM_CUDNN_CHECK(cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NCHW, type, to_int(g.batch, "batch"),
                                                to_int(g.in_channels, "in_channels"), to_int(g.in_h, "in_h"),
                                                to_int(g.in_w, "in_w")));
    LOOM_CUDNN_CHECK(cudnnSetTensor4dDescriptor(y, CUDNN_TENSOR_NCHW, type, to_int(g.batch, "batch"),
                                                to_int(g.out_channels, "out_channels"), to_int(g.out_h, "out_h"),
                                                to_int(g.out_w, "out_w")));
    LOOM_CUDNN_CHECK(cudnnSetFilter4dDescriptor(w, type, CUDNN_TENSOR_NCHW, to_int(g.out_channels, "out_channels"),
                                                to_int(g.in_channels / g.groups, "in_channels / groups"),
                                                to_int(g.kernel_h, "kernel_h"), to_int(g.kernel_w, "kernel_w")));
    LOOM_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(
        conv, to_int(g.pad_h, "pad_h"), to_int(g.pad_w, "pad_w"), to_int(g.stride_h, "stride_h"),
        to_int(g.stride_w, "stride_w"), to_int(g.dilation_h, "dilation_h"), to_int(g.dilation_w, "dilation_w"),
        CUDNN_CROSS_CORRELATION, type));
    LOOM_CUDNN_CHECK(cudnnSetConvolutionGroupCount(conv, to_int(g.groups, "groups")));
    const bool tf32 = dt == DType::Float32 && gemm_allow_tf32();
    LOOM_CUDNN_CHECK(cudnnSetConvolutionMathType(conv, tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH));
  }
  ~Descriptors() {  // best effort: a destructor must not throw
    cudnnDestroyConvolutionDescriptor(conv);
    cudnnDestroyFilterDescriptor(w);
    cudnnDestroyTensorDescriptor(bias);
    cudnnDestroyTensorDescriptor(y);
    cudnnDestroyTensorDescriptor(x);
  }
  Descriptors(const Descriptors&) = delete;
  Descriptors& operator=(const Descriptors&) = delete;

  // bias [channels] as a [1, channels, 1, 1] tensor that cudnnAddTensor broadcasts.
  void set_bias(DType dt, int64_t channels) {
    LOOM_CUDNN_CHECK(cudnnSetTensor4dDescriptor(bias, CUDNN_TENSOR_NCHW,
                                                dt == DType::Float64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT, 1,
                                                to_int(channels, "channels"), 1, 1));
  }
};

// The device's handle, locked for the caller's scope and bound to the launch's stream.
class LockedHandle {
 public:
  explicit LockedHandle(const LaunchScope& s) : h_(handle_for(s.device())), lock_(h_.mutex) {
    if (!h_.handle) LOOM_CUDNN_CHECK(cudnnCreate(&h_.handle));  // binds to the current device (the scope's)
    LOOM_CUDNN_CHECK(cudnnSetStream(h_.handle, s.stream()));
  }
  cudnnHandle_t get() const { return h_.handle; }

 private:
  Handle& h_;
  std::lock_guard<std::mutex> lock_;
};

// The first deterministic algorithm of a heuristic ranking that cuDNN can run.
template <class Perf>
decltype(Perf::algo) pick(const Perf* perf, int count, const char* pass) {
  for (int i = 0; i < count; ++i)
    if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].determinism == CUDNN_DETERMINISTIC) return perf[i].algo;
  throw Error(str("conv (cuDNN): no deterministic ", pass, " algorithm among the ", count,
                  " that cuDNN proposed for this geometry"));
}

// The algorithm chosen for one pass over one geometry (and dtype, math mode), asked of cuDNN once.
using AlgoKey = std::array<int64_t, 19>;
AlgoKey algo_key(int pass, DType dt, const ConvGeometry& g) {
  return {pass, int64_t(dt), int64_t(gemm_allow_tf32()), g.batch, g.in_channels, g.in_h, g.in_w, g.out_channels,
          g.out_h, g.out_w, g.kernel_h, g.kernel_w, g.stride_h, g.stride_w, g.pad_h, g.pad_w, g.dilation_h,
          g.dilation_w, g.groups};
}
template <class Algo, class Query>
Algo cached_algo(int device, const AlgoKey& key, const Query& query) {
  static auto* cache = new std::map<std::pair<int, AlgoKey>, int>;  // leaked like the handles
  static std::mutex mutex;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = cache->find({device, key});
  if (it == cache->end()) it = cache->emplace(std::pair{device, key}, static_cast<int>(query())).first;
  return static_cast<Algo>(it->second);
}

// α = 1 and β = 0 in the data type's precision (cuDNN reads double scalars for double data).
struct Scalars {
  float f1 = 1, f0 = 0;
  double d1 = 1, d0 = 0;
  DType dt;
  const void* one() const { return dt == DType::Float64 ? static_cast<const void*>(&d1) : &f1; }
  const void* zero() const { return dt == DType::Float64 ? static_cast<const void*>(&d0) : &f0; }
};

}  // namespace

void conv2d_forward(const LaunchScope& s, DType dt, const ConvGeometry& g, const void* x, const void* w,
                    const void* bias, void* y) {
  Descriptors d(dt, g);
  LockedHandle h(s);
  const auto algo = cached_algo<cudnnConvolutionFwdAlgo_t>(s.device(), algo_key(0, dt, g), [&] {
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int count = 0;
    LOOM_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h.get(), d.x, d.w, d.conv, d.y,
                                                            CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &count, perf));
    return pick(perf, count, "forward");
  });
  size_t bytes = 0;
  LOOM_CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(h.get(), d.x, d.w, d.conv, d.y, algo, &bytes));
  Workspace ws(s.device(), bytes);
  const Scalars a{.dt = dt};
  LOOM_CUDNN_CHECK(cudnnConvolutionForward(h.get(), a.one(), d.x, x, d.w, w, d.conv, algo, ws.as<void>(), bytes,
                                           a.zero(), d.y, y));
  if (bias) {
    d.set_bias(dt, g.out_channels);
    LOOM_CUDNN_CHECK(cudnnAddTensor(h.get(), a.one(), d.bias, bias, a.one(), d.y, y));
  }
}

void conv2d_backward_data(const LaunchScope& s, DType dt, const ConvGeometry& g, const void* gy, const void* w,
                          const void* bias, void* gx) {
  Descriptors d(dt, g);
  LockedHandle h(s);
  const auto algo = cached_algo<cudnnConvolutionBwdDataAlgo_t>(s.device(), algo_key(1, dt, g), [&] {
    cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    int count = 0;
    LOOM_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(
        h.get(), d.w, d.y, d.conv, d.x, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &count, perf));
    return pick(perf, count, "backward-data");
  });
  size_t bytes = 0;
  LOOM_CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(h.get(), d.w, d.y, d.conv, d.x, algo, &bytes));
  Workspace ws(s.device(), bytes);
  const Scalars a{.dt = dt};
  LOOM_CUDNN_CHECK(cudnnConvolutionBackwardData(h.get(), a.one(), d.w, w, d.y, gy, d.conv, algo, ws.as<void>(),
                                                bytes, a.zero(), d.x, gx));
  if (bias) {
    d.set_bias(dt, g.in_channels);
    LOOM_CUDNN_CHECK(cudnnAddTensor(h.get(), a.one(), d.bias, bias, a.one(), d.x, gx));
  }
}

void conv2d_backward_weight(const LaunchScope& s, DType dt, const ConvGeometry& g, const void* x, const void* gy,
                            void* gw) {
  Descriptors d(dt, g);
  LockedHandle h(s);
  const auto algo = cached_algo<cudnnConvolutionBwdFilterAlgo_t>(s.device(), algo_key(2, dt, g), [&] {
    cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    int count = 0;
    LOOM_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(
        h.get(), d.x, d.y, d.conv, d.w, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &count, perf));
    return pick(perf, count, "backward-filter");
  });
  size_t bytes = 0;
  LOOM_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(h.get(), d.x, d.y, d.conv, d.w, algo, &bytes));
  Workspace ws(s.device(), bytes);
  const Scalars a{.dt = dt};
  LOOM_CUDNN_CHECK(cudnnConvolutionBackwardFilter(h.get(), a.one(), d.x, x, d.y, gy, d.conv, algo, ws.as<void>(),
                                                  bytes, a.zero(), d.w, gw));
}

}  // namespace loom::kernels::cuda::cudnn
#endif
