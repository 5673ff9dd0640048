// Progressive GAN (models/gan/progan.h) and the WGAN-GP penalty it trains with
// (gan::gradient_penalty in models/gan/adversarial.h): the growth schedule
// against hand-computed phases, the fade-in blends of both networks and of the
// real images, the penalty's value and gradient, the model's sizes and ranges,
// and ProGAN through the driver: a bit-exact resume mid-fade with the growth in
// the metrics log, and learning Fashion-MNIST while it grows to 8×8.
#include <cmath>
#include <filesystem>
#include <fstream>

#include "models/gan/adversarial.h"
#include "models/gan/progan.h"
#include "models/image_grid.h"
#include "tests/gradcheck.h"
#include "tests/pixel_fd.h"
#include "tests/temp_dir.h"
#include "tests/train_fixture.h"
#include "tools/train.h"

using namespace loom;
using namespace loom::testing;
namespace gan = loom::models::gan;
namespace fs = std::filesystem;
using models::Growth;
using models::GrowthSchedule;

namespace {

std::unique_ptr<models::Model> build_progan(models::Config c) {
  c.seed = 0;
  const models::Registration& r = models::find_model("progan");
  manual_seed(0);
  return r.make(models::resolve_config(r, c));
}

void expect_growth(int64_t images, const GrowthSchedule& s, int64_t level, double alpha) {
  const Growth g = models::growth_at(images, s);
  EXPECT_EQ(g.level, level) << "after " << images << " images";
  EXPECT_EQ(g.alpha, alpha) << "after " << images << " images";
}

// Every logged value of `key` in a run's metrics log, in step order.
std::vector<double> logged(const std::string& dir, const std::string& key) {
  std::ifstream in(dir + "/metrics.jsonl");
  std::vector<double> out;
  const std::string field = str("\"", key, "\":");
  for (std::string line; std::getline(in, line);) {
    const size_t at = line.find(field);
    if (at != std::string::npos) out.push_back(std::stod(line.substr(at + field.size())));
  }
  return out;
}

// One training step of m outside the driver, as step `index` of a long run.
models::Losses train_step_at(models::Model& m, const Tensor& images, int64_t index) {
  models::Step step{.index = index, .total = 1000, .next_batch = {}};
  return m.train_step(batch(images, zeros({images.size(0)}, TensorOptions{DType::Int64})), step);
}

}  // namespace

TEST(ProganGrowth, PhasesAndAlphaMatchHandComputedValues) {
  // 10 images at 4×4, then per level 4 fading and 10 stable: 8×8 fades over
  // [10, 14), is stable over [14, 24); 16×16 fades over [24, 28) and stays.
  const GrowthSchedule s{.levels = 3, .fade_images = 4, .stable_images = 10};
  expect_growth(0, s, 0, 1);
  expect_growth(9, s, 0, 1);
  expect_growth(10, s, 1, 0);
  expect_growth(11, s, 1, 0.25);
  expect_growth(13, s, 1, 0.75);
  expect_growth(14, s, 1, 1);
  expect_growth(23, s, 1, 1);
  expect_growth(24, s, 2, 0);
  expect_growth(26, s, 2, 0.5);
  expect_growth(28, s, 2, 1);
  expect_growth(1'000'000'000'000, s, 2, 1);
  EXPECT_EQ(models::growth_at(26, s).resolution(), 16);
  // One level never grows.
  expect_growth(12345, {.levels = 1, .fade_images = 1, .stable_images = 1}, 0, 1);
  // The widths of Table 2, scaled: f up to 32×32, then halved.
  EXPECT_EQ(models::progan_width(3, 512), 512);
  EXPECT_EQ(models::progan_width(4, 512), 256);
  EXPECT_EQ(models::progan_width(5, 512), 128);
  EXPECT_EQ(models::progan_width(5, 2), 1);

  expect_error([&] { models::growth_at(-1, s); }, {"progan", "images shown must be >= 0", "-1"});
  expect_error([&] { models::growth_at(0, {.levels = 2, .fade_images = 0, .stable_images = 1}); },
               {"progan", "schedule", ">= 1"});
}

namespace {
// The growth at a level with α also as a float32 0-d tensor (Growth::alpha_tensor).
Growth faded(int64_t level, double alpha) { return {level, alpha, full({}, alpha)}; }
}  // namespace

TEST(ProganFade, GeneratorBlendsTheOldAndNewImagesExactly) {
  manual_seed(3);
  models::ProGenerator g(8, 1, 3, 4);
  Generator noise(4);
  const Tensor z = randn({4, 8}, {}, &noise);
  for (int64_t level : {1, 2}) {
    SCOPED_TRACE(level);
    const Tensor old_image = upsample_nearest2d(g.forward(z, level - 1, 1.0), 2);
    const Tensor new_image = g.forward(z, level, 1.0);
    const int64_t r = int64_t{4} << level;
    ASSERT_EQ(new_image.shape(), (Shape{4, 1, r, r}));
    EXPECT_EQ(g.forward(z, level, 0.0).to_vector<float>(), old_image.to_vector<float>());
    // The blend is not a pass-through: the new block draws another image.
    EXPECT_GT(max(abs(new_image - old_image)).item(), 1e-3);
    expect_tensors_near(g.forward(z, level, 0.25), 0.75 * old_image + 0.25 * new_image, 1e-6, 1e-6);
    // α read from a tensor (what a captured step fades with) blends as the scalar does.
    for (double a : {0.0, 0.25, 0.625})
      expect_tensors_near(g.forward(z, faded(level, a)), g.forward(z, level, a), 1e-7, 1e-7);
  }
  expect_error([&] { g.forward(z, 3, 1.0); }, {"ProGenerator", "level 3", "[0, 3)"});
  expect_error([&] { g.forward(z, 1, 1.5); }, {"ProGenerator", "alpha 1.5"});
  expect_error([&] { g.forward(randn({4, 7}), 0, 1.0); }, {"ProGenerator", "expected z [B, 8]"});
}

TEST(ProganFade, DiscriminatorAndRealImagesBlendExactly) {
  manual_seed(5);
  models::ProDiscriminator d(3, 3, 4);
  Generator noise(6);
  const Tensor x = rand({4, 3, 16, 16}, {}, &noise) * 2 - 1;
  // At α = 0 the new level's block is weighted out: the old network on the pooled images.
  const Tensor old_scores = d.forward(avg_pool2d(x, {2, 2}), 1, 1.0);
  ASSERT_EQ(old_scores.shape(), (Shape{4}));
  EXPECT_EQ(d.forward(x, 2, 0.0).to_vector<float>(), old_scores.to_vector<float>());
  EXPECT_GT(max(abs(d.forward(x, 2, 1.0) - old_scores)).item(), 1e-4);
  // α moves the scores continuously from one to the other.
  EXPECT_LT(max(abs(d.forward(x, 2, 1e-6) - old_scores)).item(), 1e-4);
  expect_error([&] { d.forward(x, 1, 1.0); }, {"ProDiscriminator", "expected images [B, 3, 8, 8]", "16, 16"});
  for (double a : {0.0, 0.25, 0.625}) {
    expect_tensors_near(d.forward(x, faded(2, a)), d.forward(x, 2, a), 1e-6, 1e-6);
    expect_tensors_near(models::progan_reals(x, faded(1, a)), models::progan_reals(x, {1, a}), 1e-7, 1e-7);
  }

  // Real images: pooled to the resolution, and in a fade blended like G's images.
  const Tensor at8 = avg_pool2d(x, {2, 2}), coarse = upsample_nearest2d(avg_pool2d(at8, {2, 2}), 2);
  EXPECT_EQ(models::progan_reals(x, {1, 1.0}).to_vector<float>(), at8.to_vector<float>());
  EXPECT_EQ(models::progan_reals(x, {1, 0.0}).to_vector<float>(), coarse.to_vector<float>());
  expect_tensors_near(models::progan_reals(x, {1, 0.5}), 0.5 * coarse + 0.5 * at8, 1e-6, 1e-6);
  EXPECT_EQ(models::progan_reals(x, {2, 1.0}).to_vector<float>(), x.to_vector<float>());
  expect_error([&] { models::progan_reals(x, {3, 1.0}); }, {"progan", "multiple of 32"});
}

TEST(GanGradientPenalty, ValueAndGradientMatchClosedFormAndFiniteDifferences) {
  // A linear critic D(x) = ⟨w, x⟩ has ∇D = w everywhere: the penalty is (‖w‖ − 1)².
  const Tensor w = from_vector(std::vector<double>{0.6, 1.2, -0.4, 0.3}, {4, 1}, {DType::Float64});
  const double n = std::sqrt(0.36 + 1.44 + 0.16 + 0.09);
  const Tensor points = rand64({5, 1, 2, 2}, -1, 1, 41);
  const Tensor gp = gan::gradient_penalty([&](const Tensor& x) { return matmul(flatten(x, 1), w); }, points);
  expect_values(gp, {(n - 1) * (n - 1)}, 1e-12);

  // A small conv critic in float64 (tanh: a piecewise-linear one has no second
  // derivative for its biases to reach the penalty through): the penalty's gradient w.r.t. its parameters
  // (through ∇x D, a second derivative) against central finite differences.
  const Tensor x = rand64({3, 2, 4, 4}, -1, 1, 42);
  expect_gradients(
      [&](const std::vector<Tensor>& p) {
        auto critic = [&](const Tensor& h) {
          const Tensor a = tanh(conv2d(h, p[0], p[1], {.padding = {1, 1}}));
          return matmul(flatten(avg_pool2d(a, {2, 2}), 1), p[2]);
        };
        return gan::gradient_penalty(critic, x);
      },
      {rand64({3, 2, 3, 3}, -0.5, 0.5, 43), rand64({3}, -0.5, 0.5, 44), rand64({12, 1}, -0.5, 0.5, 45)},
      {.atol = 1e-6, .rtol = 1e-5});

  // The penalty's points lie on the segments between real and fake samples.
  Generator g(9);
  const Tensor real = rand64({64, 3}, 0, 1, 46), fake = real + 2.0;
  const Tensor between = gan::penalty_points(real, fake, &g);
  const Tensor eps = 1.0 - (between - real) / 2.0;  // x̂ = ε real + (1 − ε) fake
  EXPECT_LT(max(abs(slice(eps, 1, 1, 3) - slice(eps, 1, 0, 2))).item(), 1e-12) << "one ε per sample";
  EXPECT_GE(min(eps).item(), 0);
  EXPECT_LE(max(eps).item(), 1);
  EXPECT_GT(std::sqrt(var(slice(eps, 1, 0, 1)).item()), 0.2);  // U(0, 1]'s σ is 0.29
  expect_error([&] { gan::penalty_points(real, slice(fake, 0, 0, 2), &g); }, {"penalty_points", "one shape"});
}

TEST(Progan, NetworksHaveTheirSizesAndSampleAtTheGrowthReached) {
  // f = 4 at every level up to 32×32, nz = 8, 4 levels, grey.
  // G: dense 8·64 + 64 = 576; level 0's conv 4·4·9 + 4 = 148 and toRGB 4 + 1 = 5;
  //    levels 1-3: two convs 148 each and toRGB 5 = 301 each: 576 + 153 + 903 = 1632.
  // D: level 0's conv (4 + 1)·4·9 + 4 = 184, levels 1-3 two convs 148 each = 888,
  //    four fromRGB 1·4 + 4 = 8, dense 64·4 + 4 = 260, score 4 + 1 = 5: 1369.
  models::Config c;
  c.set("features", 4).set("latent_dim", 8).set("stable_images", 2).set("fade_images", 4);
  c.batch_size = 2;
  std::unique_ptr<models::Model> m = build_progan(c);
  EXPECT_EQ(m->parameter_count(), 1632 + 1369);
  EXPECT_EQ(m->data_spec().size, 28);
  EXPECT_EQ(m->data_spec().dataset, data::Dataset::FashionMnist);

  // Steps of 2 images: 4×4, then 8×8 fading in over two steps.
  const std::vector<std::pair<double, double>> want = {{4, 1}, {8, 0}, {8, 0.5}, {8, 1}};
  for (size_t i = 0; i < want.size(); ++i) {
    const auto [resolution, alpha] = want[i];
    const models::Losses l = train_step_at(*m, rand({2, 1, 28, 28}) * 2 - 1, static_cast<int64_t>(i));
    EXPECT_EQ(l.at("resolution"), resolution);
    EXPECT_EQ(l.at("alpha"), alpha);
    for (const char* key : {"d_loss", "g_loss", "wasserstein", "gradient_penalty"})
      EXPECT_TRUE(std::isfinite(l.at(key))) << key;
    EXPECT_GE(l.at("gradient_penalty"), 0);
  }
  // Samples: 28×28 in [−1, 1], at 8×8 nearest-upsampled ×4 (constant 4×4 blocks
  // of the 32×32 image, cropped by 2 pixels on each side).
  Generator g(1);
  const Tensor s = m->sample(3, {}, g);
  ASSERT_EQ(s.shape(), (Shape{3, 1, 28, 28}));
  EXPECT_LE(max(s).item(), 1);
  EXPECT_GE(min(s).item(), -1);
  EXPECT_EQ(slice(s, 2, 2, 6).to_vector<float>(), expand(slice(s, 2, 2, 3), {3, 1, 4, 28}).to_vector<float>());
  EXPECT_GT(max(abs(slice(s, 2, 6, 7) - slice(s, 2, 5, 6))).item(), 0);

  expect_error([] { build_progan(models::Config().set("image_size", "28")); }, {"--image-size", "28"});
}

TEST(Progan, ResumesBitExactlyMidFadeAndLogsTheGrowth) {
  TempDir dir;
  // Batches of 16: 16 images at 4×4, then 8×8 fades in over 48 (steps 1-3) and is
  // stable for 16 (step 4); 16×16 starts fading at step 5. The cut is at step 3, α = 2/3.
  auto options = [&](const std::string& out, int64_t steps) {
    tools::TrainOptions o = tiny_run("progan", dir / out, steps, 64, 3);
    o.config.set("features", 4).set("latent_dim", 4).set("stable_images", 16).set("fade_images", 48);
    return o;
  };
  const auto [straight, resumed] = straight_and_resumed(options, 6);
  EXPECT_EQ(model_tensors(resumed.checkpoint), model_tensors(straight.checkpoint));
  EXPECT_EQ(resumed.eval.at("wasserstein"), straight.eval.at("wasserstein"));
  const std::vector<double> alphas = {1, 0, 1.0 / 3, 2.0 / 3, 1, 0}, resolutions = {4, 8, 8, 8, 8, 16};
  for (const std::string run : {"straight", "resumed"}) {
    SCOPED_TRACE(run);
    const std::vector<double> a = logged(dir / run, "alpha");
    ASSERT_EQ(a.size(), alphas.size());
    for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], alphas[i], 1e-9) << i;  // the log's 9 digits
    EXPECT_EQ(logged(dir / run, "resolution"), resolutions);
  }

  // `loom eval`: the Fréchet distance, precision and recall of the 28×28 samples
  // in the features of a (barely trained) classifier.
  tools::EvalRequest er;
  er.checkpoint = straight.checkpoint;
  er.classifier = tools::train(tiny_run("classifier", dir / "clf", 2, 64, 1)).checkpoint;
  er.images = 32;
  er.load_data = [](data::Split s) { return synthetic_images(s, 64); };
  const tools::Evaluation e = tools::evaluate("progan", er);
  for (const char* key : {"fd", "precision", "recall", "wasserstein"})
    ASSERT_TRUE(e.metrics.count(key) && std::isfinite(e.metrics.at(key))) << key;
  EXPECT_GT(e.metrics.at("fd"), 0);
}

TEST(Progan, SamplesFromAnExponentialMovingAverageOfTheGenerator) {
  // Batches of 2 and a half-life of 2 images: decay 1/2 per step, so the average
  // after step 2 is (average after step 1 + G after step 2) / 2 (up to float32
  // rounding: the weights are N(0, 1)).
  TempDir dir;
  auto run = [&](int64_t steps) {
    tools::TrainOptions o = tiny_run("progan", dir / str("steps", steps), steps, 64, 3);
    o.config.batch_size = 2;
    o.config.set("features", 4).set("latent_dim", 4).set("ema_half_life", 2);
    return model_tensors(tools::train(o).checkpoint);
  };
  const auto one = run(1), two = run(2);
  const std::string avg = "model.generator_ema.", g = "model.generator.";
  int checked = 0;
  for (const auto& [name, v] : two) {
    if (name.rfind(avg, 0) != 0 || name == avg + "images") continue;
    SCOPED_TRACE(name);
    const std::vector<double>& before = one.at(name);
    const std::vector<double>& now = two.at(g + name.substr(avg.size()));
    ASSERT_EQ(v.size(), now.size());
    for (size_t i = 0; i < v.size(); ++i) ASSERT_NEAR(v[i], 0.5 * before[i] + 0.5 * now[i], 1e-6) << i;
    ++checked;
  }
  // A weight and a bias of: the dense layer, level 0's conv and toRGB, levels 1-3's two convs and toRGB.
  EXPECT_EQ(checked, 2 * (1 + 2 + 3 * 3));
  EXPECT_EQ(two.at(avg + "images"), std::vector<double>{4});
  // The average moved away from G: it is what samples come from.
  EXPECT_NE(two.at(avg + "dense.weight"), two.at(g + "dense.weight"));
}

TEST(Progan, TrainsOnAnImageFolderAt64) {
  TempDir dir;
  const std::string images = dir / "images";
  Generator g(7);
  fs::create_directories(images + "/a");
  for (int i = 0; i < 4; ++i)
    save_image_grid(rand({1, 3, 40, 48}, {}, &g), str(images, "/a/", i, ".png"), {0, 1},
                    {.nrow = 1, .padding = 0, .upscale = 1});
  // 4×4, then 8×8 fading in.
  tools::TrainOptions o = tiny_run("progan", dir / "folder", 2, 0, 0);
  o.load_data = {};  // the folder, through --data DIR
  o.data_dir = images;
  o.config.batch_size = 4;
  o.eval_size = 4;
  o.config.set("image_size", "64").set("features", 4).set("latent_dim", 4).set("stable_images", 4)
      .set("fade_images", 4);
  const tools::TrainResult r = tools::train(o);
  EXPECT_EQ(r.last.at("resolution"), 8);
  EXPECT_TRUE(std::isfinite(r.eval.at("wasserstein")));
  const std::unique_ptr<models::Model> loaded = tools::load_model("progan", r.checkpoint, Device::cpu());
  EXPECT_EQ(loaded->data_spec().channels, 3);
  Generator s(0);
  const Tensor x = loaded->sample(2, {}, s);
  ASSERT_EQ(x.shape(), (Shape{2, 3, 64, 64}));
  // 8×8 upsampled ×8: every 8×8 block is one colour.
  EXPECT_EQ(slice(x, 3, 8, 16).to_vector<float>(), expand(slice(x, 3, 8, 9), {2, 3, 64, 8}).to_vector<float>());
}

TEST(ProganLearning, LearnsFashionMnistWhileGrowingTo8x8) {
  if (!fs::exists(data::kFashionMnistDir)) GTEST_SKIP() << "Fashion-MNIST is not installed";
  const PooledPixelFd pixel_fd;
  TempDir dir;
  tools::TrainOptions o = short_fashion_run("progan", dir / "fmnist", 1);
  // 50 steps at 4×4, 50 fading in 8×8, 50 at 8×8.
  o.config.set("features", 16).set("latent_dim", 32).set("stable_images", 1600).set("fade_images", 1600)
      .set("ema_half_life", 320);
  const tools::TrainResult r = tools::train(o);
  EXPECT_EQ(r.last.at("resolution"), 8);
  const double before = pixel_fd(*build_progan(o.config));
  const double after = pixel_fd(*tools::load_model("progan", r.checkpoint, Device::cpu()));
  // Seeds 1-5 reach 6.4-11.8 from 30.6.
  EXPECT_LT(after, 0.55 * before);
  EXPECT_TRUE(std::isfinite(r.eval.at("wasserstein")));
}
