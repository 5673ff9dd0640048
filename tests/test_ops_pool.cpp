// Pooling and upsampling (autograd/ops/pool.cpp, kernels/cpu/pool.cpp):
// hand-computed forwards (ties, padding, non-square), backward by central
// differences, and every refused geometry.
#include <cmath>

#include "tests/gradcheck.h"

using namespace loom;
using namespace loom::testing;

namespace {
TensorOptions f64() { return TensorOptions{DType::Float64}; }

// Σ y ⊙ r backpropagated to x: the gradient each input element collects.
Tensor grad_of(const std::function<Tensor(const Tensor&)>& f, const Tensor& x_in, const std::vector<double>& r) {
  Tensor x = x_in.detach().clone();
  x.requires_grad_();
  Tensor y = f(x);
  backward(sum(y * from_vector(r, y.shape(), y.options())));
  return x.grad();
}
}  // namespace

TEST(OpsPool, MaxPoolTiesGoToTheFirstAndPaddingIsSkipped) {
  // kernel 2, stride 2, padding 1 on a 3x4 plane: window rows {-1,0} and {1,2},
  // columns {-1,0}, {1,2} and {3,4}.
  Tensor x = from_vector(std::vector<double>{1, 5, 5, 2,  //
                                             4, 0, 6, 3,  //
                                             -1, 2, 6, 6},
                         {1, 1, 3, 4});
  auto pool = [](const Tensor& t) { return max_pool2d(t, {2, 2}, {2, 2}, {1, 1}); };
  Tensor y = pool(x);
  EXPECT_EQ(y.shape(), (Shape{1, 1, 2, 3}));
  EXPECT_EQ(y.dtype(), DType::Float32);
  expect_values(y, {1, 5, 2, 4, 6, 6});
  // The tied 5s at (0,1),(0,2) and 6s at (1,2),(2,2) send their gradient to the
  // first in row-major order: flat indices 1 and 6.
  expect_values(grad_of(pool, x, {1, 2, 3, 4, 5, 6}), {1, 2, 0, 3, 4, 0, 5, 0, 0, 0, 0, 6});
}

TEST(OpsPool, MaxPoolPaddingNeverBeatsNegativeValuesAndOverlapsAccumulate) {
  Tensor x = from_vector(std::vector<double>{-1, -2, -3, -4}, {1, 1, 2, 2}, f64());
  auto pool = [](const Tensor& t) { return max_pool2d(t, {2, 2}, {1, 1}, {1, 1}); };
  // Zero padding would give 0 on every border window; −∞ padding gives the real maxima.
  expect_values(pool(x), {-1, -1, -2, -1, -1, -2, -3, -3, -4});
  // x[0,0] wins four windows, x[0,1] and x[1,0] two each, x[1,1] one.
  expect_values(grad_of(pool, x, std::vector<double>(9, 1.0)), {4, 2, 2, 1});
}

TEST(OpsPool, MaxPoolNaNPropagates) {
  Tensor x = from_vector(std::vector<double>{1, NAN, 3, 4}, {1, 1, 2, 2});
  expect_values(max_pool2d(x, {2, 2}), {NAN});
}

// 2 × 2, stride 2, no padding (the kernel's own loop for it): every window against a reference written
// here, on odd sizes (the last row and column dropped), with ties (the first maximum wins, and takes the
// gradient) and NaNs (the first NaN wins, whatever follows).
TEST(OpsPool, MaxPool2x2MatchesTheRuleOnTiesAndNaNs) {
  const int64_t h = 5, w = 7;
  std::vector<double> v(static_cast<size_t>(2 * h * w));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>((i * 7) % 5);  // many ties
  v[1] = NAN;                          // plane 0, window (0, 0): second position
  v[w + 2] = NAN;                      // window (0, 1): third position
  v[w + 3] = NAN;                      // and its fourth, after the first NaN
  v[h * w + 3 * w + 5] = INFINITY;     // plane 1, window (1, 2)
  const Tensor x = from_vector(v, {1, 2, h, w});
  const Tensor y = max_pool2d(x, {2, 2});
  ASSERT_EQ(y.shape(), (Shape{1, 2, 2, 3}));
  const std::vector<double> got = y.to_vector<double>();
  std::vector<double> g_want(v.size(), 0.0);
  for (int64_t pl = 0; pl < 2; ++pl)
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t j = 0; j < 3; ++j) {
        double best = NAN;
        int64_t at = -1;
        for (int64_t a = 0; a < 2 && !(at >= 0 && std::isnan(best)); ++a)
          for (int64_t b = 0; b < 2; ++b) {
            const int64_t k = pl * h * w + (2 * i + a) * w + 2 * j + b;
            if (at < 0 || std::isnan(v[k]) || v[k] > best) best = v[k], at = k;
            if (std::isnan(best)) break;
          }
        const double y_ij = got[static_cast<size_t>((pl * 2 + i) * 3 + j)];
        if (std::isnan(best)) {
          EXPECT_TRUE(std::isnan(y_ij)) << pl << " " << i << " " << j;
        } else {
          EXPECT_EQ(y_ij, best) << pl << " " << i << " " << j;
        }
        g_want[static_cast<size_t>(at)] += 1;
      }
  Tensor xg = x.clone();
  xg.requires_grad_();
  backward(sum(max_pool2d(xg, {2, 2})));
  EXPECT_EQ(xg.grad().to_vector<double>(), g_want);
}

// The CPU kernel computes the windows the padding does not clip sideways a row at a time (vectorized)
// and the clipped ones one by one; both must keep the rule (the first NaN, else the first maximum, in
// row-major order): against a window-by-window reference for geometries with and without padding,
// strides 1 to 3, on float32 data full of ties and with NaNs.
TEST(OpsPool, MaxPoolMatchesTheRuleForEveryGeometry) {
  struct Geometry {
    int64_t h, w, k, s, p;
  };
  for (const Geometry g : {Geometry{9, 11, 3, 1, 1}, Geometry{8, 13, 2, 2, 0}, Geometry{10, 10, 3, 2, 1},
                           Geometry{7, 17, 4, 3, 2}, Geometry{5, 4, 5, 1, 2}, Geometry{6, 9, 3, 3, 0}}) {
    SCOPED_TRACE(str("h ", g.h, " w ", g.w, " k ", g.k, " s ", g.s, " p ", g.p));
    const int64_t planes = 3, n = planes * g.h * g.w;
    std::vector<double> v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) v[i] = static_cast<double>((i * 37) % 11) - 5;  // ties
    for (int64_t i = 5; i < n; i += 23) v[i] = NAN;
    const Tensor x = from_vector(v, {1, planes, g.h, g.w}).to(DType::Float32);
    Tensor xg = x.clone();
    xg.requires_grad_();
    const Tensor y = max_pool2d(xg, {g.k, g.k}, {g.s, g.s}, {g.p, g.p});
    const int64_t oh = y.size(2), ow = y.size(3);
    std::vector<double> r(static_cast<size_t>(y.numel()));
    for (size_t i = 0; i < r.size(); ++i) r[i] = static_cast<double>(i % 7 + 1);
    backward(sum(y * from_vector(r, y.shape()).to(DType::Float32)));
    const std::vector<double> got = y.to_vector<double>(), grad = xg.grad().to_vector<double>();
    std::vector<double> want_grad(static_cast<size_t>(n), 0.0);
    for (int64_t pl = 0; pl < planes; ++pl)
      for (int64_t i = 0; i < oh; ++i)
        for (int64_t j = 0; j < ow; ++j) {
          int64_t at = -1;
          for (int64_t a = std::max<int64_t>(i * g.s - g.p, 0); a < std::min(i * g.s - g.p + g.k, g.h); ++a)
            for (int64_t b = std::max<int64_t>(j * g.s - g.p, 0); b < std::min(j * g.s - g.p + g.k, g.w); ++b) {
              const int64_t idx = pl * g.h * g.w + a * g.w + b;
              if (at < 0 || (!std::isnan(v[at]) && (std::isnan(v[idx]) || v[idx] > v[at]))) at = idx;
            }
          const size_t o = static_cast<size_t>((pl * oh + i) * ow + j);
          if (std::isnan(v[at])) {
            EXPECT_TRUE(std::isnan(got[o])) << pl << " " << i << " " << j;
          } else {
            EXPECT_EQ(got[o], v[at]) << pl << " " << i << " " << j;
          }
          want_grad[static_cast<size_t>(at)] += r[o];
        }
    EXPECT_EQ(grad, want_grad);
  }
}

TEST(OpsPool, AvgPoolCountsPaddingAsZeros) {
  Tensor x = from_vector(std::vector<double>{1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3});
  // kernel 3, stride 1, padding 1: every window divides by 9, padded or not.
  expect_values(avg_pool2d(x, {3, 3}, {1, 1}, {1, 1}),
                {12 / 9., 21 / 9., 16 / 9., 27 / 9., 45 / 9., 33 / 9., 24 / 9., 39 / 9., 28 / 9.});
  // kernel 2, stride 2, padding 1 on 2x2: each window holds one real element and three zeros.
  Tensor y = avg_pool2d(from_vector(std::vector<double>{1, 2, 3, 4}, {1, 1, 2, 2}), {2, 2}, {2, 2}, {1, 1});
  expect_values(y, {0.25, 0.5, 0.75, 1});
  // ∂/∂x of Σ y ⊙ r for the 3x3 case: each element collects r/9 from every window covering it.
  auto pool = [](const Tensor& t) { return avg_pool2d(t, {3, 3}, {1, 1}, {1, 1}); };
  Tensor g = grad_of(pool, x.to(DType::Float64), std::vector<double>(9, 9.0));
  expect_values(g, {4, 6, 4, 6, 9, 6, 4, 6, 4});
}

TEST(OpsPool, DefaultStrideIsTheKernel) {
  Tensor x = rand64({1, 2, 4, 6});
  Tensor y = avg_pool2d(x, {2, 3});
  EXPECT_EQ(y.shape(), (Shape{1, 2, 2, 2}));
  expect_tensors_near(y, avg_pool2d(x, {2, 3}, {2, 3}), 0, 0);
  expect_tensors_near(max_pool2d(x, {2, 3}), max_pool2d(x, {2, 3}, {2, 3}), 0, 0);
  // Trailing rows/columns that no whole window reaches are dropped (floor, as PyTorch).
  EXPECT_EQ(max_pool2d(rand64({1, 1, 5, 7}), {2, 2}).shape(), (Shape{1, 1, 2, 3}));
}

TEST(OpsPool, UpsampleNearestRepeatsEachPixel) {
  Tensor x = from_vector(std::vector<double>{1, 2, 3, 4}, {1, 1, 2, 2});
  Tensor y = upsample_nearest2d(x, 2);
  EXPECT_EQ(y.shape(), (Shape{1, 1, 4, 4}));
  expect_values(y, {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4});
  expect_tensors_near(upsample_nearest2d(x, 1), x, 0, 0);
  // Each input collects the sum of its 2x2 block of r = 0..15.
  std::vector<double> r(16);
  for (int i = 0; i < 16; ++i) r[i] = i;
  auto up = [](const Tensor& t) { return upsample_nearest2d(t, 2); };
  expect_values(grad_of(up, x.to(DType::Float64), r),
                {0 + 1 + 4 + 5, 2 + 3 + 6 + 7, 8 + 9 + 12 + 13, 10 + 11 + 14 + 15});
}

TEST(OpsPool, Gradients) {
  // Random values have no ties (a tie closer than the step would make max pool's
  // finite difference straddle a kink).
  for (Pair stride : {Pair{1, 2}, Pair{2, 1}}) {
    expect_gradients([&](const std::vector<Tensor>& in) { return max_pool2d(in[0], {2, 3}, stride, {1, 1}); },
                     {rand64({2, 3, 4, 3})});
    expect_gradients([&](const std::vector<Tensor>& in) { return avg_pool2d(in[0], {2, 3}, stride, {1, 1}); },
                     {rand64({2, 3, 4, 3})});
  }
  expect_gradients([](const std::vector<Tensor>& in) { return max_pool2d(in[0], {3, 3}, {1, 1}, {1, 1}); },
                   {rand64({1, 1, 3, 3}, -1, 1, 11)});
  expect_gradients([](const std::vector<Tensor>& in) { return avg_pool2d(in[0], {1, 1}); }, {rand64({1, 3, 2, 5})});
  expect_gradients([](const std::vector<Tensor>& in) { return upsample_nearest2d(in[0], 3); },
                   {rand64({2, 3, 2, 1})});
}

TEST(OpsPool, RefusesBadInputs) {
  Tensor x = zeros({1, 1, 2, 2});
  expect_error([] { max_pool2d(zeros({2, 3}), {2, 2}); }, {"max_pool2d", "4-D", "[2, 3]"});
  expect_error([&] { max_pool2d(x, {3, 3}); },
               {"max_pool2d", "kernel [3, 3]", "larger than the padded input [2, 2]", "[1, 1, 2, 2]"});
  expect_error([&] { avg_pool2d(x, {1, 3}, {1, 1}, {0, 0}); },
               {"avg_pool2d", "kernel [1, 3]", "padded input [2, 2]"});
  expect_error([&] { avg_pool2d(x, {2, 2}, {1, 1}, {2, 0}); },
               {"avg_pool2d", "padding [2, 0]", "half the kernel [2, 2]", "[1, 1, 2, 2]"});
  expect_error([&] { max_pool2d(x, {2, 2}, {1, 1}, {0, -1}); }, {"max_pool2d", "padding [0, -1]", "[1, 1, 2, 2]"});
  expect_error([&] { max_pool2d(x, {0, 2}); }, {"max_pool2d", "kernel [0, 2]", "positive", "[1, 1, 2, 2]"});
  expect_error([&] { max_pool2d(x, {2, 2}, {0, 2}); }, {"max_pool2d", "stride [0, 2]", "positive", "[1, 1, 2, 2]"});
  expect_error([] { avg_pool2d(zeros({1, 1, 0, 3}), {1, 1}); }, {"avg_pool2d", "[1, 1, 0, 3]", "empty"});
  expect_error([] { max_pool2d(zeros({1, 1, 2, 2}, TensorOptions{DType::Int64}), {2, 2}); },
               {"max_pool2d", "int64", "[1, 1, 2, 2]"});
  expect_error([&] { upsample_nearest2d(x, 0); }, {"upsample_nearest2d", "scale 0", "[1, 1, 2, 2]"});
  expect_error([] { upsample_nearest2d(zeros({1, 2, 2}), 2); }, {"upsample_nearest2d", "4-D", "[1, 2, 2]"});
}
