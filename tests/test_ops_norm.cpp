// Normalization ops (autograd/ops/norm.cpp): batch_norm (its training forward one op) against a
// hand-rolled mean/variance, its running statistics against PyTorch's update formulas, its first and
// second derivatives by central differences,
// group/layer norm statistics, group_norm's fused γ and β, standardize (layer norm's op) by hand and by
// finite differences,
// gradients through the tape, and every refused shape.
#include <cmath>

#include "tests/gradcheck.h"

using namespace loom;
using namespace loom::testing;

namespace {
TensorOptions f64() { return TensorOptions{DType::Float64}; }

// Per-channel statistics of x [N, C, L...] computed by plain loops.
struct ChannelStats {
  std::vector<double> mean, biased_var, unbiased_var;
};
ChannelStats channel_stats(const Tensor& x) {
  const int64_t n = x.size(0), c = x.size(1), l = x.numel() / (n * c);
  std::vector<double> v = x.to_vector<double>();
  ChannelStats s;
  for (int64_t ch = 0; ch < c; ++ch) {
    double sum = 0, sq = 0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < l; ++j) sum += v[(i * c + ch) * l + j];
    const double m = sum / double(n * l);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < l; ++j) sq += (v[(i * c + ch) * l + j] - m) * (v[(i * c + ch) * l + j] - m);
    s.mean.push_back(m);
    s.biased_var.push_back(sq / double(n * l));
    s.unbiased_var.push_back(sq / double(n * l - 1));
  }
  return s;
}

// Expects every consecutive block of `block` values in y to have mean 0 and (biased) variance 1.
void expect_standardized_blocks(const Tensor& y, int64_t block) {
  std::vector<double> v = y.to_vector<double>();
  ASSERT_EQ(v.size() % block, 0u);
  for (size_t b = 0; b < v.size(); b += block) {
    double m = 0, var = 0;
    for (int64_t i = 0; i < block; ++i) m += v[b + i] / double(block);
    for (int64_t i = 0; i < block; ++i) var += (v[b + i] - m) * (v[b + i] - m) / double(block);
    EXPECT_NEAR(m, 0, 1e-12) << "block at " << b;
    EXPECT_NEAR(var, 1, 1e-12) << "block at " << b;
  }
}
}  // namespace

TEST(OpsNorm, BatchNormTrainingMatchesManualStatistics) {
  Tensor x = rand64({3, 2, 2, 2}, -2, 3);
  Tensor w = from_vector(std::vector<double>{1.5, -0.5}, {2}, f64());
  Tensor b = from_vector(std::vector<double>{0.25, 2}, {2}, f64());
  const double eps = 1e-3;
  Tensor y = batch_norm(x, w, b, {}, {}, true, 0.1, eps);
  ChannelStats s = channel_stats(x);
  std::vector<double> xv = x.to_vector<double>(), expected(xv.size());
  const double wv[] = {1.5, -0.5}, bv[] = {0.25, 2};
  for (size_t i = 0; i < xv.size(); ++i) {
    const size_t c = (i / 4) % 2;
    expected[i] = (xv[i] - s.mean[c]) / std::sqrt(s.biased_var[c] + eps) * wv[c] + bv[c];
  }
  expect_values(y, expected, 1e-12, 1e-12);
  // Without γ, β the output is standardized per channel: check channel 0 of a 2-D input.
  Tensor x2 = rand64({5, 3}, 0, 10, 3);
  Tensor y2 = batch_norm(x2, {}, {}, {}, {}, true, 0.1, 0);
  expect_standardized_blocks(transpose(y2, 0, 1), 5);
  // Float32 takes its statistics in double: as close to float64's as float32 rounds.
  Tensor y32 = batch_norm(x.to(DType::Float32), w.to(DType::Float32), b.to(DType::Float32), {}, {}, true, 0.1, eps);
  EXPECT_EQ(y32.dtype(), DType::Float32);
  expect_tensors_near(y32.to(DType::Float64), y, 1e-6, 1e-6);
  expect_error([&] { batch_norm(x, w, b, {}, {}, true, 0.1, -1); }, {"batch_norm", "eps", "-1"});
}

TEST(OpsNorm, BatchNormRunningStatisticsFollowPyTorch) {
  const double momentum = 0.3;
  Tensor rm = zeros({2}, f64()), rv = ones({2}, f64());
  Tensor x1 = rand64({4, 2, 3}, -1, 2, 21), x2 = rand64({4, 2, 3}, 0, 5, 22);
  x1.requires_grad_();  // the update must happen off the tape even while x records
  batch_norm(x1, {}, {}, rm, rv, true, momentum);
  batch_norm(x2, {}, {}, rm, rv, true, momentum);
  EXPECT_FALSE(rm.requires_grad());
  EXPECT_FALSE(rv.requires_grad());
  // r ← (1 − m)·r + m·s with the unbiased batch variance, starting from mean 0, var 1.
  ChannelStats s1 = channel_stats(x1), s2 = channel_stats(x2);
  std::vector<double> em, ev;
  for (int c = 0; c < 2; ++c) {
    const double m1 = momentum * s1.mean[c], v1 = (1 - momentum) + momentum * s1.unbiased_var[c];
    em.push_back((1 - momentum) * m1 + momentum * s2.mean[c]);
    ev.push_back((1 - momentum) * v1 + momentum * s2.unbiased_var[c]);
  }
  expect_values(rm, em, 1e-12, 1e-12);
  expect_values(rv, ev, 1e-12, 1e-12);
  // A constant channel's batch variance is 0 up to μ's rounding, never below (the kernel's σ², not one
  // recovered from 1/√(σ² + ε), which could come out negative).
  Tensor rv0 = ones({1}, f64()), rm0 = zeros({1}, f64());
  batch_norm(full({3, 1, 2}, 0.7, f64()), {}, {}, rm0, rv0, true, 1.0);
  EXPECT_GE(rv0.item(), 0.0);
  expect_values(rv0, {0.0}, 1e-30, 0);
  expect_values(rm0, {0.7}, 0, 1e-15);
}

TEST(OpsNorm, BatchNormEvalUsesRunningStatistics) {
  Tensor x = from_vector(std::vector<double>{3, 0, 1, -2}, {2, 2}, f64());
  Tensor rm = from_vector(std::vector<double>{1, -1}, {2}, f64());
  Tensor rv = from_vector(std::vector<double>{4, 0.25}, {2}, f64());
  Tensor w = from_vector(std::vector<double>{2, 1}, {2}, f64());
  Tensor b = from_vector(std::vector<double>{0, 0.5}, {2}, f64());
  // c0: (3 − 1)/2·2 = 2, (1 − 1)/2·2 = 0;  c1: (0 + 1)/0.5 + 0.5 = 2.5, (−2 + 1)/0.5 + 0.5 = −1.5
  expect_values(batch_norm(x, w, b, rm, rv, false, 0.1, 0), {2, 2.5, 0, -1.5});
  expect_values(rm, {1, -1});
  expect_values(rv, {4, 0.25});
  // A single sample is fine in eval mode (no batch statistics are taken).
  Tensor one = from_vector(std::vector<double>{3, 0}, {1, 2}, f64());
  expect_values(batch_norm(one, w, b, rm, rv, false, 0.1, 0), {2, 2.5});
}

TEST(OpsNorm, BatchNormGradients) {
  Tensor w = rand64({3}, 0.5, 2, 31), b = rand64({3}, -1, 1, 32);
  expect_gradients([](const std::vector<Tensor>& in) { return batch_norm(in[0], in[1], in[2], {}, {}, true); },
                   {rand64({2, 3, 2, 2}), w, b});
  // Batch 1 with spatial dims, no affine; 2-D [N, C] input.
  expect_gradients([](const std::vector<Tensor>& in) { return batch_norm(in[0], {}, {}, {}, {}, true); },
                   {rand64({1, 3, 3, 1})});
  expect_gradients([](const std::vector<Tensor>& in) { return batch_norm(in[0], in[1], {}, {}, {}, true); },
                   {rand64({4, 3}), w});
  // Training with running statistics: they change on every call but the output
  // depends only on the batch, so the finite differences still agree.
  Tensor rm = zeros({3}, f64()), rv = ones({3}, f64());
  expect_gradients([&](const std::vector<Tensor>& in) { return batch_norm(in[0], in[1], in[2], rm, rv, true); },
                   {rand64({3, 3, 2}), w, b});
  // γ and β alone (x a constant): the backward kernel writes their sums and no ∂x.
  Tensor xc = rand64({3, 3, 2, 2}, -1, 1, 35);
  expect_gradients([&](const std::vector<Tensor>& in) { return batch_norm(xc, in[0], in[1], {}, {}, true); }, {w, b});
  // Second derivatives (a gradient penalty through a batch-normed critic): the backward recorded through ops.
  expect_second_gradients([](const std::vector<Tensor>& in) { return batch_norm(in[0], in[1], in[2], {}, {}, true); },
                          {rand64({3, 3, 2}, -1, 1, 36), w, b});
  expect_second_gradients([](const std::vector<Tensor>& in) { return batch_norm(in[0], {}, {}, {}, {}, true); },
                          {rand64({4, 2}, -1, 1, 37)});
  // Eval: an affine map of x.
  Tensor erm = rand64({3}, -1, 1, 33), erv = rand64({3}, 0.5, 2, 34);
  expect_gradients([&](const std::vector<Tensor>& in) { return batch_norm(in[0], in[1], in[2], erm, erv, false); },
                   {rand64({2, 3, 2}), w, b});
}

TEST(OpsNorm, GroupNormStandardizesEachGroup) {
  Tensor x = rand64({2, 6, 3}, -3, 5);
  // 3 groups of 2 channels × 3 positions: contiguous blocks of 6 per sample.
  expect_standardized_blocks(group_norm(x, 3, {}, {}, 0), 6);
  expect_standardized_blocks(group_norm(x, 6, {}, {}, 0), 3);  // instance norm
  // One group normalizes each sample over everything: layer norm over [C, L].
  expect_tensors_near(group_norm(x, 1), layer_norm(x, {6, 3}), 1e-12, 1e-12);
  // γ and β act per channel.
  Tensor w = rand64({6}, 0.5, 2, 41), b = rand64({6}, -1, 1, 42);
  Tensor affine = group_norm(x, 3, w, b);
  Tensor manual = group_norm(x, 3) * reshape(w, {1, 6, 1}) + reshape(b, {1, 6, 1});
  expect_tensors_near(affine, manual, 1e-12, 1e-12);
}

TEST(OpsNorm, GroupNormGradients) {
  expect_gradients([](const std::vector<Tensor>& in) { return group_norm(in[0], 2, in[1], in[2]); },
                   {rand64({2, 4, 3}), rand64({4}, 0.5, 2, 43), rand64({4}, -1, 1, 44)});
  expect_gradients([](const std::vector<Tensor>& in) { return group_norm(in[0], 4); }, {rand64({1, 4, 2, 2})});
  expect_gradients([](const std::vector<Tensor>& in) { return group_norm(in[0], 1, in[1]); },
                   {rand64({3, 4}), rand64({4}, 0.5, 2, 45)});
  // Second derivatives: a create_graph sweep records the backward as ops, γ and β included.
  expect_second_gradients([](const std::vector<Tensor>& in) { return group_norm(in[0], 2, in[1], in[2]); },
                          {rand64({2, 4, 3}, -2, 2, 46), rand64({4}, 0.5, 2, 47), rand64({4}, -1, 1, 48)});
  expect_second_gradients([](const std::vector<Tensor>& in) { return group_norm(in[0], 3, in[1]); },
                          {rand64({2, 3, 2, 2}, -2, 2, 49), rand64({3}, 0.5, 2, 50)});
}

// group_norm's one kernel each way: float32 (statistics in double) as close to float64 as float32 rounds, in
// the output and every gradient; an empty batch gives γ and β gradients of zeros; refused inputs.
TEST(OpsNorm, GroupNormFloat32EmptyBatchAndErrors) {
  const std::vector<Tensor> in64{rand64({3, 8, 5, 7}, -4, 9, 67), rand64({8}, 0.5, 2, 68), rand64({8}, -1, 1, 69)};
  auto run = [&](DType dt) {
    std::vector<Tensor> in;
    for (const Tensor& t : in64) in.push_back(t.to(dt).detach().requires_grad_());
    Tensor y = group_norm(in[0], 4, in[1], in[2]);
    backward(sum(y * y * y));
    return std::vector<Tensor>{y.detach(), in[0].grad(), in[1].grad(), in[2].grad()};
  };
  const std::vector<Tensor> want = run(DType::Float64), got = run(DType::Float32);
  for (size_t i = 0; i < want.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(got[i].dtype(), DType::Float32);
    expect_tensors_near(got[i].to(DType::Float64), want[i], 1e-4, 1e-5);
  }
  Tensor w = ones({4}, f64()).requires_grad_(), b = ones({4}, f64()).requires_grad_();
  Tensor y = group_norm(zeros({0, 4, 3}, f64()), 2, w, b);
  EXPECT_EQ(y.shape(), (Shape{0, 4, 3}));
  backward(sum(y));
  expect_values(w.grad(), {0, 0, 0, 0});
  expect_values(b.grad(), {0, 0, 0, 0});
  expect_error([] { group_norm(zeros({2, 4, 0}), 2); }, {"group_norm", "no elements", "[2, 4, 0]"});
  expect_error([] { group_norm(zeros({2, 4, 3}), 2, {}, {}, -1); }, {"group_norm", "eps", "-1"});
  expect_error([] { group_norm(zeros({2, 4, 3}, TensorOptions{DType::Int64}), 2); }, {"group_norm", "int64"});
}

TEST(OpsNorm, LayerNormStandardizesTrailingDims) {
  // x = [1, 2, 3]: μ = 2, σ² = 2/3, x̂ = [−√1.5, 0, √1.5]; then ·[1, 2, 3] + [0, 0, 1].
  Tensor x = from_vector(std::vector<double>{1, 2, 3}, {3}, f64());
  const double r = std::sqrt(1.5);
  expect_values(layer_norm(x, {3}, {}, {}, 0), {-r, 0, r}, 1e-12, 1e-12);
  Tensor w = from_vector(std::vector<double>{1, 2, 3}, {3}, f64());
  Tensor b = from_vector(std::vector<double>{0, 0, 1}, {3}, f64());
  expect_values(layer_norm(x, {3}, w, b, 0), {-r, 0, 3 * r + 1}, 1e-12, 1e-12);
  // Over the last two dims of [2, 3, 4]: blocks of 12; over the last dim: blocks of 4.
  Tensor x3 = rand64({2, 3, 4}, -2, 7);
  expect_standardized_blocks(layer_norm(x3, {3, 4}, {}, {}, 0), 12);
  expect_standardized_blocks(layer_norm(x3, {4}, {}, {}, 0), 4);
  // Float32 runs through the same composition.
  Tensor y32 = layer_norm(x.to(DType::Float32), {3}, {}, {}, 0);
  EXPECT_EQ(y32.dtype(), DType::Float32);
  expect_values(y32, {-r, 0, r}, 1e-6, 1e-6);
}

TEST(OpsNorm, LayerNormGradients) {
  expect_gradients([](const std::vector<Tensor>& in) { return layer_norm(in[0], {3, 4}, in[1], in[2]); },
                   {rand64({2, 3, 4}), rand64({3, 4}, 0.5, 2, 51), rand64({3, 4}, -1, 1, 52)});
  expect_gradients([](const std::vector<Tensor>& in) { return layer_norm(in[0], {5}); }, {rand64({5})});
}

// standardize, layer norm's op (group norm's kernels without γ and β): hand values, the statistics of each
// slice, float32 against float64, ε, first and second derivatives by central differences.
TEST(OpsNorm, StandardizeOverTrailingAxes) {
  // Rows [1, 2, 3, 6] and [−1, −1, −1, −1]: μ = 3, σ² = 3.5; a constant row is 0 (its σ² is 0, ε > 0).
  Tensor x = from_vector(std::vector<double>{1, 2, 3, 6, -1, -1, -1, -1}, {2, 4}, f64());
  const double s = 1 / std::sqrt(3.5 + 1e-5);
  expect_values(standardize(x, 1), {-2 * s, -s, 0, 3 * s, 0, 0, 0, 0}, 1e-15, 1e-13);
  expect_values(standardize(x, -1, 0.5), {-2 / 2.0, -1 / 2.0, 0, 3 / 2.0, 0, 0, 0, 0}, 1e-15, 1e-13);
  // From axis 0: the whole tensor, μ = 1, σ² = 46 / 8 (biased, over 8 values).
  const double w = 1 / std::sqrt(5.75);
  expect_values(standardize(x, 0, 0), {0, w, 2 * w, 5 * w, -2 * w, -2 * w, -2 * w, -2 * w}, 1e-15, 1e-13);
  Tensor x4 = rand64({3, 2, 5, 7}, -4, 9, 61);
  expect_standardized_blocks(standardize(x4, 1, 0), 70);
  expect_standardized_blocks(standardize(x4, 2, 0), 35);
  expect_standardized_blocks(standardize(x4, 3, 0), 7);
  // Float32 computes its statistics in double: as close to float64's as float32 rounds.
  Tensor y32 = standardize(x4.to(DType::Float32), 2);
  EXPECT_EQ(y32.dtype(), DType::Float32);
  expect_tensors_near(y32.to(DType::Float64), standardize(x4, 2), 1e-6, 1e-6);
  // An empty batch is fine; empty slices, integers, bad axes and ε are errors.
  EXPECT_EQ(standardize(zeros({0, 3}), 1).shape(), (Shape{0, 3}));
  expect_error([] { standardize(zeros({2, 0}), 1); }, {"standardize", "no elements", "[2, 0]"});
  expect_error([] { standardize(zeros({2, 3}, TensorOptions{DType::Int64}), 1); }, {"standardize", "int64"});
  expect_error([] { standardize(zeros({2, 3}), 2); }, {"standardize"});
  expect_error([] { standardize(zeros({2, 3}), 1, -1); }, {"standardize", "eps", "-1"});
  expect_error([] { standardize(zeros({2, 3}), 1, NAN); }, {"standardize", "eps"});
}

TEST(OpsNorm, StandardizeGradients) {
  for (int64_t axis : {0, 1, 2}) {
    SCOPED_TRACE(axis);
    auto f = [axis](const std::vector<Tensor>& in) { return standardize(in[0], axis); };
    expect_gradients(f, {rand64({3, 4, 5}, -2, 2, 62 + axis)});
    expect_second_gradients(f, {rand64({2, 3, 4}, -2, 2, 65 + axis)});
  }
}

TEST(OpsNorm, RefusesBadShapes) {
  Tensor x = zeros({4, 2, 3}, f64());
  Tensor c2 = ones({2}, f64()), c3 = ones({3}, f64());
  expect_error([] { batch_norm(zeros({5}), {}, {}, {}, {}, true); }, {"batch_norm", "[N, C, ...]", "[5]"});
  expect_error([&] { batch_norm(x, c3, {}, {}, {}, true); }, {"batch_norm", "weight", "[3]", "[2]", "[4, 2, 3]"});
  expect_error([&] { batch_norm(x, {}, c3, {}, {}, true); }, {"batch_norm", "bias", "[3]", "[2]"});
  expect_error([&] { batch_norm(x, {}, {}, c2, c3, true); }, {"batch_norm", "running_var", "[3]", "[2]"});
  expect_error([&] { batch_norm(x, {}, {}, c2, {}, true); }, {"batch_norm", "running_mean and running_var"});
  expect_error([&] { batch_norm(x, {}, {}, {}, {}, false); }, {"batch_norm", "eval", "running", "[4, 2, 3]"});
  expect_error([] { batch_norm(zeros({2, 0, 3}), {}, {}, {}, {}, true); }, {"batch_norm", "no channels", "[2, 0, 3]"});
  expect_error([] { batch_norm(zeros({1, 2}), {}, {}, {}, {}, true); },
               {"batch_norm", "more than one value per channel", "[1, 2]"});
  expect_error([&] { batch_norm(x, ones({2}), {}, {}, {}, true); }, {"batch_norm", "dtype", "float32", "float64"});
  expect_error([] { batch_norm(zeros({2, 2}, TensorOptions{DType::Int64}), {}, {}, {}, {}, true); },
               {"batch_norm", "int64"});

  expect_error([] { group_norm(zeros({2, 4, 3}), 3); }, {"group_norm", "3 groups", "4 channels", "[2, 4, 3]"});
  expect_error([] { group_norm(zeros({2, 4, 3}), 0); }, {"group_norm", "0 groups", "[2, 4, 3]"});
  expect_error([] { group_norm(zeros({4}), 1); }, {"group_norm", "[N, C, ...]", "[4]"});
  expect_error([&] { group_norm(x, 1, c3); }, {"group_norm", "weight", "[3]", "[2]", "[4, 2, 3]"});

  expect_error([] { layer_norm(zeros({2, 4}), {5}); }, {"layer_norm", "[5]", "trailing", "[2, 4]"});
  expect_error([] { layer_norm(zeros({3, 4}), {2, 3, 4}); }, {"layer_norm", "[2, 3, 4]", "[3, 4]"});
  expect_error([] { layer_norm(zeros({3, 4}), {}); }, {"layer_norm", "[]", "[3, 4]"});
  expect_error([] { layer_norm(zeros({2, 3, 4}), {3, 4}, ones({4})); },
               {"layer_norm", "weight", "[4]", "[3, 4]", "[2, 3, 4]"});
}
