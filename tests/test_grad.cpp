// grad(), create_graph/retain_graph, hvp and jacobian, norm's subgradient, and
// the gradient penalties the GAN family trains with (WGAN-GP, R1): each against
// closed forms or float64 finite differences.
#include <cmath>

#include "models/gan/adversarial.h"
#include "tests/gradcheck.h"

using namespace loom;
using namespace loom::testing;

namespace {

const TensorOptions kF64{DType::Float64};
Tensor t64(const std::vector<double>& v, const Shape& s) { return from_vector(v, s, kF64); }
Tensor leaf(const std::vector<double>& v, const Shape& s) { return t64(v, s).requires_grad_(); }

TEST(Grad, ReturnsGradientsWithoutTouchingLeafGrad) {
  Tensor x = leaf({1, -2, 3}, {3});
  Tensor w = leaf({0.5, 0.5, 0.5}, {3});
  std::vector<Tensor> g = grad({sum(x * x * w)}, {x});
  expect_values(g[0], {1, -2, 3});  // 2·x·w
  EXPECT_FALSE(x.grad().defined());
  EXPECT_FALSE(w.grad().defined()) << "grad() sweeps only what leads to its inputs, and touches no .grad()";
  EXPECT_FALSE(g[0].requires_grad()) << "without create_graph the result has no history";
}

TEST(Grad, CreateGraphGivesDifferentiableGradients) {
  // y = Σ x³: ∂y/∂x = 3x², ∂²y/∂x² = 6x, ∂³y/∂x³ = 6.
  Tensor x = leaf({1, -2, 0.5}, {3});
  Tensor g1 = grad({sum(pow(x, 3.0))}, {x}, {}, {.create_graph = true})[0];
  expect_values(g1, {3, 12, 0.75});
  ASSERT_TRUE(g1.requires_grad());
  Tensor g2 = grad({sum(g1)}, {x}, {}, {.create_graph = true})[0];
  expect_values(g2, {6, -12, 3});
  Tensor g3 = grad({sum(g2)}, {x})[0];
  expect_values(g3, {6, 6, 6});
}

TEST(Grad, BackwardWithCreateGraphAccumulatesDifferentiableGrad) {
  Tensor x = leaf({2, 3}, {2});
  backward(sum(exp(x)), {}, {.create_graph = true});
  Tensor gx = x.grad();
  ASSERT_TRUE(gx.requires_grad());
  expect_values(gx, {std::exp(2.0), std::exp(3.0)});
  x.zero_grad();
  backward(sum(gx * gx));  // ∂(Σ e^{2x})/∂x = 2e^{2x}
  expect_values(x.grad(), {2 * std::exp(4.0), 2 * std::exp(6.0)}, 1e-9, 1e-12);
}

TEST(Grad, WithRespectToIntermediateAndSeveralOutputs) {
  Tensor x = leaf({1, 2}, {2});
  Tensor h = x * 3.0;
  Tensor y1 = sum(h * h), y2 = sum(h);
  std::vector<Tensor> g = grad({y1, y2}, {h, x});
  expect_values(g[0], {2 * 3 + 1, 2 * 6 + 1});          // 2h + 1
  expect_values(g[1], {3 * (2 * 3 + 1), 3 * (2 * 6 + 1)});  // through h = 3x
}

TEST(Grad, AnInputGivenTwiceGetsItsGradientTwice) {
  Tensor x = leaf({1, 2}, {2});
  Tensor h = x * 3.0;
  std::vector<Tensor> g = grad({sum(h * h)}, {h, x, Tensor(h.impl_ptr()), x});
  for (int i : {0, 2}) expect_values(g[i], {6, 12});  // 2h, also through a second handle on h
  for (int i : {1, 3}) expect_values(g[i], {18, 36});
}

TEST(Grad, CreateGraphReattachesASavedOutputWhoseTensorIsGone) {
  // exp keeps only its output y for y' = y; the tensor y itself is dropped at once
  // (the sum's + 1 reads nothing). A create_graph sweep rebuilds y with its history
  // from the entry, so the first derivative e^x can be differentiated again.
  Tensor x = leaf({0.5, -1}, {2});
  Tensor g = grad({sum(exp(x) + 1.0)}, {x}, {}, {.create_graph = true})[0];
  expect_values(g, {std::exp(0.5), std::exp(-1.0)});
  Tensor gg = grad({sum(g * g)}, {x})[0];  // ∂/∂x Σ e^{2x} = 2 e^{2x}
  expect_values(gg, {2 * std::exp(1.0), 2 * std::exp(-2.0)});
}

TEST(Grad, GradOutputsWeightNonScalarOutputs) {
  Tensor x = leaf({1, 2, 3}, {3});
  Tensor g = grad({x * x}, {x}, {t64({1, 0, -1}, {3})})[0];
  expect_values(g, {2, 0, -6});
  expect_error([&] { grad({x * x}, {x}); }, {"grad", "[3]", "one-element", "grad_outputs"});
  expect_error([&] { grad({x * x}, {x}, {t64({1, 0}, {2})}); }, {"grad", "[2]", "[3]"});
}

TEST(Grad, RetainGraphAllowsAnotherSweep) {
  Tensor x = leaf({0.5}, {1});
  Tensor y = sum(exp(x));
  expect_values(grad({y}, {x}, {}, {.retain_graph = true})[0], {std::exp(0.5)});
  expect_values(grad({y}, {x})[0], {std::exp(0.5)});
  expect_error([&] { grad({y}, {x}); }, {"grad", "already consumed", "retain_graph"});
}

TEST(Grad, UnusedInputIsAnErrorUnlessAllowed) {
  Tensor x = leaf({1}, {1}), z = leaf({2}, {1});
  Tensor y = sum(x * 2.0);
  expect_error([&] { grad({y}, {x, z}, {}, {.retain_graph = true}); }, {"grad", "input 1", "not used", "allow_unused"});
  std::vector<Tensor> g = grad({y}, {x, z}, {}, {.allow_unused = true});
  expect_values(g[0], {2});
  EXPECT_FALSE(g[1].defined());
  expect_error([&] { grad({sum(x * 2.0)}, {t64({1}, {1})}); }, {"grad", "input 0", "does not require grad"});
}

TEST(Grad, ConsumedHistoryErrorSuggestsDetachOrRetainGraph) {
  // The classic GAN mistake: the D step backpropagates into G's output, then the G step does again.
  Tensor g = leaf({2}, {1}), dw = leaf({3}, {1});
  Tensor fake = exp(g);
  backward(sum(fake * dw));
  expect_error([&] { backward(sum(fake * dw * 2.0)); }, {"already consumed", "exp", "detach()", "retain_graph"});
}

TEST(Grad, MissingCreateGraphOrRecordingIsNamedInTheError) {
  // The two likely slips in a gradient penalty: a gradient taken without create_graph
  // (it has no history), and a sweep asked for where recording is off.
  Tensor w = leaf({0.5, -1}, {2});
  Tensor x = leaf({1, 2}, {2});
  Tensor g = grad({sum(square(x * w))}, {x})[0];
  expect_error([&] { backward(sum(square(g))); }, {"backward", "does not require grad", "create_graph = true"});
  NoGrad no_grad;
  expect_error([&] { grad({sum(x * w)}, {x}); }, {"grad", "does not require grad", "inside NoGrad", "EnableGrad"});
}

TEST(Grad, NoGradTemporaryIsNamed) {
  // [[nodiscard]] on the constructors makes `NoGrad();` a warning; a named scope works.
  {
    NoGrad no_grad;
    EXPECT_FALSE(grad_enabled());
    {
      EnableGrad enable;
      EXPECT_TRUE(grad_enabled());
    }
    EXPECT_FALSE(grad_enabled());
  }
  EXPECT_TRUE(grad_enabled());
}

// ---- hvp and jacobian against closed forms ----

TEST(Functional, HvpOfQuadraticFormIsAv) {
  // f(x) = ½ xᵀAx with A symmetric: ∇²f = A.
  Tensor a = t64({2, 1, 0, 1, 3, -1, 0, -1, 4}, {3, 3});
  Tensor x = t64({0.3, -1, 2}, {3}), v = t64({1, 2, -1}, {3});
  Tensor hv = hvp([&](const Tensor& x) { return 0.5 * sum(x * matmul(a, x)); }, x, v);
  expect_values(hv, {2 + 2, 1 + 6 + 1, -2 - 4}, 1e-12);
}

TEST(Functional, HvpOfLogSumExpIsSoftmaxCovariance) {
  // ∇² lse(x) = diag(p) − p pᵀ with p = softmax(x): Hv = p ⊙ v − p (pᵀv).
  const std::vector<double> xs = {0.2, -1, 1.5, 0.3}, vs = {1, -2, 0.5, 3};
  double z = 0;
  for (double xi : xs) z += std::exp(xi);
  double pv = 0;
  std::vector<double> p;
  for (size_t i = 0; i < xs.size(); ++i) {
    p.push_back(std::exp(xs[i]) / z);
    pv += p[i] * vs[i];
  }
  std::vector<double> expected;
  for (size_t i = 0; i < xs.size(); ++i) expected.push_back(p[i] * vs[i] - p[i] * pv);
  expect_values(hvp([](const Tensor& x) { return logsumexp(x); }, t64(xs, {4}), t64(vs, {4})), expected, 1e-12);
  // Linear f: the Hessian is 0.
  expect_values(hvp([](const Tensor& x) { return sum(x * 2.0); }, t64(xs, {4}), t64(vs, {4})), {0, 0, 0, 0});
  expect_error([] { hvp([](const Tensor& x) { return x * 2.0; }, t64({1, 2}, {2}), t64({1, 1}, {2})); },
               {"hvp", "one element"});
}

TEST(Functional, JacobianOfLinearMapAndSoftmax) {
  Tensor a = t64({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor j = jacobian([&](const Tensor& x) { return matmul(a, x); }, t64({0.1, 0.2, 0.3}, {3}));
  EXPECT_EQ(j.shape(), (Shape{2, 3}));
  expect_tensors_near(j, a);
  Tensor x = t64({0.5, -0.5, 1}, {3});
  std::vector<double> p = softmax(x).to_vector<double>(), expected;
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) expected.push_back((r == c ? p[r] : 0) - p[r] * p[c]);
  expect_values(jacobian([](const Tensor& x) { return softmax(x); }, x), expected, 1e-12);
}

// ---- norm ----

TEST(Norm, ValuesAndSubgradientZeroAtTheOrigin) {
  Tensor x = leaf({3, -4, 0, 0, 1, 2}, {3, 2});
  expect_values(norm(x, 2, {1}), {5, 0, std::sqrt(5.0)});
  expect_values(norm(x, 1), {10});
  expect_values(norm(x, std::numeric_limits<double>::infinity(), {0}), {3, 4});
  expect_values(norm(x, 3, {1}, true), {std::cbrt(27.0 + 64), 0, std::cbrt(9.0)});
  // ∂‖r‖/∂r = r/‖r‖, and 0 for the zero row, where sqrt(Σ r²) gives NaN.
  Tensor g = grad({sum(norm(x, 2, {1}))}, {x}, {}, {.create_graph = true})[0];
  expect_values(g, {0.6, -0.8, 0, 0, 1 / std::sqrt(5.0), 2 / std::sqrt(5.0)});
  Tensor gg = grad({sum(g * g)}, {x})[0];
  for (double v : gg.to_vector<double>()) EXPECT_TRUE(std::isfinite(v));
  Tensor naive = grad({sum(sqrt(sum(square(x), {1})))}, {x})[0];
  EXPECT_TRUE(std::isnan(naive.to_vector<double>()[2])) << "the composed norm is why norm() exists";
  expect_error([&] { norm(x, 0.5); }, {"norm", "0.5", "≥ 1"});
}

// ---- gradient penalties ----

// The WGAN-GP penalty λ·E[(‖∇x̂ D(x̂)‖₂ − 1)²] (Gulrajani et al. 2017, eq. 3) of a
// critic D at points x̂ [N, ...], as the models' training steps compute it (gan::gradient_penalty).
Tensor gradient_penalty(const std::function<Tensor(const Tensor&)>& critic, const Tensor& x_hat, double lambda) {
  return lambda * models::gan::gradient_penalty(critic, x_hat);
}

// R1 (Mescheder et al. 2018, eq. 9): γ/2 · E[‖∇x D(x)‖²] on real data.
Tensor r1_penalty(const std::function<Tensor(const Tensor&)>& critic, const Tensor& x_real, double gamma) {
  const EnableGrad enable;
  Tensor x = x_real.detach().requires_grad_();
  Tensor g = grad({sum(critic(x))}, {x}, {}, {.create_graph = true})[0];
  return gamma / 2 * mean(sum(square(reshape(g, {g.size(0), -1})), {1}));
}

TEST(GradientPenalty, WganGpOfMlpCriticMatchesFiniteDifferences) {
  // D(x) = w2 · tanh(W1 x + b1) (+ b2, which ∇x D does not see); the penalty's
  // gradient w.r.t. the critic's parameters goes through ∇x D: a second derivative
  // of every op on the way.
  Tensor x_hat = rand64({5, 3}, -1, 1, 11);
  expect_gradients(
      [&](const std::vector<Tensor>& p) {
        auto critic = [&](const Tensor& x) { return matmul(tanh(matmul(x, p[0]) + p[1]), p[2]) + 0.7; };
        return gradient_penalty(critic, x_hat, 10.0);
      },
      {rand64({3, 4}, -1, 1, 12), rand64({4}, -1, 1, 13), rand64({4, 1}, -1, 1, 14)});
}

TEST(GradientPenalty, R1AndWganGpOfConvCriticMatchFiniteDifferences) {
  // conv → LeakyReLU → instance norm (group norm with one channel per group) → linear.
  Tensor x = rand64({2, 2, 5, 5}, -1, 1, 21);
  auto conv_critic = [](const std::vector<Tensor>& p) {
    return [p](const Tensor& x) {
      Tensor h = leaky_relu(conv2d(x, p[0], p[1], {.stride = {2, 2}, .padding = {1, 1}}), 0.2);
      h = group_norm(h, 3);
      return matmul(reshape(h, {h.size(0), -1}), p[2]);
    };
  };
  const std::vector<Tensor> params = {rand64({3, 2, 3, 3}, -0.5, 0.5, 22), rand64({3}, -0.5, 0.5, 23),
                                      rand64({27, 1}, -0.5, 0.5, 24)};
  expect_gradients([&](const std::vector<Tensor>& p) { return r1_penalty(conv_critic(p), x, 10.0); }, params,
                   {.atol = 1e-6, .rtol = 1e-5});
  expect_gradients([&](const std::vector<Tensor>& p) { return gradient_penalty(conv_critic(p), x, 10.0); }, params,
                   {.atol = 1e-6, .rtol = 1e-5});
}

TEST(GradientPenalty, WganGpOfLinearCriticIsClosedForm) {
  // D(x) = ⟨w, x⟩: ∇x D = w for every x̂, so the penalty is λ(‖w‖ − 1)² and its
  // gradient 2λ(‖w‖ − 1)·w/‖w‖.
  Tensor w = leaf({0.6, 1.2, -0.4}, {3, 1});
  Tensor gp = gradient_penalty([&](const Tensor& x) { return matmul(x, w); }, rand64({4, 3}, -1, 1, 31), 10.0);
  const double n = std::sqrt(0.36 + 1.44 + 0.16);
  expect_values(gp, {10 * (n - 1) * (n - 1)}, 1e-12);
  backward(gp);
  expect_values(w.grad(), {20 * (n - 1) * 0.6 / n, 20 * (n - 1) * 1.2 / n, 20 * (n - 1) * -0.4 / n}, 1e-12);
}

}  // namespace
