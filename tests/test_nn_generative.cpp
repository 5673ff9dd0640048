// The layers generative models need beyond the basics (autograd/nn/gan_layers.cpp,
// recurrent.cpp, attention.cpp, autograd/ops/norm.cpp): hand-computed
// values, float64 finite differences through expect_gradients, the structural
// properties (PixelCNN's autoregressive mask, frozen states past a sequence's
// length), and the refused inputs.
#include <cmath>

#include "tests/gradcheck.h"

using namespace loom;
using namespace loom::testing;

namespace {
const TensorOptions kF64{DType::Float64};

Tensor vec(std::vector<double> v, Shape s) { return from_vector(v, s, kF64); }
}  // namespace

// ---- instance norm -------------------------------------------------------------------------------

TEST(NnInstanceNorm, NormalizesEachSampleAndChannelOverPixels) {
  // Channel 0: {1, 2, 3, 4}, μ = 2.5, σ² = 1.25. Channel 1: {2, 2, 2, 6}, μ = 3, σ² = 3.
  Tensor x = vec({1, 2, 3, 4, 2, 2, 2, 6}, {1, 2, 2, 2});
  const double a = 1 / std::sqrt(1.25 + 1e-5), b = 1 / std::sqrt(3 + 1e-5);
  expect_values(instance_norm(x), {-1.5 * a, -0.5 * a, 0.5 * a, 1.5 * a, -b, -b, -b, 3 * b}, 1e-12, 0);
  // A second sample is normalized by its own statistics (a batch does not mix).
  Tensor two = concat({x, x * 10.0 + 7.0}, 0);
  expect_tensors_near(slice(instance_norm(two), 0, 1, 2), instance_norm(x * 10.0 + 7.0), 1e-12, 0);
  expect_tensors_near(slice(instance_norm(two), 0, 0, 1), instance_norm(x), 1e-12, 0);
  // γ, β per channel.
  Tensor y = instance_norm(x, vec({2, -1}, {2}), vec({0.5, 3}, {2}));
  expect_values(y, {-3 * a + 0.5, -a + 0.5, a + 0.5, 3 * a + 0.5, b + 3, b + 3, b + 3, -3 * b + 3}, 1e-12, 0);
}

TEST(NnInstanceNorm, ModuleTracksRunningStatisticsAsPyTorch) {
  nn::InstanceNorm2d plain(2);
  EXPECT_TRUE(plain.parameters().empty());
  EXPECT_TRUE(plain.named_buffers().empty());
  nn::InstanceNorm2d m(2, /*affine=*/true, /*track_running_stats=*/true, 0.1, 1e-5, kF64);
  EXPECT_EQ(m.parameters().size(), 2u);
  Tensor x = vec({1, 2, 3, 4, 2, 2, 2, 6}, {1, 2, 2, 2});
  m(x);
  // r ← 0.9 r + 0.1 s, with the per-instance mean and unbiased variance (5/3 and 4).
  expect_values(m.running_mean, {0.25, 0.3}, 1e-12, 0);
  expect_values(m.running_var, {0.9 + 0.1 * 5.0 / 3.0, 0.9 + 0.4}, 1e-12, 0);
  m.eval();
  Tensor y = m(x);
  expect_values(slice(reshape(y, {2, 4}), 0, 0, 1),
                {(1 - 0.25) / std::sqrt(0.9 + 0.5 / 3 + 1e-5), (2 - 0.25) / std::sqrt(0.9 + 0.5 / 3 + 1e-5),
                 (3 - 0.25) / std::sqrt(0.9 + 0.5 / 3 + 1e-5), (4 - 0.25) / std::sqrt(0.9 + 0.5 / 3 + 1e-5)},
                1e-12, 0);
  // Without running statistics, eval still uses the instance's own.
  plain.eval();
  expect_tensors_near(plain(x.to(DType::Float32)), instance_norm(x).to(DType::Float32), 1e-6, 0);
}

TEST(NnInstanceNorm, Gradients) {
  expect_gradients([](const std::vector<Tensor>& in) { return instance_norm(in[0], in[1], in[2]); },
                   {rand64({2, 3, 2, 3}), rand64({3}), rand64({3})});
  expect_gradients([](const std::vector<Tensor>& in) { return instance_norm(in[0]); }, {rand64({1, 2, 5})});
  expect_gradients(
      [](const std::vector<Tensor>& in) {
        return instance_norm(in[0], {}, {}, vec({0.1, -0.2}, {2}), vec({0.5, 2}, {2}), false);
      },
      {rand64({2, 2, 2, 2})});
}

TEST(NnInstanceNorm, RefusesBadInputs) {
  expect_error([] { instance_norm(zeros({2, 3})); }, {"instance_norm", "[N, C, spatial...]", "[2, 3]"});
  expect_error([] { instance_norm(zeros({2, 3, 1, 1})); }, {"instance_norm", "more than one spatial", "[2, 3, 1, 1]"});
  expect_error([] { instance_norm(zeros({2, 3, 2, 2}), ones({2})); }, {"instance_norm", "weight", "[2]", "[3]"});
  expect_error([] { instance_norm(zeros({2, 3, 2, 2}), {}, {}, {}, {}, false); },
               {"instance_norm", "running", "undefined", "[2, 3, 2, 2]"});
  nn::InstanceNorm2d m(3);
  expect_error([&] { m(zeros({2, 4, 2, 2})); }, {"InstanceNorm2d", "[N, 3, H, W]", "[2, 4, 2, 2]"});
}

// ---- ProGAN -------------------------------------------------------------------------------------

TEST(NnProGan, PixelNormDividesByTheRmsOverChannels) {
  // Pixel 0: (3, 4), mean square 12.5. Pixel 1: (1, −1), mean square 1.
  Tensor x = vec({3, 1, 4, -1}, {1, 2, 1, 2});
  const double r = 1 / std::sqrt(12.5 + 1e-8), s = 1 / std::sqrt(1 + 1e-8);
  expect_values(nn::pixel_norm(x), {3 * r, s, 4 * r, -s}, 1e-12, 0);
  expect_gradients([](const std::vector<Tensor>& in) { return nn::pixel_norm(in[0]); }, {rand64({2, 3, 2, 2})});
}

TEST(NnProGan, MinibatchStddevAppendsTheGroupsMeanStd) {
  // Group size 2 over N = 4: groups {0, 2} and {1, 3} (the reshape [G, N/G, ...]).
  // {x0, x2} = {(0, 0), (2, 2)}: per-feature std 1, 1. {x1, x3} = {(1, 3), (5, 7)}: 2, 2.
  Tensor x = vec({0, 0, 1, 3, 2, 2, 5, 7}, {4, 1, 1, 2});
  Tensor y = nn::minibatch_stddev(x, 2);
  EXPECT_EQ(y.shape(), (Shape{4, 2, 1, 2}));
  expect_values(y, {0, 0, 1, 1, 1, 3, 2, 2, 2, 2, 1, 1, 5, 7, 2, 2}, 1e-7, 0);
  // A group larger than the batch takes the whole batch: one value for all.
  Tensor z = nn::minibatch_stddev(vec({1, 3}, {2, 1, 1, 1}), 4);
  expect_values(z, {1, 1, 3, 1}, 1e-7, 0);
  expect_gradients([](const std::vector<Tensor>& in) { return nn::minibatch_stddev(in[0], 2); },
                   {rand64({4, 3, 2, 2})});
  expect_gradients([](const std::vector<Tensor>& in) { return nn::minibatch_stddev(in[0], 4); },
                   {rand64({4, 2, 1, 3})});
  expect_error([] { nn::minibatch_stddev(zeros({6, 1, 2, 2}), 4); },
               {"minibatch_stddev", "batch 6", "multiple of the group size 4", "[6, 1, 2, 2]"});
  expect_error([] { nn::minibatch_stddev(zeros({6, 2}), 2); }, {"minibatch_stddev", "[N, C, H, W]", "[6, 2]"});
}

TEST(NnProGan, EqualizedLayersScaleUnitWeightsByHesConstant) {
  manual_seed(3);
  nn::EqualizedLinear big(400, 300);
  Tensor w = big.weight;
  const double m = mean(w).item(), sd = std::sqrt(var(w).item());
  EXPECT_NEAR(m, 0, 0.01);
  EXPECT_NEAR(sd, 1, 0.01);
  EXPECT_NEAR(big.scale, std::sqrt(2.0 / 400), 1e-15);
  expect_values(big.bias, std::vector<double>(300, 0.0), 0, 0);

  ConvParams p;
  p.padding = {1, 1};
  nn::EqualizedConv2d conv(3, 4, 3, p, true, std::sqrt(2.0), kF64);
  EXPECT_NEAR(conv.scale, std::sqrt(2.0 / 27), 1e-15);
  nn::init::normal_(conv.bias, 0, 1);
  Tensor x = rand64({2, 3, 5, 4});
  expect_tensors_near(conv(x), conv2d(x, conv.weight * conv.scale, conv.bias, p), 1e-12, 0);
  expect_gradients(
      [&](const std::vector<Tensor>& in) {
        conv.weight = in[1];
        return conv(in[0]);
      },
      {x, conv.weight.detach().clone()});
  nn::EqualizedLinear lin(5, 3, true, 1.0, kF64);
  EXPECT_NEAR(lin.scale, 1 / std::sqrt(5.0), 1e-15);
  Tensor v = rand64({4, 5});
  expect_tensors_near(lin(v), matmul(v, transpose(lin.weight, 0, 1)) / std::sqrt(5.0), 1e-12, 0);
  expect_gradients(
      [&](const std::vector<Tensor>& in) {
        lin.weight = in[1];
        return lin(in[0]);
      },
      {v, lin.weight.detach().clone()});
}

// ---- PixelCNN masked convolution -------------------------------------------------------------------

TEST(NnMaskedConv, MasksOfTypesAAndB) {
  nn::MaskedConv2d a(1, 1, 3, 'A'), b(1, 1, 3, 'B');
  expect_values(a.mask, {1, 1, 1, 1, 0, 0, 0, 0, 0});
  expect_values(b.mask, {1, 1, 1, 1, 1, 0, 0, 0, 0});
  // Three colour groups of one channel each: at the centre, out g sees in g' < g (A), ≤ g (B).
  nn::MaskedConv2d ca(3, 3, 1, 'A', 3), cb(3, 3, 1, 'B', 3);
  expect_values(ca.mask, {0, 0, 0, 1, 0, 0, 1, 1, 0});
  expect_values(cb.mask, {1, 0, 0, 1, 1, 0, 1, 1, 1});
  expect_error([] { nn::MaskedConv2d(1, 1, 3, 'C'); }, {"MaskedConv2d", "'A' or 'B'", "'C'"});
  expect_error([] { nn::MaskedConv2d(1, 1, 4, 'A'); }, {"MaskedConv2d", "kernel=4", "odd"});
  expect_error([] { nn::MaskedConv2d(4, 3, 3, 'A', 3); }, {"MaskedConv2d", "3 color groups", "in=4"});
}

TEST(NnMaskedConv, StackIsAutoregressiveInRasterAndColourOrder) {
  // An A layer then two B layers (as PixelCNN stacks them), 3 colour groups of 2
  // channels: output (pixel i, group g) may depend on input pixels j < i, and on
  // pixel i only through groups g' < g; everything else must have zero derivative.
  manual_seed(5);
  const int64_t h = 4, w = 5, groups = 3, c = 6;
  nn::MaskedConv2d l1(groups, c, 5, 'A', groups, true, kF64), l2(c, c, 3, 'B', groups, true, kF64),
      l3(c, groups, 3, 'B', groups, true, kF64);
  auto net = [&](const Tensor& x) { return l3(tanh(l2(tanh(l1(x))))); };
  Tensor x = rand64({1, groups, h, w});
  int allowed_nonzero = 0;
  for (int64_t g = 0; g < groups; ++g)
    for (int64_t i = 0; i < h * w; ++i) {
      Tensor xi = x.detach().clone();
      xi.requires_grad_();
      Tensor y = net(xi);
      Tensor pick = zeros(y.shape(), kF64);
      pick.data<double>()[g * h * w + i] = 1;
      backward(sum(y * pick));
      const std::vector<double> gx = xi.grad().to_vector<double>();
      for (int64_t gi = 0; gi < groups; ++gi)
        for (int64_t j = 0; j < h * w; ++j) {
          const bool may = j < i || (j == i && gi < g);
          const double d = gx[gi * h * w + j];
          if (!may) {
            EXPECT_EQ(d, 0.0) << "output pixel " << i << " group " << g << " input " << j << " group " << gi;
          }
          if (may && d != 0) ++allowed_nonzero;
        }
    }
  EXPECT_GT(allowed_nonzero, 1000);  // the mask is not stricter than it has to be
}

TEST(NnMaskedConv, Gradients) {
  nn::MaskedConv2d m(2, 3, 3, 'B', 1, true, kF64);
  expect_gradients(
      [&](const std::vector<Tensor>& in) {
        m.weight = in[1];
        return m(in[0]);
      },
      {rand64({2, 2, 4, 3}), m.weight.detach().clone()});
  // Masked taps get no gradient.
  Tensor wv = m.weight.detach().clone();
  wv.requires_grad_();
  m.weight = wv;
  backward(sum(m(rand64({2, 2, 4, 3})) * rand64({2, 3, 4, 3}, -1, 1, 2)));
  expect_tensors_near(wv.grad() * (1.0 - m.mask), zeros(wv.shape(), kF64), 0, 0);
}

// ---- recurrent ------------------------------------------------------------------------------------

namespace {
double sig(double v) { return 1 / (1 + std::exp(-v)); }

// Plain-C++ references of one step for batch row b: W rows are gate-major ([G·H, F]).
struct Cell {
  std::vector<double> x, h, c, wih, whh, bih, bhh;
  int64_t f, hid;
  double pre(int64_t row, bool input) const {  // (W x + b)[row] or (W h + b)[row]
    double s = input ? bih[row] : bhh[row];
    if (input)
      for (int64_t k = 0; k < f; ++k) s += wih[row * f + k] * x[k];
    else
      for (int64_t k = 0; k < hid; ++k) s += whh[row * hid + k] * h[k];
    return s;
  }
};
std::vector<double> gru_ref(const Cell& c) {
  std::vector<double> out(c.hid);
  for (int64_t j = 0; j < c.hid; ++j) {
    const double r = sig(c.pre(j, true) + c.pre(j, false));
    const double z = sig(c.pre(c.hid + j, true) + c.pre(c.hid + j, false));
    const double n = std::tanh(c.pre(2 * c.hid + j, true) + r * c.pre(2 * c.hid + j, false));
    out[j] = (1 - z) * n + z * c.h[j];
  }
  return out;
}
std::pair<std::vector<double>, std::vector<double>> lstm_ref(const Cell& c) {
  std::vector<double> hn(c.hid), cn(c.hid);
  for (int64_t j = 0; j < c.hid; ++j) {
    auto g = [&](int64_t k) { return c.pre(k * c.hid + j, true) + c.pre(k * c.hid + j, false); };
    cn[j] = sig(g(1)) * c.c[j] + sig(g(0)) * std::tanh(g(2));
    hn[j] = sig(g(3)) * std::tanh(cn[j]);
  }
  return {hn, cn};
}
std::vector<double> row(const Tensor& t, int64_t b) {
  std::vector<double> v = t.to_vector<double>();
  const int64_t n = t.size(1);
  return {v.begin() + b * n, v.begin() + (b + 1) * n};
}
}  // namespace

TEST(NnRecurrent, CellsMatchAPlainReference) {
  const int64_t batch = 2, f = 3, hid = 4;
  for (int64_t gates : {3, 4}) {
    Tensor x = rand64({batch, f}, -1, 1, 1), h = rand64({batch, hid}, -1, 1, 2), c = rand64({batch, hid}, -1, 1, 3);
    Tensor wih = rand64({gates * hid, f}, -1, 1, 4), whh = rand64({gates * hid, hid}, -1, 1, 5);
    Tensor bih = rand64({gates * hid}, -1, 1, 6), bhh = rand64({gates * hid}, -1, 1, 7);
    for (int64_t b = 0; b < batch; ++b) {
      Cell ref{row(x, b), row(h, b), row(c, b), wih.to_vector<double>(), whh.to_vector<double>(),
               bih.to_vector<double>(), bhh.to_vector<double>(), f, hid};
      if (gates == 3) {
        expect_values(slice(nn::gru_cell(x, h, wih, whh, bih, bhh), 0, b, b + 1), gru_ref(ref), 1e-12, 0);
      } else {
        auto [hn, cn] = nn::lstm_cell(x, h, c, wih, whh, bih, bhh);
        auto [rh, rc] = lstm_ref(ref);
        expect_values(slice(hn, 0, b, b + 1), rh, 1e-12, 0);
        expect_values(slice(cn, 0, b, b + 1), rc, 1e-12, 0);
      }
    }
  }
}

TEST(NnRecurrent, LstmUpdateActsOnEveryPositionOfAFeatureMap) {
  // Gates [B, 4H, W] (a convolutional LSTM's): each position is the cell's update of its own column,
  // c' = σ(f) c + σ(i) tanh(g), h' = σ(o) tanh(c'), computed here element by element.
  const int64_t batch = 2, hid = 3, w = 4;
  Tensor gates = rand64({batch, 4 * hid, w}, -2, 2, 1), c = rand64({batch, hid, w}, -1, 1, 2);
  auto [h2, c2] = nn::lstm_update(gates, c);
  const std::vector<double> g = gates.to_vector<double>(), cv = c.to_vector<double>();
  std::vector<double> want_h, want_c;
  auto sig = [](double v) { return 1 / (1 + std::exp(-v)); };
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t j = 0; j < hid; ++j)
      for (int64_t k = 0; k < w; ++k) {
        auto gate = [&](int64_t q) { return g[(b * 4 * hid + q * hid + j) * w + k]; };
        const double cn = sig(gate(1)) * cv[(b * hid + j) * w + k] + sig(gate(0)) * std::tanh(gate(2));
        want_c.push_back(cn);
        want_h.push_back(sig(gate(3)) * std::tanh(cn));
      }
  expect_values(c2, want_c, 1e-14, 0);
  expect_values(h2, want_h, 1e-14, 0);
  expect_error([] { nn::lstm_update(zeros({2, 8, 5}), zeros({2, 3, 5})); },
               {"lstm_update", "gates [2, 8, 5]", "c [2, 3, 5]", "[2, 12, 5]"});
}

TEST(NnRecurrent, CellGradients) {
  expect_gradients([](const std::vector<Tensor>& in) { return nn::gru_cell(in[0], in[1], in[2], in[3], in[4], in[5]); },
                   {rand64({2, 3}, -1, 1, 1), rand64({2, 4}, -1, 1, 2), rand64({12, 3}, -1, 1, 3),
                    rand64({12, 4}, -1, 1, 4), rand64({12}, -1, 1, 5), rand64({12}, -1, 1, 6)});
  expect_gradients(
      [](const std::vector<Tensor>& in) {
        auto [h, c] = nn::lstm_cell(in[0], in[1], in[2], in[3], in[4], in[5], in[6]);
        return concat({h, c * 0.7}, 1);
      },
      {rand64({2, 3}, -1, 1, 1), rand64({2, 4}, -1, 1, 2), rand64({2, 4}, -1, 1, 8), rand64({16, 3}, -1, 1, 3),
       rand64({16, 4}, -1, 1, 4), rand64({16}, -1, 1, 5), rand64({16}, -1, 1, 6)});
  nn::GRUCell gc(3, 2, false, kF64);
  EXPECT_EQ(gc.parameters().size(), 2u);
  expect_gradients([&](const std::vector<Tensor>& in) { return gc.forward(in[0], in[1]); },
                   {rand64({3, 3}), rand64({3, 2}, -1, 1, 9)});
}

TEST(NnRecurrent, SequenceLayersFreezeStatePastEachLength) {
  manual_seed(11);
  const int64_t batch = 3, t = 4, f = 2, hid = 3;
  nn::GRU gru(f, hid, true, kF64);
  nn::LSTM lstm(f, hid, true, kF64);
  EXPECT_EQ(gru.named_parameters()[0].first, "weight_ih_l0");
  EXPECT_EQ(lstm.weight_ih_l0.shape(), (Shape{4 * hid, f}));
  Tensor x = rand64({batch, t, f});
  Tensor lengths = from_vector(std::vector<int64_t>{4, 2, 0}, {batch});
  nn::RNNOutput g = gru.forward(x, lengths), l = lstm.forward(x, lengths);
  EXPECT_EQ(g.output.shape(), (Shape{batch, t, hid}));
  // Reference: each sequence alone, stepped by the cell for its own length.
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t len = std::vector<int64_t>{4, 2, 0}[b];
    Tensor h = zeros({1, hid}, kF64), hl = zeros({1, hid}, kF64), cl = zeros({1, hid}, kF64);
    for (int64_t s = 0; s < t; ++s) {
      Tensor xs = reshape(slice(slice(x, 0, b, b + 1), 1, s, s + 1), {1, f});
      Tensor go = reshape(slice(slice(g.output, 0, b, b + 1), 1, s, s + 1), {1, hid});
      Tensor lo = reshape(slice(slice(l.output, 0, b, b + 1), 1, s, s + 1), {1, hid});
      if (s < len) {
        h = nn::gru_cell(xs, h, gru.weight_ih_l0, gru.weight_hh_l0, gru.bias_ih_l0, gru.bias_hh_l0);
        std::tie(hl, cl) = nn::lstm_cell(xs, hl, cl, lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0,
                                         lstm.bias_hh_l0);
        expect_tensors_near(go, h, 1e-12, 0);
        expect_tensors_near(lo, hl, 1e-12, 0);
      } else {
        expect_tensors_near(go, zeros({1, hid}, kF64), 0, 0);
        expect_tensors_near(lo, zeros({1, hid}, kF64), 0, 0);
      }
    }
    expect_tensors_near(slice(g.h_n, 0, b, b + 1), h, 1e-12, 0);
    expect_tensors_near(slice(l.h_n, 0, b, b + 1), hl, 1e-12, 0);
    expect_tensors_near(slice(l.c_n, 0, b, b + 1), cl, 1e-12, 0);
  }
  // Without lengths every step is real: the same as lengths = T (to rounding: the
  // two paths may reach OpenBLAS's kernels with differently shaped products).
  expect_tensors_near(gru(x), gru.forward(x, from_vector(std::vector<int64_t>{4, 4, 4}, {batch})).output, 1e-14, 0);
}

TEST(NnRecurrent, SequenceGradients) {
  manual_seed(12);
  nn::GRU gru(2, 3, true, kF64);
  nn::LSTM lstm(2, 2, true, kF64);
  Tensor lengths = from_vector(std::vector<int64_t>{3, 1}, {2});
  expect_gradients(
      [&](const std::vector<Tensor>& in) {
        gru.weight_hh_l0 = in[2];
        nn::RNNOutput o = gru.forward(in[0], lengths, in[1]);
        return concat({reshape(o.output, {2, -1}), o.h_n}, 1);
      },
      {rand64({2, 3, 2}), rand64({2, 3}, -1, 1, 3), gru.weight_hh_l0.detach().clone()});
  expect_gradients(
      [&](const std::vector<Tensor>& in) {
        lstm.weight_ih_l0 = in[1];
        nn::RNNOutput o = lstm.forward(in[0], lengths);
        return concat({reshape(o.output, {2, -1}), o.h_n, o.c_n}, 1);
      },
      {rand64({2, 3, 2}), lstm.weight_ih_l0.detach().clone()});
}

TEST(NnRecurrent, RefusesBadInputs) {
  nn::GRU gru(2, 3);
  expect_error([&] { gru(zeros({2, 3})); }, {"GRU", "[B, T, 2]", "[2, 3]"});
  expect_error([&] { gru.forward(zeros({2, 3, 2}), from_vector(std::vector<int64_t>{1, 4}, {2})); },
               {"GRU", "length 4 at position 1", "[0, 3]"});
  expect_error([&] { gru.forward(zeros({2, 3, 2}), zeros({2})); }, {"GRU", "lengths must be int64 [2]", "float32"});
  expect_error([&] { gru.forward(zeros({2, 3, 2}), {}, zeros({2, 4})); }, {"GRU", "h0 must be [2, 3]", "[2, 4]"});
  expect_error([] { nn::gru_cell(zeros({2, 3}), zeros({2, 4}), zeros({12, 2}), zeros({12, 4})); },
               {"gru_cell", "weight_ih [12, 2]", "[3·H, F]"});
  expect_error([] { nn::lstm_cell(zeros({2, 3}), zeros({2, 4}), zeros({2, 3}), zeros({16, 3}), zeros({16, 4})); },
               {"lstm_cell", "c [2, 3]", "like h [2, 4]"});
}

// ---- attention and embeddings ---------------------------------------------------------------------

TEST(NnAttention, ScaledDotProductKnownValues) {
  // q = (1, 0), keys (1, 0), (0, 1): scores (1/√2, 0), p = e^{1/√2} / (e^{1/√2} + 1).
  Tensor q = vec({1, 0}, {1, 1, 1, 2}), k = vec({1, 0, 0, 1}, {1, 1, 2, 2}), v = vec({1, 2, 3, 4}, {1, 1, 2, 2});
  const double p = 0.6697615493266569;
  expect_values(nn::scaled_dot_product_attention(q, k, v), {p + 3 * (1 - p), 2 * p + 4 * (1 - p)}, 1e-12, 0);
  expect_values(nn::scaled_dot_product_attention(q, k, v, vec({1, 0}, {1, 2})), {1, 2}, 1e-12, 0);
  expect_values(nn::scaled_dot_product_attention(q, k, v, vec({0, 1}, {1, 2})), {3, 4}, 1e-12, 0);
  // Any mask dtype: int64 0/1 works as well.
  expect_values(nn::scaled_dot_product_attention(q, k, v, from_vector(std::vector<int64_t>{0, 1}, {1, 2})), {3, 4},
                1e-12, 0);
  expect_error([&] { nn::scaled_dot_product_attention(q, vec({1, 0, 0}, {1, 1, 1, 3}), v); },
               {"scaled_dot_product_attention", "[1, 1, 1, 2]", "[1, 1, 1, 3]"});
}

TEST(NnAttention, Gradients) {
  Tensor causal = vec({1, 0, 0, 1, 1, 0, 1, 1, 1}, {3, 3});
  expect_gradients(
      [&](const std::vector<Tensor>& in) { return nn::scaled_dot_product_attention(in[0], in[1], in[2], causal); },
      {rand64({2, 2, 3, 4}, -1, 1, 1), rand64({2, 2, 3, 4}, -1, 1, 2), rand64({2, 2, 3, 5}, -1, 1, 3)});
  expect_gradients([](const std::vector<Tensor>& in) { return nn::scaled_dot_product_attention(in[0], in[1], in[2]); },
                   {rand64({1, 3, 4}, -1, 1, 1), rand64({1, 5, 4}, -1, 1, 2), rand64({1, 5, 2}, -1, 1, 3)});
}

TEST(NnAttention, MultiheadMatchesTheFormulaAndHasGradients) {
  manual_seed(13);
  nn::MultiheadAttention one(4, 1, true, kF64);
  nn::init::normal_(one.in_proj_bias, 0, 1);
  Tensor x = rand64({2, 3, 4});
  // One head: softmax(Q Kᵀ/√E) V W_oᵀ + b_o with [Q K V] = x W_inᵀ + b_in.
  Tensor qkv = matmul(x, transpose(one.in_proj_weight, 0, 1)) + one.in_proj_bias;
  std::vector<Tensor> p = chunk(qkv, 3, 2);
  Tensor att = matmul(softmax(matmul(p[0], transpose(p[1], 1, 2)) / 2.0, -1), p[2]);
  expect_tensors_near(one(x), matmul(att, transpose(one.out_proj->weight, 0, 1)) + one.out_proj->bias, 1e-12, 0);
  EXPECT_EQ(one.named_parameters().size(), 4u);  // in_proj_weight, in_proj_bias, out_proj.weight, out_proj.bias

  nn::MultiheadAttention two(4, 2, true, kF64);
  EXPECT_EQ(two(x).shape(), (Shape{2, 3, 4}));
  expect_gradients([&](const std::vector<Tensor>& in) { return two.forward(in[0], in[1], in[1]); },
                   {x, rand64({2, 5, 4}, -1, 1, 4)});
  nn::SelfAttention2d sa(4, 2, 2, kF64);
  expect_gradients([&](const std::vector<Tensor>& in) { return sa(in[0]); }, {rand64({1, 4, 2, 3})});
  expect_error([] { nn::MultiheadAttention(6, 4); }, {"MultiheadAttention", "4 heads", "embed_dim 6"});
}

TEST(NnAttention, SinusoidalEmbeddingClosedForm) {
  // dim 6: h = 3 frequencies 1, 10000^(−1/3), 10000^(−2/3); [sin … | cos …].
  Tensor e = nn::sinusoidal_embedding(from_vector(std::vector<int64_t>{0, 1, 2}, {3}), 6, DType::Float64);
  EXPECT_EQ(e.shape(), (Shape{3, 6}));
  expect_values(e,
                {0, 0, 0, 1, 1, 1,  //
                 0.841470984808, 0.046399223465, 0.002154433023, 0.540302305868, 0.998922976041, 0.999997679206,
                 0.909297426826, 0.092698500779, 0.004308856047, -0.416146836547, 0.995694224124, 0.999990716837},
                1e-11, 0);
  Tensor odd = nn::sinusoidal_embedding(vec({1.0}, {1}), 5);
  EXPECT_EQ(odd.dtype(), DType::Float32);
  expect_values(odd, {0.841470984808, 0.009999833334, 0.540302305868, 0.999950000417, 0}, 1e-6, 0);
  expect_error([] { nn::sinusoidal_embedding(zeros({2, 2}), 4); }, {"sinusoidal_embedding", "1-D", "[2, 2]"});
}
