// loom::CudaGraph (autograd/graph.h): a training step captured once and replayed
// must give, step after step, exactly what the same step run eagerly gives —
// losses, parameters, optimizer state and generator positions, bit for bit —
// with fresh random draws every replay and a learning rate changed between
// replays taking effect. And what a graph cannot hold is refused with an error
// that names it, leaving loom usable. Runs in the CUDA emulator in CI.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <tuple>

#include "autograd/graph.h"
#include "autograd/loom.h"
#include "tests/cuda/cuda_test.h"

using namespace loom;
using namespace loom::testing;

namespace {

const Device kCuda = Device::cuda(0);
constexpr int kSteps = 5;

// A small MLP with dropout and input noise: both draw from a generator every
// step, so a replay that reused its capture's numbers would diverge at once.
struct Net {
  std::shared_ptr<nn::Sequential> mlp;
  std::unique_ptr<optim::Adam> opt;
  Generator noise{99};
  explicit Net(uint64_t seed) {
    manual_seed(seed);
    mlp = std::make_shared<nn::Sequential>(std::vector<nn::ModulePtr>{
        std::make_shared<nn::Linear>(6, 16), std::make_shared<nn::ReLU>(), std::make_shared<nn::Dropout>(0.25),
        std::make_shared<nn::Linear>(16, 3)});
    mlp->to(kCuda);
    opt = std::make_unique<optim::Adam>(mlp->parameters(), optim::AdamOptions{.lr = 1e-2});
  }
  // One step on (x, y): zero_grad, forward with noise, backward, Adam; returns the loss tensor.
  // clear_after: zero_grad after Adam instead of before (no gradient left when a replay restages).
  Tensor step(const Tensor& x, const Tensor& y, bool clear_after = false) {
    if (!clear_after) opt->zero_grad();
    const Tensor noisy = x + randn(x.shape(), TensorOptions{DType::Float32, kCuda}, &noise) * 0.1;
    Tensor loss = mse_loss((*mlp)(noisy), y);
    backward(loss);
    opt->step();
    if (clear_after) opt->zero_grad();
    return loss.detach();
  }
};

Tensor batch(int k, const Shape& s) {
  Generator g(1000 + k);
  return randn(s, {}, &g);
}

// Same bits, element for element.
void expect_same_bits(const Tensor& a, const Tensor& b, const std::string& what) {
  const std::vector<float> x = a.to(Device::cpu()).to_vector<float>(), y = b.to(Device::cpu()).to_vector<float>();
  ASSERT_EQ(x.size(), y.size()) << what;
  EXPECT_EQ(std::memcmp(x.data(), y.data(), x.size() * sizeof(float)), 0) << what << " differs";
}

class CudaGraphTest : public CudaTest {};

TEST_F(CudaGraphTest, ReplaysEqualEagerStepsBitForBit) {
  const Shape xs{8, 6}, ys{8, 3};
  const double lrs[kSteps] = {1e-2, 1e-2, 5e-3, 5e-3, 2e-3};  // a schedule: set between steps

  Net eager(7);
  std::vector<double> eager_losses;
  for (int k = 0; k < kSteps; ++k) {
    eager.opt->set_lr(lrs[k]);
    eager_losses.push_back(eager.step(batch(k, xs).to(kCuda), batch(100 + k, ys).to(kCuda)).item());
  }
  const uint64_t eager_dropout_offset = default_generator().offset();  // dropout draws from the default generator

  Net graphed(7);  // reseeds the default generator: the same dropout masks again
  Tensor x = batch(0, xs).to(kCuda), y = batch(100, ys).to(kCuda);  // the step's input tensors
  graphed.opt->set_lr(lrs[0]);
  EXPECT_EQ(graphed.step(x, y).item(), eager_losses[0]);  // eager: creates Adam's state

  CudaGraph graph;
  Tensor loss;
  const uint64_t offset_before = graphed.noise.offset();
  const int64_t steps_before = graphed.opt->steps();
  graph.capture(kCuda, [&] { loss = graphed.step(x, y); });
  EXPECT_TRUE(graph.captured());
  EXPECT_EQ(graphed.noise.offset(), offset_before) << "capturing must not move the generator";
  EXPECT_EQ(graphed.opt->steps(), steps_before) << "capturing must not count as a step";

  for (int k = 1; k < kSteps; ++k) {
    x.copy_(batch(k, xs));
    y.copy_(batch(100 + k, ys));
    graphed.opt->set_lr(lrs[k]);
    graph.replay();
    EXPECT_EQ(loss.item(), eager_losses[k]) << "step " << k;
  }
  EXPECT_EQ(graphed.noise.offset(), eager.noise.offset());
  EXPECT_EQ(default_generator().offset(), eager_dropout_offset);
  EXPECT_EQ(graphed.opt->steps(), eager.opt->steps());
  const auto pe = eager.mlp->named_parameters(), pg = graphed.mlp->named_parameters();
  ASSERT_EQ(pe.size(), pg.size());
  for (size_t i = 0; i < pe.size(); ++i) expect_same_bits(pg[i].second, pe[i].second, pe[i].first);
  const auto se = eager.opt->state_dict(), sg = graphed.opt->state_dict();
  for (const auto& [name, t] : se)
    if (t.dtype() == DType::Float32) expect_same_bits(sg.at(name), t, "optimizer " + name);
    else EXPECT_EQ(sg.at(name).to_vector<int64_t>(), t.to_vector<int64_t>()) << name;
}

// The restaging of a replay updates the parameters the captured call updated, whatever
// gradients exist when it runs (here none: the step clears them after Adam).
TEST_F(CudaGraphTest, AStepThatClearsItsGradientsAfterwardsReplaysAsEagerly) {
  const Shape xs{8, 6}, ys{8, 3};
  Net eager(11), graphed(11);
  manual_seed(11);
  for (int k = 0; k < kSteps; ++k) eager.step(batch(k, xs).to(kCuda), batch(100 + k, ys).to(kCuda), true);
  manual_seed(11);
  Tensor x = batch(0, xs).to(kCuda), y = batch(100, ys).to(kCuda);
  graphed.step(x, y, true);
  CudaGraph graph;
  graph.capture(kCuda, [&] { graphed.step(x, y, true); });
  for (int k = 1; k < kSteps; ++k) {
    x.copy_(batch(k, xs));
    y.copy_(batch(100 + k, ys));
    graph.replay();
  }
  const auto pe = eager.mlp->named_parameters(), pg = graphed.mlp->named_parameters();
  for (size_t i = 0; i < pe.size(); ++i) expect_same_bits(pg[i].second, pe[i].second, pe[i].first);
  EXPECT_EQ(graphed.opt->state_dict().at("step.0").item(), eager.opt->state_dict().at("step.0").item());
}

TEST_F(CudaGraphTest, ReadingAValueOnTheHostDuringCaptureIsRefusedAndLoomStaysUsable) {
  Net net(3);
  Tensor x = batch(0, {4, 6}).to(kCuda), y = batch(1, {4, 3}).to(kCuda);
  net.step(x, y);
  const uint64_t offset = net.noise.offset();
  const int64_t steps = net.opt->steps();
  CudaGraph graph;
  try {
    graph.capture(kCuda, [&] { (void)net.step(x, y).item(); });
    FAIL() << "item() during a capture must throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("CUDA graph capture"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("item()"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(graph.captured());
  EXPECT_EQ(net.noise.offset(), offset) << "a failed capture puts the generator back";
  EXPECT_EQ(net.opt->steps(), steps) << "and the optimizer's counters";
  // Eager work runs again, and a new capture of the same step succeeds.
  EXPECT_TRUE(std::isfinite(net.step(x, y).item()));
  Tensor loss;
  graph.capture(kCuda, [&] { loss = net.step(x, y); });
  graph.replay();
  EXPECT_TRUE(std::isfinite(loss.item()));
}

// Labels and indices are checked on the device: eagerly (the op's Error, with the bad value's
// position), and inside a graph after each replay, which throws that Error for the replay whose
// batch held the bad label and works again with good ones (the graph resets its word each time).
TEST_F(CudaGraphTest, IndexChecksRunOnTheDeviceAndAfterEachReplay) {
  Tensor table = batch(0, {5, 3}).to(kCuda);
  const auto labels = [](std::vector<int64_t> v) { return from_vector(v, {static_cast<int64_t>(v.size())}); };
  expect_error([&] { index_select(table, 0, labels({0, 4, 5, 7}).to(kCuda)); },
               {"index_select", "index 5 at position 2", "axis 0 of size 5"});
  expect_error([&] { one_hot(labels({-3, 1}).to(kCuda), 5); }, {"one_hot", "index -3 at position 0", "5 classes"});
  expect_error([&] { cross_entropy(table, labels({1, 2, 3, 4, 3}).to(kCuda)); },
               {"cross_entropy", "label 3 at position 2", "[0, 3)"});
  EXPECT_EQ(one_hot(labels({4, 0}).to(kCuda), 5).to(Device::cpu()).to_vector<float>(),
            one_hot(labels({4, 0}), 5).to_vector<float>());

  // A classifier's step: cross_entropy and one_hot of the batch's labels, captured.
  Net net(7);
  Tensor x = batch(1, {4, 6}).to(kCuda), y = labels({0, 2, 1, 2}).to(kCuda);
  const auto step = [&] {
    net.opt->zero_grad();
    Tensor logits = (*net.mlp)(x);
    Tensor loss = cross_entropy(logits, y) + mean(square(one_hot(y, 3) - softmax(logits, 1)));
    backward(loss);
    net.opt->step();
    return loss.detach();
  };
  step();
  Tensor loss;
  CudaGraph graph;
  graph.capture(kCuda, [&] { loss = step(); });
  graph.replay();
  EXPECT_TRUE(std::isfinite(loss.item()));
  y.copy_(labels({0, 2, 7, 1}).to(kCuda));
  expect_error([&] { graph.replay(); }, {"cross_entropy", "label 7 at position 2", "[0, 3)"});
  y.copy_(labels({1, 1, 0, 2}).to(kCuda));
  graph.replay();
  EXPECT_TRUE(std::isfinite(loss.item()));
}

// clip_grad_norm and EMA::update inside the captured step (a DDPM step's tail): the norm stays on
// the device and each replay computes it anew, scaling only the steps whose norm exceeds the limit;
// the average's decay, set between replays, is restaged like a learning rate. A norm that turns
// NaN throws clip_grad_norm's Error after the replay that met it.
TEST_F(CudaGraphTest, ClippingAndWeightAveragingReplayAsEagerly) {
  const Shape xs{8, 6}, ys{8, 3};
  static constexpr double decays[kSteps] = {0.5, 0.6, 0.7, 0.8, 0.9};
  constexpr double kMaxNorm = 1.5;
  // Targets growing step by step, so that the gradients' norm crosses kMaxNorm.
  const auto target = [&](int k) { return batch(100 + k, ys) * (0.5 + k); };
  struct Run {
    Net net;
    optim::EMA ema;
    explicit Run(uint64_t seed) : net(seed), ema(*net.mlp, decays[0]) {}
    std::pair<Tensor, Tensor> step(const Tensor& x, const Tensor& y) {
      net.opt->zero_grad();
      const Tensor noisy = x + randn(x.shape(), TensorOptions{DType::Float32, kCuda}, &net.noise) * 0.1;
      Tensor loss = mse_loss((*net.mlp)(noisy), y);
      backward(loss);
      Tensor norm = optim::clip_grad_norm(net.mlp->parameters(), kMaxNorm);
      net.opt->step();
      ema.update(*net.mlp);
      return {loss.detach(), norm};
    }
  };

  Run eager(13);
  std::vector<double> losses, norms;
  for (int k = 0; k < kSteps; ++k) {
    eager.ema.set_decay(decays[k]);
    const auto [loss, norm] = eager.step(batch(k, xs).to(kCuda), target(k).to(kCuda));
    losses.push_back(loss.item());
    norms.push_back(norm.item());
  }
  const auto clipped = std::count_if(norms.begin(), norms.end(), [](double n) { return n > kMaxNorm; });
  ASSERT_GT(clipped, 0) << "no step clipped";
  ASSERT_LT(clipped, kSteps) << "every step clipped";

  Run graphed(13);
  Tensor x = batch(0, xs).to(kCuda), y = target(0).to(kCuda);
  graphed.ema.set_decay(decays[0]);
  graphed.step(x, y);
  CudaGraph graph;
  Tensor loss, norm;
  graph.capture(kCuda, [&] { std::tie(loss, norm) = graphed.step(x, y); });
  for (int k = 1; k < kSteps; ++k) {
    x.copy_(batch(k, xs));
    y.copy_(target(k));
    graphed.ema.set_decay(decays[k]);
    graph.replay();
    EXPECT_EQ(loss.item(), losses[k]) << "step " << k;
    EXPECT_EQ(norm.item(), norms[k]) << "step " << k;
  }
  const auto pe = eager.net.mlp->named_parameters(), pg = graphed.net.mlp->named_parameters();
  for (size_t i = 0; i < pe.size(); ++i) expect_same_bits(pg[i].second, pe[i].second, pe[i].first);
  for (const auto& [name, avg] : eager.ema.averages())
    expect_same_bits(graphed.ema.averages().at(name), avg, "average of " + name);

  x.copy_(full(xs, std::nan("")));
  expect_error([&] { graph.replay(); }, {"clip_grad_norm", "nan"});
}

TEST_F(CudaGraphTest, MisuseIsAnErrorNamingIt) {
  CudaGraph graph;
  expect_error([&] { graph.replay(); }, {"nothing captured yet"});
  expect_error([&] { graph.capture(Device::cpu(), [] {}); }, {"need a CUDA device"});
  // Adam's state would be zeroed inside the graph, on every replay.
  Net fresh(5);
  Tensor x = batch(0, {4, 6}).to(kCuda), y = batch(1, {4, 3}).to(kCuda);
  expect_error([&] { graph.capture(kCuda, [&] { fresh.step(x, y); }); }, {"run one step eagerly before capturing"});
  // A batch copied in from the host inside the step.
  fresh.step(x, y);
  expect_error([&] { graph.capture(kCuda, [&] { fresh.step(batch(2, {4, 6}).to(kCuda), y); }); },
               {"copy from the host", "CUDA graph capture"});
  // Nested captures.
  expect_error([&] { graph.capture(kCuda, [&] { CudaGraph inner; inner.capture(kCuda, [] {}); }); },
               {"another capture is under way"});
}

}  // namespace
