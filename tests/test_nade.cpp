// NADE (models/likelihood/nade.cpp), checked against references that do not share
// its code: its probabilities over every 3×3 image sum to one; the engine's
// Jacobian shows each conditional logit independent of the pixels at and after
// it; log p(x) equals the definition evaluated in plain loops, each conditional
// its own O(nH) network; it learns and resumes bit-exactly through the training
// driver; and its ancestral samples follow the probabilities log_prob assigns.
#include <cmath>
#include <filesystem>

#include "models/likelihood/likelihood.h"
#include "tests/binary_images.h"
#include "tests/gradcheck.h"
#include "tests/temp_dir.h"
#include "tests/train_fixture.h"
#include "tools/train.h"

using namespace loom;
using namespace loom::testing;
using models::likelihood::DensityModel;
using models::likelihood::make_nade_model;
using models::likelihood::nade_logits;
namespace fs = std::filesystem;

namespace {

constexpr int64_t kHidden = 500;  // the model's H

models::Config config(double lr = 1e-3) {
  models::Config c;
  c.set("lr", lr).set("b1", 0.9).set("b2", 0.999).set("hidden", kHidden);
  return c;
}

nn::Module& net(DensityModel& m) { return *m.modules().at(0).second; }
// W [H, n], V [n, H], b [n], c [H].
std::map<std::string, Tensor> weights(DensityModel& m) { return net(m).state_dict(); }

// Sets every weight to N(0, scale²) values, in the model's dtype.
void randomize(DensityModel& m, uint64_t seed, double scale) {
  Generator g(seed);
  std::map<std::string, Tensor> state = weights(m);
  for (auto& [name, t] : state) t = randn(t.shape(), {t.dtype()}, &g) * scale;
  net(m).load_state_dict(state);
}

// The float32 model (the registered one) with m's weights rounded to float32.
std::unique_ptr<DensityModel> float32_copy(DensityModel& m, int64_t n) {
  auto m32 = make_nade_model(config(), n);
  std::map<std::string, Tensor> state = weights(m);
  for (auto& [name, t] : state) t = t.to(DType::Float32);
  net(*m32).load_state_dict(state);
  return m32;
}

std::vector<double> vec(const Tensor& t) { return t.to(DType::Float64).to_vector<double>(); }

// log p(x) by the definition (eqs. 6–7), each conditional its own network: h_i =
// σ(c + Σ_{j<i} W_{:,j} x_j) summed afresh for every i (O(n²H) per image, no prefix
// sums), p(x_i = 1 | x_<i) = σ(b_i + V_i · h_i), log σ(±z) taken stably.
struct NaiveNade {
  std::vector<double> W, V, b, c;
  explicit NaiveNade(const std::map<std::string, Tensor>& w)
      : W(vec(w.at("W"))), V(vec(w.at("V"))), b(vec(w.at("b"))), c(vec(w.at("c"))) {}
  double log_prob(const Image& x) const {
    const size_t n = x.size(), h = c.size();
    double lp = 0;
    for (size_t i = 0; i < n; ++i) {
      double z = b[i];
      for (size_t k = 0; k < h; ++k) {
        double a = c[k];
        for (size_t j = 0; j < i; ++j) a += W[k * n + j] * x[j];
        z += V[i * h + k] / (1 + std::exp(-a));
      }
      const double s = x[i] ? z : -z;  // log σ(s)
      lp += s >= 0 ? -std::log1p(std::exp(-s)) : s - std::log1p(std::exp(s));
    }
    return lp;
  }
};

Tensor no_labels(int64_t b) { return zeros({b}, TensorOptions{DType::Int64}); }

}  // namespace

TEST(Nade, ProbabilitiesOfEvery3x3ImageSumToOne) {
  auto m = make_nade_model(config(), 9, DType::Float64);
  randomize(*m, 1, 0.3);
  const Tensor every = as_tensor(all_images(9));
  const Tensor lp = m->log_prob(every);
  EXPECT_EQ(lp.dtype(), DType::Float64);
  EXPECT_EQ(lp.shape(), (Shape{512}));
  EXPECT_NEAR(sum(exp(lp)).item(), 1.0, 1e-6);
  // Far from uniform, so the sum is no accident of tiny weights.
  EXPECT_GT(max(lp).item() - min(lp).item(), 5.0);
  // The registered float32 model sums to one to float32 rounding.
  EXPECT_NEAR(sum(exp(float32_copy(*m, 9)->log_prob(every))).item(), 1.0, 1e-4);
  EXPECT_EQ(m->free_parameters(), 2 * 9 * kHidden + 9 + kHidden);
}

TEST(Nade, EachConditionalDependsOnlyOnThePixelsBeforeIt) {
  const int64_t n = 9;
  auto m = make_nade_model(config(), n, DType::Float64);
  randomize(*m, 2, 0.5);
  const std::map<std::string, Tensor> w = weights(*m);
  auto logits = [&](const Tensor& x) { return nade_logits(x, w.at("W"), w.at("V"), w.at("b"), w.at("c")); };
  // J[i, j] = ∂z_i/∂x_j at a random (non-binary) point: exactly zero on and above
  // the diagonal, where no path leads from x_j to z_i; nonzero below it.
  const Tensor x = rand64({n}, 0, 1, 3);
  const std::vector<double> J =
      vec(jacobian([&](const Tensor& v) { return reshape(logits(reshape(v, {1, n})), {n}); }, x));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      if (j >= i) {
        EXPECT_EQ(J[i * n + j], 0.0) << "z_" << i << " depends on x_" << j;
      } else {
        EXPECT_NE(J[i * n + j], 0.0) << "z_" << i << " ignores x_" << j;
      }
    }
  // And those derivatives are the right ones (central differences, a batch of two).
  expect_gradients([&](const std::vector<Tensor>& in) { return logits(in[0]); }, {rand64({2, n}, 0, 1, 4)});
}

TEST(Nade, LogProbEqualsTheDefinitionEvaluatedNaively) {
  // 3×4 images (a non-square raster given as [B, 1, 3, 4]), random binary pixels.
  const int64_t n = 12, count = 16;
  auto m = make_nade_model(config(), n, DType::Float64);
  randomize(*m, 5, 0.5);
  const NaiveNade naive(weights(*m));
  Generator g(6);
  const Tensor x = bernoulli(full({count, 1, 3, 4}, 0.5), &g);
  const std::vector<double> got = vec(m->log_prob(x)), got32 = vec(float32_copy(*m, n)->log_prob(x));
  const std::vector<float> px = x.to_vector<float>();
  for (int64_t b = 0; b < count; ++b) {
    const Image im(px.begin() + b * n, px.begin() + (b + 1) * n);
    const double want = naive.log_prob(im);
    EXPECT_NEAR(got[b], want, 1e-10) << "image " << b;
    EXPECT_NEAR(got32[b], want, 1e-3) << "image " << b << ", float32";
  }
  expect_error([&] { m->log_prob(zeros({2, 11})); }, {"nade", "12 pixels", "[2, 11]"});
}

TEST(Nade, LearnsAndResumesBitExactlyThroughTheDriver) {
  TempDir dir;
  // 28×28 images with the top half on and the bottom half off. (Noise images would
  // not show learning: their NLL is 784 ln 2 for any parameters, where NADE's
  // near-zero initial weights already are.)
  const auto halves = [](data::Split) {
    const int64_t count = 96;
    std::vector<float> v(count * 784, 0.0f);
    for (int64_t b = 0; b < count; ++b)
      for (int64_t p = 0; p < 392; ++p) v[b * 784 + p] = 1.0f;
    return data::LabeledImages{from_vector(v, {count, 1, 28, 28}), no_labels(count)};
  };
  auto opts = [&](const std::string& where, int64_t steps) {
    tools::TrainOptions o = tiny_run("nade", dir.path() + where, steps, 96, 3);
    o.load_data = halves;
    return o;
  };
  // 6 steps straight vs 3, checkpoint, resume to 6: the same parameters and Adam moments.
  const auto [straight, resumed] = straight_and_resumed([&](const std::string& tag, int64_t steps) { return opts("/" + tag, steps); }, 6);
  EXPECT_EQ(resumed.steps, 6);
  const auto a = model_tensors(straight.checkpoint);
  EXPECT_EQ(a.count("model.nade.W"), 1u);
  EXPECT_EQ(a, model_tensors(resumed.checkpoint));
  EXPECT_TRUE(fs::exists(straight.samples));

  // Learned: the held-out NLL starts at ln 2 nats per pixel and falls well below.
  const Tensor test = slice(halves(data::Split::Test).images, 0, 0, 32);
  const double uniform_nll = 784 * std::log(2.0);
  manual_seed(3);  // the initial weights the driver's run started from
  NoGrad ng;
  EXPECT_NEAR(loom::testing::evaluate(*make_nade_model(config(), 784), test, no_labels(32)).at("nll"), uniform_nll, 1.0);
  EXPECT_LT(straight.eval.at("nll"), 0.5 * uniform_nll);
  EXPECT_NEAR(straight.eval.at("bits_per_dim"), straight.eval.at("nll") / uniform_nll, 1e-9);
  EXPECT_EQ(tools::load_model("nade", straight.checkpoint, Device::cpu())->parameter_count(),
            2 * 784 * kHidden + 784 + kHidden);
  // eval and sample rebuild the model from the checkpoint alone.
  auto m = tools::load_model("nade", straight.checkpoint, Device::cpu());
  auto* dm = dynamic_cast<DensityModel*>(m.get());
  ASSERT_NE(dm, nullptr);
  const models::Losses l = loom::testing::evaluate(*m, test, no_labels(32));
  EXPECT_NEAR(l.at("nll"), -mean(dm->log_prob(test)).item(), 1e-9);
  EXPECT_NEAR(l.at("nll"), straight.eval.at("nll"), 1e-6 * uniform_nll);  // the same held-out images
  tools::sample("nade", straight.checkpoint, 9, dir.path() + "/grid.png", Device::cpu(), 7);
  EXPECT_TRUE(fs::exists(dir.path() + "/grid.png"));
}

TEST(Nade, SamplesAreBinaryImagesOfTheRightShape) {
  for (const auto& [n, shape] : {std::pair<int64_t, Shape>{9, {5, 1, 3, 3}}, {6, {5, 1, 1, 6}}}) {
    SCOPED_TRACE(n);
    auto m = make_nade_model(config(), n);
    randomize(*m, 8, 0.5);
    Generator g(9), again(9);
    const Tensor s = m->sample(5, {}, g);
    EXPECT_EQ(s.shape(), shape);
    EXPECT_EQ(s.dtype(), DType::Float32);
    for (float v : s.to_vector<float>()) EXPECT_TRUE(v == 0.0f || v == 1.0f) << v;
    EXPECT_EQ(m->sample(5, {}, again).to_vector<float>(), s.to_vector<float>()) << "the generator alone decides";
  }
}

TEST(Nade, SampleFrequenciesMatchLogProb) {
  // Ancestral sampling (host loops, incremental a) against the probabilities of
  // log_prob (the engine, prefix sums): every 3×3 image's frequency in N draws
  // lies within 5 binomial standard deviations of its probability.
  auto m = make_nade_model(config(), 9, DType::Float64);
  randomize(*m, 10, 0.3);
  const std::vector<double> p = vec(exp(m->log_prob(as_tensor(all_images(9)))));
  const int64_t draws = 20000;
  Generator g(11);
  const std::vector<float> s = m->sample(draws, {}, g).to_vector<float>();
  std::vector<double> freq(512, 0);
  for (int64_t d = 0; d < draws; ++d) {
    int index = 0;
    for (int i = 0; i < 9; ++i) index = index * 2 + (s[d * 9 + i] > 0.5f ? 1 : 0);  // all_images' order
    freq[index] += 1.0 / draws;
  }
  // The total variation distance too, against its expectation for a correct sampler,
  // ½ Σ_k E|f_k − p_k| ≈ ½ Σ_k √(2 p_k (1 − p_k) / (π N)) (the normal approximation).
  double tv = 0, expected_tv = 0;
  for (int k = 0; k < 512; ++k) {
    const double sd = std::sqrt(p[k] * (1 - p[k]) / draws);
    EXPECT_NEAR(freq[k], p[k], 5 * sd + 1e-12) << "image " << k;
    tv += std::abs(freq[k] - p[k]) / 2;
    expected_tv += sd * std::sqrt(2 / M_PI) / 2;
  }
  EXPECT_LT(tv, 1.5 * expected_tv);  // 1.17 here; a sampler that always adds W_{:,0} gives 1.74
}

TEST(Nade, TrainedOnAnImageAndItsNegativeSamplesBoth) {
  // Half the data is a checkerboard A, half its negative: pixel 0 is a fair coin and
  // decides every later pixel, which only the dependence through h_i can express.
  const Image a = {1, 0, 1, 0, 1, 0, 1, 0, 1}, not_a = {0, 1, 0, 1, 0, 1, 0, 1, 0};
  std::vector<Image> data;
  for (int k = 0; k < 4; ++k) data.insert(data.end(), {a, not_a});
  const Tensor x = as_tensor(data);
  manual_seed(12);
  auto m = make_nade_model(config(3e-2), 9);
  for (int step = 0; step < 200; ++step) loom::testing::train_step(*m, x, no_labels(8));
  NoGrad ng;
  const std::vector<double> p = vec(exp(m->log_prob(as_tensor({a, not_a}))));
  EXPECT_GT(p[0] + p[1], 0.99);
  EXPECT_NEAR(p[0], 0.5, 0.1);
  const int64_t draws = 400;
  Generator g(13);
  const std::vector<float> s = m->sample(draws, {}, g).to_vector<float>();
  int64_t as = 0, negatives = 0;
  for (int64_t d = 0; d < draws; ++d) {
    const Image im(s.begin() + d * 9, s.begin() + (d + 1) * 9);
    as += im == a;
    negatives += im == not_a;
  }
  EXPECT_GE(as + negatives, draws * 98 / 100);
  EXPECT_NEAR(static_cast<double>(as) / draws, p[0], 0.1);
}
