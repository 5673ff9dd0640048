// The op test table's value mode: every case of tests/backend_ops.cpp on CUDA
// against the CPU, in float32 and float64, with every allocation NaN-poisoned:
// outputs, first-order gradients, and the second-order gradients a
// create_graph sweep produces (the recorded backward forms run on the device
// too). Then the gradient penalties of the GAN family on both devices.
#include <array>

#include "tests/backend_ops.h"
#include "tests/cuda/cuda_test.h"

using namespace loom;
using namespace loom::testing;

namespace {

const Device kCuda = Device::cuda(0);

// The gradients of F = Σ_i ⟨∂⟨f(x), R⟩/∂x_i, S_i⟩ with respect to the floating inputs
// (undefined where F does not depend on one), on the inputs' device.
std::vector<Tensor> second_order(const Fn& f, std::vector<Tensor> inputs) {
  std::vector<Tensor> vars;
  for (Tensor& x : inputs)
    if (is_floating(x.dtype())) vars.push_back(x.requires_grad_());
  Tensor y = f(inputs);
  Generator g(5);
  Tensor r = randn(y.shape(), TensorOptions{y.dtype()}, &g).to(y.device());
  std::vector<Tensor> first = grad({sum(y * r)}, vars, {}, {.create_graph = true, .allow_unused = true});
  Tensor total;
  for (size_t i = 0; i < vars.size(); ++i) {
    if (!first[i].defined()) continue;
    Tensor term = sum(first[i] * randn(vars[i].shape(), TensorOptions{vars[i].dtype()}, &g).to(y.device()));
    total = total.defined() ? total + term : term;
  }
  if (!total.defined() || !total.requires_grad()) return std::vector<Tensor>(vars.size());
  return grad({total}, vars, {}, {.allow_unused = true});
}

class CudaBackendOps : public CudaTest, public ::testing::WithParamInterface<size_t> {};

TEST_P(CudaBackendOps, Value) {
  const OpCase& c = backend_op_cases()[GetParam()];
  SCOPED_TRACE(c.name);
  if (!c.unsupported.empty()) {
    report(c, "cuda", Outcome::Unsupported);
    GTEST_SKIP() << "unsupported: " << c.unsupported;
  }
  const ReportOnExit reporter(c, "cuda");
  for (DType dt : {DType::Float32, DType::Float64}) {
    SCOPED_TRACE(dtype_name(dt));
    std::vector<Tensor> cpu, gpu;
    for (const Tensor& x : c.inputs) {
      Tensor v = is_floating(x.dtype()) ? x.to(dt) : x;
      cpu.push_back(v.detach().clone());
      gpu.push_back(v.detach().to(kCuda));
    }
    const Tol t = tol(dt, 64);
    expect_cuda_matches_cpu(c.f, cpu, t);
    std::vector<Tensor> gc = second_order(c.f, cpu), gg = second_order(c.f, gpu);
    for (size_t i = 0; i < gc.size(); ++i) {
      SCOPED_TRACE("second-order gradient of input " + std::to_string(i));
      ASSERT_EQ(gc[i].defined(), gg[i].defined());
      if (gc[i].defined()) expect_tensors_near(gg[i], gc[i], 10 * t.atol, 10 * t.rtol);
    }
  }
}

std::string case_name(const ::testing::TestParamInfo<size_t>& info) {
  std::string n = std::to_string(info.param) + "_";
  for (char ch : backend_op_cases()[info.param].name) n += std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
  return n;
}

INSTANTIATE_TEST_SUITE_P(Table, CudaBackendOps, ::testing::Range<size_t>(0, backend_op_cases().size()), case_name);

class Summary : public ::testing::Environment {
 public:
  void TearDown() override { print_summary({"cuda"}); }
};
const auto* const kSummary = ::testing::AddGlobalTestEnvironment(new Summary);

// ---- gradient penalties on both devices ----

class CudaGradientPenalty : public CudaTest {};

// A conv critic (conv, LeakyReLU, instance norm as one-channel groups, linear) and its
// WGAN-GP and R1 penalties; returns the penalty and the gradients of the parameters.
std::vector<Tensor> penalties(Device d, DType dt) {
  std::vector<Tensor> p = {rand64({3, 2, 3, 3}, -0.5, 0.5, 1), rand64({3}, -0.5, 0.5, 2), rand64({27, 1}, -0.5, 0.5, 3)};
  for (Tensor& t : p) t = t.to(dt).to(d).requires_grad_();
  Tensor real = rand64({4, 2, 5, 5}, -1, 1, 4).to(dt).to(d), fake = rand64({4, 2, 5, 5}, -1, 1, 5).to(dt).to(d);
  Tensor eps = rand64({4, 1, 1, 1}, 0, 1, 6).to(dt).to(d);
  auto critic = [&](const Tensor& x) {
    Tensor h = group_norm(leaky_relu(conv2d(x, p[0], p[1], {.stride = {2, 2}, .padding = {1, 1}}), 0.2), 3);
    return matmul(reshape(h, {h.size(0), -1}), p[2]);
  };
  // WGAN-GP at x̂ = εx + (1 − ε)x̃ (Gulrajani et al. 2017, Algorithm 1), and R1 at the real data.
  Tensor x_hat = (eps * real + (1.0 - eps) * fake).requires_grad_();
  Tensor g = grad({sum(critic(x_hat))}, {x_hat}, {}, {.create_graph = true})[0];
  Tensor gp = 10.0 * mean(square(norm(g, 2, {1, 2, 3}) - 1.0));
  Tensor xr = real.detach().requires_grad_();
  Tensor gr = grad({sum(critic(xr))}, {xr}, {}, {.create_graph = true})[0];
  Tensor r1 = 5.0 * mean(sum(square(reshape(gr, {4, -1})), {1}));
  Tensor loss = gp + r1;
  backward(loss);
  std::vector<Tensor> out = {reshape(loss, {1}).detach().to(Device::cpu())};
  for (Tensor& t : p) out.push_back(t.grad().to(Device::cpu()));
  return out;
}

TEST_F(CudaGradientPenalty, WganGpAndR1MatchTheCpu) {
  for (DType dt : {DType::Float32, DType::Float64}) {
    SCOPED_TRACE(dtype_name(dt));
    std::vector<Tensor> c = penalties(Device::cpu(), dt), g = penalties(kCuda, dt);
    const Tol t = tol(dt, 256);
    for (size_t i = 0; i < c.size(); ++i) expect_tensors_near(g[i], c[i], t.atol, t.rtol);
  }
}

}  // namespace
