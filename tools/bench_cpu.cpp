// CPU kernel benchmark: GFLOP/s of GEMM and of the three conv2d passes on the shapes of DCGAN-28
// and of the classifier, float32. tools/torch_cpu_bench.py times the same shapes in PyTorch;
// docs/results/cpu.md compares them.
//
//   OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 ./build/tools/loom-bench-cpu
//
// A convolution costs 2·N·O·OH·OW·(C/G)·kh·kw FLOPs in each pass; GEMM m·n·k costs 2·m·n·k.
// Times are wall clock (UseRealTime): the kernels run on several threads.
#include <benchmark/benchmark.h>

#include <vector>

#include "kernels/conv.h"
#include "kernels/gemm.h"

namespace {

using namespace loom;

const KernelCtx kCpu{};

std::vector<float> filled(int64_t n) {
  std::vector<float> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = float((i * 7919) % 2003) / 1001.0f - 1.0f;  // deterministic, in [-1, 1)
  return v;
}

void set_flops(benchmark::State& state, double flops) {
  state.counters["GFLOPs"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_Gemm(benchmark::State& state) {
  const int64_t n = state.range(0);
  std::vector<float> a = filled(n * n), b = filled(n * n), c(n * n);
  for (auto _ : state) {
    kernels::cpu::gemm(kCpu, DType::Float32, false, false, n, n, n, 1.0, a.data(), n, 0, b.data(), n, 0, 0.0,
                       c.data(), n, 0, 1);
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  set_flops(state, 2.0 * n * n * n);
}
BENCHMARK(BM_Gemm)->Arg(512)->UseRealTime()->Unit(benchmark::kMillisecond);

enum class Pass { Forward, BackwardData, BackwardWeight };

// Args: batch, in channels, out channels, input size (square), kernel, stride, padding, and the
// kernel variant (kernels/conv.h: -1 auto, the per-shape choice the ops use; 0 v0 oneDNN, in builds that have it;
// 1 v1 im2col; 2 v2 shifted views).
template <Pass pass>
void BM_Conv2d(benchmark::State& state) {
  ConvGeometry g{.batch = state.range(0), .in_channels = state.range(1), .in_h = state.range(3),
                 .in_w = state.range(3), .out_channels = state.range(2), .kernel_h = state.range(4),
                 .kernel_w = state.range(4), .stride_h = state.range(5), .stride_w = state.range(5),
                 .pad_h = state.range(6), .pad_w = state.range(6)};
  g.out_h = (g.in_h + 2 * g.pad_h - g.kernel_h) / g.stride_h + 1;
  g.out_w = (g.in_w + 2 * g.pad_w - g.kernel_w) / g.stride_w + 1;
  std::vector<float> x = filled(g.batch * g.in_channels * g.in_h * g.in_w);
  std::vector<float> w = filled(g.out_channels * g.in_channels * g.kernel_h * g.kernel_w);
  std::vector<float> y = filled(g.batch * g.out_channels * g.out_h * g.out_w);
  const kernels::ConvVariantScope variant(static_cast<kernels::ConvVariant>(state.range(7)));
  for (auto _ : state) {
    switch (pass) {
      case Pass::Forward:
        kernels::cpu::conv2d_forward(kCpu, DType::Float32, g, x.data(), w.data(), nullptr, y.data());
        break;
      case Pass::BackwardData:
        kernels::cpu::conv2d_backward_data(kCpu, DType::Float32, g, y.data(), w.data(), nullptr, x.data());
        break;
      case Pass::BackwardWeight:
        kernels::cpu::conv2d_backward_weight(kCpu, DType::Float32, g, x.data(), y.data(), w.data());
        break;
    }
    benchmark::ClobberMemory();
  }
  set_flops(state, 2.0 * g.batch * g.out_channels * g.out_h * g.out_w * g.in_channels * g.kernel_h * g.kernel_w);
}

// DCGAN-28's discriminator: 1→64 on 28x28 and 64→128 on 14x14, k4 s2 p1, and 128→1 k7 on 7x7, batch 64
// (its generator's transposed convs are these read backwards, their forward is backward_data, and 128→100 k7);
// the classifier's 1→32 on 28x28 and 32→64 on 14x14, k3 s1 p1.
void dcgan_shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"N", "C", "O", "HW", "k", "s", "p", "v"});
#ifdef LOOM_HAVE_DNNL
  const std::vector<int64_t> variants{-1, 0, 1, 2};
#else
  const std::vector<int64_t> variants{-1, 1, 2};  // v0 (oneDNN) is not in this build
#endif
  for (int64_t v : variants) {
    b->Args({64, 1, 64, 28, 4, 2, 1, v});
    b->Args({64, 64, 128, 14, 4, 2, 1, v});
    b->Args({64, 128, 1, 7, 7, 1, 0, v});
    b->Args({64, 128, 100, 7, 7, 1, 0, v});  // the generator's first layer (z → 7x7), read backwards
    b->Args({64, 1, 32, 28, 3, 1, 1, v});
    b->Args({64, 32, 64, 14, 3, 1, 1, v});
    // CycleGAN-28 at its default width f = 8: the generator's 3→8 and 8→3 k7 (reflection-padded 34x34),
    // its 8→16 k3 s2 p1 on 28x28; the discriminator's 3→8 and 8→16 k4 s2 p1
    b->Args({64, 3, 8, 34, 7, 1, 0, v});
    b->Args({64, 8, 3, 34, 7, 1, 0, v});
    b->Args({64, 8, 16, 28, 3, 2, 1, v});
    b->Args({64, 3, 8, 28, 4, 2, 1, v});
    b->Args({64, 8, 16, 14, 4, 2, 1, v});
    // ProGAN's from-RGB 1x1 3→32 at its first and last stages (4x4, 32x32)
    b->Args({64, 3, 32, 4, 1, 1, 0, v});
    b->Args({64, 3, 32, 32, 1, 1, 0, v});
  }
  b->UseRealTime()->Unit(benchmark::kMillisecond);
}
BENCHMARK(BM_Conv2d<Pass::Forward>)->Name("conv2d_forward")->Apply(dcgan_shapes);
BENCHMARK(BM_Conv2d<Pass::BackwardData>)->Name("conv2d_backward_data")->Apply(dcgan_shapes);
BENCHMARK(BM_Conv2d<Pass::BackwardWeight>)->Name("conv2d_backward_weight")->Apply(dcgan_shapes);

}  // namespace

BENCHMARK_MAIN();
