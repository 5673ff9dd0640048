// CUDA against the CPU reference for the pool and optim families: pooling and
// upsampling forward and backward on awkward planes (batch 1, odd channels,
// 7×9 and 33×31, kernel 2/3, stride 1/2, padding 0/1), and optimizer steps,
// gradient clipping and weight averaging on parameters of mixed sizes. The
// CUDA kernels reproduce the CPU's arithmetic order (see kernels/cuda/pool.cu,
// optim.cu), so the tolerances are tight. Allocations are poisoned (NaN bytes)
// while the tests run; without a CUDA device every test is skipped.
#include <cmath>
#include <functional>

#include "autograd/optim.h"
#include "kernels/memory.h"
#include "kernels/optim.h"
#include "tests/cuda/cuda_test.h"
#include "tests/gradcheck.h"

using namespace loom;
using namespace loom::testing;

namespace {

const Device kCuda = Device::cuda(0);
const std::vector<DType> kFloatTypes = {DType::Float32, DType::Float64};
const std::vector<int64_t> kParamSizes = {1, 3, 257, 100000};

class CudaPoolOptim : public CudaTest {};

// float32 sums in double on both devices, in the same order: a few ulps at most.
double pool_tol(DType dt) { return dt == DType::Float32 ? 1e-6 : 1e-13; }

Tensor uniform_cpu(const Shape& s, double lo, double hi, DType dt, uint64_t seed) {
  Generator g(seed);
  return uniform(s, lo, hi, TensorOptions{dt}, &g);
}

// Whole numbers in (lo, hi): pooling windows full of ties.
Tensor integers_cpu(const Shape& s, double lo, double hi, DType dt, uint64_t seed) {
  return uniform_cpu(s, lo, hi, dt, seed).to(DType::Int64).to(dt);
}

// f of one tensor on the CPU and on the GPU (cuda_test.h): outputs and gradients agree.
void expect_unary_matches(const std::function<Tensor(const Tensor&)>& f, const Tensor& x, DType dt) {
  const double t = pool_tol(dt);
  expect_cuda_matches_cpu([&](const std::vector<Tensor>& in) { return f(in[0]); }, {x}, {t, t});
}

struct PoolCase {
  Shape shape;
  int64_t kernel, stride, padding;
};

std::vector<PoolCase> pool_cases() {
  std::vector<PoolCase> cases;
  for (Shape s : {Shape{1, 3, 7, 9}, Shape{2, 5, 33, 31}, Shape{1, 1, 1, 1}})
    for (int64_t k : {1, 2, 3})
      for (int64_t st : {1, 2})
        for (int64_t pad : {0, 1})
          if (2 * pad <= k && k <= s[2] + 2 * pad && k <= s[3] + 2 * pad) cases.push_back({s, k, st, pad});
  return cases;
}

}  // namespace

// ---- pool ----------------------------------------------------------------------------------------

TEST_F(CudaPoolOptim, MaxPoolMatchesCpu) {
  for (DType dt : kFloatTypes)
    for (const PoolCase& c : pool_cases()) {
      SCOPED_TRACE(str(dtype_name(dt), " ", c.shape, " k", c.kernel, " s", c.stride, " p", c.padding));
      // Quantized values: many ties, which must go to the same (first) element.
      Tensor x = integers_cpu(c.shape, -3, 3, dt, c.shape[2] * 10 + c.kernel);
      expect_unary_matches(
          [&](const Tensor& v) {
            return max_pool2d(v, {c.kernel, c.kernel}, {c.stride, c.stride}, {c.padding, c.padding});
          },
          x, dt);
    }
}

TEST_F(CudaPoolOptim, MaxPoolNanWinsAndSticksAsOnCpu) {
  Tensor x = from_vector(std::vector<double>{1, NAN, 5, 2, 7, 3, -1, NAN, 0}, {1, 1, 3, 3}, TensorOptions{DType::Float64});
  Tensor yc = max_pool2d(x, {2, 2}, {1, 1}), yg = max_pool2d(x.to(kCuda), {2, 2}, {1, 1}).to(Device::cpu());
  for (int64_t i = 0; i < yc.numel(); ++i) {
    const double a = yc.data<double>()[i], b = yg.data<double>()[i];
    EXPECT_TRUE((std::isnan(a) && std::isnan(b)) || a == b) << "element " << i << ": cpu " << a << ", cuda " << b;
  }
}

TEST_F(CudaPoolOptim, AvgPoolMatchesCpu) {
  for (DType dt : kFloatTypes)
    for (const PoolCase& c : pool_cases()) {
      SCOPED_TRACE(str(dtype_name(dt), " ", c.shape, " k", c.kernel, " s", c.stride, " p", c.padding));
      Tensor x = uniform_cpu(c.shape, -3, 3, dt, c.shape[3] * 10 + c.stride);
      expect_unary_matches(
          [&](const Tensor& v) {
            return avg_pool2d(v, {c.kernel, c.kernel}, {c.stride, c.stride}, {c.padding, c.padding});
          },
          x, dt);
    }
}

TEST_F(CudaPoolOptim, UpsampleNearestMatchesCpu) {
  for (DType dt : kFloatTypes)
    for (Shape s : {Shape{1, 3, 7, 9}, Shape{2, 5, 33, 31}, Shape{1, 1, 1, 1}})
      for (int64_t scale : {1, 2, 3}) {
        SCOPED_TRACE(str(dtype_name(dt), " ", s, " scale ", scale));
        expect_unary_matches([&](const Tensor& v) { return upsample_nearest2d(v, scale); },
                             uniform_cpu(s, -3, 3, dt, s[2] + scale), dt);
      }
}

TEST_F(CudaPoolOptim, PoolBackwardIsDeterministic) {
  Tensor x = integers_cpu({2, 3, 33, 31}, -2, 2, DType::Float32, 5).to(kCuda);
  auto grad_of = [&] {
    Tensor v = x.detach().clone();
    v.requires_grad_();
    backward(sum(max_pool2d(v, {3, 3}, {1, 1}, {1, 1}) * 0.37) + sum(avg_pool2d(v, {3, 3}, {2, 2}, {1, 1})));
    return v.grad().to(Device::cpu());
  };
  expect_tensors_near(grad_of(), grad_of(), 0, 0);
}

// ---- optim ---------------------------------------------------------------------------------------

namespace {

// The same parameters (sizes kParamSizes) on the CPU and on the GPU.
struct Twins {
  std::vector<Tensor> cpu, gpu;
};
Twins twin_params(DType dt) {
  Twins t;
  for (int64_t n : kParamSizes) {
    Tensor p = uniform_cpu({n}, -1, 1, dt, n);
    Tensor c = p.clone(), g = p.to(kCuda);
    c.requires_grad_();
    g.requires_grad_();
    t.cpu.push_back(c);
    t.gpu.push_back(g);
  }
  return t;
}

// Step `step` gives both twins the same random gradients (scale: to exercise
// clipping); parameter i gets its first one at step first_step(i), 0 by default.
void set_twin_grads(Twins& t, int step, double scale = 1, const std::function<int(size_t)>& first_step = {}) {
  for (size_t i = 0; i < t.cpu.size(); ++i) {
    if (first_step && step < first_step(i)) continue;
    Tensor g = uniform_cpu(t.cpu[i].shape(), -scale, scale, t.cpu[i].dtype(), 1000 * step + i);
    t.cpu[i].set_grad(g);
    t.gpu[i].set_grad(g.to(kCuda));
  }
}

void expect_twins_near(const Twins& t, double tolerance) {
  for (size_t i = 0; i < t.cpu.size(); ++i) {
    SCOPED_TRACE(str("parameter ", i, " of ", t.cpu[i].numel()));
    expect_tensors_near(t.gpu[i], t.cpu[i], tolerance, tolerance);
  }
}

template <class Opt, class Options>
void expect_steps_match(DType dt, Options o) {
  Twins t = twin_params(dt);
  Opt cpu(t.cpu, o), gpu(t.gpu, o);
  // Parameters join at steps 0, 1, 2, 0: one fused launch mixes per-parameter steps.
  for (int step = 0; step < 4; ++step) {
    set_twin_grads(t, step, 1, [](size_t i) { return int(i % 3); });
    cpu.step();
    gpu.step();
  }
  // The update reproduces the CPU's arithmetic operation for operation.
  expect_twins_near(t, dt == DType::Float32 ? 1e-7 : 1e-15);
}

}  // namespace

TEST_F(CudaPoolOptim, OptimizerStepsMatchCpu) {
  for (DType dt : kFloatTypes) {
    SCOPED_TRACE(dtype_name(dt));
    expect_steps_match<optim::Adam>(dt, optim::AdamOptions{.lr = 0.01, .weight_decay = 0.1});
    expect_steps_match<optim::AdamW>(dt, optim::AdamOptions{.lr = 0.01, .weight_decay = 0.1});
    expect_steps_match<optim::SGD>(dt, optim::SGDOptions{.lr = 0.1});
    expect_steps_match<optim::SGD>(dt, optim::SGDOptions{.lr = 0.1, .momentum = 0.9, .dampening = 0.2,
                                                         .weight_decay = 0.01});
    expect_steps_match<optim::SGD>(dt, optim::SGDOptions{.lr = 0.1, .momentum = 0.9, .nesterov = true});
  }
}

TEST_F(CudaPoolOptim, ClipGradNormMatchesCpu) {
  for (DType dt : kFloatTypes) {
    SCOPED_TRACE(dtype_name(dt));
    Twins t = twin_params(dt);
    set_twin_grads(t, 0, 3);
    const Tensor norm_gpu = optim::clip_grad_norm(t.gpu, 1.0);
    EXPECT_EQ(norm_gpu.device(), kCuda);
    const double nc = optim::clip_grad_norm(t.cpu, 1.0).item(), ng = norm_gpu.item();
    // Σx² in double on both devices, in a different order.
    EXPECT_NEAR(ng, nc, 1e-12 * nc);
    for (size_t i = 0; i < t.cpu.size(); ++i)
      expect_tensors_near(t.gpu[i].grad(), t.cpu[i].grad(), dt == DType::Float32 ? 1e-7 : 1e-13, 1e-7);
    // Determinism: the same gradients give the same norm, bit for bit.
    EXPECT_EQ(optim::clip_grad_norm(t.gpu, 1e9).item(), optim::clip_grad_norm(t.gpu, 1e9).item());
  }
}

namespace {
// A module whose parameters have the mixed sizes, for the EMA.
class MixedSizes : public nn::Module {
 public:
  MixedSizes(DType dt, Device d) {
    params_.resize(kParamSizes.size());
    for (size_t i = 0; i < kParamSizes.size(); ++i)
      register_parameter(str("p", i), &params_[i], uniform_cpu({kParamSizes[i]}, -1, 1, dt, 7 + i).to(d));
  }
  std::vector<Tensor> params_;
};
}  // namespace

TEST_F(CudaPoolOptim, EmaMatchesCpu) {
  for (DType dt : kFloatTypes) {
    SCOPED_TRACE(dtype_name(dt));
    MixedSizes cpu(dt, Device::cpu()), gpu(dt, kCuda);
    optim::EMA ema_cpu(cpu, 0.9), ema_gpu(gpu, 0.9);
    for (int step = 0; step < 2; ++step) {
      for (size_t i = 0; i < kParamSizes.size(); ++i) {
        NoGrad ng;
        Tensor delta = uniform_cpu({kParamSizes[i]}, -1, 1, dt, 50 + step * 10 + i);
        cpu.params_[i].add_(delta);
        gpu.params_[i].add_(delta.to(kCuda));
      }
      ema_cpu.update(cpu);
      ema_gpu.update(gpu);
    }
    for (const auto& [name, avg] : ema_cpu.averages())
      expect_tensors_near(ema_gpu.averages().at(name), avg, dt == DType::Float32 ? 1e-7 : 1e-15, 1e-7);
  }
}

// A fused step is a constant number of kernel launches, whatever the number of
// parameters. Counted by the optim launcher's own counter
// (kernels::cuda::optim_launch_count): memory statistics cannot see launches
// (the staging buffers come from the cache either way), and a profiler API
// (CUPTI) would tie the test to a tool outside the build; the counter sits at
// the one place that launches and counts what the claim is about.
TEST_F(CudaPoolOptim, OneStepIsAConstantNumberOfLaunches) {
  auto launches_per_step = [](int n_params) {
    std::vector<Tensor> ps;
    for (int i = 0; i < n_params; ++i) {
      Tensor p = uniform_cpu({3 + i}, -1, 1, DType::Float32, i).to(kCuda);
      p.requires_grad_();
      p.set_grad(ones_like(p));
      ps.push_back(p);
    }
    optim::Adam adam(ps, {.lr = 1e-3});
    adam.step();  // the first step creates the moment buffers
    const uint64_t before = kernels::cuda::optim_launch_count();
    optim::clip_grad_norm(ps, 1e-3);  // clips: sum_squares (2 launches) + scale (1)
    adam.step();                      // 1
    return kernels::cuda::optim_launch_count() - before;
  };
  EXPECT_EQ(launches_per_step(1), 4u);
  EXPECT_EQ(launches_per_step(300), 4u);
}
