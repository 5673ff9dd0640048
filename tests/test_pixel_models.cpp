// The autoregressive image models PixelCNN and PixelRNN (models/likelihood/pixel_net.h):
// their probabilities sum to one over every image of a tiny space, each conditional
// depends on earlier pixels only (derivatives through the engine's grad()), log p(x)
// equals the chain rule computed here in plain C++ from the network's logits, samples
// follow log p, and both models train, evaluate, sample and resume through the driver.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>

#include "models/likelihood/pixel_net.h"
#include "tests/gradcheck.h"
#include "tests/temp_dir.h"
#include "tests/train_fixture.h"
#include "tools/train.h"

using namespace loom;
using namespace loom::testing;
using namespace loom::models::likelihood;
namespace fs = std::filesystem;

namespace {

// The tiny networks the tests use: every kind of layer, at most two of each.
constexpr PixelCnnOptions kTinyCnn{.channels = 4, .blocks = 2};
constexpr PixelCnnOptions kTinyGated{.channels = 4, .blocks = 2, .gated = true};
constexpr PixelRnnOptions kTinyRnn{.hidden = 2, .layers = 2};

models::Config config(int64_t levels) {
  models::Config c;
  c.set("levels", levels).set("lr", 1e-3).set("b1", 0.9).set("b2", 0.999);
  return c;
}

// The kinds of model, and a tiny one of a kind on height × width images, in float64.
const std::vector<std::string> kKinds = {"pixelcnn", "gated pixelcnn", "pixelrnn"};
std::unique_ptr<DensityModel> tiny_model(const std::string& kind, int64_t levels, int64_t height, int64_t width) {
  if (kind == "pixelrnn") return make_pixelrnn_model(config(levels), height, width, kTinyRnn, DType::Float64);
  return make_pixelcnn_model(config(levels), height, width, kind == "pixelcnn" ? kTinyCnn : kTinyGated,
                             DType::Float64);
}

// Every parameter (not the masks) set to N(0, scale²): conditionals far from uniform.
void randomize(nn::Module& net, uint64_t seed, double scale = 0.7) {
  Generator g(seed);
  std::map<std::string, Tensor> state = net.state_dict();
  for (auto& [name, t] : net.named_parameters()) state[name] = randn(t.shape(), {t.dtype()}, &g) * scale;
  net.load_state_dict(state);
}
nn::Module& net_of(DensityModel& m) { return *m.modules().at(0).second; }

// Every binary image of h × w pixels, [2^(h·w), 1, h, w]; image b has pixel i = bit (n−1−i) of b.
Tensor all_binary_images(int64_t h, int64_t w) {
  const int64_t n = h * w;
  std::vector<double> v;
  for (int64_t b = 0; b < (int64_t{1} << n); ++b)
    for (int64_t i = 0; i < n; ++i) v.push_back(static_cast<double>((b >> (n - 1 - i)) & 1));
  return from_vector(v, {int64_t{1} << n, 1, h, w}, TensorOptions{DType::Float64});
}

std::vector<double> vec(const Tensor& t) { return t.detach().to(DType::Float64).to_vector<double>(); }

// ∂⟨pick, net(x)[:, :, i]⟩/∂x for a random pick over the output channels at pixel i:
// [h·w] per output pixel i. Zero exactly where every channel's derivative is zero
// (a random combination of nonzero derivatives is nonzero almost surely).
std::vector<std::vector<double>> input_derivatives(PixelNet& net, const Tensor& x) {
  const int64_t h = x.size(2), w = x.size(3), n = h * w;
  std::vector<std::vector<double>> rows;
  for (int64_t i = 0; i < n; ++i) {
    Tensor xi = x.detach().clone();
    xi.requires_grad_();
    Tensor y = net(xi);
    Tensor pick = zeros(y.shape(), {DType::Float64});
    Tensor weights = rand64({y.size(1)}, 0.5, 1.5, static_cast<uint64_t>(100 + i));
    for (int64_t k = 0; k < y.size(1); ++k) pick.data<double>()[k * n + i] = weights.data<double>()[k];
    rows.push_back(vec(grad({sum(y * pick)}, {xi})[0]));
  }
  return rows;
}

// Every derivative of pixel i's conditional with respect to a pixel j ≥ i is exactly 0.
void expect_autoregressive(PixelNet& net, int64_t h, int64_t w) {
  const std::vector<std::vector<double>> d = input_derivatives(net, rand64({1, 1, h, w}, 0, 1, 3));
  for (int64_t i = 0; i < h * w; ++i) {
    for (int64_t j = i; j < h * w; ++j) EXPECT_EQ(d[i][j], 0.0) << "output pixel " << i << ", input pixel " << j;
    // …and not stricter than it must be: the left neighbour and the one above are seen.
    if (i % w > 0) {
      EXPECT_NE(d[i][i - 1], 0.0) << "output pixel " << i << " misses its left neighbour";
    }
    if (i >= w) {
      EXPECT_NE(d[i][i - w], 0.0) << "output pixel " << i << " misses the pixel above";
    }
  }
}

}  // namespace

TEST(PixelModels, ProbabilitiesOfEvery3x3BinaryImageSumToOne) {
  const Tensor every = all_binary_images(3, 3);
  for (const std::string& kind : kKinds) {
    SCOPED_TRACE(kind);
    auto m = tiny_model(kind, 2, 3, 3);
    randomize(net_of(*m), 1);
    const Tensor lp = m->log_prob(every);
    ASSERT_EQ(lp.shape(), Shape{512});
    EXPECT_EQ(lp.dtype(), DType::Float64);
    EXPECT_NEAR(sum(exp(lp)).item(), 1.0, 1e-12);
    // Far from uniform (a network that ignored its input would sum to one too, trivially).
    EXPECT_GT(max(lp).item() - min(lp).item(), 3.0);
    // Each log p(x) is the chain rule Σ_i log σ(±θ_i) of the network's logits, summed here.
    auto& net = dynamic_cast<PixelNet&>(net_of(*m));
    const std::vector<double> theta = vec(net(every)), x = vec(every), got = vec(lp);
    for (int64_t b = 0; b < 512; ++b) {
      double want = 0;
      for (int64_t i = 0; i < 9; ++i) {
        const double t = theta[b * 9 + i];
        want -= std::log1p(std::exp(x[b * 9 + i] > 0.5 ? -t : t));
      }
      ASSERT_NEAR(got[b], want, 1e-12) << "image " << b;
    }
  }
}

TEST(PixelModels, ConditionalsDependOnlyOnEarlierPixels) {
  manual_seed(4);
  // One masked layer: type A leaves out the centre pixel, type B sees it.
  nn::MaskedConv2d a(1, 1, 3, 'A', 1, false, {DType::Float64}), b(1, 1, 3, 'B', 1, false, {DType::Float64});
  for (auto* layer : {&a, &b}) {
    Tensor x = rand64({1, 1, 3, 3}, 0, 1, 1);
    x.requires_grad_();
    Tensor centre = slice(slice((*layer)(x), 2, 1, 2), 3, 1, 2);
    const std::vector<double> d = vec(grad({sum(centre)}, {x})[0]);
    EXPECT_EQ(d[4], layer == &a ? 0.0 : vec(layer->weight)[4]);
    EXPECT_EQ(d[3], vec(layer->weight)[3]);  // the left neighbour, in both
  }
  // The whole networks, Bernoulli and 256-way heads, non-square images. Wide enough
  // that some ReLU is active at every pixel (else a pixel sees nothing).
  for (int64_t levels : {2, 256}) {
    SCOPED_TRACE(levels);
    PixelCNN cnn(levels, {.channels = 16, .blocks = 2}, 6, 5);
    GatedPixelCNN gated(levels, {.channels = 8, .blocks = 2, .gated = true}, 6, 5);
    PixelRNN rnn(levels, {.hidden = 8, .layers = 2}, 6, 5);
    for (PixelNet* net : std::vector<PixelNet*>{&cnn, &gated, &rnn}) {
      SCOPED_TRACE(net->name());
      net->to(DType::Float64);
      randomize(*net, 2);
      expect_autoregressive(*net, 6, 5);
    }
    // Stacked masked convolutions miss pixels up and to the right (the blind spot):
    // (5, 0) never sees (4, 4), four columns right in the row above. The 7×7 layer
    // reaches three columns, and the 3×3 layers at (5, 0) read row 4 at columns 0 and
    // 1 only, whose features see row 4 only to their left. The gated stacks see every
    // earlier pixel. The Row LSTM carries row 0 to row 5 (the 7×7 layer reaches 3 up).
    const Tensor x = rand64({1, 1, 6, 5}, 0, 1, 5);
    EXPECT_EQ(input_derivatives(cnn, x)[5 * 5 + 0][4 * 5 + 4], 0.0);
    const std::vector<std::vector<double>> dg = input_derivatives(gated, x);
    for (int64_t i = 0; i < 30; ++i)
      for (int64_t j = 0; j < i; ++j) EXPECT_NE(dg[i][j], 0.0) << "gated: output pixel " << i << ", input pixel " << j;
    EXPECT_NE(input_derivatives(rnn, x)[5 * 5 + 2][0 * 5 + 2], 0.0);
  }
}

TEST(PixelModels, EightBitModelsNormaliseAndReportBitsPerDim) {
  // Every 8-bit image of two pixels: Σ p(x) = 1 over all 65536, summed in chunks.
  // Side by side for the convolutional models, one above the other for the Row LSTM
  // (whose recurrence runs down the rows).
  for (const std::string& kind : kKinds) {
    const int64_t h = kind == "pixelrnn" ? 2 : 1, w = 3 - h;
    SCOPED_TRACE(str(kind, " ", h, "×", w));
    auto m = tiny_model(kind, 256, h, w);
    randomize(net_of(*m), 3, 0.3);
    double total = 0;
    for (int64_t first = 0; first < 256; first += 32) {
      std::vector<double> v;
      for (int64_t a = first; a < first + 32; ++a)
        for (int64_t b = 0; b < 256; ++b) v.insert(v.end(), {a / 255.0, b / 255.0});
      NoGrad ng;
      total += sum(exp(m->log_prob(from_vector(v, {32 * 256, 1, h, w}, TensorOptions{DType::Float64})))).item();
    }
    EXPECT_NEAR(total, 1.0, 1e-10);
  }
  // log p(x) of 8-bit 3×4 images is Σ_i (θ_{v_i, i} − log Σ_v e^{θ_{v, i}}) of the
  // logits at each pixel's level v_i = 255·x_i, summed here; the evaluation reports its
  // negative mean in nats and in bits per dimension (nats / (n ln 2), n = 12).
  std::vector<double> pixels;
  Generator g(6);
  for (double u : vec(rand({5 * 12}, {DType::Float64}, &g))) pixels.push_back(std::floor(u * 256) / 255.0);
  pixels[0] = 0;  // both ends of the range
  pixels[1] = 1;
  const Tensor x = from_vector(pixels, {5, 1, 3, 4}, TensorOptions{DType::Float64});
  for (const std::string& kind : kKinds) {
    SCOPED_TRACE(kind);
    auto m = tiny_model(kind, 256, 3, 4);
    randomize(net_of(*m), 7, 0.3);
    const std::vector<double> theta = vec(dynamic_cast<PixelNet&>(net_of(*m))(x));  // [5, 256, 3, 4]
    const std::vector<double> got = vec(m->log_prob(x));
    double nll = 0;
    for (int64_t b = 0; b < 5; ++b) {
      double want = 0;
      for (int64_t i = 0; i < 12; ++i) {
        auto at = [&](int64_t v) { return theta[(b * 256 + v) * 12 + i]; };
        double z = 0;
        for (int64_t v = 0; v < 256; ++v) z += std::exp(at(v));
        want += at(std::lround(pixels[b * 12 + i] * 255)) - std::log(z);
      }
      EXPECT_NEAR(got[b], want, 1e-10) << "image " << b;
      nll -= want / 5;
    }
    NoGrad ng;
    const models::Losses l = loom::testing::evaluate(*m, x, zeros({5}, {DType::Int64}));
    EXPECT_NEAR(l.at("nll"), nll, 1e-10);
    EXPECT_NEAR(l.at("bits_per_dim"), nll / (12 * std::log(2.0)), 1e-12);
    EXPECT_EQ(m->parameter_count(), m->free_parameters());
  }
  // The free parameters are those not masked out: the 7×7 type-A layer keeps 24 of its 49 taps,
  // each 3×3 type-B layer 5 of 9 (for each pair of input and output channels).
  const int64_t c = kTinyCnn.channels, h = c / 2;
  auto m = make_pixelcnn_model(config(256), 3, 4, kTinyCnn);
  EXPECT_EQ(m->free_parameters(), net_of(*m).parameter_count() - 25 * c - kTinyCnn.blocks * 4 * h * h);
}

TEST(PixelModels, SamplesFollowTheModelsDistribution) {
  // 20000 samples of 2×2 binary images: each of the 16 images as often as exp(log p)
  // says, within 4.5 standard errors.
  const Tensor every = all_binary_images(2, 2);
  for (const std::string& kind : kKinds) {
    SCOPED_TRACE(kind);
    auto m = tiny_model(kind, 2, 2, 2);
    randomize(net_of(*m), 8);
    const int64_t n = 20000;
    Generator g(9);
    const Tensor s = m->sample(n, {}, g);
    ASSERT_EQ(s.shape(), (Shape{n, 1, 2, 2}));
    EXPECT_EQ(s.dtype(), DType::Float32);
    const std::vector<double> v = vec(s), p = vec(exp(m->log_prob(every)));
    std::vector<double> count(16, 0);
    for (int64_t b = 0; b < n; ++b) {
      int64_t k = 0;
      for (int64_t i = 0; i < 4; ++i) {
        ASSERT_TRUE(v[b * 4 + i] == 0 || v[b * 4 + i] == 1) << v[b * 4 + i];
        k = 2 * k + static_cast<int64_t>(v[b * 4 + i]);
      }
      count[k] += 1;
    }
    for (int64_t k = 0; k < 16; ++k)
      EXPECT_NEAR(count[k] / n, p[k], 4.5 * std::sqrt(p[k] * (1 - p[k]) / n) + 1e-4) << "image " << k;
  }
  // 8-bit samples: levels k/255, shaped [n, 1, H, W]; the progress hook sees every pixel.
  for (const std::string& kind : kKinds) {
    SCOPED_TRACE(kind);
    auto m = tiny_model(kind, 256, 3, 4);
    auto& net = dynamic_cast<PixelNet&>(net_of(*m));
    std::vector<int64_t> done;
    Generator g(10);
    const Tensor s = net.sample(6, g, [&](int64_t d, int64_t total) {
      EXPECT_EQ(total, 12);
      done.push_back(d);
    });
    ASSERT_EQ(s.shape(), (Shape{6, 1, 3, 4}));
    std::vector<int64_t> want(12);
    for (int64_t i = 0; i < 12; ++i) want[i] = i + 1;
    EXPECT_EQ(done, want);
    std::set<int64_t> levels;
    for (double u : vec(s)) {
      const double l = u * 255;
      ASSERT_NEAR(l, std::round(l), 1e-4);
      ASSERT_TRUE(l >= 0 && l <= 255);
      levels.insert(std::lround(l));
    }
    EXPECT_GT(levels.size(), 10u);  // the default weights spread the 256-way softmax
  }
}

TEST(PixelModels, SamplersKeepEveryLogitAndDraw) {
  // The samplers compute only what a pixel depends on (the CNNs a window of the
  // image, 5 or 6 rows up and 5 columns either side here, which the 9×13 image
  // cuts; the Row LSTM one row from the states of the row above): each pixel's
  // logits must be forward()'s, whatever the later pixels hold, and the samples
  // those of full-image passes with the same uniforms.
  const int64_t h = 9, w = 13, n = 3;
  for (const std::string& kind : kKinds) {
    for (int64_t levels : {2, 256}) {
      SCOPED_TRACE(str(kind, " levels ", levels));
      auto m = tiny_model(kind, levels, h, w);
      auto& net = dynamic_cast<PixelNet&>(net_of(*m));
      randomize(net, 12, 0.5);
      NoGrad ng;
      const Tensor x = rand64({2, 1, h, w}, 0, 1, 13);
      const Tensor full = net(x);
      const std::unique_ptr<PixelNet::Sampler> sampler = net.sampler();
      for (int64_t r = 0; r < h; ++r)
        for (int64_t c = 0; c < w; ++c)
          expect_tensors_near(sampler->logits(x, r, c),
                              reshape(slice(slice(full, 2, r, r + 1), 3, c, c + 1), {2, -1}), 1e-12, 0);
      Generator g(14), g_ref(14);
      const std::vector<double> got = vec(net.sample(n, g));
      const std::vector<double> u = vec(rand({n, h * w}, {DType::Float64}, &g_ref));
      std::vector<double> want(static_cast<size_t>(n * h * w), 0.0), u_at(n);
      for (int64_t i = 0; i < h * w; ++i) {
        const Tensor logits = net(from_vector(want, {n, 1, h, w}, TensorOptions{DType::Float64}));
        const Tensor at = reshape(slice(slice(logits, 2, i / w, i / w + 1), 3, i % w, i % w + 1), {n, -1});
        for (int64_t b = 0; b < n; ++b) u_at[b] = u[b * h * w + i];
        const std::vector<float> v = draw_pixels(at, levels, u_at.data());
        for (int64_t b = 0; b < n; ++b) want[b * h * w + i] = v[b];
      }
      EXPECT_EQ(got, want);
    }
  }
}

TEST(PixelModels, RefuseWhatTheyCannotModel) {
  EXPECT_EQ(error_of([] { make_pixelcnn_model(config(16), 28, 28, kTinyCnn); }), "pixelcnn: --levels must be 2 or 256, got 16");
  EXPECT_EQ(error_of([] { make_pixelrnn_model(config(2), 28, 28, PixelRnnOptions{.hidden = 2, .layers = 0}); }),
            "pixelrnn: hidden and layers must be >= 1, got hidden 2, 0 layers");
  EXPECT_EQ(error_of([] { make_pixelcnn_model(config(2), 28, 28, PixelCnnOptions{.channels = 5, .blocks = 1}); }),
            "pixelcnn: channels must be even and >= 2, blocks >= 0; got 5 channels, 1 blocks");
  auto m = make_pixelcnn_model(config(2), 3, 3, kTinyCnn);
  EXPECT_EQ(error_of([&] { m->log_prob(zeros({2, 1, 3, 4})); }),
            "pixelcnn: expected images of 3×3 pixels, got [2, 1, 3, 4]");
  EXPECT_EQ(error_of([] { pixel_log_likelihood(zeros({2, 1, 3}), zeros({2, 1, 3}), 256); }),
            "pixel_log_likelihood: logits [2, 1, 3] do not fit pixels [2, 1, 3] with 256 levels (expected [2, 256, 3])");
}

namespace {

// 96 images 28×28 with structure to learn: black, one white row (row k mod 28) and
// one grey column in 8-bit (column k mod 28 at 128/255, binarized to 0 or 1).
data::LabeledImages bars(data::Split split) {
  const int64_t n = 96;
  std::vector<float> v(static_cast<size_t>(n * 784), 0.0f);
  const int64_t shift = split == data::Split::Train ? 0 : 5;
  for (int64_t k = 0; k < n; ++k) {
    for (int64_t c = 0; c < 28; ++c) v[k * 784 + ((k + shift) % 28) * 28 + c] = 1.0f;
    for (int64_t r = 0; r < 28; ++r) v[k * 784 + r * 28 + (k * 3 + shift) % 28] = 128.0f / 255.0f;
  }
  std::vector<int64_t> labels(static_cast<size_t>(n));
  for (int64_t k = 0; k < n; ++k) labels[k] = k % 10;
  return {from_vector(v, {n, 1, 28, 28}), from_vector(labels, {n})};
}

// The "nll" of every step in a run's metrics log, in order.
std::vector<double> logged_nll(const std::string& dir) {
  std::ifstream in(dir + "/metrics.jsonl");
  std::vector<double> out;
  for (std::string line; std::getline(in, line);) {
    const size_t at = line.find("\"nll\":");
    if (at != std::string::npos) out.push_back(std::stod(line.substr(at + 6)));
  }
  return out;
}

}  // namespace

TEST(PixelModels, TrainLearnAndResumeBitExactlyThroughTheDriver) {
  TempDir dir;
  struct Case {
    std::string model;
    int64_t levels;
  };
  for (const Case& c : {Case{"pixelcnn", 2}, Case{"pixelcnn", 256}, Case{"pixelrnn", 2}}) {
    SCOPED_TRACE(str(c.model, " levels ", c.levels));
    const std::string out = str(dir.path(), "/", c.model, "_", c.levels);
    auto opts = [&](const std::string& where, int64_t steps) {
      tools::TrainOptions o = tiny_run(c.model, out + where, steps, 96, 3);
      o.load_data = bars;
      o.n_samples = 2;
      o.config.set("levels", c.levels).set("lr", 1e-2);
      // Tiny networks: 8 features and 1 block; a Row LSTM of 4 channels.
      if (c.model == "pixelcnn") o.config.set("channels", 8).set("blocks", 1);
      if (c.model == "pixelrnn") o.config.set("hidden", 4);
      return o;
    };
    // 6 steps straight vs 3, checkpoint, resume to 6 (96 images / 16: one epoch is 6 steps).
    const auto [straight, resumed] = straight_and_resumed(
        [&](const std::string& tag, int64_t steps) { return opts("/" + tag, steps); }, 6,
        [](tools::TrainOptions& rest) { rest.config.options.erase("levels"); });  // stored in the checkpoint
    EXPECT_EQ(resumed.steps, 6);
    const auto a = model_tensors(straight.checkpoint);
    ASSERT_FALSE(a.empty());
    EXPECT_EQ(a, model_tensors(resumed.checkpoint));
    // It learns: the NLL falls at every step (from about 784 ln L nats: p = 1/L per pixel).
    const std::vector<double> nll = logged_nll(out + "/straight");
    ASSERT_EQ(nll.size(), 6u);
    for (size_t k = 1; k < nll.size(); ++k) EXPECT_LT(nll[k], nll[k - 1]) << "step " << k + 1;
    EXPECT_LT(nll.back(), 0.97 * nll.front());
    EXPECT_TRUE(fs::exists(straight.samples));
    // The held-out report: NLL in nats and bits/dim and the free parameters, as the model computes them.
    auto m = tools::load_model(c.model, straight.checkpoint, Device::cpu());
    auto* dm = dynamic_cast<DensityModel*>(m.get());
    ASSERT_NE(dm, nullptr);
    EXPECT_EQ(m->parameter_count(), dm->free_parameters());
    EXPECT_GT(straight.eval.at("nll"), 0);
    EXPECT_NEAR(straight.eval.at("bits_per_dim"), straight.eval.at("nll") / (784 * std::log(2.0)), 1e-9);
    NoGrad ng;
    Generator g(1);
    Tensor test = slice(bars(data::Split::Test).images, 0, 0, 16);
    if (c.levels == 2) test = data::binarize(test, g);
    EXPECT_NEAR(loom::testing::evaluate(*m, test, zeros({16}, {DType::Int64})).at("nll"), -mean(dm->log_prob(test)).item(), 1e-9);
    // sample rebuilds the model from the checkpoint alone.
    tools::sample(c.model, straight.checkpoint, 1, out + "/grid.png", Device::cpu(), 7);
    EXPECT_TRUE(fs::exists(out + "/grid.png"));
  }
  // Options the models do not take are refused by name.
  tools::TrainOptions o = tiny_run("pixelrnn", dir.path() + "/refused", 1, 96, 3);
  o.config.set("fit", "counts");
  try {
    tools::train(o);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "train: --fit does not apply to model 'pixelrnn' (it takes --lr, --b1, --b2, --levels, --hidden, --layers)");
  }
}
