// loom-bench: the CUDA kernels timed side by side with their baselines and against ceilings measured
// in the same run. docs/results/kernels.md describes the method.
//
//   ./build/tools/loom-bench [--filter SUBSTR] [--runs N] [--quick] [--check]
//
// For every benchmark, each variant (v0 = cuDNN/cuBLAS where one exists, then loom's) is first checked
// against the CPU kernels on a small verification size (its outputs allocated poisoned, all-NaN, so an
// element the kernel never writes fails), then timed: 3 warm-up launches, then N runs
// (default 50) each preceded by a 256 MB write that flushes the 50 MB L2, each timed alone with CUDA
// events; the median is reported. Rates: TFLOP/s for convs (2·N·O·OH·OW·(C/G)·kh·kw per pass), GB/s
// for bandwidth-bound kernels (bytes each must move at least once), next to the ceilings: device-to-
// device cudaMemcpy bandwidth (2 × bytes / time) and cuBLAS SGEMM 8192³ (FP32, no TF32).
// --quick: 10 runs and only the first shape of each group.
// --check: the checks alone, nothing timed and no ceilings measured: a row per variant with ok or WRONG
// and the relative error, or FAILED and the CUDA error. It is the only mode of the emulated build
// (-DLOOM_CUDA=EMULATE, where CTest runs it as loom_bench_check): the emulator runs kernels on the CPU,
// so its times would measure the emulator, and the bench refuses to print them.
// Exit status 1 when any check is WRONG or FAILED (with or without --check). Without a device:
// "no CUDA device", exit 0.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "autograd/tape.h"
#include "kernels/conv.h"
#include "kernels/cuda/check.h"
#include "kernels/elementwise.h"
#include "kernels/gemm.h"
#include "kernels/memory.h"
#include "kernels/reduce.h"

using namespace loom;
using kernels::ConvVariant;

namespace {

const Device kCuda = Device::cuda(0);
const KernelCtx kGpu{kCuda};
const KernelCtx kHost{};

struct Options {
  std::string filter;
  int runs = 50;
  bool quick = false;
  bool check_only = false;
};

std::string fmt(const char* f, double v) {
  char s[64];
  std::snprintf(s, sizeof s, f, v);
  return s;
}

// ---- timing ---------------------------------------------------------------------------------------------

class Timer {
 public:
  explicit Timer(int runs) : runs_(runs), flush_(empty({int64_t(64) << 20}, TensorOptions{}.on(kCuda))) {
    LOOM_CUDA_CHECK(cudaEventCreate(&start_));
    LOOM_CUDA_CHECK(cudaEventCreate(&stop_));
  }
  ~Timer() {
    cudaEventDestroy(start_);
    cudaEventDestroy(stop_);
  }
  // Median milliseconds of `launch` with a cold L2.
  double median_ms(const std::function<void()>& launch) {
    for (int i = 0; i < 3; ++i) launch();
    std::vector<float> ms(runs_);
    for (float& t : ms) {
      // 256 MB written (a new byte value each time, so no cache level can elide it) evicts the L2.
      LOOM_CUDA_CHECK(cudaMemsetAsync(flush_.data_ptr(), ++flushes_ & 0xff, flush_.numel() * sizeof(float)));
      LOOM_CUDA_CHECK(cudaEventRecord(start_));
      launch();
      LOOM_CUDA_CHECK(cudaEventRecord(stop_));
      LOOM_CUDA_CHECK(cudaEventSynchronize(stop_));
      LOOM_CUDA_CHECK(cudaEventElapsedTime(&t, start_, stop_));
    }
    std::nth_element(ms.begin(), ms.begin() + ms.size() / 2, ms.end());
    return ms[ms.size() / 2];
  }

 private:
  int runs_;
  Tensor flush_;
  int flushes_ = 0;
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
};

// ---- checking -------------------------------------------------------------------------------------------

// max |a − b| / max(1, max |b|): a relative error that a few ulps of rounding keep tiny. A NaN on either side
// is infinitely wrong (std::max would silently skip it, and an unwritten poisoned output is all NaN).
double relative_error(const Tensor& gpu, const Tensor& cpu) {
  Tensor a = gpu.to(Device::cpu()).to(DType::Float64), b = cpu.to(DType::Float64);
  const double* pa = static_cast<const double*>(a.data_ptr());
  const double* pb = static_cast<const double*>(b.data_ptr());
  double err = 0, scale = 1;
  for (int64_t i = 0; i < b.numel(); ++i) {
    const double diff = std::abs(pa[i] - pb[i]);
    if (std::isnan(diff)) return INFINITY;
    err = std::max(err, diff);
    scale = std::max(scale, std::abs(pb[i]));
  }
  return err / scale;
}

// One variant's agreement with the CPU on the verification size.
struct Check {
  std::string verdict;  // "ok 1.2e-07", "WRONG 3.0e-02", "FAILED", or "-" for what has no check
  std::string error;    // why a FAILED check failed (the CUDA error); empty for the others
  bool passed = false;
  bool failed() const { return !error.empty(); }
};
const Check kUnchecked{"-", "", true};

// Runs `gpu_output` (which allocates its output) with every fresh allocation poisoned: the caching allocator
// would otherwise hand it the block of an earlier variant's output, correct bytes a kernel that writes nothing
// would pass on. A launch that fails is a FAILED check, not the end of the run.
Check check(const std::function<Tensor()>& gpu_output, const Tensor& reference, double tolerance) {
  Check c;
  kernels::set_poison_allocations(true);
  try {
    const double err = relative_error(gpu_output(), reference);
    c.passed = err <= tolerance;
    c.verdict = str(c.passed ? "ok " : "WRONG ", fmt("%.1e", err));
  } catch (const Error& e) {
    c.verdict = "FAILED";
    c.error = e.what();
  }
  kernels::set_poison_allocations(false);
  return c;
}

// ---- the report -----------------------------------------------------------------------------------------

// What a timed row adds to its check.
struct Timing {
  double ms;
  std::string rate, relative;
};

// The table: a row per variant with its check and, when the run times, its numbers. Counts the checks that
// did not pass, for the exit status.
class Report {
 public:
  explicit Report(bool timed) : timed_(timed) {}
  void header(const char* title) const {
    std::printf("\n== %s\n%-44s %-48s ", title, "benchmark", "variant");
    if (timed_)
      std::printf("%-14s %10s %12s  %s\n", "check", "median ms", "rate", "relative");
    else
      std::printf("check\n");
  }
  // `timing` is null with --check and for a FAILED check (nothing to time).
  void row(const std::string& name, const std::string& variant, const Check& check, const Timing* timing) {
    failures_ += !check.passed;
    std::printf("%-44s %-48s ", name.c_str(), variant.c_str());
    if (timing)
      std::printf("%-14s %10.4f %12s  %s\n", check.verdict.c_str(), timing->ms, timing->rate.c_str(),
                  timing->relative.c_str());
    else
      std::printf("%s\n", check.verdict.c_str());
    if (!check.error.empty()) std::printf("    %s\n", check.error.c_str());
    std::fflush(stdout);  // rows appear as they finish, in order with what a failing launch said on stderr
  }
  int failures() const { return failures_; }

 private:
  bool timed_;
  int failures_ = 0;
};

Tensor random(const Shape& s, uint64_t seed, Device d = Device::cpu()) {
  Generator g(seed);
  return uniform(s, -1, 1, {}, &g).to(d);
}

// ---- ceilings -----------------------------------------------------------------------------------------------

struct Ceilings {
  double copy_gbs = 0, sgemm_tflops = 0;
};

Ceilings measure_ceilings(Timer& timer, Report& report) {
  Ceilings c;
  const int64_t n = int64_t(1) << 28;  // 1 GiB of floats
  Tensor a = empty({n}, TensorOptions{}.on(kCuda)), b = empty({n}, TensorOptions{}.on(kCuda));
  const double copy_ms = timer.median_ms(
      [&] { LOOM_CUDA_CHECK(cudaMemcpyAsync(b.data_ptr(), a.data_ptr(), n * 4, cudaMemcpyDeviceToDevice)); });
  c.copy_gbs = 2.0 * n * 4 / copy_ms * 1e-6;
  const int64_t s = 8192;
  Tensor x = random({s, s}, 1, kCuda), y = random({s, s}, 2, kCuda), z = empty({s, s}, TensorOptions{}.on(kCuda));
  kernels::set_gemm_allow_tf32(false);
  const double gemm_ms = timer.median_ms([&] {
    kernels::cuda::gemm(kGpu, DType::Float32, false, false, s, s, s, 1, x.data_ptr(), s, 0, y.data_ptr(), s, 0, 0,
                        z.data_ptr(), s, 0, 1);
  });
  c.sgemm_tflops = 2.0 * s * s * s / gemm_ms * 1e-9;
  report.header("ceilings");
  const Timing copy{copy_ms, fmt("%.0f GB/s", c.copy_gbs), ""}, gemm{gemm_ms, fmt("%.1f TFLOP/s", c.sgemm_tflops), ""};
  report.row("cudaMemcpy device-to-device 1 GiB", "CUDA runtime", kUnchecked, &copy);
  report.row("SGEMM 8192^3 FP32", "v0 cuBLAS", kUnchecked, &gemm);
  return c;
}

// What a benchmark needs besides its shapes: the timer and ceilings (absent with --check) and the report.
struct Run {
  Timer* timer;
  Ceilings ceil;
  Report& report;
};

// ---- convolutions -------------------------------------------------------------------------------------------

struct ConvShape {
  const char* name;
  int64_t n, c, o, h, w, k, s, p;
  ConvGeometry geometry(int64_t batch) const {
    const int64_t oh = (h + 2 * p - k) / s + 1, ow = (w + 2 * p - k) / s + 1;
    return ConvGeometry{.batch = batch, .in_channels = c, .in_h = h, .in_w = w, .out_channels = o, .out_h = oh,
                        .out_w = ow, .kernel_h = k, .kernel_w = k, .stride_h = s, .stride_w = s, .pad_h = p,
                        .pad_w = p};
  }
};

std::vector<ConvShape> conv_shapes() {
  return {
      {"DCGAN-64 3->64 64^2 k4s2p1", 128, 3, 64, 64, 64, 4, 2, 1},
      {"DCGAN-64 64->128 32^2 k4s2p1", 128, 64, 128, 32, 32, 4, 2, 1},
      {"DCGAN-64 128->256 16^2 k4s2p1", 128, 128, 256, 16, 16, 4, 2, 1},
      {"DCGAN-64 256->512 8^2 k4s2p1", 128, 256, 512, 8, 8, 4, 2, 1},
      {"DCGAN-28 1->64 28^2 k4s2p1", 64, 1, 64, 28, 28, 4, 2, 1},
      {"DCGAN-28 64->128 14^2 k4s2p1", 64, 64, 128, 14, 14, 4, 2, 1},
      {"DDPM 64->64 32^2 k3p1", 128, 64, 64, 32, 32, 3, 1, 1},
      {"DDPM 128->128 16^2 k3p1", 128, 128, 128, 16, 16, 3, 1, 1},
      {"PixelCNN 1->128 28^2 k7p3", 64, 1, 128, 28, 28, 7, 1, 3},
      {"PixelCNN 128->128 28^2 k3p1", 64, 128, 128, 28, 28, 3, 1, 1},
  };
}

enum class Pass { Forward, BackwardData, BackwardWeight };
const char* pass_name(Pass p) {
  return p == Pass::Forward ? "fwd" : p == Pass::BackwardData ? "bwd-data" : "bwd-weight";
}
// A conv2d pass is also a conv_transpose2d pass of the mirrored layer (kernels/conv.h): say which.
const char* mirror_name(Pass p) {
  return p == Pass::Forward ? "= convT bwd-data" : p == Pass::BackwardData ? "= convT fwd" : "= convT bwd-weight";
}

// The tensors of one pass: x [N, C, H, W], w, y (or gy) [N, O, OH, OW], on one device.
struct ConvTensors {
  Tensor x, w, y;
  ConvTensors(const ConvGeometry& g, Device d)
      : x(random({g.batch, g.in_channels, g.in_h, g.in_w}, 11, d)),
        w(random({g.out_channels, g.in_channels, g.kernel_h, g.kernel_w}, 12, d)),
        y(random({g.batch, g.out_channels, g.out_h, g.out_w}, 13, d)) {}
};

// Runs the pass on t's device; returns the tensor it wrote.
Tensor run_pass(Pass p, const ConvGeometry& g, ConvTensors& t) {
  const KernelCtx ctx{t.x.device()};
  switch (p) {
    case Pass::Forward: {
      Tensor y = empty(t.y.shape(), TensorOptions{}.on(t.x.device()));
      LOOM_DISPATCH(ctx, LOOM_CUDA_CONV, conv2d_forward, ctx, DType::Float32, g, t.x.data_ptr(), t.w.data_ptr(),
                    nullptr, y.data_ptr());
      return y;
    }
    case Pass::BackwardData: {
      Tensor gx = empty(t.x.shape(), TensorOptions{}.on(t.x.device()));
      LOOM_DISPATCH(ctx, LOOM_CUDA_CONV, conv2d_backward_data, ctx, DType::Float32, g, t.y.data_ptr(),
                    t.w.data_ptr(), nullptr, gx.data_ptr());
      return gx;
    }
    case Pass::BackwardWeight: {
      Tensor gw = empty(t.w.shape(), TensorOptions{}.on(t.x.device()));
      LOOM_DISPATCH(ctx, LOOM_CUDA_CONV, conv2d_backward_weight, ctx, DType::Float32, g, t.x.data_ptr(),
                    t.y.data_ptr(), gw.data_ptr());
      return gw;
    }
  }
  return {};
}

std::vector<ConvVariant> conv_variants() {
#ifdef LOOM_HAVE_CUDNN
  return {ConvVariant::V0, ConvVariant::V1, ConvVariant::V2};
#else
  return {ConvVariant::V1, ConvVariant::V2};
#endif
}

// Geometric means of loom v2's speed relative to cuDNN, per pass.
using Ratios = std::map<Pass, std::vector<double>>;

// Convs are checked at batch 2: every other dimension is the timed layer's.
constexpr int64_t kVerifyBatch = 2;

void bench_conv(const ConvShape& shape, Run& run, Ratios& ratios) {
  const ConvGeometry g = shape.geometry(shape.n), small = shape.geometry(kVerifyBatch);
  const double flops = 2.0 * g.batch * g.out_channels * g.out_h * g.out_w * g.in_channels * g.kernel_h * g.kernel_w;
  const double k_len = double(std::max(g.in_channels * g.kernel_h * g.kernel_w, small.batch * g.out_h * g.out_w));
  ConvTensors cpu(small, Device::cpu()), gpu_small(small, kCuda);
  std::optional<ConvTensors> gpu;
  if (run.timer) gpu.emplace(g, kCuda);
  for (Pass pass : {Pass::Forward, Pass::BackwardData, Pass::BackwardWeight}) {
    const Tensor reference = [&] {
      // The selector is for both backends: loom's own CPU kernels (v1) are the reference, not oneDNN.
      const kernels::ConvVariantScope cpu_reference(ConvVariant::V1);
      return run_pass(pass, small, cpu);
    }();
    double cudnn_ms = 0;
    for (ConvVariant impl : conv_variants()) {
      kernels::set_conv_variant(impl);
      const Check c = check([&] { return run_pass(pass, small, gpu_small); }, reference, 1e-6 * k_len);
      const std::string name = str(shape.name, " ", pass_name(pass)),
                        variant = str(kernels::conv_variant_name(impl, DeviceType::CUDA), " ", mirror_name(pass));
      if (!run.timer || c.failed()) {
        run.report.row(name, variant, c, nullptr);
        continue;
      }
      const double ms = run.timer->median_ms([&] { run_pass(pass, g, *gpu); });
      const double tflops = flops / ms * 1e-9;
      std::string relative = fmt("%.0f%% of SGEMM", 100 * tflops / run.ceil.sgemm_tflops);
      if (impl == ConvVariant::V0) cudnn_ms = ms;
      if (cudnn_ms > 0 && impl != ConvVariant::V0) relative += fmt(", %.2fx cuDNN", cudnn_ms / ms);
      if (cudnn_ms > 0 && impl == ConvVariant::V2) ratios[pass].push_back(cudnn_ms / ms);
      const Timing t{ms, fmt("%.2f TFLOP/s", tflops), relative};
      run.report.row(name, variant, c, &t);
    }
  }
  kernels::set_conv_variant(ConvVariant::Auto);
}

// ---- bandwidth-bound kernels ---------------------------------------------------------------------------------

// A bandwidth-bound benchmark: `run(x, out, size)` launches on one device; bytes moved for the timed size.
struct MemoryBench {
  std::string name;
  Shape timed, verify;
  std::function<Shape(const Shape&)> out_shape;
  std::function<void(const KernelCtx&, const Tensor&, Tensor&)> run;
  std::function<double(const Shape&)> bytes;
};

double numel(const Shape& s) {
  double n = 1;
  for (int64_t d : s) n *= double(d);
  return n;
}

Broadcast flat(int64_t n) {
  Broadcast bc;
  bc.rank = 1;
  bc.shape[0] = n;
  for (auto& s : bc.stride) s[0] = 1;
  return bc;
}

std::vector<MemoryBench> memory_benches() {
  // Verification sizes: small, and ragged where the timed ones are round (2^20 + 3 leaves a tail after the
  // 4-float packs and the reduction's splits; 1027 rows part-fill the last block of 8 rows), so the checks
  // reach the tails the timed sizes never do.
  const int64_t big = int64_t(1) << 28, ragged = (int64_t(1) << 20) + 3, rows_ragged = 1027;
  auto same = [](const Shape& s) { return s; };
  auto rows = [](const Shape& s) { return Shape{s[0]}; };
  return {
      {"sum over 2^28 floats", {big}, {ragged}, [](const Shape&) { return Shape{}; },
       [](const KernelCtx& k, const Tensor& x, Tensor& y) {
         LOOM_DISPATCH(k, LOOM_CUDA_REDUCE, reduce, k, ReduceOp::Sum, DType::Float32, x.data_ptr(), y.data_ptr(),
                       nullptr, 1, x.numel(), 1);
       },
       [](const Shape& s) { return 4 * numel(s); }},
      {"add over 2^28 floats", {big}, {ragged}, same,
       [](const KernelCtx& k, const Tensor& x, Tensor& y) {
         // y = x + x: the kernel reads two operands and writes one (12 bytes an element).
         LOOM_DISPATCH(k, LOOM_CUDA_ELEMENTWISE, binary, k, BinaryOp::Add, DType::Float32, x.data_ptr(),
                       x.data_ptr(), y.data_ptr(), flat(x.numel()));
       },
       [](const Shape& s) { return 12 * numel(s); }},
      {"softmax [100352, 256]", {100352, 256}, {rows_ragged, 256}, same,
       [](const KernelCtx& k, const Tensor& x, Tensor& y) {
         LOOM_DISPATCH(k, LOOM_CUDA_REDUCE, softmax, k, DType::Float32, x.data_ptr(), y.data_ptr(), x.size(0),
                       x.size(1), 1, false);
       },
       [](const Shape& s) { return 8 * numel(s); }},
      {"logsumexp [100352, 256] over 256", {100352, 256}, {rows_ragged, 256}, rows,
       [](const KernelCtx& k, const Tensor& x, Tensor& y) {
         LOOM_DISPATCH(k, LOOM_CUDA_REDUCE, reduce, k, ReduceOp::LogSumExp, DType::Float32, x.data_ptr(),
                       y.data_ptr(), nullptr, x.size(0), x.size(1), 1);
       },
       [](const Shape& s) { return 4 * numel(s); }},
      // BatchNorm's training forward, the op batch_norm's kernel (statistics and y = x̂·γ + β, no γ, β here;
      // a block per channel). The rate counts one read and one write of x, the least any implementation
      // needs: the kernel reads x three times (μ, then σ² about it, then y), so 50% of the copy bandwidth
      // is its ceiling.
      {"batch_norm forward [128,64,32,32]", {128, 64, 32, 32}, {4, 67, 5, 7}, same,
       [](const KernelCtx& k, const Tensor& x, Tensor& y) {
         Tensor mean = empty({x.size(1)}, x.options()), rstd = empty({x.size(1)}, x.options());
         LOOM_DISPATCH(k, LOOM_CUDA_REDUCE, batch_norm, k, DType::Float32, x.data_ptr(), nullptr, nullptr, y.data_ptr(),
                       mean.data_ptr(), nullptr, rstd.data_ptr(), x.size(0), x.size(1), x.size(2) * x.size(3), 1e-5);
       },
       [](const Shape& s) { return 8 * numel(s); }},
  };
}

void bench_memory(const MemoryBench& b, Run& run) {
  const Tensor xv = random(b.verify, 21);
  Tensor ref = empty(b.out_shape(b.verify));
  b.run(kHost, xv, ref);
  const Check c = check(
      [&] {
        Tensor y = empty(b.out_shape(b.verify), TensorOptions{}.on(kCuda));
        b.run(kGpu, xv.to(kCuda), y);
        return y;
      },
      ref, 1e-5);
  const std::string variant = "v2 loom (no v0)";
  if (!run.timer || c.failed()) {
    run.report.row(b.name, variant, c, nullptr);
    return;
  }
  Tensor x = random(b.timed, 22, kCuda), y = empty(b.out_shape(b.timed), TensorOptions{}.on(kCuda));
  const double ms = run.timer->median_ms([&] { b.run(kGpu, x, y); });
  const double gbs = b.bytes(b.timed) / ms * 1e-6;
  const Timing t{ms, fmt("%.0f GB/s", gbs), fmt("%.0f%% of copy bandwidth", 100 * gbs / run.ceil.copy_gbs)};
  run.report.row(b.name, variant, c, &t);
}

// ---- the run ------------------------------------------------------------------------------------------------

Options parse(int argc, char** argv) {
  Options o;
  bool runs_given = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--filter" && i + 1 < argc) {
      o.filter = argv[++i];
    } else if (a == "--runs" && i + 1 < argc) {
      o.runs = std::max(1, std::atoi(argv[++i]));
      runs_given = true;
    } else if (a == "--quick") {
      o.quick = true;
      o.runs = 10;
    } else if (a == "--check") {
      o.check_only = true;
    } else {
      throw Error(str("unknown argument ", a, " (flags: --filter SUBSTR, --runs N, --quick, --check)"));
    }
  }
  LOOM_CHECK(!(o.check_only && runs_given), "--runs N with --check: --check times nothing");
#ifdef LOOM_CUDA_EMULATED
  // The emulator runs each kernel on the CPU, a fiber per GPU thread: a time would measure the emulator, and
  // printed in this table it would read as a GPU's.
  LOOM_CHECK(o.check_only, "emulated build: --check only (its kernels run on the CPU; there is nothing to time)");
#endif
  return o;
}

bool selected(const Options& o, const std::string& name) {
  return o.filter.empty() || name.find(o.filter) != std::string::npos;
}

int bench(int argc, char** argv) {
  const Options o = parse(argc, argv);
  if (kernels::cuda_device_count() == 0) {
    std::printf("no CUDA device\n");
    return 0;
  }
  cudaDeviceProp prop;
  LOOM_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  if (o.check_only)
    std::printf("loom-bench --check on %s (%d SMs), float32: each variant against the CPU, nothing timed\n",
                prop.name, prop.multiProcessorCount);
  else
    std::printf("loom-bench on %s (%d SMs), float32, median of %d runs, L2 flushed before each\n", prop.name,
                prop.multiProcessorCount, o.runs);
  Report report(!o.check_only);
  std::optional<Timer> timer;
  Run run{nullptr, {}, report};
  if (!o.check_only) {
    run.timer = &timer.emplace(o.runs);
    run.ceil = measure_ceilings(*run.timer, report);
  }

  report.header("convolutions (kernels/conv.h: v0 cuDNN, v1 direct, v2 tiled implicit GEMM)");
  Ratios ratios;
  std::string last_group;
  for (const ConvShape& s : conv_shapes()) {
    const std::string group = std::string(s.name).substr(0, std::string(s.name).find(' '));
    if (o.quick && group == last_group) continue;
    last_group = group;
    if (selected(o, str("conv ", s.name))) bench_conv(s, run, ratios);
  }
  for (const auto& [pass, r] : ratios) {
    double log_sum = 0;
    for (double v : r) log_sum += std::log(v);
    std::printf("geomean speed of loom v2 relative to cuDNN, %s: %.2fx over %zu shapes\n", pass_name(pass),
                std::exp(log_sum / r.size()), r.size());
  }

  report.header("bandwidth-bound kernels");
  for (const MemoryBench& b : memory_benches())
    if (selected(o, b.name)) bench_memory(b, run);

  if (report.failures() > 0) {
    std::printf("\n%d check%s WRONG or FAILED\n", report.failures(), report.failures() == 1 ? "" : "s");
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return bench(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "loom-bench: %s\n", e.what());
    return 1;
  }
}
