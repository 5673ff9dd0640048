// The composite nn layers (nn/gan_layers.cpp, recurrent.cpp, attention.cpp) on the
// GPU against the CPU: forward and the gradient of a random dot product with
// respect to the input, for two copies of each layer built from the same seed.
// They are compositions of ops the other CUDA suites check one by one; this
// checks the layers' own device handling (masks, lengths, constants built on
// the input's device). Skipped without a device.
#include "autograd/nn.h"
#include "tests/cuda/cuda_test.h"
#include "tests/gradcheck.h"

using namespace loom;
using namespace loom::testing;

namespace {

const Device kCuda = Device::cuda(0);
class CudaLayers : public CudaTest {};

// y = f(x) on the CPU and the GPU, and ∂ Σ y·R / ∂x.
void expect_same(const std::function<Tensor(const Tensor&, bool)>& f, const Tensor& x, double t) {
  Tensor c = x.detach().clone(), g = x.detach().to(kCuda);
  c.requires_grad_();
  g.requires_grad_();
  Tensor yc = f(c, false), yg = f(g, true);
  ASSERT_EQ(yg.device(), kCuda);
  expect_tensors_near(yg, yc, t, t);
  Tensor r = rand64(yc.shape(), -1, 1, 21).to(yc.dtype());
  backward(sum(yc * r));
  backward(sum(yg * r.to(kCuda)));
  expect_tensors_near(g.grad(), c.grad(), t, t);
}

template <class M, class... Args>
std::pair<std::shared_ptr<M>, std::shared_ptr<M>> twins(Args... args) {
  manual_seed(17);
  auto a = std::make_shared<M>(args...);
  manual_seed(17);
  auto b = std::make_shared<M>(args...);
  b->to(kCuda);
  return {a, b};
}

}  // namespace

// Here and below, lambdas init-capture the twins: clang 14 cannot capture a structured binding itself.
TEST_F(CudaLayers, GanLayersMatchCpu) {
  const double t = 1e-5;
  Tensor x = rand64({4, 3, 5, 6}).to(DType::Float32);
  auto [in_c, in_g] = twins<nn::InstanceNorm2d>(int64_t{3}, true, true, 0.1, 1e-5, TensorOptions{});
  expect_same([&, &in_g = in_g, &in_c = in_c](const Tensor& v, bool gpu) { return (gpu ? in_g : in_c)->forward(v); },
              x, t);
  expect_tensors_near(in_g->running_var.to(Device::cpu()), in_c->running_var, t, t);
  expect_same([](const Tensor& v, bool) { return nn::pixel_norm(v); }, x, t);
  expect_same([](const Tensor& v, bool) { return nn::minibatch_stddev(v, 2); }, x, t);
  auto [mc, mg] = twins<nn::MaskedConv2d>(int64_t{3}, int64_t{6}, int64_t{3}, 'A', int64_t{3}, true, TensorOptions{});
  expect_same([&, &mg = mg, &mc = mc](const Tensor& v, bool gpu) { return (gpu ? mg : mc)->forward(v); }, x, t);
  auto [ec, eg] = twins<nn::EqualizedConv2d>(int64_t{3}, int64_t{2}, int64_t{3}, ConvParams{}, true, 1.5,
                                             TensorOptions{});
  expect_same([&, &eg = eg, &ec = ec](const Tensor& v, bool gpu) { return (gpu ? eg : ec)->forward(v); }, x, t);
}

TEST_F(CudaLayers, RecurrentAndAttentionMatchCpu) {
  const double t = 1e-5;
  Tensor seq = rand64({3, 5, 4}).to(DType::Float32);
  Tensor lengths = from_vector(std::vector<int64_t>{5, 2, 0}, {3});
  auto [gc, gg] = twins<nn::GRU>(int64_t{4}, int64_t{3}, true, TensorOptions{});
  expect_same([&, &gg = gg, &gc = gc](const Tensor& v, bool gpu) {
    return (gpu ? gg : gc)->forward(v, gpu ? lengths.to(kCuda) : lengths).output;
  }, seq, t);
  auto [lc, lg] = twins<nn::LSTM>(int64_t{4}, int64_t{3}, true, TensorOptions{});
  expect_same([&, &lg = lg, &lc = lc](const Tensor& v, bool gpu) { return (gpu ? lg : lc)->forward(v, lengths).h_n; },
              seq, t);
  auto [ac, ag] = twins<nn::MultiheadAttention>(int64_t{4}, int64_t{2}, true, TensorOptions{});
  Tensor causal = from_vector(std::vector<double>{1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1},
                              {5, 5});
  expect_same([&, &ag = ag, &ac = ac](const Tensor& v, bool gpu) {
    return (gpu ? ag : ac)->forward(v, v, v, gpu ? causal.to(kCuda) : causal);
  }, seq, t);
  auto [sc, sg] = twins<nn::SelfAttention2d>(int64_t{4}, int64_t{2}, int64_t{2}, TensorOptions{});
  expect_same([&, &sg = sg, &sc = sc](const Tensor& v, bool gpu) { return (gpu ? sg : sc)->forward(v); },
              rand64({2, 4, 3, 3}).to(DType::Float32), t);
  Tensor e = nn::sinusoidal_embedding(from_vector(std::vector<int64_t>{0, 7, 999}, {3}).to(kCuda), 8);
  EXPECT_EQ(e.device(), kCuda);
  expect_tensors_near(e.to(Device::cpu()), nn::sinusoidal_embedding(from_vector(std::vector<int64_t>{0, 7, 999}, {3}), 8),
                      0, 0);
}
