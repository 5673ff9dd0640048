// Elementwise ops (autograd/ops/elementwise.cpp): unary maps against a double
// reference and hand-known values (extremes included), binary ops with
// NumPy broadcasting, comparisons, where, and every error path.
#include <bit>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>

#include "tests/gradcheck.h"

using namespace loom;
using namespace loom::testing;

namespace {

const TensorOptions kF64{DType::Float64};
const double kInf = std::numeric_limits<double>::infinity();
const double kNaN = std::numeric_limits<double>::quiet_NaN();

Tensor t64(const std::vector<double>& v, const Shape& s) { return from_vector(v, s, kF64); }

double ref_sigmoid(double x) { return 1 / (1 + std::exp(-x)); }

// One unary op: the op, the reference f in double, and six inputs inside its
// domain and away from its kinks (so central differences see a smooth function).
struct UnaryCase {
  const char* name;
  std::function<Tensor(const Tensor&)> op;
  std::function<double(double)> ref;
  std::vector<double> inputs;
};

const std::vector<double> kAnyReal = {-1.7, -0.6, -0.05, 0.3, 0.9, 2.1};
const std::vector<double> kPositive = {0.2, 0.5, 0.9, 1.3, 2.0, 3.7};

std::vector<UnaryCase> unary_cases() {
  return {
      {"neg", [](const Tensor& x) { return neg(x); }, [](double x) { return -x; }, kAnyReal},
      {"exp", [](const Tensor& x) { return exp(x); }, [](double x) { return std::exp(x); }, kAnyReal},
      {"log", [](const Tensor& x) { return log(x); }, [](double x) { return std::log(x); }, kPositive},
      {"log1p", [](const Tensor& x) { return log1p(x); }, [](double x) { return std::log1p(x); },
       {-0.9, -0.3, 1e-3, 0.4, 1.1, 5.0}},
      {"sqrt", [](const Tensor& x) { return sqrt(x); }, [](double x) { return std::sqrt(x); }, kPositive},
      {"rsqrt", [](const Tensor& x) { return rsqrt(x); }, [](double x) { return 1 / std::sqrt(x); }, kPositive},
      {"tanh", [](const Tensor& x) { return tanh(x); }, [](double x) { return std::tanh(x); }, kAnyReal},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }, ref_sigmoid, kAnyReal},
      {"relu", [](const Tensor& x) { return relu(x); }, [](double x) { return x > 0 ? x : 0; }, kAnyReal},
      {"leaky_relu", [](const Tensor& x) { return leaky_relu(x, 0.2); },
       [](double x) { return x > 0 ? x : 0.2 * x; }, kAnyReal},
      {"leaky_relu default slope", [](const Tensor& x) { return leaky_relu(x); },
       [](double x) { return x > 0 ? x : 0.01 * x; }, kAnyReal},
      {"elu", [](const Tensor& x) { return elu(x, 1.3); },
       [](double x) { return x > 0 ? x : 1.3 * (std::exp(x) - 1); }, kAnyReal},
      {"silu", [](const Tensor& x) { return silu(x); }, [](double x) { return x * ref_sigmoid(x); }, kAnyReal},
      {"softplus", [](const Tensor& x) { return softplus(x); }, [](double x) { return std::log(1 + std::exp(x)); },
       kAnyReal},
      {"abs", [](const Tensor& x) { return abs(x); }, [](double x) { return std::fabs(x); }, kAnyReal},
      {"square", [](const Tensor& x) { return square(x); }, [](double x) { return x * x; }, kAnyReal},
      {"pow 2.5", [](const Tensor& x) { return pow(x, 2.5); }, [](double x) { return std::pow(x, 2.5); }, kPositive},
      {"pow -1.5", [](const Tensor& x) { return pow(x, -1.5); }, [](double x) { return std::pow(x, -1.5); },
       kPositive},
      {"pow 3 (negative base)", [](const Tensor& x) { return pow(x, 3.0); }, [](double x) { return x * x * x; },
       kAnyReal},
      {"clamp", [](const Tensor& x) { return clamp(x, -0.5, 0.7); },
       [](double x) { return std::min(std::max(x, -0.5), 0.7); }, kAnyReal},
  };
}

}  // namespace

// ---- unary ----------------------------------------------------------------------------

TEST(OpsUnary, ForwardMatchesDoubleReferenceInBothDtypes) {
  for (const UnaryCase& c : unary_cases()) {
    SCOPED_TRACE(c.name);
    std::vector<double> expected;
    for (double x : c.inputs) expected.push_back(c.ref(x));
    Tensor x64 = t64(c.inputs, {2, 3});
    Tensor y64 = c.op(x64);
    EXPECT_EQ(y64.shape(), (Shape{2, 3}));
    EXPECT_EQ(y64.dtype(), DType::Float64);
    expect_values(y64, expected, 1e-14, 1e-13);
    Tensor y32 = c.op(x64.to(DType::Float32));
    EXPECT_EQ(y32.dtype(), DType::Float32);
    // float32 also rounds the input: 1e-6 covers that error times each case's condition number.
    expect_values(y32, expected, 1e-6, 1e-6);
    // A NaN input gives NaN: no op (relu included) hides a diverged value.
    expect_values(c.op(t64({kNaN}, {1})), {kNaN});
  }
}

TEST(OpsUnary, GradientsMatchFiniteDifferences) {
  for (const UnaryCase& c : unary_cases()) {
    SCOPED_TRACE(c.name);
    expect_gradients([&](const std::vector<Tensor>& in) { return c.op(in[0]); }, {t64(c.inputs, {2, 3})});
  }
}

TEST(OpsUnary, HandKnownValues) {
  expect_values(exp(t64({0, 1, -1}, {3})), {1, M_E, 1 / M_E}, 0, 1e-15);
  expect_values(log(t64({1, M_E, 0}, {3})), {0, 1, -kInf}, 1e-15);
  expect_values(sqrt(t64({0, 4, 2.25}, {3})), {0, 2, 1.5}, 0);
  expect_values(rsqrt(t64({4, 0.25, 0}, {3})), {0.5, 2, kInf}, 0);
  expect_values(tanh(t64({0}, {1})), {0}, 0);
  expect_values(sigmoid(t64({0}, {1})), {0.5}, 0);
  expect_values(softplus(t64({0}, {1})), {M_LN2}, 1e-16);
  expect_values(relu(t64({-2, 0, 3}, {3})), {0, 0, 3}, 0);
  expect_values(leaky_relu(t64({-2, 0, 3}, {3}), 0.1), {-0.2, 0, 3}, 1e-16);
  expect_values(elu(t64({-kInf, 0, 2}, {3}), 2.0), {-2, 0, 2}, 0);
  expect_values(abs(t64({-2.5, 0, 3}, {3})), {2.5, 0, 3}, 0);
  expect_values(square(t64({-3, 0.5}, {2})), {9, 0.25}, 0);
  expect_values(pow(t64({4, 9, 0}, {3}), 0.5), {2, 3, 0}, 0);
  expect_values(pow(t64({-2, 0, 5}, {3}), 0.0), {1, 1, 1}, 0);  // x^0 = 1, also 0^0
  expect_values(pow(t64({2, -2}, {2}), -1.0), {0.5, -0.5}, 0);
  expect_values(clamp(t64({-3, -1, 0.5, 1, 4}, {5}), -1, 1), {-1, -1, 0.5, 1, 1}, 0);
  expect_values(sign(t64({-2, 0, 3, -0.0, kNaN}, {5})), {-1, 0, 1, 0, kNaN}, 0);
  expect_values(neg(t64({1, -2, 0}, {3})), {-1, 2, 0}, 0);
  expect_values(sin(t64({0, M_PI / 6, M_PI / 2, -M_PI / 2, 1}, {5})), {0, 0.5, 1, -1, 0.8414709848078965}, 1e-15, 0);
  expect_values(cos(t64({0, M_PI / 3, M_PI, 1}, {4})), {1, 0.5, -1, 0.5403023058681398}, 1e-15, 0);
  expect_values(sin(t64({kInf}, {1})), {kNaN});  // sin ∞: NaN, as IEEE and libm
  // Outside the domain the IEEE result comes through, never an exception.
  expect_values(log(t64({-1}, {1})), {kNaN});
  expect_values(sqrt(t64({-1}, {1})), {kNaN});
  expect_values(log1p(t64({-1}, {1})), {-kInf});
  // 0-d in, 0-d out.
  Tensor s = exp(scalar(0, kF64));
  EXPECT_EQ(s.dim(), 0);
  EXPECT_EQ(s.item(), 1);
}

TEST(OpsUnary, ExtremesAreFiniteAndExact) {
  // σ(±100) and softplus(±100) in double: e^-100 = 3.720075976020836e-44 survives
  // (the two-branch σ never computes 1 + e^100), and 1 + e^-100 rounds to 1.
  const double e100 = std::exp(-100.0);
  const std::vector<double> xs = {-1000, -100, 0, 100, 1000};
  Tensor x = t64(xs, {5});
  expect_values(sigmoid(x), {0, e100, 0.5, 1, 1}, 0, 1e-15);
  expect_values(softplus(x), {0, e100, M_LN2, 100, 1000}, 0, 1e-15);
  expect_values(silu(x), {0, -100 * e100, 0, 100, 1000}, 0, 1e-15);
  expect_values(tanh(x), {-1, -1, 0, 1, 1}, 0);
  expect_values(elu(x), {-1, -1, 0, 100, 1000}, 0);
  expect_values(exp(x), {0, e100, 1, 1 / e100, kInf}, 0, 1e-14);
  // float32: e^-100 is a subnormal float (≈ 27 ulps of 1.4e-45), still represented.
  Tensor x32 = x.to(DType::Float32);
  const double e100_f32 = static_cast<float>(e100);
  expect_values(sigmoid(x32), {0, e100_f32, 0.5, 1, 1}, 2e-45, 0);
  expect_values(softplus(x32), {0, e100_f32, M_LN2, 100, 1000}, 2e-45, 1.2e-7);
  expect_values(tanh(x32), {-1, -1, 0, 1, 1}, 0);
  // The derivatives stay finite: σ' = σ(1 − σ), softplus' = σ, tanh' = 1 − y², silu' → 0 / 1.
  for (DType dt : {DType::Float64, DType::Float32}) {
    SCOPED_TRACE(dt);
    auto grad_of = [&](Tensor (*f)(const Tensor&)) {
      Tensor v = x.to(dt).detach();
      v.requires_grad_();
      backward(sum(f(v)));
      return v.grad();
    };
    // σ'(100) = σ(1 − σ) rounds to 0 against the true e^-100: finite, within 1e-40.
    expect_values(grad_of(sigmoid), {0, e100, 0.25, e100, 0}, 1e-40, 1e-6);
    expect_values(grad_of(softplus), {0, e100, 0.5, 1, 1}, 1e-40, 1.2e-7);
    expect_values(grad_of(tanh), {0, 0, 1, 0, 0}, 0);
    expect_values(grad_of(silu), {0, -99 * e100, 0.5, 1, 1}, 1e-40, 1e-6);
  }
}

// The CPU's float exp (kernels/elementwise_math.h, exp_vectorizable: no libm call, so loops over it
// vectorize) against exp in double rounded to float: within 1 ulp on every 127th float of [−104, 89]
// (≈ 17.6 million), through the op on the float32 tensor of them; the edges exactly.
TEST(OpsUnary, FloatExpIsWithinOneUlpOfTheRoundedExp) {
  std::vector<float> xs;
  for (uint32_t bits = 0; bits < 0xFF800000u; bits += 127) {  // every finite float's bit pattern, both signs
    const float x = std::bit_cast<float>(bits);
    if (x >= -104.0f && x <= 89.0f) xs.push_back(x);
  }
  ASSERT_GT(xs.size(), 17000000u);
  const std::vector<float> ys = exp(from_vector(xs, {static_cast<int64_t>(xs.size())})).to_vector<float>();
  int64_t worst = 0;
  float at = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const float ref = static_cast<float>(std::exp(static_cast<double>(xs[i])));
    const int64_t d = std::abs(int64_t(std::bit_cast<int32_t>(ys[i])) - int64_t(std::bit_cast<int32_t>(ref)));
    if (d > worst) worst = d, at = xs[i];
  }
  EXPECT_LE(worst, 1) << "at x = " << at;
  const float kFInf = std::numeric_limits<float>::infinity();
  // e^88.72283 is the largest float below overflow; e^88.7229 overflows; e^−87.33654 is near the
  // smallest normal float, e^−103 rounds to the smallest subnormal (1.4e-45); NaN, ±∞, far beyond both ends.
  const std::vector<float> edge = {88.72283f, 88.7229f, -87.33654f, -103.0f, 0.0f, -0.0f, 1e-30f, -1e-30f,
                                   500.0f, -500.0f, kFInf, -kFInf, std::numeric_limits<float>::quiet_NaN()};
  const std::vector<float> got = exp(from_vector(edge, {static_cast<int64_t>(edge.size())})).to_vector<float>();
  for (size_t i = 0; i + 1 < edge.size(); ++i) {
    SCOPED_TRACE(edge[i]);
    const float ref = static_cast<float>(std::exp(static_cast<double>(edge[i])));
    EXPECT_LE(std::abs(int64_t(std::bit_cast<int32_t>(got[i])) - int64_t(std::bit_cast<int32_t>(ref))), 1);
  }
  EXPECT_TRUE(std::isfinite(got[0]));
  EXPECT_EQ(got[1], kFInf);
  EXPECT_GT(got[3], 0.0f);
  EXPECT_TRUE(std::isnan(got.back()));
}

TEST(OpsUnary, GradientsAtSpecialPoints) {
  // pow(x, 0) is constant: gradient 0, also at x = 0 (where 0·0^-1 would be NaN);
  // pow(x, 1) has gradient 1 at 0; relu, abs and clamp use 0 at their kinks; clamp
  // passes the gradient on its closed interval.
  auto grad_of = [](const std::function<Tensor(const Tensor&)>& f, const std::vector<double>& v) {
    Tensor x = t64(v, {static_cast<int64_t>(v.size())});
    x.requires_grad_();
    backward(sum(f(x)));
    return x.grad();
  };
  expect_values(grad_of([](const Tensor& x) { return pow(x, 0.0); }, {0, 2, -3}), {0, 0, 0}, 0);
  expect_values(grad_of([](const Tensor& x) { return pow(x, 1.0); }, {0, 2}), {1, 1}, 0);
  expect_values(grad_of([](const Tensor& x) { return pow(x, 2.0); }, {0, -3}), {0, -6}, 0);
  expect_values(grad_of([](const Tensor& x) { return relu(x); }, {-1, 0, 2}), {0, 0, 1}, 0);
  expect_values(grad_of([](const Tensor& x) { return leaky_relu(x, 0.1); }, {-1, 0, 2}), {0.1, 0.1, 1}, 1e-16);
  expect_values(grad_of([](const Tensor& x) { return abs(x); }, {-1, 0, 2}), {-1, 0, 1}, 0);
  expect_values(grad_of([](const Tensor& x) { return clamp(x, -1, 1); }, {-2, -1, 0, 1, 2}), {0, 1, 1, 1, 0}, 0);
  expect_values(grad_of([](const Tensor& x) { return elu(x, 2.0); }, {0, -1}), {2, 2 * std::exp(-1.0)}, 1e-15);
  expect_values(grad_of([](const Tensor& x) { return sqrt(x); }, {0, 4}), {kInf, 0.25}, 0);
}

TEST(OpsUnary, SignIsNotRecorded) {
  Tensor x = t64({-1, 2}, {2});
  x.requires_grad_();
  Tensor s = sign(x);
  EXPECT_FALSE(s.requires_grad());
  expect_values(s, {-1, 1}, 0);
}

TEST(OpsUnary, Errors) {
  Tensor ints = from_vector(std::vector<int64_t>{1, 2}, {2}, TensorOptions{DType::Int64});
  expect_error([&] { exp(ints); }, {"exp", "float32 or float64", "int64", "[2]"});
  expect_error([&] { relu(ints); }, {"relu", "int64"});
  expect_error([&] { sign(ints); }, {"sign", "int64"});
  expect_error([&] { tanh(Tensor()); }, {"tanh", "undefined"});
  expect_error([&] { clamp(ones({2}), 1, -1); }, {"clamp", "lower bound 1", "upper bound -1"});
  // Integer tensors cannot enter the tape at all.
  expect_error([] { from_vector(std::vector<int64_t>{1}, {1}, TensorOptions{DType::Int64, Device::cpu(), true}); },
               {"int64", "cannot require grad"});
}

// ---- binary ---------------------------------------------------------------------------

namespace {

using BinaryFn = Tensor (*)(const Tensor&, const Tensor&);
struct BinaryCase {
  const char* name;
  BinaryFn op;
  double lo, hi;  // operand range: positive for div's divisor and pow's base
};
const BinaryCase kBinaryCases[] = {
    {"add", add, -1, 1},         {"sub", sub, -1, 1},         {"mul", mul, -1, 1},
    {"div", div, 0.5, 2},        {"pow", pow, 0.5, 2},        {"maximum", maximum, -1, 1},
    {"minimum", minimum, -1, 1},
};

// Broadcastable shape pairs and their result: both operand orders are checked.
struct BroadcastCase {
  Shape a, b, out;
};
const BroadcastCase kBroadcastCases[] = {
    {{2, 3}, {2, 3}, {2, 3}},          {{3, 1}, {1, 4}, {3, 4}},       {{2, 3, 4}, {4}, {2, 3, 4}},
    {{}, {2, 3}, {2, 3}},              {{1}, {5}, {5}},                {{2, 1, 3}, {2, 4, 1}, {2, 4, 3}},
    {{1, 1, 3}, {2, 1}, {1, 2, 3}},    {{1, 2, 1}, {1, 3}, {1, 2, 3}}, {{0, 3}, {1, 3}, {0, 3}},
    {{2, 0}, {2, 1}, {2, 0}},          {{}, {}, {}},
};

}  // namespace

TEST(OpsBinary, ForwardValues) {
  Tensor a = t64({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = t64({2, -1, 0.5}, {3});
  expect_values(add(a, b), {3, 1, 3.5, 6, 4, 6.5}, 0);
  expect_values(sub(a, b), {-1, 3, 2.5, 2, 6, 5.5}, 0);
  expect_values(mul(a, b), {2, -2, 1.5, 8, -5, 3}, 0);
  expect_values(div(a, b), {0.5, -2, 6, 2, -5, 12}, 0);
  expect_values(pow(a, b), {1, 0.5, std::sqrt(3.0), 16, 0.2, std::sqrt(6.0)}, 0, 1e-15);
  expect_values(maximum(a, b), {2, 2, 3, 4, 5, 6}, 0);
  expect_values(minimum(a, b), {1, -1, 0.5, 2, -1, 0.5}, 0);
  // Column vector against a row: [3, 1] ∘ [1, 4] → [3, 4].
  Tensor col = t64({0, 10, 20}, {3, 1}), row = t64({1, 2, 3, 4}, {1, 4});
  Tensor s = col + row;
  EXPECT_EQ(s.shape(), (Shape{3, 4}));
  expect_values(s, {1, 2, 3, 4, 11, 12, 13, 14, 21, 22, 23, 24}, 0);
  // [2, 1, 3] ∘ [2, 4, 1] → [2, 4, 3]: p[i, j, k] = a[i, 0, k] · b[i, j, 0].
  Tensor p = t64({1, 2, 3, 4, 5, 6}, {2, 1, 3}) * t64({1, 10, 100, 1000, -1, -10, -100, -1000}, {2, 4, 1});
  EXPECT_EQ(p.shape(), (Shape{2, 4, 3}));
  std::vector<double> expected;
  for (int i = 0; i < 2; ++i)
    for (double f : {i ? -1.0 : 1.0, i ? -10.0 : 10.0, i ? -100.0 : 100.0, i ? -1000.0 : 1000.0})
      for (int k = 0; k < 3; ++k) expected.push_back((3 * i + k + 1) * f);
  expect_values(p, expected, 0);
  // float32 and integer operands keep their dtype.
  Tensor f = from_vector(std::vector<float>{1.5f, -2}, {2});
  EXPECT_EQ((f * f).dtype(), DType::Float32);
  expect_values(f * f, {2.25, 4}, 0);
  Tensor i = from_vector(std::vector<int64_t>{7, -7, 3}, {3}, TensorOptions{DType::Int64});
  Tensor j = from_vector(std::vector<int64_t>{2, 2, 5}, {3}, TensorOptions{DType::Int64});
  EXPECT_EQ((i + j).dtype(), DType::Int64);
  EXPECT_EQ((i + j).to_vector<int64_t>(), (std::vector<int64_t>{9, -5, 8}));
  EXPECT_EQ((i * j).to_vector<int64_t>(), (std::vector<int64_t>{14, -14, 15}));
  EXPECT_EQ((i / j).to_vector<int64_t>(), (std::vector<int64_t>{3, -3, 0}));  // C++ truncation
  EXPECT_EQ(maximum(i, j).to_vector<int64_t>(), (std::vector<int64_t>{7, 2, 5}));
  // Empty broadcasts produce empty results of the broadcast shape.
  EXPECT_EQ(add(zeros({0, 3}, kF64), ones({1, 3}, kF64)).shape(), (Shape{0, 3}));
  EXPECT_EQ(add(zeros({2, 0}, kF64), ones({2, 1}, kF64)).shape(), (Shape{2, 0}));
  // NaN propagates through maximum/minimum from either side.
  expect_values(maximum(t64({kNaN, 1}, {2}), t64({1, kNaN}, {2})), {kNaN, kNaN});
  expect_values(minimum(t64({kNaN, 1}, {2}), t64({1, kNaN}, {2})), {kNaN, kNaN});
}

TEST(OpsBinary, DoubleOperandOperators) {
  Tensor x = t64({1, 2, -4}, {3});
  expect_values(x + 2.0, {3, 4, -2}, 0);
  expect_values(2.0 + x, {3, 4, -2}, 0);
  expect_values(x - 2.0, {-1, 0, -6}, 0);
  expect_values(2.0 - x, {1, 0, 6}, 0);
  expect_values(x * 3.0, {3, 6, -12}, 0);
  expect_values(3.0 * x, {3, 6, -12}, 0);
  expect_values(x / 4.0, {0.25, 0.5, -1}, 0);
  expect_values(4.0 / x, {4, 2, -1}, 0);
  expect_values(-x, {-1, -2, 4}, 0);
  expect_values(x + x * x - x / x, {1, 5, 11}, 0);
  // The scalar takes the tensor's dtype: a float32 tensor stays float32.
  Tensor f = from_vector(std::vector<float>{1, 2}, {2});
  EXPECT_EQ((f * 0.5).dtype(), DType::Float32);
  EXPECT_EQ((1.0 - f).dtype(), DType::Float32);
  expect_values(1.0 - f, {0, -1}, 0);
  // Gradients: d(c − x)/dx = −1, d(c / x)/dx = −c/x², d(x / c)/dx = 1/c.
  expect_gradients([](const std::vector<Tensor>& in) { return (2.0 - in[0]) * 3.0 + 1.5 / in[0] - in[0] / 4.0; },
                   {t64({0.5, 1.5, -2}, {3})});
  expect_error([] { Tensor() + 1.0; }, {"add", "undefined"});
  // With an integer tensor the scalar must be whole: 0.5 would truncate to a zero divisor.
  Tensor i = from_vector(std::vector<int64_t>{4, -6}, {2}, TensorOptions{DType::Int64});
  EXPECT_EQ((i * 3.0).to_vector<int64_t>(), (std::vector<int64_t>{12, -18}));
  EXPECT_EQ((i / 2.0).to_vector<int64_t>(), (std::vector<int64_t>{2, -3}));
  expect_error([&] { (void)(i / 0.5); }, {"div", "scalar 0.5", "whole number", "int64", "[2]"});
  expect_error([&] { (void)(2.5 * i); }, {"mul", "scalar 2.5", "int64"});
}

TEST(OpsBinary, GradientsWithBroadcasting) {
  uint64_t seed = 1;
  for (const BinaryCase& c : kBinaryCases) {
    for (const BroadcastCase& bc : kBroadcastCases) {
      for (bool swapped : {false, true}) {
        const Shape &x = swapped ? bc.b : bc.a, &y = swapped ? bc.a : bc.b;
        SCOPED_TRACE(::testing::Message() << c.name << " " << str(x) << " ∘ " << str(y));
        Tensor a = rand64(x, c.lo, c.hi, seed++), b = rand64(y, c.lo, c.hi, seed++);
        EXPECT_EQ(c.op(a, b).shape(), bc.out);
        expect_gradients([&](const std::vector<Tensor>& in) { return c.op(in[0], in[1]); }, {a, b});
      }
    }
  }
}

TEST(OpsBinary, OneOperandRequiringGradOnly) {
  Tensor a = rand64({2, 3}, -1, 1, 3), b = rand64({3}, 0.5, 2, 4);
  a.requires_grad_();
  backward(sum(div(a, b) + sub(b, a) * b));
  ASSERT_TRUE(a.grad().defined());
  EXPECT_FALSE(b.grad().defined());
  std::vector<double> bv = b.to_vector<double>(), expected;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j) expected.push_back(1 / bv[j] - bv[j]);
  expect_values(a.grad(), expected, 1e-14);
}

TEST(OpsBinary, MaximumMinimumSplitTiesEvenly) {
  // Where a = b each operand gets half of the upstream gradient (ops.h documents this):
  // the subgradient that keeps d/da + d/db = 1, as for max(a, b) = (a + b + |a − b|)/2.
  Tensor a = t64({1, 2, 3}, {3}), b = t64({1, 5, 0}, {3});
  for (BinaryFn op : {maximum, minimum}) {
    const bool is_max = op == maximum;
    SCOPED_TRACE(is_max ? "maximum" : "minimum");
    Tensor x = a.clone(), y = b.clone();
    x.requires_grad_();
    y.requires_grad_();
    backward(op(x, y), t64({2, 4, 8}, {3}));
    expect_values(x.grad(), {1, is_max ? 0.0 : 4.0, is_max ? 8.0 : 0.0}, 0);
    expect_values(y.grad(), {1, is_max ? 4.0 : 0.0, is_max ? 0.0 : 8.0}, 0);
  }
  // A tie under broadcasting: the scalar gathers half of each tied element's gradient.
  Tensor s = scalar(2, kF64), v = t64({2, 1, 2}, {3});
  s.requires_grad_();
  v.requires_grad_();
  backward(sum(maximum(v, s)));
  expect_values(s.grad(), {0.5 + 1 + 0.5}, 0);
  expect_values(v.grad(), {0.5, 0, 0.5}, 0);
}

TEST(OpsBinary, PowGradientWithRespectToTheExponent) {
  // d 2^b / db = 2^b ln 2; at a = 0 the exponent's gradient is 0 (0^b is constant in b),
  // and with b = 0 the base's gradient is 0 (a^0 = 1), not 0·0^-1 = NaN.
  Tensor a = t64({2, 0, 0, 3}, {4}), b = t64({3, 2, 0, 0}, {4});
  a.requires_grad_();
  b.requires_grad_();
  Tensor z = pow(a, b);
  expect_values(z, {8, 0, 1, 1}, 0);
  backward(sum(z));
  expect_values(b.grad(), {8 * M_LN2, 0, 0, std::log(3.0)}, 1e-15);
  expect_values(a.grad(), {12, 0, 0, 0}, 0);
  // Negative base with an integer exponent: a^b is real and d/db uses log|a|.
  expect_gradients([](const std::vector<Tensor>& in) { return pow(in[0], t64({2, 3}, {2})); },
                   {t64({-1.5, -0.7}, {2})});
  Tensor e = t64({2, 3}, {2});
  e.requires_grad_();
  backward(sum(pow(t64({-2, -2}, {2}), e)));
  expect_values(e.grad(), {4 * M_LN2, -8 * M_LN2}, 1e-15);
}

TEST(OpsBinary, ComparisonsGiveZeroOrOneInTheOperandsDtype) {
  Tensor a = t64({1, 2, 3}, {3}), b = t64({2}, {1});
  expect_values(eq(a, b), {0, 1, 0}, 0);
  expect_values(ne(a, b), {1, 0, 1}, 0);
  expect_values(lt(a, b), {1, 0, 0}, 0);
  expect_values(le(a, b), {1, 1, 0}, 0);
  expect_values(gt(a, b), {0, 0, 1}, 0);
  expect_values(ge(a, b), {0, 1, 1}, 0);
  EXPECT_EQ(lt(a, b).dtype(), DType::Float64);
  // Broadcast [3, 1] against [1, 2].
  Tensor g = ge(t64({0, 1, 2}, {3, 1}), t64({1, 2}, {1, 2}));
  EXPECT_EQ(g.shape(), (Shape{3, 2}));
  expect_values(g, {0, 0, 1, 0, 1, 1}, 0);
  // NaN compares unequal to everything, itself included.
  expect_values(eq(t64({kNaN}, {1}), t64({kNaN}, {1})), {0}, 0);
  expect_values(ne(t64({kNaN}, {1}), t64({kNaN}, {1})), {1}, 0);
  Tensor i = arange(0, 4, 1, TensorOptions{DType::Int64});
  Tensor two = from_vector(std::vector<int64_t>{2}, {1}, TensorOptions{DType::Int64});
  EXPECT_EQ(lt(i, two).dtype(), DType::Int64);
  EXPECT_EQ(lt(i, two).to_vector<int64_t>(), (std::vector<int64_t>{1, 1, 0, 0}));
  // Not recorded: comparisons of a tensor requiring grad do not require grad.
  a.requires_grad_();
  EXPECT_FALSE(gt(a, b).requires_grad());
}

TEST(OpsBinary, WhereForwardAndGradients) {
  Tensor cond = t64({1, 0, 1}, {3, 1});
  Tensor a = t64({1, 2, 3, 4}, {1, 4}), b = scalar(-1, kF64);
  Tensor z = where(cond, a, b);
  EXPECT_EQ(z.shape(), (Shape{3, 4}));
  expect_values(z, {1, 2, 3, 4, -1, -1, -1, -1, 1, 2, 3, 4}, 0);
  // Any non-zero condition selects a (including negatives and NaN).
  expect_values(where(t64({-2, 0, kNaN}, {3}), t64({1, 1, 1}, {3}), t64({0, 0, 0}, {3})), {1, 0, 1}, 0);
  // Gradients flow to a and b (summed over their broadcast dims), none into cond.
  expect_gradients([&](const std::vector<Tensor>& in) { return where(cond, in[0], in[1]); },
                   {rand64({1, 4}), rand64({3, 1}, -1, 1, 8)});
  expect_gradients([&](const std::vector<Tensor>& in) { return where(cond, in[0], in[1]); },
                   {rand64({2, 3, 4}), rand64({})});
  Tensor c = cond.clone(), x = ones({3, 4}, kF64), y = zeros({4}, kF64);
  c.requires_grad_();
  x.requires_grad_();
  y.requires_grad_();
  backward(sum(where(c, x, y)));
  EXPECT_FALSE(c.grad().defined()) << "no gradient flows into the condition";
  expect_values(x.grad(), {1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1}, 0);
  expect_values(y.grad(), {1, 1, 1, 1}, 0);
  // With only the condition requiring grad nothing is recorded.
  Tensor c2 = cond.clone();
  c2.requires_grad_();
  EXPECT_FALSE(where(c2, a, b).requires_grad());
}

TEST(OpsBinary, Errors) {
  expect_error([] { add(ones({2, 3}), ones({4})); }, {"add", "[2, 3]", "[4]", "cannot be broadcast"});
  expect_error([] { mul(ones({3, 1, 2}), ones({4, 3})); }, {"mul", "[3, 1, 2]", "[4, 3]"});
  expect_error([] { ones({2}) - ones({3}); }, {"sub", "[2]", "[3]"});
  expect_error([] { maximum(ones({2}), ones({3})); }, {"maximum", "[2]", "[3]"});
  expect_error([] { lt(ones({2}), ones({3})); }, {"lt", "[2]", "[3]"});
  expect_error([] { div(ones({2}), ones({2}, kF64)); }, {"div", "dtype mismatch", "float32", "float64"});
  expect_error([] { pow(ones({2}, kF64), ones({2})); }, {"pow", "float64", "float32"});
  expect_error([] { add(ones({2}), Tensor()); }, {"add", "undefined"});
  Tensor ints = from_vector(std::vector<int64_t>{1, 2}, {2}, TensorOptions{DType::Int64});
  Tensor w = ones({2}, kF64);
  w.requires_grad_();
  expect_error([&] { (void)(w * ints); }, {"mul", "float64", "int64"});
  // Integer division by zero would trap in the kernel; it is refused first.
  Tensor j = from_vector(std::vector<int64_t>{1, 0}, {2}, TensorOptions{DType::Int64});
  expect_error([&] { div(ints, j); }, {"div", "integer division by zero", "int64", "[2]"});
  expect_error([&] { div(ones({2}), j); }, {"div", "dtype mismatch", "float32", "int64"});
  expect_error([] { where(ones({2}), ones({3}), ones({2})); }, {"where", "[2]", "[3]"});
  expect_error([] { where(ones({2}, kF64), ones({2}), ones({2})); }, {"where", "float64", "float32"});
}
