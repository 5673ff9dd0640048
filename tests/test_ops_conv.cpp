// conv2d and conv_transpose2d: forward against a direct 7-loop convolution written here (the
// independent reference, no im2col), conv_transpose2d against a direct scatter and against the
// adjoint identity <conv2d(x, w), y> = <x, conv_transpose2d(y, w)>, each CPU kernel variant's three
// passes against the same loops (v0, oneDNN, where the build has it), gradients by central
// differences, and every error path.
#include <cmath>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>

#include "kernels/conv.h"
#include "kernels/gemm.h"
#include "kernels/memory.h"
#include "tests/gradcheck.h"

using namespace loom;
using namespace loom::testing;

namespace {

TensorOptions f64() { return TensorOptions{DType::Float64}; }

// Every multiply of a conv2d, x [N, C, H, W] → y [N, O, OH, OW] with weight [O, C/G, kh, kw]:
// visit(n, o, c', c, i, j, a, b, iy, ix) for each tap whose input pixel (iy, ix) is inside x.
template <class Visit>
void for_each_tap(const Shape& xs, const Shape& ws, int64_t oh, int64_t ow, const ConvParams& p, Visit visit) {
  const int64_t N = xs[0], C = xs[1], H = xs[2], W = xs[3], O = ws[0], Cg = ws[1], kh = ws[2], kw = ws[3];
  const int64_t Og = O / p.groups;
  (void)C;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t cg = 0; cg < Cg; ++cg)
        for (int64_t i = 0; i < oh; ++i)
          for (int64_t j = 0; j < ow; ++j)
            for (int64_t a = 0; a < kh; ++a)
              for (int64_t b = 0; b < kw; ++b) {
                const int64_t iy = i * p.stride[0] - p.padding[0] + a * p.dilation[0];
                const int64_t ix = j * p.stride[1] - p.padding[1] + b * p.dilation[1];
                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                visit(n, o, cg, (o / Og) * Cg + cg, i, j, a, b, iy, ix);
              }
}

int64_t conv_out(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d) { return (in + 2 * p - d * (k - 1) - 1) / s + 1; }

// y[n, o, i, j] = b[o] + Σ w[o, c', a, b] · x[n, c, iy, ix], computed in double.
Tensor naive_conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const ConvParams& p) {
  const Shape &xs = x.shape(), &ws = w.shape();
  const int64_t oh = conv_out(xs[2], ws[2], p.stride[0], p.padding[0], p.dilation[0]);
  const int64_t ow = conv_out(xs[3], ws[3], p.stride[1], p.padding[1], p.dilation[1]);
  const int64_t O = ws[0];
  std::vector<double> xv = x.to_vector<double>(), wv = w.to_vector<double>(), y(xs[0] * O * oh * ow, 0.0);
  std::vector<double> bv = bias.defined() ? bias.to_vector<double>() : std::vector<double>(O, 0.0);
  for (int64_t n = 0; n < xs[0]; ++n)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t q = 0; q < oh * ow; ++q) y[(n * O + o) * oh * ow + q] = bv[o];
  for_each_tap(xs, ws, oh, ow, p, [&](int64_t n, int64_t o, int64_t cg, int64_t c, int64_t i, int64_t j, int64_t a,
                                      int64_t b, int64_t iy, int64_t ix) {
    y[((n * O + o) * oh + i) * ow + j] +=
        wv[((o * ws[1] + cg) * ws[2] + a) * ws[3] + b] * xv[((n * xs[1] + c) * xs[2] + iy) * xs[3] + ix];
  });
  return from_vector(y, {xs[0], O, oh, ow}, f64());
}

// conv_transpose2d by scattering: every input pixel x[n, c, i, j] adds x · w[c, o', a, b] to
// y[n, g·O/G + o', i·s − p + a·d, j·s − p + b·d]. Same taps as the conv2d from y's shape to x's,
// with that conv2d's (output, input) = our (input, output).
Tensor naive_conv_transpose2d(const Tensor& x, const Tensor& w, const Tensor& bias, const ConvParams& p) {
  const Shape &xs = x.shape(), &ws = w.shape();
  const int64_t O = ws[1] * p.groups;
  const int64_t oh = (xs[2] - 1) * p.stride[0] - 2 * p.padding[0] + p.dilation[0] * (ws[2] - 1) + p.output_padding[0] + 1;
  const int64_t ow = (xs[3] - 1) * p.stride[1] - 2 * p.padding[1] + p.dilation[1] * (ws[3] - 1) + p.output_padding[1] + 1;
  std::vector<double> xv = x.to_vector<double>(), wv = w.to_vector<double>(), y(xs[0] * O * oh * ow, 0.0);
  std::vector<double> bv = bias.defined() ? bias.to_vector<double>() : std::vector<double>(O, 0.0);
  for (int64_t n = 0; n < xs[0]; ++n)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t q = 0; q < oh * ow; ++q) y[(n * O + o) * oh * ow + q] = bv[o];
  // conv2d direction: input [N, O, oh, ow], weight [C_in, O/G, kh, kw], output x's [H, W].
  for_each_tap({xs[0], O, oh, ow}, ws, xs[2], xs[3], p,
               [&](int64_t n, int64_t c, int64_t og, int64_t o, int64_t i, int64_t j, int64_t a, int64_t b,
                   int64_t iy, int64_t ix) {
                 y[((n * O + o) * oh + iy) * ow + ix] +=
                     xv[((n * xs[1] + c) * xs[2] + i) * xs[3] + j] * wv[((c * ws[1] + og) * ws[2] + a) * ws[3] + b];
               });
  return from_vector(y, {xs[0], O, oh, ow}, f64());
}

// gw[o, c', a, b] = Σ_{n,i,j} gy[n, o, i, j] · x[n, c, iy, ix]
Tensor naive_conv2d_weight_grad(const Tensor& x, const Tensor& gy, const Shape& ws, const ConvParams& p) {
  const Shape &xs = x.shape(), &ys = gy.shape();
  std::vector<double> xv = x.to_vector<double>(), gv = gy.to_vector<double>(), gw(numel(ws), 0.0);
  for_each_tap(xs, ws, ys[2], ys[3], p, [&](int64_t n, int64_t o, int64_t cg, int64_t c, int64_t i, int64_t j,
                                            int64_t a, int64_t b, int64_t iy, int64_t ix) {
    gw[((o * ws[1] + cg) * ws[2] + a) * ws[3] + b] +=
        gv[((n * ys[1] + o) * ys[2] + i) * ys[3] + j] * xv[((n * xs[1] + c) * xs[2] + iy) * xs[3] + ix];
  });
  return from_vector(gw, ws, f64());
}

double dot(const Tensor& a, const Tensor& b) { return sum(a * b).item(); }

struct Case {
  int64_t n, c, o, h, w, kh, kw;
  ConvParams p;
};

// The awkward sizes: batch 1 and 3, odd channels, non-square 5x7 inputs, kernels 1/3/4 (and 2x3),
// strides 1-3, padding 0-2, dilation 1-2, groups 1-3 including depthwise (groups = C = O).
std::vector<Case> awkward_cases() {
  return {
      {1, 1, 1, 5, 7, 3, 3, {}},
      {3, 3, 5, 5, 7, 3, 3, {.padding = {1, 1}}},
      {3, 3, 4, 5, 7, 1, 1, {}},
      {1, 5, 3, 5, 7, 1, 1, {.stride = {2, 3}}},
      {3, 2, 3, 5, 7, 4, 4, {.stride = {2, 2}, .padding = {1, 1}}},
      {1, 3, 5, 7, 5, 4, 4, {.stride = {3, 2}, .padding = {2, 1}}},
      {3, 3, 2, 5, 7, 3, 3, {.padding = {2, 2}, .dilation = {2, 2}}},
      {1, 2, 3, 7, 5, 3, 3, {.stride = {2, 1}, .padding = {0, 2}, .dilation = {1, 2}}},
      {3, 4, 6, 5, 7, 3, 3, {.padding = {1, 1}, .groups = 2}},
      {1, 6, 3, 5, 7, 4, 4, {.stride = {2, 2}, .padding = {1, 2}, .groups = 3}},
      {3, 3, 3, 5, 7, 3, 3, {.stride = {2, 2}, .padding = {1, 1}, .groups = 3}},                  // depthwise
      {1, 3, 3, 5, 7, 3, 3, {.stride = {1, 2}, .padding = {2, 1}, .dilation = {2, 1}, .groups = 3}},  // depthwise
      {3, 3, 6, 5, 7, 2, 3, {.stride = {3, 3}, .padding = {1, 0}, .dilation = {2, 2}, .groups = 3}},
  };
}

std::string describe(const Case& k) {
  return str("x [", k.n, ", ", k.c, ", ", k.h, ", ", k.w, "], w [", k.o, ", ", k.c / k.p.groups, ", ", k.kh, ", ",
             k.kw, "], stride ", k.p.stride[0], "x", k.p.stride[1], ", padding ", k.p.padding[0], "x", k.p.padding[1],
             ", dilation ", k.p.dilation[0], "x", k.p.dilation[1], ", groups ", k.p.groups);
}

// The output_padding under which conv_transpose2d maps y's shape back to x's: conv2d maps s
// consecutive input sizes onto one output size, and output_padding selects among them.
ConvParams transposed_params(const Shape& xs, const Shape& ys, const Shape& ws, ConvParams p) {
  for (int i = 0; i < 2; ++i)
    p.output_padding[i] =
        xs[2 + i] - ((ys[2 + i] - 1) * p.stride[i] - 2 * p.padding[i] + p.dilation[i] * (ws[2 + i] - 1) + 1);
  return p;
}

// Runs CPU kernel variant `variant` (kernels/conv.h) for all three passes on x, w, bias of type `dt` and checks
// each against the direct loops, computed in double on the same (for float32, rounded) values: forward =
// naive_conv2d, backward_data = the scatter (+ a bias over x's channels), backward_weight =
// naive_conv2d_weight_grad. float32 allows its rounding: about 1e-7 relative per term of sums of up to
// a few thousand terms of size 1.
void expect_variant_matches_loops(kernels::ConvVariant variant, DType dt, const Shape& xs, const Shape& ws,
                                  const ConvParams& p, uint64_t seed) {
  SCOPED_TRACE(str(kernels::conv_variant_name(variant, DeviceType::CPU), ", ", dt, ", x ", xs, ", w ", ws));
  const kernels::ConvVariantScope selected(variant);
  const double tol = dt == DType::Float64 ? 1e-11 : 2e-5;
  // Random values in `dt`, and the same values as float64 for the loops.
  auto inputs = [dt](const Shape& shape, uint64_t s) {
    Tensor t = rand64(shape, -1, 1, s).to(dt);
    return std::pair{t, t.to(DType::Float64)};
  };
  const auto [x, x64] = inputs(xs, seed);
  const auto [w, w64] = inputs(ws, seed + 1);
  const auto [b, b64] = inputs({ws[0]}, seed + 2);
  Tensor expected_y = naive_conv2d(x64, w64, b64, p);
  const Shape& ys = expected_y.shape();
  const ConvGeometry g{.batch = xs[0], .in_channels = xs[1], .in_h = xs[2], .in_w = xs[3],
                       .out_channels = ys[1], .out_h = ys[2], .out_w = ys[3],
                       .kernel_h = ws[2], .kernel_w = ws[3],
                       .stride_h = p.stride[0], .stride_w = p.stride[1], .pad_h = p.padding[0], .pad_w = p.padding[1],
                       .dilation_h = p.dilation[0], .dilation_w = p.dilation[1], .groups = p.groups};
  const KernelCtx cpu{};
  // Outputs start as NaN, so an element the kernel fails to write cannot pass.
  Tensor y = full(ys, NAN, TensorOptions{dt});
  kernels::cpu::conv2d_forward(cpu, dt, g, x.data_ptr(), w.data_ptr(), b.data_ptr(), y.data_ptr());
  expect_tensors_near(y, expected_y, tol, tol);
  // Without a bias (a separate oneDNN primitive).
  y = full(ys, NAN, TensorOptions{dt});
  kernels::cpu::conv2d_forward(cpu, dt, g, x.data_ptr(), w.data_ptr(), nullptr, y.data_ptr());
  expect_tensors_near(y, naive_conv2d(x64, w64, {}, p), tol, tol);

  const auto [gy, gy64] = inputs(ys, seed + 3);
  const auto [bx, bx64] = inputs({xs[1]}, seed + 4);
  Tensor gx = full(xs, NAN, TensorOptions{dt});
  kernels::cpu::conv2d_backward_data(cpu, dt, g, gy.data_ptr(), w.data_ptr(), bx.data_ptr(), gx.data_ptr());
  expect_tensors_near(gx, naive_conv_transpose2d(gy64, w64, bx64, transposed_params(xs, ys, ws, p)), tol, tol);

  Tensor gw = full(ws, NAN, TensorOptions{dt});  // overwritten, not accumulated
  kernels::cpu::conv2d_backward_weight(cpu, dt, g, x.data_ptr(), gy.data_ptr(), gw.data_ptr());
  expect_tensors_near(gw, naive_conv2d_weight_grad(x64, gy64, ws, p), 10 * tol, tol);
}

}  // namespace

TEST(OpsConv, Conv2dHandComputed) {
  // x = 1..9 as 3x3, w = [[1, 2], [3, 4]]: y[i, j] = x[i,j] + 2x[i,j+1] + 3x[i+1,j] + 4x[i+1,j+1].
  Tensor x = arange(1, 10, 1, f64()).detach();
  x = reshape(x, {1, 1, 3, 3});
  Tensor w = from_vector(std::vector<double>{1, 2, 3, 4}, {1, 1, 2, 2}, f64());
  Tensor b = from_vector(std::vector<double>{0.5}, {1}, f64());
  expect_values(conv2d(x, w, b), {37.5, 47.5, 67.5, 77.5});
  // Padding 1, stride 2: the four corners of the padded 5x5 input, partly outside x.
  //   (0,0): x00·4 = 4   (0,1): x01·3 + x02·4 = 18   (1,0): x10·2 + x20·4 = 36   (1,1): 77
  expect_values(conv2d(x, w, {}, {.stride = {2, 2}, .padding = {1, 1}}), {4, 18, 36, 77});
}

TEST(OpsConv, ConvTranspose2dHandComputed) {
  // Each input pixel stamps the kernel (all ones) at i·s: stride 2 tiles 2x2 blocks, stride 1 overlaps them.
  Tensor x = from_vector(std::vector<double>{1, 2, 3, 4}, {1, 1, 2, 2}, f64());
  Tensor w = ones({1, 1, 2, 2}, f64());
  expect_values(conv_transpose2d(x, w, {}, {.stride = {2, 2}}),
                {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4});
  expect_values(conv_transpose2d(x, w), {1, 3, 2, 4, 10, 6, 3, 7, 4});
  // output_padding 1 adds a last row and column that no input reaches: only the bias lands there.
  Tensor b = from_vector(std::vector<double>{-1}, {1}, f64());
  expect_values(conv_transpose2d(x, w, b, {.stride = {2, 2}, .output_padding = {1, 1}}),
                {0, 0, 1, 1, -1, 0, 0, 1, 1, -1, 2, 2, 3, 3, -1, 2, 2, 3, 3, -1, -1, -1, -1, -1, -1});
}

TEST(OpsConv, Conv2dMatchesDirectLoops) {
  uint64_t seed = 1;
  for (const Case& k : awkward_cases()) {
    SCOPED_TRACE(describe(k));
    Tensor x = rand64({k.n, k.c, k.h, k.w}, -1, 1, seed++);
    Tensor w = rand64({k.o, k.c / k.p.groups, k.kh, k.kw}, -1, 1, seed++);
    Tensor b = rand64({k.o}, -1, 1, seed++);
    expect_tensors_near(conv2d(x, w, b, k.p), naive_conv2d(x, w, b, k.p), 1e-12, 1e-12);
    expect_tensors_near(conv2d(x, w, {}, k.p), naive_conv2d(x, w, {}, k.p), 1e-12, 1e-12);
    // float32 runs the same code through sgemm: equal to the double reference up to rounding.
    expect_tensors_near(conv2d(x.to(DType::Float32), w.to(DType::Float32), b.to(DType::Float32), k.p),
                        naive_conv2d(x, w, b, k.p), 1e-5, 1e-5);
  }
}

TEST(OpsConv, ConvTranspose2dIsTheAdjointAndMatchesScatter) {
  uint64_t seed = 100;
  for (const Case& k : awkward_cases()) {
    SCOPED_TRACE(describe(k));
    ConvParams p = k.p;
    Tensor x = rand64({k.n, k.c, k.h, k.w}, -1, 1, seed++);
    Tensor w = rand64({k.o, k.c / p.groups, k.kh, k.kw}, -1, 1, seed++);
    Tensor y = conv2d(x, w, {}, p);
    p = transposed_params(x.shape(), y.shape(), w.shape(), p);
    Tensor r = rand64(y.shape(), -1, 1, seed++);
    Tensor xt = conv_transpose2d(r, w, {}, p);
    ASSERT_EQ(xt.shape(), x.shape());
    EXPECT_NEAR(dot(y, r), dot(x, xt), 1e-12 * (1 + std::abs(dot(y, r))));
    Tensor b = rand64({k.c}, -1, 1, seed++);
    expect_tensors_near(conv_transpose2d(r, w, b, p), naive_conv_transpose2d(r, w, b, p), 1e-12, 1e-12);
  }
  // output_padding at or above the stride, allowed because it is below the dilation.
  ConvParams p{.stride = {1, 2}, .dilation = {3, 3}, .output_padding = {2, 2}, .groups = 2};
  Tensor x = rand64({2, 4, 3, 4}, -1, 1, seed++), w = rand64({4, 3, 2, 2}, -1, 1, seed++), b = rand64({6});
  expect_tensors_near(conv_transpose2d(x, w, b, p), naive_conv_transpose2d(x, w, b, p), 1e-12, 1e-12);
}

// The variants and types each CPU conv runs: v1 and v2 in float64 (and so float32: the same templates),
// v0 (oneDNN, float32 only) where the build has it.
std::vector<std::pair<kernels::ConvVariant, DType>> cpu_variants() {
  std::vector<std::pair<kernels::ConvVariant, DType>> v{{kernels::ConvVariant::V1, DType::Float64},
                                                        {kernels::ConvVariant::V2, DType::Float64}};
#ifdef LOOM_HAVE_DNNL
  v.emplace_back(kernels::ConvVariant::V0, DType::Float32);
#endif
  return v;
}

TEST(OpsConv, EveryKernelVariantMatchesDirectLoops) {
  uint64_t seed = 500;
  for (const Case& k : awkward_cases())
    for (const auto& [variant, dt] : cpu_variants()) {
      SCOPED_TRACE(describe(k));
      expect_variant_matches_loops(variant, dt, {k.n, k.c, k.h, k.w}, {k.o, k.c / k.p.groups, k.kh, k.kw}, k.p, seed);
      seed += 10;
    }
}

TEST(OpsConv, KernelVariantsAcrossChunks) {
  // kernels/cpu/conv.cpp works through the batch in chunks of at most kChunkElements = 2^19 scratch
  // elements: per image C·kh·kw·OH·OW of im2col (v1), about C·(H + 2ph)·(W + 2pw) of staged
  // input (v2). Each case here needs between 1/3 and 1/2 of that per image, so its batch of 3
  // runs as two chunks (2 images, then 1) and the weight gradient accumulates across chunks.
  expect_variant_matches_loops(kernels::ConvVariant::V1, DType::Float64, {3, 16, 30, 50}, {2, 16, 3, 3},
                               {.padding = {1, 2}, .dilation = {1, 2}}, 11);
  expect_variant_matches_loops(kernels::ConvVariant::V2, DType::Float64, {3, 64, 51, 52}, {2, 32, 1, 3},
                               {.stride = {2, 1}, .padding = {1, 1}, .dilation = {1, 2}, .groups = 2}, 21);
}

#ifdef LOOM_HAVE_DNNL
// oneDNN (v0) on the shapes loom's models run (kernels/cpu/conv_dnnl.cpp reorders them into its
// blocked layouts, 16 channels a block on AVX-512): DCGAN's 1→64 and 64→128 k4 s2 p1 layers and
// its generator's 128→64 transposed one (that is backward_data), with channel counts that leave a
// partial block, against the loops.
TEST(OpsConv, OneDnnOnModelShapes) {
  expect_variant_matches_loops(kernels::ConvVariant::V0, DType::Float32, {2, 1, 28, 28}, {64, 1, 4, 4},
                               {.stride = {2, 2}, .padding = {1, 1}}, 41);
  expect_variant_matches_loops(kernels::ConvVariant::V0, DType::Float32, {2, 64, 14, 14}, {128, 64, 4, 4},
                               {.stride = {2, 2}, .padding = {1, 1}}, 51);
  expect_variant_matches_loops(kernels::ConvVariant::V0, DType::Float32, {3, 20, 9, 11}, {38, 10, 3, 3},
                               {.stride = {2, 1}, .padding = {1, 1}, .groups = 2}, 61);
}

// For a fixed thread count, oneDNN's results are bitwise reproducible, as loom's resume tests need:
// each pass, run twice (with another geometry's primitives in between), gives the same bits; also with
// two threads (a primitive of its own: the thread count is part of the cache key).
TEST(OpsConv, OneDnnIsBitwiseReproducible) {
  const kernels::ConvVariantScope selected(kernels::ConvVariant::V0);
  auto rand32 = [](const Shape& shape, uint64_t seed) { return rand64(shape, -1, 1, seed).to(DType::Float32); };
  const Tensor x = rand32({4, 64, 14, 14}, 71), w = rand32({128, 64, 4, 4}, 72), b = rand32({128}, 73),
               gy = rand32({4, 128, 7, 7}, 74);
  // y (forward), x's gradient (backward_data) and w's (backward_weight).
  auto passes = [&] {
    Tensor xg = x.detach().clone(), wg = w.detach().clone();
    xg.requires_grad_();
    wg.requires_grad_();
    Tensor y = conv2d(xg, wg, b, {.stride = {2, 2}, .padding = {1, 1}});
    backward(y, gy);
    return std::vector<std::vector<float>>{y.to_vector<float>(), xg.grad().to_vector<float>(),
                                           wg.grad().to_vector<float>()};
  };
  const int threads = kernels::cpu_threads();
  for (int t : {1, 2}) {
    SCOPED_TRACE(str(t, " threads"));
    kernels::set_cpu_threads(t);
    const auto first = passes();
    conv2d(rand32({1, 3, 5, 7}, 76), rand32({5, 3, 3, 3}, 77));
    const auto second = passes();
    for (size_t i = 0; i < first.size(); ++i) EXPECT_TRUE(first[i] == second[i]) << "pass " << i;
  }
  kernels::set_cpu_threads(threads);
}

// oneDNN's layouts and scratchpad are per call, from loom's host allocator and back to it (they are as
// large as the activations: kept per geometry they were most of a U-Net's memory): after a pass only
// its output is left live, and a second pass of the same geometry takes its blocks from the allocator's
// cache, so what the allocator holds from the system (reserved) does not grow.
TEST(OpsConv, OneDnnBuffersArePerCallAndCached) {
  const kernels::ConvVariantScope selected(kernels::ConvVariant::V0);
  const Tensor x = rand64({8, 32, 14, 14}).to(DType::Float32), w = rand64({64, 32, 3, 3}).to(DType::Float32);
  conv2d(x, w, {}, {.padding = {1, 1}});  // creates the primitive and fills the cache's bins
  const kernels::MemoryStats before = kernels::memory_stats(Device::cpu());
  Tensor y = conv2d(x, w, {}, {.padding = {1, 1}});
  const kernels::MemoryStats after = kernels::memory_stats(Device::cpu());
  EXPECT_LE(after.allocated_bytes - before.allocated_bytes, static_cast<size_t>(y.numel()) * sizeof(float) * 5 / 4)
      << "only the output stays live";
  EXPECT_EQ(after.reserved_bytes, before.reserved_bytes) << "the second pass held on to new memory";
}

// An empty batch under v0 as under loom's kernels (EmptyBatch): no output, and a weight gradient of zeros.
TEST(OpsConv, OneDnnEmptyBatch) {
  const kernels::ConvVariantScope selected(kernels::ConvVariant::V0);
  const TensorOptions f32{DType::Float32};
  Tensor w = rand64({3, 2, 3, 3}).to(DType::Float32).detach();
  w.requires_grad_();
  Tensor y = conv2d(zeros({0, 2, 5, 5}, f32), w, rand64({3}).to(DType::Float32), {.padding = {1, 1}});
  EXPECT_EQ(y.shape(), (Shape{0, 3, 5, 5}));
  backward(sum(y));
  expect_values(w.grad(), std::vector<double>(54, 0.0));
  EXPECT_EQ(conv_transpose2d(zeros({0, 3, 2, 2}, f32), w, {}, {.stride = {2, 2}}).shape(), (Shape{0, 2, 5, 5}));
}

// Auto's rule (kernels/cpu/conv.cpp), pass by pass, told apart by the bits: oneDNN (v0) from 16 input channels
// per group; but for a 1x1 conv at stride 1 without padding also forward and for the weights from 3, for the
// data from 8 with 8 or more output channels per group; loom's kernels (v1 at these widths) otherwise, and
// always for float64. Each pass's result under auto
// must equal exactly one of v0's and v1's.
TEST(OpsConv, AutoPicksOneDnnPerPass) {
  using kernels::ConvVariant;
  // y, ∂x and ∂w of a strided conv, as {forward, backward_data, backward_weight}.
  auto passes = [](ConvVariant v, int64_t c, int64_t o, int64_t groups, DType dt, int64_t kernel, int64_t stride) {
    const kernels::ConvVariantScope selected(v);
    Tensor x = rand64({4, c, 17, 16}, -1, 1, 91).to(dt).requires_grad_();
    Tensor w = rand64({o, c / groups, kernel, kernel}, -1, 1, 92).to(dt).requires_grad_();
    Tensor y = conv2d(x, w, {}, {.stride = {stride, stride}, .padding = {kernel / 2, kernel / 2}, .groups = groups});
    backward(sum(y * rand64(y.shape(), -1, 1, 93).to(dt)));
    return std::vector{y.detach().to_vector<double>(), x.grad().to_vector<double>(), w.grad().to_vector<double>()};
  };
  auto picks = [&](int64_t c, int64_t o, int64_t groups, DType dt = DType::Float32, int64_t kernel = 7,
                   int64_t stride = 2) {
    const auto a = passes(ConvVariant::Auto, c, o, groups, dt, kernel, stride),
               v0 = passes(ConvVariant::V0, c, o, groups, DType::Float32, kernel, stride),
               v1 = passes(ConvVariant::V1, c, o, groups, dt, kernel, stride);
    std::string out;
    for (size_t p = 0; p < a.size(); ++p) {
      const bool is0 = dt == DType::Float32 && a[p] == v0[p], is1 = a[p] == v1[p];
      out += std::string(out.empty() ? "" : " ") + (is0 && is1 ? "both" : is0 ? "v0" : is1 ? "v1" : "neither");
    }
    return out;
  };
  EXPECT_EQ(picks(16, 8, 1), "v0 v0 v0");
  EXPECT_EQ(picks(32, 8, 2), "v0 v0 v0");
  EXPECT_EQ(picks(8, 8, 1), "v0 v0 v0");
  EXPECT_EQ(picks(8, 3, 1), "v0 v1 v0");
  EXPECT_EQ(picks(3, 8, 1), "v0 v1 v0");
  EXPECT_EQ(picks(2, 8, 1), "v1 v1 v1");
  EXPECT_EQ(picks(16, 16, 4), "v0 v1 v0");
  EXPECT_EQ(picks(1, 8, 1), "v1 v1 v1");
  EXPECT_EQ(picks(16, 8, 1, DType::Float64), "v1 v1 v1");
  // A 1x1 conv at stride 1: loom's one GEMM below 16 channels. Its forward and data passes sum 8 or 16 products,
  // which oneDNN's kernels may add in loom's order (its AVX-512 code does: "both", the same bits) or not (its AVX2
  // code on an AMD Zen 3 does not); the weights' sums over the batch and pixels always tell them apart. At stride 2
  // the input is staged, and the narrow rule applies. "both" is consistent with either variant.
  auto consistent = [](const std::string& got, const std::string& want) {
    std::istringstream g(got), w(want);
    std::string a, b;
    while (w >> b)
      if (!(g >> a) || (a != b && a != "both")) return false;
    return !(g >> a);
  };
  for (auto [c, stride, want] : {std::tuple<int64_t, int64_t, const char*>{8, 1, "v1 v1 v1"}, {16, 1, "v0 v0 v0"},
                                 {8, 2, "v0 v0 v0"}}) {
    const std::string got = picks(c, 8, 1, DType::Float32, 1, stride);
    EXPECT_TRUE(consistent(got, want)) << c << " channels, stride " << stride << ": " << got << ", want " << want;
    EXPECT_NE(got.substr(got.rfind(' ') + 1), "both") << "the weights' gradient tells v0 and v1 apart";
  }
}

// Through the tape: conv2d and conv_transpose2d in float32 with v0, forward and all gradients, against
// the same functions in float64 on loom's own kernels.
TEST(OpsConv, OneDnnThroughTheTape) {
  const ConvParams pt{.stride = {2, 2}, .padding = {1, 1}, .output_padding = {1, 1}, .groups = 2};
  const ConvParams pc{.stride = {2, 1}, .padding = {1, 1}, .groups = 2};
  const std::vector<Tensor> inputs{rand64({2, 6, 5, 4}, -1, 1, 81), rand64({6, 3, 4, 4}, -1, 1, 82),
                                   rand64({6}, -1, 1, 83), rand64({4, 3, 3, 3}, -1, 1, 84)};
  // x [2, 6, 5, 4] → conv_transpose2d → [2, 6, 11, 9] → conv2d → [2, 4, 6, 9], and the gradients of all four.
  auto run = [&](DType dt) {
    std::vector<Tensor> in;
    for (const Tensor& t : inputs) in.push_back(t.to(dt).detach());
    for (Tensor& t : in) t.requires_grad_();
    Tensor y = conv2d(conv_transpose2d(in[0], in[1], in[2], pt), in[3], {}, pc);
    backward(sum(y * y));
    std::vector<Tensor> out{y.detach()};
    for (const Tensor& t : in) out.push_back(t.grad());
    return out;
  };
  const std::vector<Tensor> expected = run(DType::Float64);
  const kernels::ConvVariantScope selected(kernels::ConvVariant::V0);
  const std::vector<Tensor> got = run(DType::Float32);
  for (size_t i = 0; i < got.size(); ++i) {
    SCOPED_TRACE(str("output ", i));
    expect_tensors_near(got[i].to(DType::Float64), expected[i], 1e-3, 1e-4);
  }
}
#endif

TEST(OpsConv, ShiftedViewsThroughTheTape) {
  // 64 input channels, k4 s2 p1 on 14x14 (DCGAN's second layer, fewer images and outputs): the
  // shape the auto variant runs with shifted views (v2), end to end through conv2d and backward.
  ConvParams p{.stride = {2, 2}, .padding = {1, 1}};
  Tensor x = rand64({2, 64, 14, 14}, -1, 1, 31), w = rand64({8, 64, 4, 4}, -1, 1, 32), b = rand64({8}, -1, 1, 33);
  Tensor xg = x.detach().clone(), wg = w.detach().clone(), bg = b.detach().clone();
  xg.requires_grad_();
  wg.requires_grad_();
  bg.requires_grad_();
  Tensor y = conv2d(xg, wg, bg, p);
  expect_tensors_near(y, naive_conv2d(x, w, b, p), 1e-11, 1e-11);
  Tensor gy = rand64(y.shape(), -1, 1, 34);
  backward(y, gy);
  expect_tensors_near(wg.grad(), naive_conv2d_weight_grad(x, gy, w.shape(), p), 1e-10, 1e-11);
  expect_tensors_near(xg.grad(), naive_conv_transpose2d(gy, w, {}, p), 1e-11, 1e-11);
  expect_tensors_near(bg.grad(), sum(gy, {0, 2, 3}), 1e-12, 1e-12);
}

TEST(OpsConv, Conv2dGradients) {
  const std::vector<std::tuple<Shape, Shape, ConvParams>> cases = {
      {{2, 3, 5, 4}, {2, 3, 3, 3}, {}},
      {{1, 2, 5, 7}, {3, 2, 3, 2}, {.stride = {2, 3}, .padding = {1, 2}}},
      {{2, 2, 6, 5}, {2, 2, 2, 3}, {.padding = {1, 0}, .dilation = {2, 2}}},
      {{1, 4, 5, 5}, {6, 2, 3, 3}, {.stride = {2, 1}, .padding = {1, 1}, .groups = 2}},
      {{2, 3, 4, 5}, {3, 1, 3, 3}, {.padding = {1, 1}, .groups = 3}},  // depthwise
  };
  uint64_t seed = 200;
  for (const auto& [xs, ws, p] : cases) {
    SCOPED_TRACE(str("x ", xs, ", w ", ws));
    Tensor x = rand64(xs, -1, 1, seed++), w = rand64(ws, -1, 1, seed++), b = rand64({ws[0]}, -1, 1, seed++);
    ConvParams pc = p;
    expect_gradients([pc](const std::vector<Tensor>& in) { return conv2d(in[0], in[1], in[2], pc); }, {x, w, b});
  }
}

TEST(OpsConv, ConvTranspose2dGradients) {
  const std::vector<std::tuple<Shape, Shape, ConvParams>> cases = {
      {{2, 3, 3, 4}, {3, 2, 3, 3}, {}},
      {{1, 2, 3, 2}, {2, 3, 3, 2}, {.stride = {2, 3}, .padding = {1, 0}, .output_padding = {1, 2}}},
      {{2, 2, 3, 3}, {2, 2, 2, 3}, {.padding = {1, 1}, .dilation = {2, 2}, .output_padding = {1, 0}}},
      {{1, 4, 3, 3}, {4, 3, 3, 3}, {.stride = {2, 2}, .padding = {1, 1}, .output_padding = {1, 0}, .groups = 2}},
      {{2, 3, 3, 2}, {3, 1, 4, 4}, {.stride = {2, 2}, .padding = {1, 1}, .groups = 3}},  // depthwise
      // output_padding ≥ stride is allowed below the dilation: the extra row gets only the bias.
      {{1, 2, 3, 3}, {2, 2, 2, 2}, {.dilation = {2, 3}, .output_padding = {1, 2}}},
  };
  uint64_t seed = 300;
  for (const auto& [xs, ws, p] : cases) {
    SCOPED_TRACE(str("x ", xs, ", w ", ws));
    Tensor x = rand64(xs, -1, 1, seed++), w = rand64(ws, -1, 1, seed++);
    Tensor b = rand64({ws[1] * p.groups}, -1, 1, seed++);
    ConvParams pc = p;
    expect_gradients([pc](const std::vector<Tensor>& in) { return conv_transpose2d(in[0], in[1], in[2], pc); },
                     {x, w, b});
  }
}

TEST(OpsConv, OnlyNeededGradientsAreComputed) {
  Tensor x = rand64({1, 2, 4, 4}, -1, 1, 1), w = rand64({3, 2, 3, 3}, -1, 1, 2), b = rand64({3}, -1, 1, 3);
  w.requires_grad_();
  backward(sum(conv2d(x, w, b)));
  EXPECT_TRUE(w.grad().defined());
  EXPECT_FALSE(x.grad().defined());
  EXPECT_FALSE(b.grad().defined());
  // Without any input requiring grad nothing is recorded.
  Tensor x2 = rand64({1, 3, 2, 2}, -1, 1, 4);
  size_t before = tape_size();
  Tensor y = conv_transpose2d(x2, rand64({3, 1, 2, 2}, -1, 1, 5));
  EXPECT_FALSE(y.requires_grad());
  EXPECT_EQ(tape_size(), before);
}

TEST(OpsConv, EmptyBatch) {
  // N = 0 is a valid batch: empty outputs, and a weight gradient of exactly zero (not garbage).
  Tensor x = zeros({0, 2, 5, 5}, f64()), w = rand64({3, 2, 3, 3}), b = rand64({3});
  w.requires_grad_();
  Tensor y = conv2d(x, w, b, {.padding = {1, 1}});
  EXPECT_EQ(y.shape(), (Shape{0, 3, 5, 5}));
  backward(sum(y));
  expect_values(w.grad(), std::vector<double>(54, 0.0));
  EXPECT_EQ(conv_transpose2d(zeros({0, 3, 2, 2}, f64()), w, {}, {.stride = {2, 2}}).shape(), (Shape{0, 2, 5, 5}));
}

TEST(OpsConv, Conv2dErrors) {
  Tensor x = rand64({2, 4, 5, 5}), w = rand64({6, 4, 3, 3}), b = rand64({6});
  expect_error([&] { conv2d(rand64({4, 5, 5}), w); }, {"conv2d", "4-D", "[4, 5, 5]"});
  expect_error([&] { conv2d(x, rand64({6, 4, 3})); }, {"conv2d", "weight", "[6, 4, 3]"});
  expect_error([&] { conv2d(x, rand64({6, 3, 3, 3})); }, {"conv2d", "[2, 4, 5, 5]", "[6, 3, 3, 3]", "channels"});
  expect_error([&] { conv2d(x, rand64({6, 2, 3, 3}), {}, {.groups = 3}); }, {"conv2d", "groups = 3", "[2, 4, 5, 5]"});
  expect_error([&] { conv2d(x, rand64({5, 2, 3, 3}), {}, {.groups = 2}); }, {"conv2d", "groups = 2", "[5, 2, 3, 3]"});
  expect_error([&] { conv2d(x, rand64({6, 4, 6, 3})); }, {"conv2d", "non-positive output", "[6, 4, 6, 3]", "[2, 4, 5, 5]"});
  expect_error([&] { conv2d(x, w, {}, {.dilation = {3, 1}}); }, {"conv2d", "non-positive output", "dilated"});
  expect_error([&] { conv2d(x, w, rand64({4})); }, {"conv2d", "bias", "[6]", "[4]"});
  expect_error([&] { conv2d(x, w, rand64({6, 1})); }, {"conv2d", "bias", "[6, 1]"});
  expect_error([&] { conv2d(x, w.to(DType::Float32)); }, {"conv2d", "float32", "float64"});
  expect_error([&] { conv2d(x, w, b.to(DType::Float32)); }, {"conv2d", "float32", "float64"});
  expect_error([&] { conv2d(x, w, {}, {.stride = {0, 1}}); }, {"conv2d", "stride", "[0, 1]"});
  expect_error([&] { conv2d(x, w, {}, {.padding = {-1, 0}}); }, {"conv2d", "padding", "[-1, 0]"});
  expect_error([&] { conv2d(x, w, {}, {.dilation = {1, 0}}); }, {"conv2d", "dilation", "[1, 0]"});
  expect_error([&] { conv2d(x, w, {}, {.groups = 0}); }, {"conv2d", "groups", "0"});
  expect_error([&] { conv2d(x, w, {}, {.output_padding = {1, 0}}); }, {"conv2d", "output_padding", "conv_transpose2d"});
  expect_error([&] { conv2d(rand64({2, 4, 0, 5}), w); }, {"conv2d", "empty", "[2, 4, 0, 5]"});
  expect_error([&] { conv2d(x, rand64({0, 4, 3, 3})); }, {"conv2d", "weight", "empty"});
  expect_error([&] { conv2d(x, Tensor()); }, {"conv2d"});
  expect_error([&] { conv2d(ones({2, 4, 5, 5}, TensorOptions{DType::Int64}), ones({6, 4, 3, 3}, TensorOptions{DType::Int64})); },
               {"conv2d", "int64"});
}

TEST(OpsConv, ConvTranspose2dErrors) {
  Tensor x = rand64({2, 4, 3, 3}), w = rand64({4, 3, 3, 3});
  expect_error([&] { conv_transpose2d(rand64({4, 3, 3}), w); }, {"conv_transpose2d", "4-D", "[4, 3, 3]"});
  expect_error([&] { conv_transpose2d(x, rand64({3, 3, 3, 3})); },
               {"conv_transpose2d", "[2, 4, 3, 3]", "[3, 3, 3, 3]", "channels"});
  expect_error([&] { conv_transpose2d(x, w, {}, {.groups = 3}); }, {"conv_transpose2d", "groups = 3", "[2, 4, 3, 3]"});
  expect_error([&] { conv_transpose2d(x, w, rand64({4})); }, {"conv_transpose2d", "bias", "[3]", "[4]"});
  // With groups = 2 the 3 output channels per group make 6.
  expect_error([&] { conv_transpose2d(x, w, rand64({3}), {.groups = 2}); }, {"conv_transpose2d", "bias", "[6]", "[3]"});
  expect_error([&] { conv_transpose2d(x, w, {}, {.stride = {2, 2}, .output_padding = {2, 0}}); },
               {"conv_transpose2d", "output_padding", "[2, 0]", "stride", "dilation"});
  expect_error([&] { conv_transpose2d(x, w, {}, {.output_padding = {0, -1}}); },
               {"conv_transpose2d", "output_padding", "[0, -1]"});
  expect_error([&] { conv_transpose2d(rand64({1, 4, 1, 1}), w, {}, {.padding = {2, 2}}); },
               {"conv_transpose2d", "non-positive output size", "[1, 4, 1, 1]"});
  expect_error([&] { conv_transpose2d(x, w.to(DType::Float32)); }, {"conv_transpose2d", "float32", "float64"});
  expect_error([&] { conv_transpose2d(x, w, {}, {.stride = {1, -2}}); }, {"conv_transpose2d", "stride", "[1, -2]"});
}

// The variant selector (kernels/conv.h) is in every build and applies to both backends; asking for v0
// (cuDNN) where there is none, or running a CPU conv with v0 selected, is an error, never a silent fallback.
TEST(OpsConv, ConvVariantSelector) {
  using kernels::ConvVariant;
  const ConvVariant initial = kernels::conv_variant();  // Auto unless LOOM_CONV says otherwise
  kernels::set_conv_variant(ConvVariant::V1);
  EXPECT_EQ(kernels::conv_variant(), ConvVariant::V1);
  {
    const kernels::ConvVariantScope scope(ConvVariant::V2);
    EXPECT_EQ(kernels::conv_variant(), ConvVariant::V2);
  }
  EXPECT_EQ(kernels::conv_variant(), ConvVariant::V1);
#if !defined(LOOM_HAVE_CUDNN) && !defined(LOOM_HAVE_DNNL)
  expect_error([] { kernels::set_conv_variant(ConvVariant::V0); }, {"conv", "v0", "oneDNN", "cuDNN", "has neither"});
  EXPECT_EQ(kernels::conv_variant(), ConvVariant::V1);
#elif !defined(LOOM_HAVE_DNNL)  // v0 exists for CUDA only
  {
    const kernels::ConvVariantScope scope(ConvVariant::V0);
    expect_error([] { conv2d(rand64({1, 1, 3, 3}).to(DType::Float32), rand64({1, 1, 2, 2}).to(DType::Float32)); },
                 {"conv", "CPU", "v0", "no oneDNN"});
  }
#else  // oneDNN is float32 only: float64 under v0 is an error, not a silent switch to loom's kernels
  {
    const kernels::ConvVariantScope scope(ConvVariant::V0);
    expect_error([] { conv2d(rand64({1, 1, 3, 3}), rand64({1, 1, 2, 2})); },
                 {"conv", "CPU", "v0", "oneDNN", "float32 only", "float64"});
    expect_values(conv2d(ones({1, 1, 3, 3}), ones({1, 1, 2, 2})).to(DType::Float64), {4, 4, 4, 4});
  }
#endif
  EXPECT_EQ(kernels::parse_conv_variant("auto"), ConvVariant::Auto);
  EXPECT_EQ(kernels::parse_conv_variant("v0"), ConvVariant::V0);
  EXPECT_EQ(kernels::parse_conv_variant("1"), ConvVariant::V1);
  EXPECT_EQ(kernels::parse_conv_variant("v2"), ConvVariant::V2);
  expect_error([] { kernels::parse_conv_variant("cudnn"); }, {"LOOM_CONV=cudnn", "auto, v0, v1, v2"});
  kernels::set_conv_variant(ConvVariant::Auto);
  EXPECT_EQ(kernels::conv_variant(), ConvVariant::Auto);
  kernels::set_conv_variant(initial);
}
