// Optimizers against hand-computed steps, clipping, schedules, EMA, and state
// round trips.
#include <cmath>

#include "tests/gradcheck.h"

using namespace loom;
using namespace loom::testing;

namespace {
TensorOptions f64() { return TensorOptions{DType::Float64}; }

Tensor param(std::vector<double> v) {
  Tensor p = from_vector(v, {static_cast<int64_t>(v.size())}, f64());
  p.requires_grad_();
  return p;
}
void set_grad(Tensor& p, std::vector<double> g) { p.set_grad(from_vector(g, p.shape(), f64())); }
}  // namespace

TEST(Optim, SgdPlainMomentumNesterovAndWeightDecay) {
  Tensor p = param({1, 2});
  optim::SGD plain({p}, {.lr = 0.1});
  set_grad(p, {0.5, -1});
  plain.step();
  expect_values(p, {0.95, 2.1}, 1e-15);

  // Momentum 0.9: b₁ = g₁, b₂ = 0.9 b₁ + g₂.
  Tensor q = param({1});
  optim::SGD mom({q}, {.lr = 0.1, .momentum = 0.9});
  set_grad(q, {1});
  mom.step();  // q = 1 − 0.1·1
  set_grad(q, {2});
  mom.step();  // b = 0.9 + 2 = 2.9; q = 0.9 − 0.29
  expect_values(q, {0.61}, 1e-15);

  // Nesterov: step uses g + μb.
  Tensor r = param({1});
  optim::SGD nes({r}, {.lr = 0.1, .momentum = 0.9, .nesterov = true});
  set_grad(r, {1});
  nes.step();  // b = 1, g' = 1 + 0.9 = 1.9, r = 0.81
  expect_values(r, {0.81}, 1e-15);

  // Weight decay λ adds λp to the gradient.
  Tensor s = param({2});
  optim::SGD wd({s}, {.lr = 0.5, .weight_decay = 0.1});
  set_grad(s, {0});
  wd.step();  // s = 2 − 0.5·0.2
  expect_values(s, {1.9}, 1e-15);
}

TEST(Optim, AdamMatchesTheAlgorithmByHand) {
  const double lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8;
  Tensor p = param({1.0, -2.0});
  optim::Adam adam({p}, {.lr = lr, .beta1 = b1, .beta2 = b2, .eps = eps});
  std::vector<double> x{1.0, -2.0}, m{0, 0}, v{0, 0};
  const std::vector<std::vector<double>> grads{{0.3, -1.5}, {-0.2, 0.7}, {0.05, 2.0}};
  for (size_t t = 0; t < grads.size(); ++t) {
    set_grad(p, grads[t]);
    adam.step();
    for (int i = 0; i < 2; ++i) {
      m[i] = b1 * m[i] + (1 - b1) * grads[t][i];
      v[i] = b2 * v[i] + (1 - b2) * grads[t][i] * grads[t][i];
      const double mh = m[i] / (1 - std::pow(b1, t + 1)), vh = v[i] / (1 - std::pow(b2, t + 1));
      x[i] -= lr * mh / (std::sqrt(vh) + eps);
    }
  }
  expect_values(p, x, 1e-14);
  EXPECT_EQ(adam.steps(), 3);
}

TEST(Optim, AdamWDecouplesWeightDecay) {
  // With a zero gradient Adam's L2 decay still moves p through m/√v (a full
  // lr-sized step), while AdamW shrinks p by exactly lr·λ·p.
  Tensor a = param({1.0}), w = param({1.0});
  optim::Adam adam({a}, {.lr = 0.1, .weight_decay = 0.5});
  optim::AdamW adamw({w}, {.lr = 0.1, .weight_decay = 0.5});
  set_grad(a, {0});
  set_grad(w, {0});
  adam.step();
  adamw.step();
  expect_values(a, {1.0 - 0.1}, 1e-6);         // ĝ = λp = 0.5 → m̂/√v̂ = 1
  expect_values(w, {1.0 - 0.1 * 0.5}, 1e-12);  // m = v = 0 → only the decay
}

TEST(Optim, ParametersWithoutGradientsAreSkipped) {
  Tensor p = param({1}), q = param({5});
  optim::Adam adam({p, q}, {.lr = 0.1});
  set_grad(p, {1});
  adam.step();
  expect_values(q, {5});
  EXPECT_NE(p.item(), 1.0);
}

// A parameter whose first gradient (here [1, −1]) arrives at the third step()
// starts its own state there, as in PyTorch: its first Adam step is
// bias-corrected with t = 1 (m̂/√v̂ = ±1, a full lr step) and its first SGD
// momentum buffer is the undamped gradient, while the parameter updated all
// along continues its own sequence.
TEST(Optim, StateAndStepArePerParameter) {
  Tensor a = param({1, 2}), b = param({-1, 0.5});
  optim::Adam adam({a, b}, {.lr = 0.1});
  for (int step = 0; step < 3; ++step) {
    set_grad(a, {1, 1});
    if (step == 2) set_grad(b, {1, -1});
    adam.step();
  }
  expect_values(a, {0.7, 1.7}, 1e-8);   // a constant gradient: m̂/√v̂ = 1 at every step
  expect_values(b, {-1.1, 0.6}, 1e-8);  // not [−1.06388, 0.56388] (bias correction at t = 3)

  Tensor c = param({1, 2}), d = param({-1, 0.5});
  optim::SGD sgd({c, d}, {.lr = 0.1, .momentum = 0.9, .dampening = 0.5});
  for (int step = 0; step < 3; ++step) {
    set_grad(c, {1, 1});
    if (step == 2) set_grad(d, {1, -1});
    sgd.step();
  }
  // c's buffers: 1, 0.9·1 + 0.5 = 1.4, 0.9·1.4 + 0.5 = 1.76.
  expect_values(c, {1 - 0.1 * (1 + 1.4 + 1.76), 2 - 0.1 * (1 + 1.4 + 1.76)}, 1e-14);
  expect_values(d, {-1.1, 0.6}, 1e-14);  // first buffer = the gradient, undamped (not half of it)
}

TEST(Optim, ClipGradNormScalesToTheLimit) {
  Tensor p = param({0, 0}), q = param({0});
  set_grad(p, {3, 0});
  set_grad(q, {4});
  const Tensor norm = optim::clip_grad_norm({p, q}, 1.0);
  EXPECT_EQ(norm.dtype(), DType::Float64);
  EXPECT_EQ(norm.dim(), 0);
  EXPECT_NEAR(norm.item(), 5.0, 1e-12);
  // PyTorch's factor max_norm / (‖g‖ + 1e-6).
  expect_values(p.grad(), {3 / (5 + 1e-6), 0}, 1e-15, 0);
  expect_values(q.grad(), {4 / (5 + 1e-6)}, 1e-15, 0);
  const double clipped = 4 / (5 + 1e-6);
  EXPECT_NEAR(optim::clip_grad_norm({p, q}, 10.0).item(), 5 / (5 + 1e-6), 1e-15);  // under the limit: untouched
  expect_values(q.grad(), {clipped}, 0, 0);
  set_grad(p, {0.6, 0});
  set_grad(q, {0.8});
  optim::clip_grad_norm({p, q}, 1.0);  // at the limit: scaled by 1 / (1 + 1e-6), as PyTorch does
  expect_values(q.grad(), {0.8 / (1 + 1e-6)}, 1e-15, 0);
  EXPECT_EQ(optim::clip_grad_norm({}, 1.0).item(), 0.0);  // no gradients: norm 0
  set_grad(q, {NAN});
  const std::vector<double> before = p.grad().to_vector<double>();
  expect_error([&] { optim::clip_grad_norm({p, q}, 1.0); }, {"clip_grad_norm", "nan"});
  EXPECT_EQ(p.grad().to_vector<double>(), before) << "an eager clip throws before it scales anything";
  expect_error([&] { optim::clip_grad_norm({p}, 0.0); }, {"clip_grad_norm", "max_norm must be positive"});
}

TEST(Optim, LearningRateSchedules) {
  auto warm = optim::LRSchedule::constant(4);
  EXPECT_DOUBLE_EQ(warm.factor(0), 0.25);
  EXPECT_DOUBLE_EQ(warm.factor(3), 1.0);
  EXPECT_DOUBLE_EQ(warm.factor(100), 1.0);
  auto cos = optim::LRSchedule::cosine(110, 10, 0.1);
  EXPECT_DOUBLE_EQ(cos.factor(10), 1.0);
  EXPECT_NEAR(cos.factor(60), 0.1 + 0.9 * 0.5, 1e-12);  // halfway: cos(π/2) = 0
  EXPECT_NEAR(cos.factor(110), 0.1, 1e-12);
  auto lin = optim::LRSchedule::linear(100);
  EXPECT_NEAR(lin.factor(25), 0.75, 1e-12);
  EXPECT_NEAR(lin.factor(100), 0.0, 1e-12);
  EXPECT_NEAR(optim::LRSchedule::parse("cosine", 100, 0).factor(50), 0.5, 1e-12);
  expect_error([] { optim::LRSchedule::parse("step", 1, 0); }, {"unknown", "step", "cosine"});
}

TEST(Optim, EmaAveragesParametersAndCopiesBuffers) {
  nn::Linear lin(2, 1, true, f64());
  optim::EMA ema(lin, 0.9);
  Tensor w0 = lin.weight.detach().clone();
  {
    NoGrad ng;
    lin.weight.add_(ones_like(lin.weight));
  }
  ema.update(lin);
  expect_tensors_near(ema.averages().at("weight"), w0 + 0.1, 1e-12);
  nn::Linear other(2, 1, true, f64());
  ema.copy_to(other);
  expect_tensors_near(other.weight, w0 + 0.1, 1e-12);
  // A new decay applies to the next update: halfway from w0 + 0.1 to w0 + 1.
  ema.set_decay(0.5);
  EXPECT_EQ(ema.decay(), 0.5);
  ema.update(lin);
  expect_tensors_near(ema.averages().at("weight"), w0 + 0.55, 1e-12);
  // EMA::into: the average is the other module's own weights, updated in place.
  nn::Linear smoothed(2, 1, true, f64());
  {
    NoGrad ng;
    smoothed.weight.copy_(w0);
    smoothed.bias.copy_(lin.bias);
  }
  optim::EMA in_place = optim::EMA::into(smoothed, 0.9);
  in_place.update(lin);  // lin's weight is w0 + 1
  expect_tensors_near(smoothed.weight, w0 + 0.1, 1e-12);
  expect_tensors_near(in_place.averages().at("weight"), w0 + 0.1, 1e-12);
  expect_error([] { nn::Linear m(1, 1); optim::EMA::into(m, 1.5); }, {"EMA", "decay", "[0, 1]"});
  expect_error([&] { ema.set_decay(1.5); }, {"EMA: decay must lie in [0, 1], got 1.5"});
}

TEST(Optim, StateDictResumesExactly) {
  // Two optimizers on identical parameters: one runs 4 steps; the other runs 2,
  // saves, is rebuilt from the state, runs 2 more. Parameters must be identical.
  auto grads = [](int t) { return std::vector<double>{0.1 * t - 0.3, std::sin(t)}; };
  Tensor a = param({1, 1});
  optim::Adam straight({a}, {.lr = 0.05});
  for (int t = 0; t < 4; ++t) {
    set_grad(a, grads(t));
    straight.step();
  }
  Tensor b = param({1, 1});
  std::map<std::string, Tensor> saved;
  {
    optim::Adam first({b}, {.lr = 0.05});
    for (int t = 0; t < 2; ++t) {
      set_grad(b, grads(t));
      first.step();
    }
    saved = first.state_dict();
  }
  optim::Adam resumed({b}, {.lr = 0.05});
  resumed.load_state_dict(saved);
  for (int t = 2; t < 4; ++t) {
    set_grad(b, grads(t));
    resumed.step();
  }
  EXPECT_EQ(a.to_vector<double>(), b.to_vector<double>());
  EXPECT_EQ(saved.at("step.0").item(), 2);
  saved.erase("step");
  expect_error([&] { resumed.load_state_dict(saved); }, {"step"});
}

TEST(Optim, StateDictKeepsEachParametersStep) {
  // p is updated three times, q once (at the last step): their steps are 3 and 1.
  Tensor p = param({1}), q = param({2});
  optim::Adam adam({p, q}, {.lr = 0.1});
  for (int t = 0; t < 3; ++t) {
    set_grad(p, {0.5});
    if (t == 2) set_grad(q, {-1});
    adam.step();
  }
  auto saved = adam.state_dict();
  EXPECT_EQ(saved.at("step").item(), 3);
  EXPECT_EQ(saved.at("step.0").item(), 3);
  EXPECT_EQ(saved.at("step.1").item(), 1);

  // Resumed, q's next step is its second: bias corrections with t = 2, as if never saved.
  Tensor p2 = p.detach().clone(), q2 = q.detach().clone();
  p2.requires_grad_();
  q2.requires_grad_();
  optim::Adam resumed({p2, q2}, {.lr = 0.1});
  resumed.load_state_dict(saved);
  for (auto [x, opt] : {std::pair{q, &adam}, std::pair{q2, &resumed}}) {
    set_grad(x, {-1});
    opt->step();
  }
  EXPECT_EQ(q2.to_vector<double>(), q.to_vector<double>());

  // A parameter with state needs its step.
  auto broken = saved;
  broken.erase("step.1");
  expect_error([&] { resumed.load_state_dict(broken); }, {"load_state_dict", "parameter 1", "step.1"});
  broken = saved;
  broken["step.1"] = from_vector(std::vector<int64_t>{0}, {});
  expect_error([&] { resumed.load_state_dict(broken); }, {"load_state_dict", "step.1", ">= 1"});
}

TEST(Optim, OldCheckpointsWithOnlyAGlobalStepLoad) {
  // A checkpoint from before per-parameter steps: every parameter with state
  // takes the global step, exact when every parameter was updated at every step.
  auto grads = [](int t) { return std::vector<double>{0.2 * t - 0.3, std::cos(t)}; };
  Tensor a = param({1, -1}), b = param({1, -1});
  optim::Adam straight({a}, {.lr = 0.05}), first({b}, {.lr = 0.05});
  for (int t = 0; t < 2; ++t) {
    set_grad(a, grads(t));
    straight.step();
    set_grad(b, grads(t));
    first.step();
  }
  auto old = first.state_dict();
  old.erase("step.0");
  optim::Adam resumed({b}, {.lr = 0.05});
  resumed.load_state_dict(old);
  EXPECT_EQ(resumed.state_dict().at("step.0").item(), 2);
  set_grad(a, grads(2));
  straight.step();
  set_grad(b, grads(2));
  resumed.step();
  EXPECT_EQ(a.to_vector<double>(), b.to_vector<double>());
}

TEST(Optim, ParameterGroupsHaveTheirOwnHyperparameters) {
  // SGD: p plain at lr 0.1, q with momentum 0.9 at lr 0.01; gradient 1 twice.
  Tensor p = param({1}), q = param({1});
  optim::SGD sgd({{{p}, {.lr = 0.1}}, {{q}, {.lr = 0.01, .momentum = 0.9}}});
  for (int t = 0; t < 2; ++t) {
    set_grad(p, {1});
    set_grad(q, {1});
    sgd.step();
  }
  expect_values(p, {1 - 0.1 * 2}, 1e-15);
  expect_values(q, {1 - 0.01 * (1 + 1.9)}, 1e-15);  // b = 1, then 0.9 + 1

  // Adam: the first step moves each parameter by its own group's lr; AdamW's decay is per group too.
  Tensor a = param({1}), b = param({1}), c = param({1});
  optim::AdamW adamw({{{a}, {.lr = 0.1}}, {{b, c}, {.lr = 0.01, .weight_decay = 0.5}}});
  for (Tensor* x : {&a, &b, &c}) set_grad(*x, {1});
  adamw.step();
  expect_values(a, {1 - 0.1}, 1e-8);
  expect_values(b, {1 - 0.01 * 0.5 - 0.01}, 1e-8);  // p ← p − ηλp, then − η·m̂/√v̂
  EXPECT_EQ(adamw.group_count(), 2u);
  EXPECT_EQ(adamw.params().size(), 3u);

  // Learning rates: per group; a schedule scales every group's initial lr.
  EXPECT_DOUBLE_EQ(adamw.group_lr(1), 0.01);
  adamw.scale_lr(optim::LRSchedule::linear(100).factor(25));  // 0.75
  EXPECT_DOUBLE_EQ(adamw.group_lr(0), 0.075);
  EXPECT_DOUBLE_EQ(adamw.group_lr(1), 0.0075);
  adamw.set_group_lr(1, 0.002);
  EXPECT_DOUBLE_EQ(adamw.group_lr(1), 0.002);
  expect_error([&] { adamw.lr(); }, {"lr()", "2 parameter groups", "group_lr"});
  expect_error([&] { adamw.set_lr(0.1); }, {"set_lr()", "2 parameter groups", "set_group_lr"});
  expect_error([&] { adamw.group_lr(2); }, {"group_lr", "group 2 of 2"});

  // The single-group case keeps lr() and set_lr().
  optim::SGD one({p}, {.lr = 0.1});
  one.set_lr(0.3);
  EXPECT_DOUBLE_EQ(one.lr(), 0.3);
  one.scale_lr(0.5);
  EXPECT_DOUBLE_EQ(one.lr(), 0.05) << "scaled from the lr it was built with";

  expect_error([&] { optim::SGD({{{p}, {}}, {{q, p}, {}}}); }, {"parameter 2", "group 1", "parameter 0", "one group"});
  expect_error([&] { optim::Adam({{{p}, {}}, {{q}, {.lr = -1}}}); }, {"learning rate", "group 1"});
  expect_error([&] { optim::Adam({{{p}, {}}, {{q}, {.beta2 = 1}}}); }, {"Adam", "betas"});
}

TEST(Optim, ParameterGroupsRoundTripThroughTheStateDict) {
  auto grads = [](int t) { return std::vector<double>{0.1 * t - 0.3, std::sin(t)}; };
  auto groups = [](Tensor& x, Tensor& y) {
    return std::vector<optim::ParamGroup<optim::AdamOptions>>{{{x}, {.lr = 0.05}}, {{y}, {.lr = 0.01, .beta1 = 0.5}}};
  };
  Tensor a = param({1, 1}), b = param({-1, 2});
  optim::Adam straight(groups(a, b));
  for (int t = 0; t < 4; ++t) {
    set_grad(a, grads(t));
    set_grad(b, grads(t + 7));
    if (t == 2) straight.set_group_lr(1, 0.02);
    straight.step();
  }
  Tensor c = param({1, 1}), d = param({-1, 2});
  std::map<std::string, Tensor> saved;
  {
    optim::Adam first(groups(c, d));
    for (int t = 0; t < 3; ++t) {
      set_grad(c, grads(t));
      set_grad(d, grads(t + 7));
      if (t == 2) first.set_group_lr(1, 0.02);
      first.step();
    }
    saved = first.state_dict();
  }
  EXPECT_EQ(saved.at("lr.1").item(), 0.02);
  optim::Adam resumed(groups(c, d));
  resumed.load_state_dict(saved);
  EXPECT_EQ(resumed.group_lr(1), 0.02);
  set_grad(c, grads(3));
  set_grad(d, grads(10));
  resumed.step();
  EXPECT_EQ(a.to_vector<double>(), c.to_vector<double>());
  EXPECT_EQ(b.to_vector<double>(), d.to_vector<double>());
  saved["lr.2"] = saved.at("lr.0");
  expect_error([&] { resumed.load_state_dict(saved); }, {"load_state_dict", "lr.2", "2 parameter groups"});
}

TEST(Optim, BadHyperparametersAreErrors) {
  Tensor p = param({1});
  expect_error([&] { optim::Adam({p}, {.beta1 = 1.0}); }, {"Adam", "betas"});
  expect_error([&] { optim::SGD({p}, {.lr = -1}); }, {"learning rate"});
  expect_error([&] { optim::SGD({p}, {.nesterov = true}); }, {"Nesterov"});
  Tensor not_leaf = p * 2.0;
  expect_error([&] { optim::SGD({not_leaf}, {}); }, {"parameter 0", "leaf"});
}
