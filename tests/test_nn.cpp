// nn: module bookkeeping, layers' forward against the functional ops, the
// gradients through layers, initializer statistics.
#include <cmath>

#include "tests/gradcheck.h"

using namespace loom;
using namespace loom::testing;

namespace {
TensorOptions f64() { return TensorOptions{DType::Float64}; }

double sample_std(const Tensor& t) {
  std::vector<double> v = t.to_vector<double>();
  double m = 0, s = 0;
  for (double x : v) m += x / v.size();
  for (double x : v) s += (x - m) * (x - m) / v.size();
  return std::sqrt(s);
}
}  // namespace

TEST(NN, LinearMatchesMatmulAndCountsParameters) {
  nn::Linear lin(3, 2, true, f64());
  EXPECT_EQ(lin.parameter_count(), 3 * 2 + 2);
  Tensor x = rand64({4, 3});
  expect_tensors_near(lin(x), matmul(x, transpose(lin.weight, 0, 1)) + lin.bias, 1e-12);
  // Init bound: U(±1/√3).
  for (double w : lin.weight.to_vector<double>()) EXPECT_LE(std::abs(w), 1 / std::sqrt(3.0));
  expect_error([&] { lin(rand64({4, 5})); }, {"Linear", "[4, 5]", "3 features"});
}

TEST(NN, SequentialNamesStateDictAndLoading) {
  auto net = std::make_shared<nn::Sequential>(std::vector<nn::ModulePtr>{
      std::make_shared<nn::Linear>(2, 4), std::make_shared<nn::ReLU>(), std::make_shared<nn::Linear>(4, 1)});
  std::vector<std::string> names;
  for (auto& [n, t] : net->named_parameters()) names.push_back(n);
  EXPECT_EQ(names, (std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias"}));
  auto other = std::make_shared<nn::Sequential>(std::vector<nn::ModulePtr>{
      std::make_shared<nn::Linear>(2, 4), std::make_shared<nn::ReLU>(), std::make_shared<nn::Linear>(4, 1)});
  other->load_state_dict(net->state_dict());
  Tensor x = rand({5, 2});
  expect_tensors_near((*other)(x), (*net)(x), 0);
  auto state = net->state_dict();
  state.erase("2.bias");
  state["extra"] = zeros({1});
  state["0.weight"] = zeros({3, 3});
  expect_error([&] { other->load_state_dict(state); },
               {"load_state_dict", "missing: 2.bias", "unexpected: extra", "shape mismatch: 0.weight"});
  try {
    other->load_state_dict(state);
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << "one line, for callers to prefix";
  }
  // The same bytes in another dtype are refused, not converted.
  auto ints = net->state_dict();
  ints["0.weight"] = ints["0.weight"].to(DType::Int32);
  expect_error([&] { other->load_state_dict(ints); }, {"0.weight", "float32 in the model", "int32 in the state"});
}

TEST(NN, GradientsFlowThroughLayers) {
  // A two-layer net as a function of its input and first weight, checked by
  // finite differences.
  auto net = std::make_shared<nn::Sequential>(std::vector<nn::ModulePtr>{
      std::make_shared<nn::Linear>(3, 4, true, f64()), std::make_shared<nn::Tanh>(),
      std::make_shared<nn::Linear>(4, 2, true, f64())});
  auto lin0 = std::dynamic_pointer_cast<nn::Linear>((*net)[0]);
  expect_gradients(
      [&](const std::vector<Tensor>& in) {
        lin0->weight = in[1];
        return (*net)(in[0]);
      },
      {rand64({2, 3}), lin0->weight.detach().clone()});
}

TEST(NN, ToConvertsParametersAndKeepsThemTrainable) {
  nn::Linear lin(2, 2);
  lin.to(DType::Float64);
  EXPECT_EQ(lin.weight.dtype(), DType::Float64);
  EXPECT_TRUE(lin.weight.requires_grad());
  EXPECT_TRUE(lin.weight.is_leaf());
  backward(sum(lin(rand64({1, 2}))));
  EXPECT_TRUE(lin.weight.grad().defined());
  lin.zero_grad();
  EXPECT_FALSE(lin.weight.grad().defined());
}

TEST(NN, ToKeepsParametersSoAnOptimizerBuiltBeforeStillUpdatesThem) {
  auto G = std::make_shared<nn::Linear>(2, 1);
  Tensor w_handle = G->weight;  // taken before to(), like the optimizer's list
  optim::Adam opt(G->parameters(), {.lr = 0.1});
  G->to(DType::Float64);
  EXPECT_EQ(w_handle.dtype(), DType::Float64) << "the same TensorImpl, converted in place";
  const std::vector<double> w0 = G->weight.to_vector<double>(), b0 = G->bias.to_vector<double>();
  backward(sum((*G)(from_vector(std::vector<double>{1, -2}, {1, 2}, f64()))));  // ∂w = [1, −2], ∂b = 1
  opt.step();  // Adam's first step: −lr · sign(∂), to within ε
  expect_values(G->weight, {w0[0] - 0.1, w0[1] + 0.1}, 1e-8);
  expect_values(G->bias, {b0[0] - 0.1}, 1e-8);

  // Moved again after steps: the gradient and the optimizer state follow.
  G->to(DType::Float32);
  EXPECT_EQ(G->weight.grad().dtype(), DType::Float32);
  opt.step();
  EXPECT_EQ(opt.state_dict().at("exp_avg.0").dtype(), DType::Float32);

  // Converted between forward and backward: the float32 gradient is refused, not
  // read as float64 (a backward that saved the weight itself is refused earlier).
  opt.zero_grad();
  Tensor y = sum((*G)(ones({1, 2})));
  G->to(DType::Float64);
  backward(y);
  expect_error([&] { opt.step(); }, {"optimizer", "parameter 0", "float64", "gradient is float32", "to()"});
}

TEST(NN, TrainEvalPropagatesAndBatchNormTracksStatistics) {
  auto bn = std::make_shared<nn::BatchNorm2d>(3);
  nn::Sequential net({bn, std::make_shared<nn::ReLU>()});
  Tensor x = rand64({4, 3, 2, 2}, 0, 2).to(DType::Float32);
  net(x);
  std::vector<float> rm = bn->running_mean.to_vector<float>();
  for (float v : rm) EXPECT_GT(v, 0.05f) << "running mean moved toward the batch mean (~1)";
  net.eval();
  EXPECT_FALSE(bn->is_training());
  net(x);
  EXPECT_EQ(bn->running_mean.to_vector<float>(), rm) << "eval must not update running statistics";
  auto names = net.named_buffers();
  EXPECT_EQ(names.size(), 2u);
  EXPECT_EQ(names[0].first, "0.running_mean");
}

TEST(NN, ConvLayersShapes) {
  nn::Conv2d conv(3, 8, 4, {.params = {.stride = {2, 2}, .padding = {1, 1}}});
  EXPECT_EQ(conv(zeros({2, 3, 28, 28})).shape(), (Shape{2, 8, 14, 14}));
  nn::ConvTranspose2d up(8, 3, 4, {.params = {.stride = {2, 2}, .padding = {1, 1}}});
  EXPECT_EQ(up.weight.shape(), (Shape{8, 3, 4, 4}));
  EXPECT_EQ(up(zeros({2, 8, 14, 14})).shape(), (Shape{2, 3, 28, 28}));
}

TEST(NN, ModulesAndApplyVisitEveryLayer) {
  auto inner = std::make_shared<nn::Sequential>(
      std::vector<nn::ModulePtr>{std::make_shared<nn::Linear>(4, 3, true, f64()), std::make_shared<nn::Tanh>()});
  nn::Sequential net({std::make_shared<nn::Linear>(2, 4, true, f64()), std::make_shared<nn::ReLU>(), inner,
                      std::make_shared<nn::Linear>(3, 1, true, f64())});
  std::vector<std::string> names;
  for (nn::Module* m : net.modules()) names.push_back(m->name());
  EXPECT_EQ(names, (std::vector<std::string>{"Sequential", "Linear", "ReLU", "Sequential", "Linear", "Tanh", "Linear"}));

  // An initialization through apply: every Linear gets W = 0.5, b = 0; children come before parents.
  names.clear();
  int linears = 0;
  net.apply([&](nn::Module& m) {
    names.push_back(m.name());
    if (auto* lin = dynamic_cast<nn::Linear*>(&m)) {
      ++linears;
      nn::init::uniform_(lin->weight, 0.5, 0.5);
      nn::init::zeros_(lin->bias);
    }
  });
  EXPECT_EQ(linears, 3);
  EXPECT_EQ(names, (std::vector<std::string>{"Linear", "ReLU", "Linear", "Tanh", "Sequential", "Linear", "Sequential"}));
  // x = [1, 2]: h₁ = 0.5·3 = 1.5 (×4), h₂ = tanh(4 · 0.5 · 1.5) = tanh 3 (×3), y = 3 · 0.5 · tanh 3.
  expect_values(net(from_vector(std::vector<double>{1, 2}, {1, 2}, f64())), {1.5 * std::tanh(3.0)}, 1e-15);
}

TEST(NN, EveryLayerIsAClass) {
  nn::BatchNorm1d bn1(3);
  nn::BatchNorm2d bn2(3, 0.1, 1e-5, f64());
  EXPECT_EQ(bn1.name(), "BatchNorm1d");
  EXPECT_EQ(bn2.name(), "BatchNorm2d");
  EXPECT_EQ(bn2.weight.dtype(), DType::Float64);
  expect_error([&] { bn1(zeros({2, 3, 4, 4})); }, {"BatchNorm1d", "2-D input"});
  // Activations: the op of the same name.
  Tensor x = from_vector(std::vector<double>{-1, 2}, {1, 2}, f64());
  expect_tensors_near(nn::LeakyReLU(0.2)(x), leaky_relu(x, 0.2), 0);
  expect_tensors_near(nn::ELU(0.5)(x), elu(x, 0.5), 0);
  expect_tensors_near(nn::Sigmoid()(x), sigmoid(x), 0);
  expect_tensors_near(nn::Softplus()(x), softplus(x), 0);
  expect_tensors_near(nn::SiLU()(x), silu(x), 0);
  // A conv without bias needs no ConvParams.
  nn::Conv2d conv(3, 8, 3, {.bias = false});
  EXPECT_FALSE(conv.bias.defined());
  EXPECT_EQ(conv.parameter_count(), 8 * 3 * 3 * 3);
  nn::ConvTranspose2d up(8, 3, 4, {.params = {.stride = {2, 2}}, .bias = false, .tensors = f64()});
  EXPECT_FALSE(up.bias.defined());
  EXPECT_EQ(up.weight.dtype(), DType::Float64);
}

TEST(NN, EmbeddingDropoutNormsAndLambdas) {
  nn::Embedding emb(5, 3);
  Tensor idx = from_vector(std::vector<int64_t>{4, 0, 4}, {3});
  Tensor e = emb(idx);
  EXPECT_EQ(e.shape(), (Shape{3, 3}));
  expect_tensors_near(slice(e, 0, 0, 1), slice(emb.weight, 0, 4, 5), 0);
  expect_error([&] { emb(zeros({2})); }, {"Embedding", "int64"});
  nn::Dropout drop(0.5);
  drop.eval();
  Tensor x = rand({10});
  expect_tensors_near(drop(x), x, 0);
  nn::LayerNorm ln({4});
  EXPECT_EQ(ln(rand({2, 4})).shape(), (Shape{2, 4}));
  nn::GroupNorm gn(2, 4);
  EXPECT_EQ(gn(rand({2, 4, 3, 3})).shape(), (Shape{2, 4, 3, 3}));
  EXPECT_EQ(nn::Flatten()(zeros({2, 3, 4})).shape(), (Shape{2, 12}));
  EXPECT_EQ(nn::Unflatten({3, 4})(zeros({2, 12})).shape(), (Shape{2, 3, 4}));
  expect_error([&] { nn::Module().forward(x); }, {"no single-input forward"});
}

TEST(NN, InitializersHaveTheirStatisticsAndAreSeeded) {
  Generator g(3);
  Tensor w = empty({256, 128, 3, 3}, f64());  // fan_in 1152, fan_out 2304
  nn::init::kaiming_normal_(w, std::sqrt(2.0), &g);
  EXPECT_NEAR(sample_std(w), std::sqrt(2.0 / 1152), 0.01 * std::sqrt(2.0 / 1152) * 3);
  nn::init::xavier_uniform_(w, 1, &g);
  const double a = std::sqrt(6.0 / (1152 + 2304));
  EXPECT_NEAR(sample_std(w), a / std::sqrt(3.0), 0.03 * a);
  for (double v : w.to_vector<double>()) ASSERT_LE(std::abs(v), a);
  nn::init::normal_(w, 0, 0.02, &g);
  EXPECT_NEAR(sample_std(w), 0.02, 0.0005);
  Generator g1(9), g2(9);
  Tensor u1 = empty({10}), u2 = empty({10});
  nn::init::xavier_normal_(u1 = empty({5, 2}), 1, &g1);
  nn::init::xavier_normal_(u2 = empty({5, 2}), 1, &g2);
  EXPECT_EQ(u1.to_vector<float>(), u2.to_vector<float>());
  expect_error([&] { Tensor v = empty({3}); nn::init::kaiming_uniform_(v); }, {"init", "[3]"});
}

TEST(NN, MlpStacksLinearLayersWithLeCunNormalWeights) {
  Generator g(3);
  auto net = nn::mlp({400, 300, 2}, [](const Tensor& h) { return tanh(h); }, TensorOptions{DType::Float64}, &g);
  ASSERT_EQ(net->size(), 3u);  // Linear, activation, Linear
  const auto params = net->named_parameters();
  ASSERT_EQ(params.size(), 4u);
  // Weights ~ N(0, 1/fan_in): the sample variance of 120000 draws is 1/400 within 2%.
  const std::vector<double> w = params[0].second.to_vector<double>();
  double m2 = 0;
  for (double v : w) m2 += v * v;
  EXPECT_NEAR(m2 / static_cast<double>(w.size()) * 400, 1.0, 0.02);
  EXPECT_EQ(sum(abs(params[1].second)).item(), 0);  // biases 0
  // The forward pass is Linear · tanh · Linear, computed here by hand.
  const Tensor x = randn({5, 400}, TensorOptions{DType::Float64}, &g);
  const Tensor& w0 = params[0].second, &b0 = params[1].second, &w1 = params[2].second, &b1 = params[3].second;
  const Tensor want = matmul(tanh(matmul(x, transpose(w0, 0, 1)) + b0), transpose(w1, 0, 1)) + b1;
  // (Not bit for bit: linear adds the bias inside its GEMM, whose summation order is the BLAS's.)
  expect_tensors_near((*net)(x), want, 1e-13, 1e-13);
  EXPECT_THROW(nn::mlp({4}, [](const Tensor& h) { return h; }), Error);
  EXPECT_THROW(nn::mlp({4, 0, 1}, [](const Tensor& h) { return h; }), Error);
}
