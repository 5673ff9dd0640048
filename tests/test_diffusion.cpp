// Diffusion (models/diffusion/): the forward process, the posterior, the terms
// of the variational bound, DDIM against ancestral sampling and the
// discretized decoder against independent derivations in float64 (DDPM eq. 4-7,
// 11, §3.3; DDIM eq. 12, 16; Ho & Salimans eq. 6); the U-Net's shapes; and the
// `ddpm` model: its bound estimate against the exact sum, its sampler settings,
// a bit-exact resume with the weight average, and a short run that learns.
#include <cmath>
#include <filesystem>
#include <numbers>

#include "models/diffusion/diffusion.h"
#include "models/diffusion/unet.h"
#include "models/image_grid.h"
#include "tests/gradcheck.h"
#include "tests/temp_dir.h"
#include "tests/train_fixture.h"
#include "tools/train.h"

using namespace loom;
using namespace loom::testing;
namespace dm = loom::models::diffusion;
namespace fs = std::filesystem;

namespace {

const TensorOptions kF64{DType::Float64};

Tensor steps_of(int64_t b, int64_t t) { return full({b}, static_cast<double>(t), TensorOptions{DType::Int64}); }

// KL(N(m1, v1) ‖ N(m2, v2)) of scalars, written out.
double kl(double m1, double v1, double m2, double v2) {
  return 0.5 * (std::log(v2 / v1) + (v1 + (m1 - m2) * (m1 - m2)) / v2 - 1);
}

// A tiny ddpm: T = 10 (or `timesteps`) steps of the cosine schedule, which ends at
// ᾱ_T ≈ 0 for any T, and an 8-wide two-level U-Net.
models::Config tiny(int64_t timesteps = 10) {
  models::Config c;
  c.set("timesteps", timesteps).set("schedule", "cosine").set("base", 8).set("mult", "1,2").set("groups", 4);
  c.set("attention", "1");
  return c;
}
std::unique_ptr<models::Model> build(models::Config c) {
  const models::Registration& r = models::find_model("ddpm");
  manual_seed(0);
  return r.make(models::resolve_config(r, std::move(c)));
}

}  // namespace

TEST(Diffusion, SchedulesMatchTheirDefinitions) {
  const dm::Schedule lin = dm::make_schedule(dm::BetaSchedule::Linear, 1000);
  EXPECT_EQ(lin.beta.size(), 1001u);
  EXPECT_EQ(lin.beta[0], 0);
  EXPECT_EQ(lin.alpha_bar[0], 1);
  EXPECT_NEAR(lin.beta[1], 1e-4, 1e-15);
  EXPECT_NEAR(lin.beta[1000], 0.02, 1e-15);
  EXPECT_NEAR(lin.beta[500], 1e-4 + (0.02 - 1e-4) * 499 / 999, 1e-15);
  // ᾱ_T of DDPM's schedule: ≈ 4.0e-5 (the data is all but gone, L_T ≈ 0).
  double prod = 1;
  for (int t = 1; t <= 1000; ++t) prod *= 1 - lin.beta[t];
  EXPECT_NEAR(lin.alpha_bar[1000], prod, 1e-15);
  EXPECT_NEAR(lin.alpha_bar[1000], 4.04e-5, 0.01e-5);
  // Cosine: ᾱ_t = f(t)/f(0) wherever β is not capped.
  const dm::Schedule cos = dm::make_schedule(dm::BetaSchedule::Cosine, 1000);
  auto f = [](double t) {
    const double c = std::cos((t / 1000 + 0.008) / 1.008 * std::numbers::pi / 2);
    return c * c;
  };
  for (int t : {1, 10, 500, 900}) EXPECT_NEAR(cos.alpha_bar[t], f(t) / f(0), 1e-12) << t;
  EXPECT_EQ(cos.beta[1000], 0.999);  // the cap of Nichol & Dhariwal §3.2
  for (int t = 1; t <= 1000; ++t) ASSERT_TRUE(cos.beta[t] > 0 && cos.beta[t] <= 0.999) << t;

  expect_error([] { dm::make_schedule(dm::BetaSchedule::Linear, 0); }, {"steps T", "got 0"});
  expect_error([] { dm::make_schedule(dm::BetaSchedule::Linear, 10, 0.5, 0.1); }, {"beta_1 <= beta_T", "0.5"});
  expect_error([] { dm::beta_schedule("quadratic"); }, {"linear or cosine", "quadratic"});
}

TEST(Diffusion, ClosedFormMarginalEqualsTheStepsInSequence) {
  // x_t drawn by t single steps x_s = √(1 − β_s) x_{s−1} + √β_s ε_s against
  // q(x_t | x_0) = N(√ᾱ_t x_0, 1 − ᾱ_t) (eq. 4): mean and variance over 40000 chains,
  // within 5 standard errors.
  const dm::Schedule s = dm::make_schedule(dm::BetaSchedule::Linear, 50, 1e-3, 0.2);
  const int64_t n = 40000, t = 30;
  Generator g(3);
  const double x0 = 0.7;
  Tensor x = full({n}, x0, kF64);
  for (int64_t k = 1; k <= t; ++k) x = std::sqrt(1 - s.beta[k]) * x + std::sqrt(s.beta[k]) * randn({n}, kF64, &g);
  const double m = mean(x).item(), v = mean(square(x - m)).item();
  const double want_m = std::sqrt(s.alpha_bar[t]) * x0, want_v = 1 - s.alpha_bar[t];
  EXPECT_NEAR(m, want_m, 5 * std::sqrt(want_v / n));
  EXPECT_NEAR(v, want_v, 5 * want_v * std::sqrt(2.0 / n));
  // q_sample is that closed form.
  const Tensor eps = randn({3, 1, 2, 2}, kF64, &g), x0s = rand({3, 1, 2, 2}, kF64, &g);
  expect_tensors_near(dm::q_sample(s, x0s, steps_of(3, t), eps),
                      std::sqrt(s.alpha_bar[t]) * x0s + std::sqrt(1 - s.alpha_bar[t]) * eps, 1e-15, 1e-15);
  // The same over tables made once (what a captured training step reads), bit for bit; tables of
  // another dtype than the batch's are an Error naming diffusion, not a generic mul mismatch.
  const dm::MarginalTables tables = dm::marginal_tables(s, kF64);
  expect_tensors_near(dm::q_sample(tables, x0s, steps_of(3, t), eps), dm::q_sample(s, x0s, steps_of(3, t), eps), 0, 0);
  expect_error([&] { dm::q_sample(dm::marginal_tables(s, {}), x0s, steps_of(3, t), eps); },
               {"diffusion: expected a table [T + 1] of float64", "got a table float32 [51]"});
}

TEST(Diffusion, PosteriorCoefficientsFollowFromBayesRule) {
  // q(x_{t−1} | x_t, x_0) ∝ q(x_t | x_{t−1}) q(x_{t−1} | x_0): precision 1/(1 − ᾱ_{t−1}) + α_t/β_t,
  // mean = variance · (√ᾱ_{t−1} x_0 / (1 − ᾱ_{t−1}) + √α_t x_t / β_t).
  for (const dm::BetaSchedule kind : {dm::BetaSchedule::Linear, dm::BetaSchedule::Cosine}) {
    const dm::Schedule s = dm::make_schedule(kind, 200);
    for (int t : {2, 3, 50, 199, 200}) {
      SCOPED_TRACE(t);
      const double prev = s.alpha_bar[t - 1], alpha = 1 - s.beta[t];
      const double var = 1 / (1 / (1 - prev) + alpha / s.beta[t]);
      EXPECT_NEAR(s.posterior_variance[t], var, 1e-12 * var);
      EXPECT_NEAR(s.posterior_coef_x0[t], var * std::sqrt(prev) / (1 - prev), 1e-12);
      EXPECT_NEAR(s.posterior_coef_xt[t], var * std::sqrt(alpha) / s.beta[t], 1e-12);
    }
    EXPECT_EQ(s.posterior_variance[1], 0);  // x_0 given: nothing left to draw
  }
  // posterior_mean applies them per sample.
  const dm::Schedule s = dm::make_schedule(dm::BetaSchedule::Linear, 20);
  const Tensor x0 = from_vector(std::vector<double>{0.5, -0.25}, {2, 1}), xt = from_vector(std::vector<double>{1, 2}, {2, 1});
  const Tensor t = from_vector(std::vector<int64_t>{3, 17}, {2});
  expect_tensors_near(dm::posterior_mean(s, x0, xt, t),
                      from_vector(std::vector<double>{s.posterior_coef_x0[3] * 0.5 + s.posterior_coef_xt[3] * 1,
                                                      s.posterior_coef_x0[17] * -0.25 + s.posterior_coef_xt[17] * 2},
                                  {2, 1}),
                      1e-15, 1e-15);
  expect_error([&] { dm::posterior_mean(s, x0, xt, from_vector(std::vector<int64_t>{3, 21}, {2})); },
               {"time step must be in [0, 20], got 21"});
}

TEST(Diffusion, BoundTermsEqualDirectGaussianKls) {
  const dm::Schedule s = dm::make_schedule(dm::BetaSchedule::Linear, 20, 1e-3, 0.3);
  Generator g(5);
  const Tensor x0 = rand({2, 1, 2, 3}, kF64, &g) * 2 - 1, eps = randn(x0.shape(), kF64, &g);
  const Tensor pred = randn(x0.shape(), kF64, &g);
  const std::vector<double> xs = x0.to_vector<double>(), es = eps.to_vector<double>(), ps = pred.to_vector<double>();
  for (const dm::ReverseVariance v : {dm::ReverseVariance::Posterior, dm::ReverseVariance::Beta}) {
    const int64_t t = 7;
    const Tensor xt = dm::q_sample(s, x0, steps_of(2, t), eps);
    const std::vector<double> got = dm::step_kl(s, v, x0, xt, steps_of(2, t), pred).to_vector<double>();
    const double a = s.alpha_bar[t], alpha = 1 - s.beta[t];
    const double sigma2 = v == dm::ReverseVariance::Beta ? s.beta[t] : s.posterior_variance[t];
    std::vector<double> want(2, 0.0);
    for (size_t i = 0; i < xs.size(); ++i) {
      const double x_t = std::sqrt(a) * xs[i] + std::sqrt(1 - a) * es[i];
      const double true_mean = s.posterior_coef_x0[t] * xs[i] + s.posterior_coef_xt[t] * x_t;
      const double model_mean = (x_t - s.beta[t] / std::sqrt(1 - a) * ps[i]) / std::sqrt(alpha);  // eq. 11
      want[i / 6] += kl(true_mean, s.posterior_variance[t], model_mean, sigma2);
    }
    EXPECT_NEAR(got[0], want[0], 1e-10);
    EXPECT_NEAR(got[1], want[1], 1e-10);
  }
  // L_T: KL(N(√ᾱ_T x_0, 1 − ᾱ_T) ‖ N(0, 1)) per pixel, summed.
  double want = 0;
  for (size_t i = 0; i < 6; ++i) want += kl(std::sqrt(s.alpha_bar[20]) * xs[i], 1 - s.alpha_bar[20], 0, 1);
  EXPECT_NEAR(dm::prior_kl(s, x0).to_vector<double>()[0], want, 1e-12);
  expect_error([&] { dm::step_kl(s, dm::ReverseVariance::Beta, x0, x0, steps_of(2, 1), pred); },
               {"L_{t-1} needs t in [2, 20], got 1"});
}

TEST(Diffusion, DiscretizedDecoderSumsToOneOverThe256Levels) {
  std::vector<double> levels;
  for (int k = 0; k < 256; ++k) levels.push_back(k / 127.5 - 1);
  for (const double m : {-1.0, -0.3, 0.0, 0.999, 1.4})
    for (const double log_scale : {std::log(0.01), std::log(0.2), 0.0}) {
      SCOPED_TRACE(str(m, " ", log_scale));
      const std::vector<double> lp = dm::discretized_gaussian_log_prob(levels, std::vector<double>(256, m),
                                                                      std::vector<double>(256, log_scale));
      double total = 0;
      for (double l : lp) total += std::exp(l);
      // Floored probabilities (1e-12) may add at most 256e-12.
      EXPECT_NEAR(total, 1, 3e-10);
    }
  // One bin against Φ: P(|Z| < (1/255) / 0.1) for a level at the mean.
  const double p = std::erf(1.0 / 255 / 0.1 / std::numbers::sqrt2);
  EXPECT_NEAR(dm::discretized_gaussian_log_prob({0.0 / 127.5 - 1 + 128 / 127.5}, {128 / 127.5 - 1}, {std::log(0.1)})[0],
              std::log(p), 1e-12);
}

TEST(Diffusion, APerfectNoisePredictorRecoversTheData) {
  const dm::Schedule s = dm::make_schedule(dm::BetaSchedule::Linear, 100);
  Generator g(2);
  const Tensor x0 = rand({3, 1, 4, 4}, kF64, &g) * 2 - 1, eps = randn(x0.shape(), kF64, &g);
  for (int64_t t : {1, 40, 100}) {
    SCOPED_TRACE(t);
    const Tensor xt = dm::q_sample(s, x0, steps_of(3, t), eps);
    expect_tensors_near(dm::predict_x0(s, xt, steps_of(3, t), eps), x0, 1e-12, 1e-12);
    // A DDIM step from t straight to 0 with the true noise lands on x_0.
    expect_tensors_near(dm::ddim_step(s, xt, t, 0, eps, {}, 0.0, true), x0, 1e-12, 1e-12);
  }
  // The last ancestral step (t = 1, no noise) too.
  const Tensor x1 = dm::q_sample(s, x0, steps_of(3, 1), eps);
  expect_tensors_near(dm::ancestral_step(s, dm::ReverseVariance::Beta, x1, steps_of(3, 1), eps,
                                         randn(x0.shape(), kF64, &g), false),
                      x0, 1e-12, 1e-12);
}

TEST(Diffusion, DdimWithEtaOneOverAllStepsIsAncestralSampling) {
  const dm::Schedule s = dm::make_schedule(dm::BetaSchedule::Linear, 50, 1e-3, 0.1);
  Generator g(9);
  for (int64_t t : {2, 10, 50}) {
    SCOPED_TRACE(t);
    const Tensor xt = randn({2, 1, 3, 3}, kF64, &g), eps = randn(xt.shape(), kF64, &g), z = randn(xt.shape(), kF64, &g);
    for (const bool clip : {false, true})
      expect_tensors_near(dm::ddim_step(s, xt, t, t - 1, eps, z, 1.0, clip),
                          dm::ancestral_step(s, dm::ReverseVariance::Posterior, xt, steps_of(2, t), eps, z, clip), 1e-12,
                          1e-12);
    // η = 0: deterministic, whatever noise is at hand.
    expect_tensors_near(dm::ddim_step(s, xt, t, t - 1, eps, z, 0.0, true),
                        dm::ddim_step(s, xt, t, t - 1, eps, randn(xt.shape(), kF64, &g), 0.0, true), 0, 0);
  }
  EXPECT_EQ(dm::sampling_steps(5, 5), (std::vector<int64_t>{5, 4, 3, 2, 1}));
  EXPECT_EQ(dm::sampling_steps(1000, 4), (std::vector<int64_t>{1000, 667, 334, 1}));
  EXPECT_EQ(dm::sampling_steps(10, 1), (std::vector<int64_t>{10}));
  expect_error([] { dm::sampling_steps(10, 11); }, {"sampling steps must be in [1, T = 10], got 11"});
  expect_error([&] { dm::ddim_step(s, zeros({1}), 3, 3, zeros({1}), {}, 0, false); }, {"t_prev < t"});
  // Guidance (Ho & Salimans eq. 6): w = 0 is the conditional prediction.
  const Tensor c = from_vector(std::vector<double>{1, 2}, {2}), u = from_vector(std::vector<double>{0.5, -1}, {2});
  EXPECT_EQ(dm::guided_eps(c, u, 0).to_vector<double>(), c.to_vector<double>());
  EXPECT_EQ(dm::guided_eps(c, u, 3).to_vector<double>(), (std::vector<double>{4 * 1 - 3 * 0.5, 4 * 2 + 3 * 1.0}));
}

TEST(Diffusion, UNetPredictsNoiseOfTheImageShape) {
  dm::UNetOptions o;
  o.base = 8;
  o.mult = {1, 2, 2};
  o.groups = 4;
  o.attention_levels = {1, 2};
  manual_seed(0);
  dm::UNet net(o);
  const Tensor x = randn({2, 1, 28, 28}), t = from_vector(std::vector<int64_t>{1, 900}, {2});
  // The output convolution starts at zero (as DDPM's): ε_θ ≡ 0 before training.
  EXPECT_EQ(max(abs(net.forward(x, t))).item(), 0);
  Tensor out_bias = net.named_parameters().back().second;
  nn::init::normal_(out_bias, 0, 0.1);
  const Tensor y = net.forward(x, t, randn({2, net.embedding_dim()}));
  EXPECT_EQ(y.shape(), x.shape());
  EXPECT_GT(max(abs(y)).item(), 0);
  expect_error([&] { net.forward(randn({1, 1, 30, 30}), steps_of(1, 1)); }, {"UNet", "divisible by 4", "[1, 1, 30, 30]"});
  expect_error([&] { net.forward(x, t, randn({2, 3})); }, {"condition embedding", "[2, 3]"});
  o.groups = 3;
  expect_error([&] { dm::UNet bad(o); }, {"3 GroupNorm groups do not divide the width 8"});
}

TEST(Ddpm, SampledBoundAgreesWithTheExactSum) {
  // T = 40: the bound with every t (K ≥ T − 1) against the estimate from 30 draws
  // per image, within 5 of its standard errors; its terms are finite and positive.
  auto m = build(tiny(40));
  m->train(false);
  NoGrad ng;
  Generator g(4);
  const Tensor x = randint(256, {6, 1, 28, 28}, {}, &g).to(DType::Float32) / 127.5 - 1;  // 8-bit levels
  const Tensor y = zeros({6}, TensorOptions{DType::Int64});
  const models::Losses exact = evaluate(*m, x, y, {.importance_samples = 0, .bound_timesteps = 39});
  const models::Losses sampled = evaluate(*m, x, y, {.importance_samples = 0, .bound_timesteps = 30});
  EXPECT_EQ(exact.count("bound_mc_var"), 0u);
  const double se = std::sqrt(sampled.at("bound_mc_var") / 6);
  EXPECT_NEAR(sampled.at("bits_per_dim_bound"), exact.at("bits_per_dim_bound"), 5 * se);
  EXPECT_GT(exact.at("decoder_nll"), 0);
  EXPECT_GT(exact.at("prior_kl"), 0);
  EXPECT_NEAR(exact.at("nll_bound") / (784 * std::log(2.0)), exact.at("bits_per_dim_bound"), 1e-9);
  // An untrained ε_θ ≡ 0: x̂_0 = x_t / √ᾱ_t, far from the data: several bits per pixel.
  EXPECT_GT(exact.at("bits_per_dim_bound"), 1);
}

TEST(Ddpm, SamplerSettingsAreCheckedAndApplied) {
  auto m = build(tiny());
  m->train(false);
  Generator g1(1), g2(1);
  m->set_sampler({.sampler = "ddim", .steps = 3, .eta = 0.0, .guidance = {}});
  const Tensor a = m->sample(2, {}, g1), b = m->sample(2, {}, g2);
  EXPECT_EQ(a.shape(), (Shape{2, 1, 28, 28}));
  EXPECT_EQ(a.to_vector<float>(), b.to_vector<float>());  // the same x_T, η = 0: the same samples
  EXPECT_LE(max(a).item(), 1);
  EXPECT_GE(min(a).item(), -1);
  // The trajectory: rows of frames from x_T (noise, clamped) to the sample.
  Generator g3(1);
  const models::SampleGrid tr = m->trajectory(2, 4, {}, g3);
  EXPECT_EQ(tr.columns, 4);
  ASSERT_EQ(tr.images.shape(), (Shape{8, 1, 28, 28}));
  EXPECT_EQ(slice(tr.images, 0, 3, 4).to_vector<float>(), slice(a, 0, 0, 1).to_vector<float>());
  EXPECT_EQ(slice(tr.images, 0, 7, 8).to_vector<float>(), slice(a, 0, 1, 2).to_vector<float>());

  expect_error([&] { m->set_sampler({.sampler = "ancestral", .steps = 3, .eta = {}, .guidance = {}}); },
               {"--sample-steps and --eta apply to --sampler ddim"});
  expect_error([&] { m->set_sampler({.sampler = "", .steps = 11, .eta = {}, .guidance = {}}); },
               {"--sample-steps must be in [1, T = 10], got 11"});
  expect_error([&] { m->set_sampler({.sampler = "plms", .steps = {}, .eta = {}, .guidance = {}}); },
               {"--sampler must be ancestral or ddim"});
  expect_error([&] { m->set_sampler({.sampler = "", .steps = {}, .eta = {}, .guidance = 2.0}); },
               {"--guidance applies to a conditional model"});
  models::Config bad = tiny();
  bad.set("guidance", 2.0);
  bad.given = {"guidance"};
  expect_error([&] { build(bad); }, {"--guidance applies to a model with --condition label or text"});
  expect_error([] { build(tiny().set("mult", "1,x")); }, {"--mult", "'1,x'"});
  // DDPM's β range over 100 steps leaves ᾱ_T ≈ 0.37 of the data: x_T would not be N(0, I).
  expect_error([] { build(tiny(100).set("schedule", "linear")); },
               {"keeps alpha_bar_T = 0.36", "T = 100", "raise --beta-end or --timesteps"});
}

TEST(Ddpm, ResumesBitExactlyWithTheWeightAverage) {
  TempDir dir;
  auto options = [&](const std::string& out, int64_t steps) {
    tools::TrainOptions o = tiny_run("ddpm", dir / out, steps, 64, 3);
    o.config.options = tiny().options;
    // The grid of a label model holds 10 samples: 2 unguided DDIM steps each keep it cheap.
    o.config.set("condition", "label").set("ema_decay", 0.5).set("lr_warmup", 2).set("guidance", 0.0);
    o.config.set("sample_steps", 2);
    o.eval_size = 8;
    return o;
  };
  const auto [straight, resumed] = straight_and_resumed(options, 4);
  const auto tensors = model_tensors(straight.checkpoint);
  EXPECT_EQ(model_tensors(resumed.checkpoint), tensors);
  EXPECT_EQ(resumed.eval.at("bits_per_dim_bound"), straight.eval.at("bits_per_dim_bound"));
  // The average is saved, and differs from the weights it averages.
  const std::string w = "model.denoiser.unet.output.weight", avg = "model.denoiser_ema.unet.output.weight";
  ASSERT_TRUE(tensors.count(w) && tensors.count(avg));
  EXPECT_NE(tensors.at(w), tensors.at(avg));
  ASSERT_TRUE(tensors.count("model.denoiser_ema.label_embedding.weight"));
}

// `loom eval --fd` of a sampler that takes minutes (an ancestral DDPM: 1 000 steps a batch) shows its
// progress on stderr, a line per step here (not a terminal), while the result is returned as before.
TEST(Ddpm, EvalWithFdShowsTheSamplingProgressOnStderr) {
  TempDir dir;
  tools::TrainOptions o = tiny_run("ddpm", dir / "ddpm", 1, 32, 3);
  o.config.options = tiny().options;
  o.config.set("sample_steps", 3);
  const tools::TrainResult model = tools::train(o);
  const tools::TrainResult judge = tools::train(tiny_run("classifier", dir / "classifier", 1, 32, 3));
  tools::EvalRequest er;
  er.checkpoint = model.checkpoint;
  er.images = 8;
  er.fd = true;
  er.classifier = judge.checkpoint;
  er.load_data = [](data::Split s) { return synthetic_images(s, 32); };
  ::testing::internal::CaptureStderr();
  const tools::Evaluation e = tools::evaluate("ddpm", er);
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(std::isfinite(e.metrics.at("fd")));
  EXPECT_NE(err.find("sampling 2/3"), std::string::npos) << err;
  EXPECT_NE(err.find("sampling 3/3 (100%)"), std::string::npos) << err;
}

TEST(DdpmLearning, LearnsToPredictTheNoise) {
  // 150 steps on rectangles (T = 100): the held-out ε-prediction loss falls from
  // about 1 (ε_θ ≡ 0 predicts E[ε] = 0) well below it, and the bound with it.
  TempDir dir;
  tools::TrainOptions o = tiny_run("ddpm", dir / "run", 150, 512, 1);
  o.config.options = tiny(100).options;
  o.config.set("lr", 2e-3).set("ema_decay", 0.0).set("attention", "none");
  o.eval_size = 64;
  o.n_samples = 0;  // its samples are checked below, from the checkpoint
  o.load_data = [](data::Split s) { return labeled(rectangles(512, s == data::Split::Train ? 1 : 2)); };
  const tools::TrainResult r = tools::train(o);
  EXPECT_LT(r.eval.at("loss"), 0.25) << r.eval.at("loss");
  std::unique_ptr<models::Model> fresh = build(tiny(100).set("attention", "none"));
  fresh->train(false);
  NoGrad ng;
  const Tensor x = rectangles(64, 2) * 2 - 1;
  const models::Losses before = evaluate(*fresh, x, zeros({64}, TensorOptions{DType::Int64}));
  EXPECT_GT(before.at("loss"), 0.9);
  EXPECT_LT(r.eval.at("bits_per_dim_bound"), before.at("bits_per_dim_bound") - 1);
  // Its samples (DDIM, 20 steps) look like the data, not like noise: dark on average
  // (within 0.4 of the data's mean: rectangles fill about a sixth of the frame, a mean
  // near −0.65, where clipped noise averages 0), and smooth: neighbouring pixels agree
  // in sign far more often than the half of noise.
  std::unique_ptr<models::Model> trained = tools::load_model("ddpm", r.checkpoint, Device::cpu());
  trained->train(false);
  trained->set_sampler({.sampler = "ddim", .steps = 20, .eta = {}, .guidance = {}});
  Generator g(7);
  const Tensor s = trained->sample(16, {}, g);
  const double data_mean = mean(x).item();
  EXPECT_NEAR(mean(s).item(), data_mean, 0.4) << "data " << data_mean;  // noise: about 0
  const Tensor left = slice(s, 3, 0, 27), right = slice(s, 3, 1, 28);
  EXPECT_GT(mean(gt(left * right, zeros_like(left)).to(DType::Float32)).item(), 0.85);
}

TEST(Ddpm, TextConditionTrainsAndSamplesForAPrompt) {
  // --condition text: the captions of the images through the caption encoder; a
  // prompt at sampling, guided by the unconditional prediction (∅).
  models::Config c = tiny();
  c.set("condition", "text").set("word_dim", 4).set("embed_dim", 8).set("p_uncond", 0.5);
  auto m = build(c);
  Generator g(1);
  const Tensor x = rand({4, 1, 28, 28}, {}, &g) * 2 - 1;
  const models::Losses l = train_step(*m, x, from_vector(std::vector<int64_t>{5, 7, 9, 0}, {4}));
  EXPECT_TRUE(std::isfinite(l.at("loss")));
  EXPECT_TRUE(m->conditions().prompt);
  EXPECT_FALSE(m->conditions().labels);
  EXPECT_EQ(m->class_prompt(7), "a sneaker");
  m->train(false);
  // Weights as after some training: DDPM's zero-initialized convolutions (each block's
  // second, and the output) would otherwise keep the condition from reaching ε_θ.
  for (auto& [name, module] : m->modules())
    for (auto& [pname, p] : module->named_parameters())
      if (pname.find("conv2.weight") != std::string::npos || pname.find("output.weight") != std::string::npos) {
        Tensor w = p;
        nn::init::normal_(w, 0, 0.05);
      }
  models::Condition prompt;
  prompt.prompt = "a light sandal";
  m->set_sampler({.sampler = "ddim", .steps = 2, .eta = {}, .guidance = 0.0});
  Generator g1(3), g2(3);
  const Tensor plain = m->sample(2, prompt, g1);
  m->set_sampler({.sampler = "", .steps = {}, .eta = {}, .guidance = 3.0});
  const Tensor guided = m->sample(2, prompt, g2);
  EXPECT_EQ(guided.shape(), (Shape{2, 1, 28, 28}));
  EXPECT_GT(max(abs(guided - plain)).item(), 0);  // the same x_T, steered by w = 3
  // Without a prompt: one row per class, each with its class's plain prompt.
  EXPECT_EQ(m->grid_layout(20, {}).columns, 2);
  models::Condition unknown;
  unknown.prompt = "zzz qqq";
  expect_error([&] { m->sample(1, unknown, g1); }, {"zzz qqq"});
  models::Config label_only = tiny();
  label_only.set("condition", "label").set("word_dim", 4);
  label_only.given = {"word_dim"};
  expect_error([&] { build(label_only); }, {"--word-dim applies to a model with --condition text"});
}
