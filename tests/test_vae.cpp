// The VAE (models/vae.h) against references computed apart from the engine: the
// order of the bounds (ELBO ≤ IWAE_k ≤ IWAE_k′ ≤ log p(x)); the closed-form KL
// against its Monte-Carlo estimate; the importance-sampled log p(x) against a
// quadrature of p(x|z) p(z) over a one-dimensional latent; every training loss,
// and the gradient Burda et al. eq. 14 gives, recomputed in plain float64 C++
// from the model's weights and the same draws; and the convolutional variant
// trained, resumed and evaluated through the driver.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "models/vae/vae.h"
#include "tests/gradcheck.h"
#include "tests/temp_dir.h"
#include "tests/train_fixture.h"

using namespace loom;
using namespace loom::testing;
using models::Vae;
using models::VaeArch;

namespace {

using Vec = std::vector<double>;
constexpr int64_t kSide = 28, kPixels = kSide * kSide;
const double kLog2Pi = std::log(2 * M_PI);

// A config with latent_dim set (the VAE's defaults for the rest).
models::Config with_latent(int64_t latent) {
  models::Config c;
  c.set("latent_dim", latent);
  return c;
}

// n images [n, 1, 28, 28] in {0, 1}, each a full-width bar 7 rows high whose top row (0 .. 21)
// comes from seed: data with one degree of freedom, which a one-dimensional latent can model
// with a unimodal posterior.
Tensor bars(int64_t n, uint64_t seed) {
  Generator g(seed);
  const std::vector<float> u = rand({n}, {}, &g).to_vector<float>();
  std::vector<float> px(static_cast<size_t>(n * kPixels), 0.0f);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t top = std::min<int64_t>(21, static_cast<int64_t>(u[static_cast<size_t>(i)] * 22));
    std::fill(px.begin() + i * kPixels + top * kSide, px.begin() + i * kPixels + (top + 7) * kSide, 1.0f);
  }
  return from_vector(px, {n, 1, kSide, kSide});
}

// `steps` Adam steps on consecutive batches of `batch` images of data (a multiple of batch).
void fit(models::Model& m, const Tensor& data, int64_t steps, int64_t batch) {
  for (int64_t s = 0; s < steps; ++s) {
    const int64_t i = (s * batch) % data.size(0);
    loom::testing::train_step(m, slice(data, 0, i, i + batch), {});
  }
}

// An MLP VAE trained for 150 steps of 32 images of data (a few seconds); built once per
// process and (data, latent), since several tests only read it.
Vae& trained_mlp(const std::string& data, int64_t latent) {
  static std::map<std::pair<std::string, int64_t>, std::unique_ptr<Vae>> cache;
  std::unique_ptr<Vae>& m = cache[{data, latent}];
  if (!m) {
    manual_seed(1);
    m = models::make_vae_model(with_latent(latent));
    fit(*m, data == "bars" ? bars(512, 10) : rectangles(512, 10), 150, 32);
    m->train(false);
  }
  return *m;
}

Vec to_vec(const Tensor& t) { return t.to(DType::Float64).to_vector<double>(); }

double mean_of(const Tensor& t) { return mean(t.to(DType::Float64)).item(); }

double softplus(double l) { return std::max(l, 0.0) + std::log1p(std::exp(-std::abs(l))); }

double logsumexp(const Vec& v) {
  const double m = *std::max_element(v.begin(), v.end());
  double s = 0;
  for (double x : v) s += std::exp(x - m);
  return m + std::log(s);
}

// y = W x + b in float64 with W and b read from a state_dict (optionally ReLU'd).
struct Dense {
  int64_t in = 0, out = 0;
  Vec w, b;
  Vec operator()(const Vec& x, bool relu) const {
    Vec y(static_cast<size_t>(out));
    for (int64_t o = 0; o < out; ++o) {
      double s = b[static_cast<size_t>(o)];
      for (int64_t i = 0; i < in; ++i) s += w[static_cast<size_t>(o * in + i)] * x[static_cast<size_t>(i)];
      y[static_cast<size_t>(o)] = relu ? std::max(s, 0.0) : s;
    }
    return y;
  }
};

Dense dense(const std::map<std::string, Tensor>& state, const std::string& layer) {
  const Tensor& w = state.at(layer + ".weight");
  return {w.size(1), w.size(0), to_vec(w), to_vec(state.at(layer + ".bias"))};
}

// The MLP VAE of models/vae.h (VaeArch::Mlp) in plain float64, from a snapshot of its weights.
struct MlpReference {
  Dense enc1, enc2, dec1, dec2;
  int64_t latent;
  explicit MlpReference(Vae& m) : latent(m.latent_dim()) {
    std::map<std::string, std::map<std::string, Tensor>> state;
    for (auto& [name, module] : m.modules()) state[name] = module->state_dict();
    enc1 = dense(state.at("encoder"), "1");  // 0 is the Flatten
    enc2 = dense(state.at("encoder"), "3");
    dec1 = dense(state.at("decoder"), "0");
    dec2 = dense(state.at("decoder"), "2");
  }
  // (μ, log σ²) of one image (784 pixels).
  std::pair<Vec, Vec> encode(const Vec& x) const {
    const Vec h = enc2(enc1(x, true), false);
    return {Vec(h.begin(), h.begin() + latent), Vec(h.begin() + latent, h.end())};
  }
  Vec logits(const Vec& z) const { return dec2(dec1(z, true), false); }
};

// log Π_j Bernoulli(x_j | sigmoid(l_j)) = Σ_j x_j l_j − softplus(l_j).
double log_bernoulli(const Vec& x, const Vec& logits) {
  double s = 0;
  for (size_t j = 0; j < x.size(); ++j) s += x[j] * logits[j] - softplus(logits[j]);
  return s;
}

// log N(z; μ, diag e^{log σ²}); μ and log σ² empty: the standard normal.
double log_normal(const Vec& z, const Vec& mu = {}, const Vec& log_var = {}) {
  double s = 0;
  for (size_t d = 0; d < z.size(); ++d) {
    const double m = mu.empty() ? 0 : mu[d], lv = log_var.empty() ? 0 : log_var[d];
    s -= 0.5 * (kLog2Pi + lv + (z[d] - m) * (z[d] - m) / std::exp(lv));
  }
  return s;
}

// Image b of images [B, 1, 28, 28] as 784 doubles.
Vec image(const Vec& images, int64_t b) {
  return Vec(images.begin() + b * kPixels, images.begin() + (b + 1) * kPixels);
}

}  // namespace

// Burda et al. 2016, Theorem 1: ELBO ≤ IWAE_k ≤ IWAE_k′ ≤ log p(x) for k < k′, and IWAE_k → log p(x).
// Each IWAE_K is estimated by importance_log_likelihood with its own draws (one estimate per
// image, averaged over 16 held-out images); the ELBO takes the closed-form KL and 100 draws of
// E_q[log p(x|z)]. Its steps up as K grows tenfold shrink, toward log p(x).
TEST(Vae, BoundsTightenWithMoreSamplesTowardALimit) {
  Vae& m = trained_mlp("rectangles", 20);
  const Tensor x = rectangles(16, 99);
  NoGrad ng;
  manual_seed(5);
  const Vae::Posterior q = m.encode(x);
  const double elbo = mean_of(mean(m.draw(q, x, 100).log_px_z, {0}) - Vae::kl_to_prior(q));
  std::map<int64_t, double> iwae;
  for (int64_t k : {10, 100, 1000}) iwae[k] = mean_of(m.importance_log_likelihood(x, k));
  EXPECT_LT(elbo, iwae[10]);
  EXPECT_LT(iwae[10], iwae[100]);
  EXPECT_LT(iwae[100], iwae[1000]);
  EXPECT_GT(iwae[100] - iwae[10], iwae[1000] - iwae[100]);
}

// KL(q(z|x) ‖ N(0, I)) = ½ Σ_d (μ² + σ² − 1 − log σ²) from the encoder's (μ, log σ²), and the mean of
// log q(z|x) − log p(z) over 2000 draws, which must lie within 4 of its standard errors (the
// sample standard deviation / √2000, about 0.1 nats; a wrong closed form misses by nats).
TEST(Vae, ClosedFormKlMatchesItsMonteCarloEstimate) {
  Vae& m = trained_mlp("rectangles", 20);
  constexpr int64_t kImages = 4, kDraws = 2000;
  const Tensor x = rectangles(kImages, 98);
  NoGrad ng;
  manual_seed(6);
  const Vae::Posterior q = m.encode(x);
  const Vec closed = to_vec(Vae::kl_to_prior(q)), mu = to_vec(q.mu), log_var = to_vec(q.log_var);
  const Vae::Draws d = m.draw(q, x, kDraws);
  const Vec log_ratio = to_vec(d.log_qz - d.log_pz);  // [k, B]
  const int64_t latent = m.latent_dim();
  for (int64_t b = 0; b < kImages; ++b) {
    SCOPED_TRACE(str("image ", b));
    double formula = 0;
    for (int64_t j = b * latent; j < (b + 1) * latent; ++j)
      formula += 0.5 * (mu[j] * mu[j] + std::exp(log_var[j]) - 1 - log_var[j]);
    EXPECT_NEAR(closed[b], formula, 1e-5 * formula);
    EXPECT_GT(formula, 5);  // a posterior far from the prior: the comparison means something
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < kDraws; ++i) {
      const double v = log_ratio[i * kImages + b];
      s += v;
      s2 += v * v;
    }
    const double mc = s / kDraws, se = std::sqrt((s2 / kDraws - mc * mc) / kDraws);
    EXPECT_NEAR(mc, formula, 4 * se);
  }
}

// With one latent dimension, log p(x) = log ∫ p(x|z) N(z; 0, 1) dz is a 1-D integral, which the
// trapezoid rule gives in float64 from the plain-C++ decoder: a grid of step 0.02 on [−8, 8] (the
// prior's mass outside is 1e−15) brackets where the integrand is within 50 nats of its peak, and
// 2000 steps across the bracket give log p(x) to a few 1e−6 nats (the ReLU kinks make the rule's
// error O(h²): it is a third of the 1e−5 allowed between 1000 and 2000 steps). The model is
// trained on bars (one degree of freedom), so each posterior is one bump q can cover. The
// importance estimate with K = 5000 draws (5 passes of 1000, combined in float64) must land within
// 0.03 nats of it (its spread over seeds is about 0.005 nats, with no visible bias) and within a
// quarter of the ELBO's gap, and the ELBO must stay below log p(x) (DESIGN.md: "the ELBO never
// exceeds the exact log-likelihood where that is computable").
TEST(Vae, ImportanceSamplingConvergesToTheQuadratureLogLikelihood) {
  Vae& m = trained_mlp("bars", 1);
  const MlpReference ref(m);
  constexpr int64_t kImages = 2;
  const Tensor x = bars(kImages, 97);
  const Vec pixels = to_vec(x);
  // log p(x|z) + log N(z; 0, 1) for image b.
  auto log_joint = [&](int64_t b, double z) { return log_bernoulli(image(pixels, b), ref.logits({z})) + log_normal({z}); };
  // log ∫_a^c exp(f) by the trapezoid rule with n steps.
  auto trapezoid = [](const std::function<double(double)>& f, double a, double c, int64_t n) {
    const double h = (c - a) / static_cast<double>(n);
    Vec terms;
    for (int64_t j = 0; j <= n; ++j)
      terms.push_back(f(a + h * static_cast<double>(j)) + std::log(h) - (j == 0 || j == n ? std::log(2.0) : 0.0));
    return logsumexp(terms);
  };
  NoGrad ng;
  manual_seed(7);
  const Vec estimate = to_vec(m.importance_log_likelihood(x, 5000, 1000));
  const Vae::Posterior q = m.encode(x);
  const Vec elbo = to_vec(mean(m.draw(q, x, 1000).log_px_z, {0}) - Vae::kl_to_prior(q));
  for (int64_t b = 0; b < kImages; ++b) {
    SCOPED_TRACE(str("image ", b));
    constexpr double kLo = -8, kHi = 8, kStep = 0.02;
    Vec coarse;
    for (double z = kLo; z <= kHi + 1e-9; z += kStep) coarse.push_back(log_joint(b, z));
    const double peak = *std::max_element(coarse.begin(), coarse.end());
    double a = kHi, c = kLo;
    for (size_t j = 0; j < coarse.size(); ++j)
      if (coarse[j] > peak - 50) {
        a = std::min(a, kLo + kStep * (static_cast<double>(j) - 1));
        c = std::max(c, kLo + kStep * (static_cast<double>(j) + 1));
      }
    std::map<double, double> memo;  // the 1000-step rule reuses every other point of the 2000-step one
    auto f = [&](double z) {
      auto it = memo.find(z);
      return it != memo.end() ? it->second : memo[z] = log_joint(b, z);
    };
    const double log_px = trapezoid(f, a, c, 2000);
    EXPECT_NEAR(log_px, trapezoid(f, a, c, 1000), 1e-5);
    EXPECT_LT(elbo[b], log_px);
    EXPECT_NEAR(estimate[b], log_px, std::min(0.03, (log_px - elbo[b]) / 4));
  }
}

// Each training loss recomputed from the same draws: the step's ε is the first thing drawn from
// the default generator (models/vae.h, Vae::draw), so seeding it alike and drawing randn([k·B, L])
// gives the reference the model's draws. In plain float64 from the weights before the step:
//   iwae_k = 0: −mean_b [log p(x|z) − KL(q ‖ p)] (closed-form KL, one draw);
//   iwae_k = 1: −mean_b [log p(x|z) + log p(z) − log q(z|x)] (the KL estimated from the draw);
//   iwae_k = 5: −mean_b [logsumexp_i log w_i − log 5] (Burda et al. eq. 8).
// The gradient of the decoder's output bias c is Burda et al. eq. 14 (∂ log w_i / ∂c = x − sigmoid(l_i)):
//   ∂loss/∂c = −mean_b Σ_i w̃_i (x_b − sigmoid(l_bi)),  w̃_i = w_i / Σ_j w_j (w̃ = 1 for one draw).
// Tolerances: float32 sums of 784 log-probabilities (~1e-4 nats); a wrong bound is off by O(1).
TEST(Vae, TrainingLossIsMinusTheBoundOfItsOwnDraws) {
  constexpr int64_t kBatch = 4, kLatent = 3;
  const Tensor x = rectangles(kBatch, 96);
  const Vec pixels = to_vec(x);
  for (int64_t iwae_k : {0, 1, 5}) {
    SCOPED_TRACE(str("iwae_k ", iwae_k));
    manual_seed(2);
    std::unique_ptr<Vae> m = models::make_vae_model(with_latent(kLatent).set("iwae_k", iwae_k));
    fit(*m, rectangles(64, 11), 20, 16);  // away from the initialization, where every pixel's logit is ≈ 0
    const MlpReference ref(*m);
    manual_seed(12);
    const double loss = loom::testing::train_step(*m, x, {}).at("loss");
    Tensor bias;  // the decoder's output bias, whose gradient the step leaves behind
    for (const auto& [name, t] : m->modules()[1].second->named_parameters())
      if (name == "2.bias") bias = t;
    const Vec grad = to_vec(bias.grad());
    const int64_t k = std::max<int64_t>(iwae_k, 1);
    manual_seed(12);
    const Vec eps = to_vec(randn({k * kBatch, kLatent}));
    double expected = 0;
    Vec expected_grad(kPixels, 0.0);
    for (int64_t b = 0; b < kBatch; ++b) {
      const Vec xb = image(pixels, b);
      const auto [mu, log_var] = ref.encode(xb);
      Vec log_w(static_cast<size_t>(k)), log_px_z(static_cast<size_t>(k));
      std::vector<Vec> logits;
      for (int64_t i = 0; i < k; ++i) {
        Vec z(kLatent);
        for (int64_t d = 0; d < kLatent; ++d)
          z[d] = mu[d] + std::exp(0.5 * log_var[d]) * eps[static_cast<size_t>((i * kBatch + b) * kLatent + d)];
        logits.push_back(ref.logits(z));
        log_px_z[i] = log_bernoulli(xb, logits.back());
        log_w[i] = log_px_z[i] + log_normal(z) - log_normal(z, mu, log_var);
      }
      double kl = 0;
      for (int64_t d = 0; d < kLatent; ++d) kl += 0.5 * (mu[d] * mu[d] + std::exp(log_var[d]) - 1 - log_var[d]);
      const double bound = iwae_k == 0 ? log_px_z[0] - kl : logsumexp(log_w) - std::log(static_cast<double>(k));
      expected -= bound / kBatch;
      const double lse = logsumexp(log_w);
      for (int64_t i = 0; i < k; ++i) {
        const double weight = std::exp(log_w[i] - lse);
        for (int64_t j = 0; j < kPixels; ++j)
          expected_grad[j] -= weight * (xb[j] - 1 / (1 + std::exp(-logits[i][j]))) / kBatch;
      }
    }
    EXPECT_NEAR(loss, expected, 1e-3);
    for (int64_t j = 0; j < kPixels; ++j) ASSERT_NEAR(grad[j], expected_grad[j], 1e-5) << "pixel " << j;
  }
}

// −IWAE_5 training on rectangles: 40 steps of 16 images raise the held-out IWAE_16 by over 100 nats
// (from about −545, every pixel's logit near 0 at initialization).
TEST(Vae, IwaeTrainingLearns) {
  manual_seed(3);
  std::unique_ptr<Vae> m = models::make_vae_model(models::Config{}.set("iwae_k", 5));
  const Tensor held_out = rectangles(32, 95);
  auto iwae16 = [&] {
    NoGrad ng;
    manual_seed(8);
    return loom::testing::evaluate(*m, held_out, {}).at("iwae16");
  };
  const double before = iwae16();
  fit(*m, rectangles(320, 12), 40, 16);
  const double after = iwae16();
  EXPECT_GT(after, before + 100);
}

// evaluate() adds the K-sample estimate ("nll", "bits_per_dim") once asked, computed after its 16
// draws by importance_log_likelihood; bad settings and arguments are errors naming them.
TEST(Vae, EvaluateAddsTheImportanceEstimateWhenAskedAndRefusesBadSettings) {
  Vae& m = trained_mlp("rectangles", 20);
  const Tensor x = rectangles(8, 94);
  NoGrad ng;
  auto keys = [](const models::Losses& l) {
    std::vector<std::string> out;
    for (const auto& [k, v] : l) out.push_back(k);
    return out;
  };
  EXPECT_EQ(keys(loom::testing::evaluate(m, x, {})), (std::vector<std::string>{"elbo", "iwae16", "kl"}));
  manual_seed(9);
  const models::Losses l = loom::testing::evaluate(m, x, {}, {.importance_samples = 50});
  EXPECT_EQ(keys(l), (std::vector<std::string>{"bits_per_dim", "elbo", "importance_samples", "iwae16", "kl", "nll"}));
  manual_seed(9);
  m.draw(m.encode(x), x, 16);
  const double log_px = mean_of(m.importance_log_likelihood(x, 50));
  EXPECT_DOUBLE_EQ(l.at("nll"), -log_px);
  EXPECT_DOUBLE_EQ(l.at("bits_per_dim"), -log_px / (kPixels * std::log(2.0)));
  // score is the same estimate per image.
  manual_seed(9);
  m.draw(m.encode(x), x, 16);
  EXPECT_DOUBLE_EQ(mean_of(m.score(x, {.importance_samples = 50})), log_px);

  expect_error([] { models::make_vae_model(models::Config{}.set("iwae_k", -1)); }, {"--iwae-k must lie in [0, 100000]", "-1"});
  expect_error([] { models::make_vae_model(models::Config{}.set("arch", "resnet")); }, {"--arch must be one of mlp, conv"});
  expect_error([&] { m.importance_log_likelihood(x, 0); }, {"K must be >= 1", "0"});
  expect_error([&] { m.importance_log_likelihood(x, 10, 0); }, {"chunk must be >= 1"});
  expect_error([&] { m.importance_log_likelihood(reshape(x, {8, kPixels}), 10); }, {"[B, 1, 28, 28]", "[8, 784]"});
  expect_error([&] { m.draw(m.encode(x), x, 0); }, {"draws per image must be >= 1"});
  expect_error([&] { m.draw(m.encode(x), slice(x, 0, 0, 4), 2); }, {"posterior of 8 images", "4 images"});
  expect_error([&] { m.importance_log_likelihood(slice(x, 0, 0, 0), 10); }, {"no images"});
}

// The convolutional VAE through the driver (tools::train), batch 8: 8 steps raise the held-out
// ELBO by over 50 nats from the untrained model's, and 4 steps, a checkpoint and 4 resumed steps
// end with exactly the parameters, Adam moments and generator states of 8 straight steps.
TEST(Vae, ConvVariantLearnsAndResumesBitExactlyThroughTheDriver) {
  TempDir dir;
  const Tensor held_out = rectangles(32, 14);
  auto options = [&](const std::string& out, int64_t steps) {
    tools::TrainOptions o = tiny_run("vae", dir.path() + "/" + out, steps, 128, 5);
    o.config.batch_size = 8;
    o.load_data = [&](data::Split s) { return labeled(s == data::Split::Train ? rectangles(128, 13) : held_out); };
    o.eval_size = 32;
    o.config.set("arch", "conv");
    return o;
  };
  const auto [straight, resumed] = straight_and_resumed(options, 8);
  const Safetensors a = load_safetensors(straight.checkpoint), b = load_safetensors(resumed.checkpoint);
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  EXPECT_EQ(a.at("model.encoder.0.weight").shape(), (Shape{32, 1, 3, 3}));  // the conv encoder's first layer
  for (const auto& [name, t] : a.tensors) {
    SCOPED_TRACE(name);
    EXPECT_EQ(t.shape(), b.at(name).shape());
    EXPECT_EQ(to_vec(t), to_vec(b.at(name)));
  }
  manual_seed(5);  // the driver's initialization
  std::unique_ptr<models::Model> untrained = models::make_vae_model(models::Config{}.set("arch", "conv"));
  untrained->train(false);
  NoGrad ng;
  const double before = loom::testing::evaluate(*untrained, held_out, {}).at("elbo");
  EXPECT_GT(straight.eval.at("elbo"), before + 50);
}
