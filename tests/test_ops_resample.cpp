// Reflect/replicate padding and bilinear resizing (autograd/ops/resample.cpp,
// kernels/cpu/resample.cpp): hand-computed forwards, backward by central
// differences, the adjoint ops' own gradients (double backward), and errors.
#include "tests/gradcheck.h"

using namespace loom;
using namespace loom::testing;

namespace {
Tensor x3x3() { return from_vector(std::vector<double>{1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3}); }

// ⟨A x, y⟩ = ⟨x, Aᵀ y⟩ for random x, y: the two ops are adjoint.
void expect_adjoint(const std::function<Tensor(const Tensor&)>& a, const std::function<Tensor(const Tensor&)>& at,
                    const Shape& xs) {
  Tensor x = rand64(xs, -1, 1, 3);
  Tensor ax = a(x);
  Tensor y = rand64(ax.shape(), -1, 1, 4);
  EXPECT_NEAR(sum(ax * y).item(), sum(x * at(y)).item(), 1e-12);
}
}  // namespace

TEST(OpsResample, ReflectPadKnownValues) {
  // F.pad(x, (2, 1, 1, 2), mode="reflect") of [[1,2,3],[4,5,6],[7,8,9]]: rows −1..4
  // read 1,0,1,2,1,0 and columns −2..3 read 2,1,0,1,2,1.
  Tensor y = pad2d(x3x3(), {2, 1, 1, 2}, PadMode::Reflect);
  EXPECT_EQ(y.shape(), (Shape{1, 1, 6, 6}));
  expect_values(y, {6, 5, 4, 5, 6, 5,  //
                    3, 2, 1, 2, 3, 2,  //
                    6, 5, 4, 5, 6, 5,  //
                    9, 8, 7, 8, 9, 8,  //
                    6, 5, 4, 5, 6, 5,  //
                    3, 2, 1, 2, 3, 2});
}

TEST(OpsResample, ReplicatePadKnownValues) {
  Tensor y = pad2d(x3x3(), {2, 1, 1, 2}, PadMode::Replicate);
  EXPECT_EQ(y.shape(), (Shape{1, 1, 6, 6}));
  expect_values(y, {1, 1, 1, 2, 3, 3,  //
                    1, 1, 1, 2, 3, 3,  //
                    4, 4, 4, 5, 6, 6,  //
                    7, 7, 7, 8, 9, 9,  //
                    7, 7, 7, 8, 9, 9,  //
                    7, 7, 7, 8, 9, 9});
  // A 1×1 plane replicates to any size; zero pads are the identity.
  expect_values(pad2d(full({1, 1, 1, 1}, 4.0, TensorOptions{DType::Float64}), {1, 2, 0, 1}, PadMode::Replicate),
                {4, 4, 4, 4, 4, 4, 4, 4});
  expect_tensors_near(pad2d(x3x3(), {0, 0, 0, 0}, PadMode::Reflect), x3x3(), 0, 0);
}

TEST(OpsResample, PadBackwardSumsCopiesIntoSources) {
  // Reflect {1, 1, 0, 0} on one row [a, b, c] gives [b, a, b, c, b]: b is read three times.
  Tensor g = from_vector(std::vector<double>{1, 10, 100, 1000, 10000}, {1, 1, 1, 5});
  expect_values(pad2d_backward(g, {1, 1, 0, 0}, PadMode::Reflect), {10, 1 + 100 + 10000, 1000});
  expect_values(pad2d_backward(g, {1, 1, 0, 0}, PadMode::Replicate), {11, 100, 11000});
}

TEST(OpsResample, PadGradients) {
  for (PadMode m : {PadMode::Reflect, PadMode::Replicate}) {
    for (Pads2d pads : {Pads2d{1, 2, 2, 0}, Pads2d{0, 0, 0, 0}, Pads2d{3, 3, 2, 1}}) {
      SCOPED_TRACE(str(int(m), " ", Shape{pads[0], pads[1], pads[2], pads[3]}));
      expect_gradients([&](const std::vector<Tensor>& in) { return pad2d(in[0], pads, m); }, {rand64({2, 3, 3, 4})});
      // pad2d_backward's own backward is pad2d: the double-backward path.
      const Shape gs{2, 3, 3 + pads[2] + pads[3], 4 + pads[0] + pads[1]};
      expect_gradients([&](const std::vector<Tensor>& in) { return pad2d_backward(in[0], pads, m); }, {rand64(gs)});
      expect_adjoint([&](const Tensor& t) { return pad2d(t, pads, m); },
                     [&](const Tensor& t) { return pad2d_backward(t, pads, m); }, {2, 3, 3, 4});
    }
  }
  // Replicate has no size limit: a pad far larger than the plane.
  expect_gradients([](const std::vector<Tensor>& in) { return pad2d(in[0], {5, 0, 4, 6}, PadMode::Replicate); },
                   {rand64({1, 2, 2, 1})});
}

TEST(OpsResample, PadGradientOfGradientIsRecorded) {
  // The backward of pad2d is the recorded op pad2d_backward: the gradient a tape
  // records through it (as create_graph will) is differentiable again.
  Tensor g = rand64({1, 2, 5, 6});
  g.requires_grad_();
  Tensor gx = pad2d_backward(g, {1, 1, 2, 0}, PadMode::Reflect);
  EXPECT_TRUE(gx.requires_grad());
  Tensor r = rand64(gx.shape(), -1, 1, 9);
  backward(sum(gx * r));
  expect_tensors_near(g.grad(), pad2d(r, {1, 1, 2, 0}, PadMode::Reflect), 1e-12, 0);
}

TEST(OpsResample, PadRefusesBadInputs) {
  Tensor x = zeros({1, 2, 3, 4});
  expect_error([&] { pad2d(x, {4, 0, 0, 0}, PadMode::Reflect); },
               {"pad2d", "reflect", "smaller than the padded dimension", "[4, 0, 0, 0]", "height 3", "width 4",
                "[1, 2, 3, 4]"});
  expect_error([&] { pad2d(x, {0, 0, 0, 3}, PadMode::Reflect); }, {"pad2d", "reflect", "[0, 0, 0, 3]", "height 3"});
  expect_error([&] { pad2d(x, {0, -1, 0, 0}, PadMode::Replicate); }, {"pad2d", "[0, -1, 0, 0]", "non-negative"});
  expect_error([] { pad2d(zeros({2, 3, 4}), {1, 1, 1, 1}, PadMode::Reflect); }, {"pad2d", "4-D", "[2, 3, 4]"});
  expect_error([] { pad2d(zeros({1, 1, 0, 3}), {0, 0, 0, 0}, PadMode::Replicate); },
               {"pad2d", "non-empty", "[1, 1, 0, 3]"});
  expect_error([] { pad2d(zeros({1, 1, 2, 2}, TensorOptions{DType::Int64}), {1, 1, 1, 1}, PadMode::Reflect); },
               {"pad2d", "int64"});
  expect_error([&] { pad2d_backward(x, {2, 2, 0, 0}, PadMode::Replicate); },
               {"pad2d_backward", "non-empty", "[1, 2, 3, 4]"});
  expect_error([&] { pad2d_backward(x, {1, 1, 1, 1}, PadMode::Reflect); },
               {"pad2d_backward", "reflect", "height 1", "width 2"});
}

TEST(OpsResample, BilinearKnownValues) {
  // 2×2 → 4×4, align_corners = false: output i reads source s = (i + ½)/2 − ½ =
  // −¼ (clamped to 0), ¼, ¾, 1¼ (r0 = 1, r1 clamped to 1), so the row weights on
  // (x0, x1) are (1, 0), (¾, ¼), (¼, ¾), (0, 1); likewise columns.
  Tensor x = from_vector(std::vector<double>{1, 2, 3, 4}, {1, 1, 2, 2});
  Tensor y = upsample_bilinear2d(x, 4, 4);
  EXPECT_EQ(y.shape(), (Shape{1, 1, 4, 4}));
  expect_values(y, {1.0, 1.25, 1.75, 2.0,  //
                    1.5, 1.75, 2.25, 2.5,  //
                    2.5, 2.75, 3.25, 3.5,  //
                    3.0, 3.25, 3.75, 4.0},
                1e-12, 0);
  // Same size is the identity; 4 → 2 in one dim averages pairs (source 0.5 and 2.5).
  Tensor z = rand64({2, 3, 3, 5});
  expect_tensors_near(upsample_bilinear2d(z, 3, 5), z, 1e-15, 0);
  Tensor row = from_vector(std::vector<double>{1, 3, 5, 11}, {1, 1, 1, 4});
  expect_values(upsample_bilinear2d(row, 1, 2), {2, 8}, 1e-12, 0);
  // 3 → 2: sources 0.25 and 1.75.
  Tensor col = from_vector(std::vector<double>{0, 4, 8}, {1, 1, 3, 1});
  expect_values(upsample_bilinear2d(col, 2, 1), {1, 7}, 1e-12, 0);
  // The adjoint of the 2×2 → 4×4 map: each input collects its weights, Σ = 16 · 4 / 4.
  expect_values(upsample_bilinear2d_backward(ones({1, 1, 4, 4}, TensorOptions{DType::Float64}), 2, 2),
                {4, 4, 4, 4}, 1e-12, 0);
}

TEST(OpsResample, BilinearGradients) {
  for (Shape out : {Shape{7, 5}, Shape{2, 3}, Shape{4, 1}, Shape{9, 12}}) {
    SCOPED_TRACE(str(out));
    expect_gradients([&](const std::vector<Tensor>& in) { return upsample_bilinear2d(in[0], out[0], out[1]); },
                     {rand64({2, 2, 3, 4})});
    // The adjoint op's own backward (the double-backward path).
    expect_gradients([&](const std::vector<Tensor>& in) { return upsample_bilinear2d_backward(in[0], 3, 4); },
                     {rand64({2, 2, out[0], out[1]})});
    expect_adjoint([&](const Tensor& t) { return upsample_bilinear2d(t, out[0], out[1]); },
                   [&](const Tensor& t) { return upsample_bilinear2d_backward(t, 3, 4); }, {2, 2, 3, 4});
  }
  expect_gradients([](const std::vector<Tensor>& in) { return upsample_bilinear2d(in[0], 3, 2); },
                   {rand64({1, 1, 1, 1})});
  // Extreme ratios: the adjoint's gather must find every output reading an input.
  for (Shape io : {Shape{33, 31, 1, 2}, Shape{1, 1, 5, 7}, Shape{7, 3, 64, 50}, Shape{64, 50, 7, 3},
                   Shape{5, 5, 17, 4}}) {
    SCOPED_TRACE(str(io));
    expect_adjoint([&](const Tensor& t) { return upsample_bilinear2d(t, io[2], io[3]); },
                   [&](const Tensor& t) { return upsample_bilinear2d_backward(t, io[0], io[1]); },
                   {1, 2, io[0], io[1]});
  }
  // An integer scale is the output size in·scale.
  Tensor z = rand64({1, 2, 3, 2});
  expect_tensors_near(upsample_bilinear2d(z, 3), upsample_bilinear2d(z, 9, 6), 0, 0);
}

TEST(OpsResample, BilinearRefusesBadInputs) {
  expect_error([] { upsample_bilinear2d(zeros({1, 1, 2, 2}), 0, 3); },
               {"upsample_bilinear2d", "output size [0, 3]", "[1, 1, 2, 2]"});
  expect_error([] { upsample_bilinear2d(zeros({1, 1, 2, 2}), int64_t{0}); },
               {"upsample_bilinear2d", "scale 0", "[1, 1, 2, 2]"});
  expect_error([] { upsample_bilinear2d(zeros({1, 2, 2}), 4, 4); }, {"upsample_bilinear2d", "4-D", "[1, 2, 2]"});
  expect_error([] { upsample_bilinear2d(zeros({1, 1, 0, 2}), 4, 4); },
               {"upsample_bilinear2d", "empty", "[1, 1, 0, 2]"});
  expect_error([] { upsample_bilinear2d_backward(zeros({1, 1, 2, 2}), 3, -1); },
               {"upsample_bilinear2d_backward", "input size [3, -1]", "[1, 1, 2, 2]"});
}
