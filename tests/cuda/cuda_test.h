// The fixture every CUDA test derives from.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "autograd/tensor.h"
#include "kernels/memory.h"
#include "tests/gradcheck.h"

namespace loom::testing {

// Skips without a device, with the message "no CUDA device" (never a vacuous
// pass), and poisons every allocation (NaN / -1 bytes) while the test runs, so
// an output element a kernel forgets to write fails the comparison.
class CudaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
    kernels::set_poison_allocations(true);
  }
  void TearDown() override { kernels::set_poison_allocations(false); }
};

// |cuda − cpu| ≤ atol + rtol·|cpu|. float32: CUDA's exp/log/pow/tanh may differ
// from libm by a few ulps and nvcc fuses multiply-adds; sums accumulate in
// double on both devices but in a different order. The bound grows with the
// length n of the longest sum behind a value (√n: rounding errors of a sum
// behave like a random walk), so long reductions and GEMMs get more room while a
// wrong element still fails by orders of magnitude.
struct Tol {
  double atol, rtol;
};
inline Tol tol(DType dt, int64_t n = 1) {
  const double base = dt == DType::Float32 ? 4e-6 : 1e-12;
  const double t = base * std::sqrt(static_cast<double>(std::max<int64_t>(n, 1)));
  return {t, t};
}

// Runs f on the inputs on the CPU and on copies on the GPU; compares the
// outputs and, with grads, the gradients of Σ f(x)·R for a random R (the same
// on both devices) of every floating input (an input f does not differentiate
// through must get no gradient on either device).
inline void expect_cuda_matches_cpu(const Fn& f, const std::vector<Tensor>& inputs, Tol t, bool grads = true) {
  const Device kCuda = Device::cuda(0);
  std::vector<Tensor> cpu, gpu;
  for (const Tensor& x : inputs) {
    Tensor c = x.detach().clone(), g = x.detach().to(kCuda);
    if (grads && is_floating(x.dtype())) {
      c.requires_grad_();
      g.requires_grad_();
    }
    cpu.push_back(c);
    gpu.push_back(g);
  }
  Tensor yc = f(cpu), yg = f(gpu);
  ASSERT_EQ(yg.device(), kCuda);
  ASSERT_EQ(yg.dtype(), yc.dtype());
  expect_tensors_near(yg, yc, t.atol, t.rtol);
  if (!grads) return;
  Generator gen(99);
  Tensor r = randn(yc.shape(), TensorOptions{yc.dtype()}, &gen);
  backward(sum(yc * r));
  backward(sum(yg * r.to(kCuda)));
  for (size_t i = 0; i < cpu.size(); ++i) {
    if (!cpu[i].requires_grad()) continue;
    SCOPED_TRACE("gradient of input " + std::to_string(i));
    ASSERT_EQ(gpu[i].grad().defined(), cpu[i].grad().defined());
    if (!cpu[i].grad().defined()) continue;
    EXPECT_EQ(gpu[i].grad().device(), kCuda);
    expect_tensors_near(gpu[i].grad(), cpu[i].grad(), t.atol, t.rtol);
  }
}

}  // namespace loom::testing
