// Reductions (autograd/ops/reduce.cpp): sum mean max min var logsumexp over
// every kind of axis set, softmax/log_softmax and cumsum along each axis, argmax, and the
// error paths. x = arange(24) as [2, 3, 4] gives x[i, j, k] = 12i + 4j + k, so
// every expected value below is a short sum done by hand.
#include <cmath>
#include <limits>

#include "tests/gradcheck.h"

using namespace loom;
using namespace loom::testing;

namespace {

const TensorOptions kF64{DType::Float64};
const double kInf = std::numeric_limits<double>::infinity();
const double kNaN = std::numeric_limits<double>::quiet_NaN();

Tensor t64(const std::vector<double>& v, const Shape& s) { return from_vector(v, s, kF64); }
Tensor x234() { return reshape(arange(0, 24, 1, kF64), {2, 3, 4}); }

using ReduceFn = Tensor (*)(const Tensor&, std::vector<int64_t>, bool);

// The axis sets every reduction is checked over, with the result shapes for [2, 3, 4].
struct AxesCase {
  std::vector<int64_t> axes;
  Shape out, out_keepdim;
};
const AxesCase kAxesCases[] = {
    {{}, {}, {1, 1, 1}},          {{1}, {2, 4}, {2, 1, 4}},          {{-1}, {2, 3}, {2, 3, 1}},
    {{0, 2}, {3}, {1, 3, 1}},     {{2, 0}, {3}, {1, 3, 1}},          {{-3, -1}, {3}, {1, 3, 1}},
    {{1, 2}, {2}, {2, 1, 1}},     {{0, 1, 2}, {}, {1, 1, 1}},
};

Tensor var0(const Tensor& x, std::vector<int64_t> axes, bool keepdim) { return var(x, std::move(axes), keepdim, 0); }
Tensor var1(const Tensor& x, std::vector<int64_t> axes, bool keepdim) { return var(x, std::move(axes), keepdim, 1); }

}  // namespace

TEST(OpsReduce, ForwardValuesOverAxisSets) {
  Tensor x = x234();
  // All axes: Σ 0..23 = 276; population variance of 0..n-1 is (n² − 1)/12.
  expect_values(sum(x), {276}, 0);
  expect_values(mean(x), {11.5}, 0);
  expect_values(max(x), {23}, 0);
  expect_values(min(x), {0}, 0);
  expect_values(var(x), {575.0 / 12}, 1e-12);
  expect_values(var(x, {}, false, 1), {50}, 1e-12);
  // Axis 1: Σ_j (12i + 4j + k) = 36i + 12 + 3k.
  expect_values(sum(x, {1}), {12, 15, 18, 21, 48, 51, 54, 57}, 0);
  expect_values(mean(x, {1}), {4, 5, 6, 7, 16, 17, 18, 19}, 1e-14);
  expect_values(max(x, {1}), {8, 9, 10, 11, 20, 21, 22, 23}, 0);
  expect_values(min(x, {1}), {0, 1, 2, 3, 12, 13, 14, 15}, 0);
  expect_values(var(x, {1}), std::vector<double>(8, 32.0 / 3), 1e-12);  // {0, 4, 8}: Σd² = 32
  // Axis -1: offsets {0, 1, 2, 3}: variance 1.25 (population) and 5/3 (unbiased).
  expect_values(sum(x, {-1}), {6, 22, 38, 54, 70, 86}, 0);
  expect_values(max(x, {-1}), {3, 7, 11, 15, 19, 23}, 0);
  expect_values(min(x, {-1}), {0, 4, 8, 12, 16, 20}, 0);
  expect_values(var(x, {-1}), std::vector<double>(6, 1.25), 1e-14);
  expect_values(var(x, {-1}, false, 1), std::vector<double>(6, 5.0 / 3), 1e-14);
  // Axes {0, 2} (not contiguous): Σ_{i,k} = 48 + 32j + 12; values {0..3, 12..15} + 4j.
  expect_values(sum(x, {0, 2}), {60, 92, 124}, 0);
  expect_values(mean(x, {0, 2}), {7.5, 11.5, 15.5}, 1e-14);
  expect_values(max(x, {0, 2}), {15, 19, 23}, 0);
  expect_values(min(x, {0, 2}), {0, 4, 8}, 0);
  expect_values(var(x, {0, 2}), std::vector<double>(3, 298.0 / 8), 1e-12);
  expect_values(var(x, {0, 2}, false, 1), std::vector<double>(3, 298.0 / 7), 1e-12);
  // logsumexp of equal values is v + log n.
  expect_values(logsumexp(full({2, 3, 4}, 0.5, kF64), {0, 2}), std::vector<double>(3, 0.5 + std::log(8.0)), 1e-14);
  expect_values(logsumexp(t64({0, std::log(3.0), std::log(0.5), std::log(1.5)}, {2, 2}), {1}),
                {std::log(4.0), std::log(2.0)}, 1e-15);
  // Shapes with and without keepdim, for every op.
  for (ReduceFn f : {ReduceFn(sum), ReduceFn(mean), ReduceFn(max), ReduceFn(min), ReduceFn(logsumexp), var0}) {
    for (const AxesCase& c : kAxesCases) {
      SCOPED_TRACE(str(Shape(c.axes.begin(), c.axes.end())));
      EXPECT_EQ(f(x, c.axes, false).shape(), c.out);
      EXPECT_EQ(f(x, c.axes, true).shape(), c.out_keepdim);
    }
  }
  // keepdim only changes the shape.
  expect_tensors_near(reshape(sum(x, {0, 2}, true), {3}), sum(x, {0, 2}), 0);
}

TEST(OpsReduce, ReductionsInFloat32AccumulateAccurately) {
  // 0.1 summed 10^5 times: a float accumulator drifts by ~1e-3; the double one is exact to rounding.
  Tensor x = full({100000}, 0.1, TensorOptions{DType::Float32});
  EXPECT_EQ(sum(x).dtype(), DType::Float32);
  expect_values(sum(x), {10000}, 0, 1e-6);
  expect_values(mean(x), {0.1}, 0, 1e-6);
  expect_values(var(reshape(arange(0, 24), {2, 3, 4}), {-1}), std::vector<double>(6, 1.25), 1e-6);
}

TEST(OpsReduce, GradientsOverAxisSets) {
  Tensor x = rand64({2, 3, 4}, -2, 2, 11);
  for (ReduceFn f : {ReduceFn(sum), ReduceFn(mean), ReduceFn(max), ReduceFn(min), ReduceFn(logsumexp), var0, var1}) {
    for (const AxesCase& c : kAxesCases) {
      for (bool keepdim : {false, true}) {
        SCOPED_TRACE(::testing::Message() << str(Shape(c.axes.begin(), c.axes.end())) << " keepdim " << keepdim);
        expect_gradients([&](const std::vector<Tensor>& in) { return f(in[0], c.axes, keepdim); }, {x});
      }
    }
  }
}

TEST(OpsReduce, MaxMinGradientsSplitEvenlyBetweenTies) {
  // Rows [1, 3, 3] and [2, 2, 2]: the max of row 0 is shared by two, of row 1 by three.
  Tensor x = t64({1, 3, 3, 2, 2, 2}, {2, 3});
  x.requires_grad_();
  backward(max(x, {1}), t64({6, 9}, {2}));
  expect_values(x.grad(), {0, 3, 3, 3, 3, 3}, 0);
  x.zero_grad();
  backward(min(x, {1}), t64({6, 9}, {2}));
  expect_values(x.grad(), {6, 0, 0, 3, 3, 3}, 0);
  x.zero_grad();
  backward(max(x));  // the global max 3 appears twice
  expect_values(x.grad(), {0, 0.5, 0.5, 0, 0, 0}, 0);
  x.zero_grad();
  backward(min(x));  // the global min 1 is unique
  expect_values(x.grad(), {1, 0, 0, 0, 0, 0}, 0);
  // Ties across a non-contiguous axis set {0, 2} of [2, 2, 2].
  Tensor y = t64({5, 1, 0, 7, 5, 5, 7, 7}, {2, 2, 2});
  y.requires_grad_();
  backward(max(y, {0, 2}), t64({3, 4}, {2}));
  // j = 0: {5, 1, 5, 5} → three 5s get 1 each; j = 1: {0, 7, 7, 7} → three 7s get 4/3.
  expect_values(y.grad(), {1, 0, 0, 4.0 / 3, 1, 1, 4.0 / 3, 4.0 / 3}, 1e-15);
  // No ties, keepdim: the gradient lands on the arg max only.
  Tensor z = t64({0.5, -1, 2, 4}, {2, 2});
  z.requires_grad_();
  backward(max(z, {0}, true), t64({10, 20}, {1, 2}));
  expect_values(z.grad(), {0, 0, 10, 20}, 0);
}

TEST(OpsReduce, LogSumExpIsExactForLargeValues) {
  // m + log Σ e^(x − m): nothing overflows or underflows to a wrong answer.
  Tensor x = t64({1000, 1000, -1000, -1000, 1000, -1000, 0, 0}, {4, 2});
  x.requires_grad_();
  Tensor l = logsumexp(x, {1});
  expect_values(l, {1000 + M_LN2, -1000 + M_LN2, 1000, M_LN2}, 0, 1e-15);
  backward(sum(l));  // ∂lse/∂x = softmax(x)
  expect_values(x.grad(), {0.5, 0.5, 0.5, 0.5, 1, 0, 0.5, 0.5}, 1e-15);
  expect_values(logsumexp(x.to(DType::Float32).detach(), {1}), {1000 + M_LN2, -1000 + M_LN2, 1000, M_LN2}, 0,
                1e-7);
  // Infinities: an all −inf slice gives −inf, a +inf gives +inf.
  expect_values(logsumexp(t64({-kInf, -kInf, kInf, 0}, {2, 2}), {1}), {-kInf, kInf});
}

TEST(OpsReduce, VarGradientsWithEachCorrection) {
  // var = Σ(x − μ)² / (n − c): ∂/∂x_i = 2(x_i − μ)/(n − c). For {1, 2, 6}: μ = 3.
  for (int64_t c : {0, 1}) {
    Tensor x = t64({1, 2, 6}, {3});
    x.requires_grad_();
    Tensor v = var(x, {}, false, c);
    expect_values(v, {14.0 / (3 - c)}, 1e-14);
    backward(v);
    expect_values(x.grad(), {-4.0 / (3 - c), -2.0 / (3 - c), 6.0 / (3 - c)}, 1e-14);
  }
}

TEST(OpsReduce, SoftmaxAndLogSoftmaxAlongEachAxis) {
  Tensor x = rand64({3, 4, 5}, -3, 3, 21);
  for (int64_t axis : {0, 1, 2, -1, -3}) {
    SCOPED_TRACE(axis);
    Tensor s = softmax(x, axis), ls = log_softmax(x, axis);
    EXPECT_EQ(s.shape(), x.shape());
    // softmax = exp(x − lse), log_softmax = x − lse, along the axis; slices sum to 1.
    Tensor lse = logsumexp(x, {axis}, true);
    expect_tensors_near(s, exp(x - lse), 1e-15, 1e-14);
    expect_tensors_near(ls, x - lse, 1e-14, 1e-14);
    expect_tensors_near(sum(s, {axis}), ones(sum(x, {axis}).shape(), kF64), 1e-15);
    expect_gradients([&](const std::vector<Tensor>& in) { return softmax(in[0], axis); }, {x});
    expect_gradients([&](const std::vector<Tensor>& in) { return log_softmax(in[0], axis); }, {x});
  }
  // Known values, and extremes that a naive exp(x) / Σ exp(x) would turn into NaN.
  expect_values(softmax(t64({0, std::log(3.0)}, {2})), {0.25, 0.75}, 1e-16);
  expect_values(softmax(t64({1000, 0, -1000}, {3})), {1, 0, 0}, 0);
  expect_values(log_softmax(t64({1000, 0}, {2})), {0, -1000}, 0);
  expect_values(log_softmax(t64({-1000, -1000}, {2})), {-M_LN2, -M_LN2}, 0, 1e-15);
  expect_values(softmax(t64({1000, 0, -1000}, {3}).to(DType::Float32)), {1, 0, 0}, 0);
  // A 0-d input is its own one-element slice.
  expect_values(softmax(scalar(3, kF64)), {1}, 0);
  expect_values(log_softmax(scalar(3, kF64)), {0}, 0);
  // Gradients at the extremes stay finite: ∂ log_softmax = I − softmax.
  Tensor big = t64({1000, 0}, {2});
  big.requires_grad_();
  backward(log_softmax(big), t64({1, 0}, {2}));
  expect_values(big.grad(), {0, 0}, 0);
}

TEST(OpsReduce, CumsumForwardValuesAlongEachAxis) {
  // [[1, 2, 3], [4, 5, 6]]: prefix and suffix sums by hand along each axis.
  Tensor a = t64({1, 2, 3, 4, 5, 6}, {2, 3});
  expect_values(cumsum(a, 1), {1, 3, 6, 4, 9, 15}, 0);
  expect_values(cumsum(a, -1), {1, 3, 6, 4, 9, 15}, 0);
  expect_values(cumsum(a, 1, true), {6, 5, 3, 15, 11, 6}, 0);
  expect_values(cumsum(a, 0), {1, 2, 3, 5, 7, 9}, 0);
  expect_values(cumsum(a, -2, true), {5, 7, 9, 4, 5, 6}, 0);
  // A middle axis (outer and inner both > 1): x[i, j, k] = 6i + 2j + k on [2, 3, 2].
  Tensor b = reshape(arange(0, 12, 1, kF64), {2, 3, 2});
  Tensor y = cumsum(b, 1);
  EXPECT_EQ(y.shape(), b.shape());
  EXPECT_EQ(y.dtype(), DType::Float64);
  expect_values(y, {0, 1, 2, 4, 6, 9, 6, 7, 14, 16, 24, 27}, 0);
  expect_values(cumsum(b, 1, true), {6, 9, 6, 8, 4, 5, 24, 27, 18, 20, 10, 11}, 0);
  // Lines wider than the CPU kernel's 64-column tile: the last prefix (first suffix) is the sum.
  Tensor w = rand64({5, 130}, -1, 1, 22);
  expect_tensors_near(slice(cumsum(w, 0), 0, 4, 5), sum(w, {0}, true), 1e-14);
  expect_tensors_near(slice(cumsum(w, 0, true), 0, 0, 1), sum(w, {0}, true), 1e-14);
  expect_tensors_near(slice(cumsum(w, 1), 1, 129, 130), sum(w, {1}, true), 1e-14);
  // A 0-d tensor is its own one-element line; an empty axis gives an empty result.
  expect_values(cumsum(scalar(2.5, kF64), 0), {2.5}, 0);
  EXPECT_EQ(cumsum(zeros({2, 0}, kF64), 1).shape(), (Shape{2, 0}));
  // float32 accumulates in double: 0.1 summed 10^5 times stays within float rounding.
  Tensor tenth = full({100000}, 0.1, TensorOptions{DType::Float32});
  Tensor c = cumsum(tenth, 0);
  EXPECT_EQ(c.dtype(), DType::Float32);
  expect_values(slice(c, 0, 99999, 100000), {10000}, 0, 1e-6);
}

TEST(OpsReduce, CumsumGradientIsTheOppositeScan) {
  // y = cumsum(x): ∂⟨y, g⟩/∂x_k = Σ_{j ≥ k} g_j; reverse: Σ_{j ≤ k} g_j.
  const Tensor g = t64({1, 10, 100, 1000}, {4});
  for (bool reverse : {false, true}) {
    Tensor x = t64({0.5, -1, 2, 3}, {4});
    x.requires_grad_();
    backward(cumsum(x, 0, reverse), g);
    const std::vector<double> suffix = {1111, 1110, 1100, 1000}, prefix = {1, 11, 111, 1111};
    expect_values(x.grad(), reverse ? prefix : suffix, 0);
  }
  // First and second derivatives (with respect to x and to the output gradient) along every axis.
  Tensor x = rand64({3, 4, 5}, -2, 2, 23);
  for (int64_t axis : {0, 1, 2, -1})
    for (bool reverse : {false, true}) {
      SCOPED_TRACE(str("axis ", axis, reverse ? " reverse" : ""));
      expect_gradients([&](const std::vector<Tensor>& in) { return cumsum(in[0], axis, reverse); }, {x});
      expect_second_gradients([&](const std::vector<Tensor>& in) { return square(cumsum(in[0], axis, reverse)); },
                              {x});
    }
}

TEST(OpsReduce, Argmax) {
  Tensor x = t64({1, 7, 7, -1, 4, 2, 0, 4}, {2, 4});
  Tensor a = argmax(x, 1);
  EXPECT_EQ(a.dtype(), DType::Int64);
  EXPECT_EQ(a.shape(), (Shape{2}));
  EXPECT_EQ(a.to_vector<int64_t>(), (std::vector<int64_t>{1, 0})) << "ties resolve to the first index";
  EXPECT_EQ(argmax(x, -1, true).shape(), (Shape{2, 1}));
  EXPECT_EQ(argmax(x, 0).to_vector<int64_t>(), (std::vector<int64_t>{1, 0, 0, 1}));
  Tensor y = x234();
  EXPECT_EQ(argmax(y, 1).to_vector<int64_t>(), std::vector<int64_t>(8, 2));
  EXPECT_EQ(argmax(y, 1).shape(), (Shape{2, 4}));
  EXPECT_EQ(argmax(y.to(DType::Float32), -3).to_vector<int64_t>(), std::vector<int64_t>(12, 1));
  EXPECT_EQ(argmax(scalar(5, kF64), 0).to_vector<int64_t>(), (std::vector<int64_t>{0}));
  // A NaN wins (it is reported, not skipped).
  EXPECT_EQ(argmax(t64({1, kNaN, 3}, {3}), 0).to_vector<int64_t>(), (std::vector<int64_t>{1}));
  // Not recorded.
  Tensor w = x.clone();
  w.requires_grad_();
  EXPECT_FALSE(argmax(w, 1).requires_grad());
}

TEST(OpsReduce, ZeroDimensionalAndEmptyInputs) {
  // A 0-d tensor reduces over nothing; axis 0 or -1 is accepted for it, as in PyTorch.
  Tensor s = scalar(2.5, kF64);
  for (std::vector<int64_t> axes : {std::vector<int64_t>{}, std::vector<int64_t>{0}, std::vector<int64_t>{-1}}) {
    expect_values(sum(s, axes), {2.5}, 0);
    expect_values(max(s, axes, true), {2.5}, 0);
    expect_values(logsumexp(s, axes), {2.5}, 0);
    expect_values(var(s, axes), {0}, 0);
    EXPECT_EQ(mean(s, axes).dim(), 0);
  }
  // The result never shares the input's storage, even when nothing was reduced.
  EXPECT_NE(sum(s).data_ptr(), s.data_ptr());
  expect_gradients([](const std::vector<Tensor>& in) { return max(in[0], {0}) * sum(in[0]); }, {s});
  // Sums over zero elements are 0; reductions that keep an empty axis give empty results.
  Tensor e = zeros({2, 0}, kF64);
  expect_values(sum(e), {0}, 0);
  expect_values(sum(e, {1}), {0, 0}, 0);
  EXPECT_EQ(sum(e, {0}).shape(), (Shape{0}));
  EXPECT_EQ(max(e, {0}).shape(), (Shape{0}));
  EXPECT_EQ(mean(e, {0}).shape(), (Shape{0}));
  EXPECT_EQ(softmax(e, 1).shape(), (Shape{2, 0}));
  Tensor ge = zeros({2, 0}, kF64);
  ge.requires_grad_();
  backward(sum(sum(ge, {1}) * 3.0));
  EXPECT_EQ(ge.grad().shape(), (Shape{2, 0}));
}

TEST(OpsReduce, Errors) {
  Tensor x = x234();
  expect_error([&] { sum(x, {1, -2}); }, {"sum", "axis 1", "repeated", "[2, 3, 4]"});
  expect_error([&] { max(x, {0, 0}); }, {"max", "repeated"});
  expect_error([&] { sum(x, {3}); }, {"sum", "axis 3", "out of range", "rank 3"});
  expect_error([&] { mean(x, {-4}); }, {"mean", "axis -4", "rank 3"});
  expect_error([&] { var(x, {5}); }, {"var", "axis 5"});
  expect_error([&] { logsumexp(x, {0, 7}); }, {"logsumexp", "axis 7"});
  expect_error([&] { softmax(x, 3); }, {"softmax", "axis 3"});
  expect_error([&] { log_softmax(x, -4); }, {"log_softmax", "axis -4"});
  expect_error([&] { argmax(x, 3); }, {"argmax", "axis 3"});
  expect_error([&] { cumsum(x, 3); }, {"cumsum", "axis 3", "out of range", "rank 3", "expected an axis in [-3, 3)"});
  expect_error([&] { cumsum(x, -4, true); }, {"cumsum", "axis -4", "rank 3"});
  expect_error([] { cumsum(scalar(1), 1); }, {"cumsum", "axis 1", "rank 0", "[-1, 1)"});
  expect_error([] { sum(scalar(1), {1}); }, {"sum", "axis 1", "rank 0"});
  // Empty reductions: max/min/logsumexp have no identity, mean would divide by zero.
  Tensor e = zeros({2, 0}, kF64);
  expect_error([&] { max(e, {1}); }, {"max", "empty axis", "[2, 0]"});
  expect_error([&] { min(e); }, {"min", "empty axis", "[2, 0]"});
  expect_error([&] { logsumexp(e, {-1}); }, {"logsumexp", "empty axis", "[2, 0]"});
  expect_error([&] { mean(e, {1}); }, {"mean", "empty axis", "[2, 0]"});
  expect_error([&] { argmax(e, 1); }, {"argmax", "empty axis", "[2, 0]"});
  // var needs n − correction > 0.
  expect_error([&] { var(ones({1}, kF64), {}, false, 1); },
               {"var", "1 elements with correction 1", "degrees of freedom"});
  expect_error([&] { var(x, {0}, false, 2); }, {"var", "correction 2", "[2, 3, 4]"});
  expect_error([&] { var(e, {1}); }, {"var", "0 elements", "degrees of freedom"});
  // Integer and undefined inputs.
  Tensor ints = arange(0, 4, 1, TensorOptions{DType::Int64});
  expect_error([&] { sum(ints); }, {"sum", "int64", "[4]"});
  expect_error([&] { softmax(ints); }, {"softmax", "int64"});
  expect_error([&] { argmax(ints, 0); }, {"argmax", "int64"});
  expect_error([&] { cumsum(ints, 0); }, {"cumsum", "int64"});
  expect_error([] { cumsum(Tensor(), 0); }, {"cumsum", "undefined"});
  expect_error([] { mean(Tensor()); }, {"mean", "undefined"});
}
