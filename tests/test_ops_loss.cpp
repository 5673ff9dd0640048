// Losses, Gaussian densities and dropout (autograd/ops/loss.cpp): closed-form
// values, exactness at extreme logits, a Monte Carlo check of the KL formula,
// dropout statistics, gradients, and every refused input.
#include <cmath>
#include <numbers>

#include "autograd/tape.h"
#include "tests/gradcheck.h"

using namespace loom;
using namespace loom::testing;

namespace {
TensorOptions f64() { return TensorOptions{DType::Float64}; }
Tensor vec64(const std::vector<double>& v) { return from_vector(v, {static_cast<int64_t>(v.size())}, f64()); }
Tensor labels_of(const std::vector<int64_t>& v) {
  return from_vector(v, {static_cast<int64_t>(v.size())}, TensorOptions{DType::Int64});
}
double sigmoid(double z) { return 1 / (1 + std::exp(-z)); }
}  // namespace

TEST(OpsLoss, CrossEntropyOfAKnownCase) {
  // Row 0: −log softmax([1, 2, 3])[2] = log(1 + e^−1 + e^−2); row 1: uniform over 3 classes.
  Tensor logits = from_vector(std::vector<double>{1, 2, 3, 1, 1, 1}, {2, 3}, f64());
  Tensor labels = labels_of({2, 0});
  const double l0 = std::log(1 + std::exp(-1.0) + std::exp(-2.0)), l1 = std::log(3.0);
  expect_values(cross_entropy(logits, labels, Reduction::None), {l0, l1}, 1e-14, 1e-14);
  expect_values(cross_entropy(logits, labels, Reduction::Sum), {l0 + l1}, 1e-14, 1e-14);
  expect_values(cross_entropy(logits, labels), {(l0 + l1) / 2}, 1e-14, 1e-14);
  expect_values(cross_entropy(logits.to(DType::Float32), labels), {(l0 + l1) / 2}, 1e-6, 1e-6);
  // ∂(Σ ℓ)/∂z = softmax(z) − onehot(y).
  Tensor z = logits.clone();
  z.requires_grad_();
  backward(cross_entropy(z, labels, Reduction::Sum));
  const double s = 1 + std::exp(1.0) + std::exp(2.0);
  expect_values(z.grad(), {1 / s, std::exp(1.0) / s, std::exp(2.0) / s - 1, 1 / 3. - 1, 1 / 3., 1 / 3.}, 1e-14,
                1e-14);
  // Logits far beyond exp's range stay finite: ℓ = 1000 − 0.
  expect_values(cross_entropy(from_vector(std::vector<double>{1000, 0}, {1, 2}), labels_of({1})), {1000});
}

TEST(OpsLoss, BinaryCrossEntropyIsExactAtExtremeLogits) {
  const std::vector<double> z = {1000, -1000, 1000, -1000, 1e4, -1e4}, y = {1, 0, 0, 1, 0, 1};
  const std::vector<double> loss = {0, 0, 1000, 1000, 1e4, 1e4}, grad = {0, 0, 1, -1, 1, -1};  // σ(z) − y
  for (DType dt : {DType::Float64, DType::Float32}) {
    Tensor logits = from_vector(z, {6}, TensorOptions{dt});
    logits.requires_grad_();
    Tensor l = binary_cross_entropy_with_logits(logits, from_vector(y, {6}, TensorOptions{dt}), Reduction::None);
    expect_values(l, loss, 0, 0);
    backward(sum(l));
    expect_values(logits.grad(), grad, 0, 0);
  }
}

TEST(OpsLoss, CrossEntropyIgnoresAMinusInfinityLogitOffTheLabel) {
  // A class masked out with −∞: ℓ = −log(e / (1 + e)) = log(1 + e^−1), not NaN
  // (−∞ · 0 in the one-hot sum); ∂ℓ/∂z = softmax(z) − onehot = [1/(1+e), 0, e/(1+e) − 1].
  const double e = std::numbers::e, inf = INFINITY;
  for (DType dt : {DType::Float64, DType::Float32}) {
    SCOPED_TRACE(dtype_name(dt));
    const double tol = dt == DType::Float64 ? 1e-15 : 1e-7;
    Tensor z = from_vector(std::vector<double>{0, -inf, 1}, {1, 3}, TensorOptions{dt});
    z.requires_grad_();
    Tensor loss = cross_entropy(z, labels_of({2}));
    expect_values(loss, {0.3132616875182228}, tol, tol);
    backward(loss);
    expect_values(z.grad(), {1 / (1 + e), 0, e / (1 + e) - 1}, tol, tol);
  }
}

TEST(OpsLoss, BinaryCrossEntropyAtInfiniteLogits) {
  // ℓ(+∞, 1) = ℓ(−∞, 0) = 0 (limits, not ∞ − ∞ or ∞·0), ℓ(+∞, 0) = +∞; ∂ℓ/∂z = σ(z) − y.
  const double inf = INFINITY;
  for (DType dt : {DType::Float64, DType::Float32}) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor z = from_vector(std::vector<double>{inf, -inf, inf}, {3}, TensorOptions{dt});
    z.requires_grad_();
    Tensor l = binary_cross_entropy_with_logits(z, from_vector(std::vector<double>{1, 0, 0}, {3}, TensorOptions{dt}),
                                                Reduction::None);
    expect_values(l, {0, 0, inf}, 0, 0);
    backward(l, ones({3}, TensorOptions{dt}));
    expect_values(z.grad(), {0, 0, 1}, 0, 0);
  }
}

TEST(OpsLoss, BinaryCrossEntropyMatchesTheDefinitionAndHasTheRightSlopeAtZero) {
  // ℓ = −[y log σ(z) + (1 − y) log(1 − σ(z))] where that is accurate (moderate z).
  Tensor z = rand64({2, 5}, -4, 4, 61), y = rand64({2, 5}, 0, 1, 62);
  std::vector<double> zv = z.to_vector<double>(), yv = y.to_vector<double>(), expected;
  double total = 0;
  for (size_t i = 0; i < zv.size(); ++i) {
    expected.push_back(-(yv[i] * std::log(sigmoid(zv[i])) + (1 - yv[i]) * std::log(1 - sigmoid(zv[i]))));
    total += expected.back();
  }
  expect_values(binary_cross_entropy_with_logits(z, y, Reduction::None), expected, 1e-12, 1e-12);
  expect_values(binary_cross_entropy_with_logits(z, y), {total / 10}, 1e-12, 1e-12);
  expect_values(binary_cross_entropy_with_logits(z, y, Reduction::Sum), {total}, 1e-12, 1e-12);
  // At z = 0 exactly: ℓ = log 2 and ∂ℓ/∂z = ½ − y (relu and abs subgradients would give −y).
  Tensor z0 = zeros({2}, f64());
  z0.requires_grad_();
  Tensor l = binary_cross_entropy_with_logits(z0, vec64({0.25, 1}), Reduction::Sum);
  expect_values(l, {2 * std::log(2.0)}, 1e-15, 1e-15);
  backward(l);
  expect_values(z0.grad(), {0.25, -0.5}, 0, 0);
}

TEST(OpsLoss, RegressionLosses) {
  Tensor a = vec64({1, 2, 3}), b = vec64({0, 2, 5});
  expect_values(mse_loss(a, b, Reduction::None), {1, 0, 4});
  expect_values(mse_loss(a, b), {5 / 3.});
  expect_values(mse_loss(a, b, Reduction::Sum), {5});
  expect_values(l1_loss(a, b, Reduction::None), {1, 0, 2});
  expect_values(l1_loss(a, b), {1});
  expect_values(l1_loss(a, b, Reduction::Sum), {3});
}

TEST(OpsLoss, GaussianLogProbMatchesTheFormula) {
  // log_var [3] broadcasts against x and mean [2, 3].
  Tensor x = rand64({2, 3}, -2, 2, 71), mu = rand64({2, 3}, -1, 1, 72), lv = rand64({3}, -2, 2, 73);
  std::vector<double> xv = x.to_vector<double>(), mv = mu.to_vector<double>(), lvv = lv.to_vector<double>(), expected;
  for (size_t i = 0; i < xv.size(); ++i) {
    const double v = std::exp(lvv[i % 3]);
    expected.push_back(-0.5 * std::log(2 * std::numbers::pi * v) - (xv[i] - mv[i]) * (xv[i] - mv[i]) / (2 * v));
  }
  expect_values(gaussian_log_prob(x, mu, lv), expected, 1e-13, 1e-13);
  // The standard normal density at 0: −½ log 2π.
  expect_values(gaussian_log_prob(zeros({1}, f64()), zeros({1}, f64()), zeros({1}, f64())),
                {-0.5 * std::log(2 * std::numbers::pi)}, 1e-15, 1e-15);
}

TEST(OpsLoss, GaussiansWithVanishingVariance) {
  // log σ² so small that e^{−log σ²} overflows (float32: beyond e^88; float64: beyond e^709).
  for (auto [dt, lv] : {std::pair{DType::Float32, -200.0}, std::pair{DType::Float64, -2000.0}}) {
    SCOPED_TRACE(dtype_name(dt));
    const TensorOptions o{dt};
    // x = μ: log N = −½ (log σ² + log 2π) (99.0810623 in float32), ∂/∂x = 0, ∂/∂log σ² = −½.
    Tensor x = zeros({1}, o), lv_t = full({1}, lv, o);
    x.requires_grad_();
    lv_t.requires_grad_();
    Tensor lp = gaussian_log_prob(x, zeros({1}, o), lv_t);
    expect_values(lp, {-0.5 * (lv + std::log(2 * std::numbers::pi))}, 0, 1e-7);
    backward(sum(lp));
    expect_values(x.grad(), {0}, 0, 0);
    expect_values(lv_t.grad(), {-0.5}, 0, 0);
    // x ≠ μ: the density is 0, log N = −∞.
    expect_values(gaussian_log_prob(ones({1}, o), zeros({1}, o), full({1}, lv, o)), {-INFINITY});
    // KL(N(0, e^lv) ‖ N(0, e^lv)) = 0 (e^{−100} in float32, as in the report), with finite gradients.
    Tensor mu = zeros({1}, o), lv_q = full({1}, dt == DType::Float32 ? -100.0 : lv, o);
    mu.requires_grad_();
    lv_q.requires_grad_();
    Tensor kl = kl_diag_gaussians(mu, lv_q, zeros({1}, o), lv_q.detach());
    expect_values(kl, {0}, 0, 0);
    backward(sum(kl));
    expect_values(mu.grad(), {0}, 0, 0);
    expect_values(lv_q.grad(), {0}, 0, 0);  // ½ (−1 + e^{lv_q − lv_p}) = 0
  }
}

TEST(OpsLoss, KlDiagGaussiansClosedFormAndMonteCarlo) {
  // KL(N(0, 1) ‖ N(1, e)) = ½ (1 − 0 + (1 + 1)/e − 1) = 1/e.
  expect_values(kl_diag_gaussians(vec64({0}), vec64({0}), vec64({1}), vec64({1})), {1 / std::numbers::e}, 1e-15,
                1e-15);
  // KL(p ‖ p) = 0 exactly, also where e^{lv} overflows (the ratio is taken in log space).
  Tensor mu = vec64({0.3, -2, 5}), lv = vec64({-1, 0.5, 800});
  expect_values(kl_diag_gaussians(mu, lv, mu, lv), {0, 0, 0}, 0, 0);
  // Monte Carlo: KL(q ‖ p) = E_q[log q(x) − log p(x)], x = μ_q + σ_q·ε. Tolerance:
  // 5 standard errors of the sample mean, measured from the same samples (0.007 to 0.06 here).
  Tensor mu_q = vec64({0.5, -1, 0}), lv_q = vec64({0, -1, 1}), mu_p = vec64({0, 0.5, 1}), lv_p = vec64({0.5, 0, -0.5});
  const int64_t m = 100000;
  Generator g(2024);
  Tensor x = mu_q + exp(lv_q * 0.5) * randn({m, 3}, f64(), &g);
  Tensor log_ratio = gaussian_log_prob(x, mu_q, lv_q) - gaussian_log_prob(x, mu_p, lv_p);
  std::vector<double> mc = mean(log_ratio, {0}).to_vector<double>();
  std::vector<double> se = sqrt(var(log_ratio, {0}, false, 1) / static_cast<double>(m)).to_vector<double>();
  std::vector<double> kl = kl_diag_gaussians(mu_q, lv_q, mu_p, lv_p).to_vector<double>();
  for (int i = 0; i < 3; ++i) {
    EXPECT_GT(kl[i], 0) << "dimension " << i;
    EXPECT_NEAR(mc[i], kl[i], 5 * se[i]) << "dimension " << i;
  }
}

TEST(OpsLoss, Gradients) {
  Tensor logits = rand64({3, 4}, -2, 2, 81);
  for (Reduction r : {Reduction::None, Reduction::Mean, Reduction::Sum}) {
    expect_gradients([&](const std::vector<Tensor>& in) { return cross_entropy(in[0], in[1], r); },
                     {logits, labels_of({3, 0, 1})});
    expect_gradients([&](const std::vector<Tensor>& in) { return binary_cross_entropy_with_logits(in[0], in[1], r); },
                     {rand64({2, 3}, -3, 3, 82), rand64({2, 3}, 0, 1, 83)});
    expect_gradients([&](const std::vector<Tensor>& in) { return mse_loss(in[0], in[1], r); },
                     {rand64({3, 1}, -1, 1, 84), rand64({3, 1}, -1, 1, 85)});
    expect_gradients([&](const std::vector<Tensor>& in) { return l1_loss(in[0], in[1], r); },
                     {rand64({5}, -1, 1, 86), rand64({5}, -1, 1, 87)});
  }
  expect_gradients([](const std::vector<Tensor>& in) { return gaussian_log_prob(in[0], in[1], in[2]); },
                   {rand64({2, 3}, -1, 1, 88), rand64({2, 3}, -1, 1, 89), rand64({3}, -1, 1, 90)});
  expect_gradients([](const std::vector<Tensor>& in) { return kl_diag_gaussians(in[0], in[1], in[2], in[3]); },
                   {rand64({2, 3}, -1, 1, 91), rand64({2, 3}, -1, 1, 92), rand64({3}, -1, 1, 93),
                    rand64({1, 3}, -1, 1, 94)});
}

TEST(OpsLoss, DropoutStatistics) {
  const double p = 0.3;
  const int64_t n = 100000;
  Generator g(42);
  Tensor y = dropout(ones({n}), p, true, &g);
  std::vector<float> v = y.to_vector<float>();
  int64_t zeroed = 0;
  double total = 0;
  for (float e : v) {
    if (e == 0) {
      ++zeroed;
    } else {
      EXPECT_NEAR(e, 1 / (1 - p), 1e-6);  // survivors are scaled by 1/(1 − p)
    }
    total += e;
  }
  // Both within 5 standard deviations: √(p(1 − p)/n) ≈ 0.0014 and √(p/(1 − p)/n) ≈ 0.0021.
  EXPECT_NEAR(double(zeroed) / n, p, 5 * std::sqrt(p * (1 - p) / n));
  EXPECT_NEAR(total / n, 1.0, 5 * std::sqrt(p / (1 - p) / n));
}

TEST(OpsLoss, DropoutIsDeterministicPerSeedAndIdentityInEval) {
  Tensor x = rand64({64}, 1, 2);
  Generator a(7), b(7), c(8);
  Tensor ya = dropout(x, 0.5, true, &a);
  expect_tensors_near(dropout(x, 0.5, true, &b), ya, 0, 0);
  EXPECT_NE(dropout(x, 0.5, true, &c).to_vector<double>(), ya.to_vector<double>());
  EXPECT_NE(dropout(x, 0.5, true, &a).to_vector<double>(), ya.to_vector<double>()) << "the generator advances";
  EXPECT_EQ(dropout(x, 0.5, false, &a).data_ptr(), x.data_ptr());
  EXPECT_EQ(dropout(x, 0, true, &a).data_ptr(), x.data_ptr());
  EXPECT_EQ(dropout(x, 0.5, true).shape(), x.shape()) << "default generator";
}

TEST(OpsLoss, DropoutWithProbabilityOneGivesZerosAndZeroGradient) {
  for (DType dt : {DType::Float64, DType::Float32}) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor x = from_vector(std::vector<double>{1.5, -2, 1e30}, {3}, TensorOptions{dt});
    x.requires_grad_();
    Tensor y = dropout(x, 1.0, true);
    expect_values(y, {0, 0, 0}, 0, 0);
    backward(y, from_vector(std::vector<double>{1, 2, 3}, {3}, TensorOptions{dt}));
    expect_values(x.grad(), {0, 0, 0}, 0, 0);
  }
}

TEST(OpsLoss, DropoutRecordsOneOpSavingOnlyItsMask) {
  Tensor x = rand64({3, 4}, 1, 2);
  x.requires_grad_();
  Generator g(3);
  Tensor y = dropout(x, 0.25, true, &g);
  ASSERT_NE(y.impl().node, nullptr);
  EXPECT_EQ(y.impl().node->op, OpId::Dropout);
  ASSERT_EQ(y.impl().node->saved.size(), 1u) << "x is not kept alive";
  // ∂(Σ y)/∂x is the scaled mask, i.e. y / x.
  backward(sum(y));
  expect_tensors_near(x.grad(), y.detach() / x.detach(), 1e-15, 1e-15);
  // A generator re-seeded on every call makes the mask fixed for the finite differences.
  expect_gradients(
      [](const std::vector<Tensor>& in) {
        Generator fixed(5);
        return dropout(in[0], 0.4, true, &fixed);
      },
      {rand64({2, 5})});
}

TEST(OpsLoss, RefusesBadInputs) {
  Tensor logits = zeros({2, 3}, f64());
  expect_error([&] { cross_entropy(logits, labels_of({1, 3})); },
               {"cross_entropy", "label 3", "position 1", "[0, 3)", "[2, 3]"});
  expect_error([&] { cross_entropy(logits, labels_of({-1, 0})); }, {"cross_entropy", "label -1", "position 0"});
  expect_error([&] { cross_entropy(logits, vec64({0, 1})); }, {"cross_entropy", "int64 [2]", "float64 [2]"});
  expect_error([&] { cross_entropy(logits, labels_of({0, 1, 2})); }, {"cross_entropy", "int64 [2]", "[3]"});
  expect_error([&] { cross_entropy(logits, Tensor()); }, {"cross_entropy", "undefined"});
  expect_error([] { cross_entropy(zeros({3}), labels_of({0})); }, {"cross_entropy", "[N, C]", "[3]"});
  expect_error([&] { binary_cross_entropy_with_logits(logits, zeros({3}, f64())); },
               {"binary_cross_entropy_with_logits", "[2, 3]", "[3]"});
  expect_error([&] { binary_cross_entropy_with_logits(logits, zeros({2, 3})); },
               {"binary_cross_entropy_with_logits", "dtype", "float64", "float32"});
  expect_error([&] { mse_loss(logits, zeros({1, 3}, f64())); }, {"mse_loss", "[2, 3]", "[1, 3]"});
  expect_error([&] { l1_loss(logits, zeros({2}, f64())); }, {"l1_loss", "[2, 3]", "[2]"});
  expect_error([] { mse_loss(zeros({2}, TensorOptions{DType::Int64}), zeros({2}, TensorOptions{DType::Int64})); },
               {"mse_loss", "int64"});
  expect_error([&] { gaussian_log_prob(logits, zeros({4}, f64()), zeros({1}, f64())); },
               {"gaussian_log_prob", "[2, 3]", "[4]"});
  expect_error([&] { kl_diag_gaussians(logits, logits, logits, zeros({2, 3})); },
               {"kl_diag_gaussians", "dtype", "float32"});
  for (double p : {-0.1, 1.5, std::nan("")})
    expect_error([&] { dropout(logits, p, true); }, {"dropout", "probability", "[0, 1]", "[2, 3]"});
  expect_error([] { dropout(zeros({2}, TensorOptions{DType::Int64}), 0.5, true); }, {"dropout", "int64"});
}
