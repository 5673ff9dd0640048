// DCGAN (models/gan/dcgan.cpp) and the spherical interpolation its latent walks
// use (gan::slerp in models/gan/adversarial.h): slerp against hand-computed
// values, the networks' shapes, ranges, sizes and initialization at both
// resolutions, the interpolation grid, and DCGAN through the driver: resume,
// an image folder at 64×64, learning Fashion-MNIST.
#include <cmath>
#include <filesystem>
#include <numbers>

#include "models/gan/adversarial.h"
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

namespace {

Tensor vec(std::vector<double> v) {
  const int64_t n = static_cast<int64_t>(v.size());
  return from_vector(v, {n}, {DType::Float64});
}
std::vector<double> values(const Tensor& t) { return t.to(DType::Float64).to_vector<double>(); }
double norm_of(const Tensor& t) { return norm(t.to(DType::Float64)).item(); }

void expect_values_near(const Tensor& t, const std::vector<double>& want, double tol) {
  const std::vector<double> got = values(t);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], tol) << "element " << i;
}

// A DCGAN built as `loom train dcgan` would, with the given options.
std::unique_ptr<models::Model> build_dcgan(models::Config c) {
  c.seed = 0;
  const models::Registration& r = models::find_model("dcgan");
  manual_seed(0);
  return r.make(models::resolve_config(r, c));
}

}  // namespace

TEST(Slerp, MatchesHandComputedValuesOnTheUnitCircle) {
  const double h = 1 / std::sqrt(2.0);
  // Orthogonal unit vectors: Ω = π/2, so slerp(t) = cos(tπ/2) a + sin(tπ/2) b.
  const Tensor a = vec({1, 0, 0}), b = vec({0, 1, 0});
  expect_values_near(gan::slerp(a, b, 0.5), {h, h, 0}, 1e-15);  // (a + b)/√2
  expect_values_near(gan::slerp(a, b, 1.0 / 3), {std::sqrt(3.0) / 2, 0.5, 0}, 1e-15);
  // Beyond [0, 1] it continues along the circle.
  expect_values_near(gan::slerp(a, b, 2), {-1, 0, 0}, 1e-15);
  // At 60°: the point a third of the way is at 20°.
  const double pi = std::numbers::pi;
  expect_values_near(gan::slerp(vec({1, 0}), vec({0.5, std::sqrt(3.0) / 2}), 1.0 / 3),
                     {std::cos(pi / 9), std::sin(pi / 9)}, 1e-15);
  // Vectors of different norms: the coefficients are those of the unit circle, (a + 2b)/√2 at t = 1/2.
  expect_values_near(gan::slerp(a, vec({0, 2, 0}), 0.5), {h, 2 * h, 0}, 1e-15);
}

TEST(Slerp, EndPointsAreExactAndTheNormStaysOnTheSphere) {
  Generator g(3);
  const Tensor a = randn({4, 16}, {}, &g), b = randn({4, 16}, {}, &g);
  EXPECT_EQ(gan::slerp(a, b, 0).to_vector<float>(), a.to_vector<float>());
  EXPECT_EQ(gan::slerp(a, b, 1).to_vector<float>(), b.to_vector<float>());
  EXPECT_EQ(gan::slerp(a, b, 0.5).dtype(), DType::Float32);

  // Unit vectors at a random angle Ω: every point has norm 1 and lies at angle tΩ from u.
  const Tensor x = randn({16}, {DType::Float64}, &g), y = randn({16}, {DType::Float64}, &g);
  const Tensor u = x / norm_of(x), v = y / norm_of(y);
  const double omega = std::acos(sum(u * v).item());
  for (double t : {0.1, 0.25, 0.5, 0.8}) {
    const Tensor p = gan::slerp(u, v, t);
    EXPECT_NEAR(norm_of(p), 1, 1e-14) << t;
    EXPECT_NEAR(std::acos(sum(p * u).item()), t * omega, 1e-12) << t;
  }
  // Vectors of equal norm r keep it; the straight line between them does not.
  const Tensor p = 3 * u, q = 3 * v;
  EXPECT_NEAR(norm_of(gan::slerp(p, q, 0.3)), 3, 1e-13);
  EXPECT_NEAR(norm_of(gan::slerp(vec({1, 0}), vec({0, 1}), 0.5)), 1, 1e-15);
  EXPECT_NEAR(norm_of(0.5 * vec({1, 0}) + 0.5 * vec({0, 1})), std::sqrt(0.5), 1e-15);
}

TEST(Slerp, FallsBackToTheStraightLineWithoutAUniqueGreatCircle) {
  // Parallel: the limit of slerp as Ω → 0, (1 − t) a + t b.
  expect_values_near(gan::slerp(vec({1, 2}), vec({3, 6}), 0.25), {1.5, 3}, 1e-15);
  // Antiparallel: straight through the origin.
  expect_values_near(gan::slerp(vec({1, 2}), vec({-1, -2}), 0.5), {0, 0}, 1e-15);
  expect_values_near(gan::slerp(vec({1, 2}), vec({-1, -2}), 0.25), {0.5, 1}, 1e-15);
  // A zero end point has no direction.
  expect_values_near(gan::slerp(vec({0, 0}), vec({4, 2}), 0.25), {1, 0.5}, 1e-15);
  // Each row on its own: an orthogonal pair and an antiparallel one.
  const Tensor a = from_vector(std::vector<double>{1, 0, 1, 1}, {2, 2}, {DType::Float64});
  const Tensor b = from_vector(std::vector<double>{0, 1, -1, -1}, {2, 2}, {DType::Float64});
  const double h = 1 / std::sqrt(2.0);
  expect_values_near(gan::slerp(a, b, 0.5), {h, h, 0, 0}, 1e-15);

  expect_error([&] { gan::slerp(vec({1, 0}), vec({1, 0, 0}), 0.5); }, {"slerp", "one shape"});
  expect_error([&] { gan::slerp(vec({1, 0}), vec({0, 1}), NAN); }, {"slerp", "t must be finite"});
}

TEST(Dcgan, NetworksHaveThePapersShapesRangesSizesAndInitialization) {
  // 28×28: G 8→16×7×7→8×14×14→1×28×28, D 1→8→16→1 (f = 8, nz = 8), no biases.
  //   G: 8·16·49 + 2·16 + 16·8·16 + 2·8 + 8·1·16 = 8496; D: 1·8·16 + 8·16·16 + 2·16 + 16·49 = 2992.
  // 64×64: G 8→64×4×4→32×8×8→16×16×16→8×32×32→3×64×64 and D back.
  //   G: 8·64·16 + 128 + 64·32·16 + 64 + 32·16·16 + 32 + 16·8·16 + 16 + 8·3·16 = 51824;
  //   D: 3·8·16 + 8·16·16 + 32 + 16·32·16 + 64 + 32·64·16 + 128 + 64·16 = 44640.
  struct Case {
    int64_t size, channels, parameters;
  };
  for (const Case& k : {Case{28, 1, 8496 + 2992}, Case{64, 3, 51824 + 44640}}) {
    SCOPED_TRACE(k.size);
    models::Config c;
    c.set("features", 8).set("latent_dim", 8).set("image_size", std::to_string(k.size));
    std::unique_ptr<models::Model> m = build_dcgan(c);
    EXPECT_EQ(m->parameter_count(), k.parameters);
    EXPECT_EQ(m->data_spec().size, k.size);
    EXPECT_EQ(m->data_spec().channels, k.channels);
    EXPECT_EQ(m->data_spec().dataset, k.size == 64 ? data::Dataset::ImageFolder : data::Dataset::FashionMnist);

    // In training mode: batch statistics (the running ones are not yet estimated).
    Generator g(1);
    const Tensor x = m->sample(16, {}, g);
    EXPECT_EQ(x.shape(), (Shape{16, k.channels, k.size, k.size}));
    EXPECT_LE(max(x).item(), 1);  // tanh
    EXPECT_GE(min(x).item(), -1);
    EXPECT_GT(std::sqrt(var(x).item()), 1e-3);  // not a constant image

    // A training step on images of the data's shape reports the four numbers, D's in (0, 1).
    const models::Losses l = train_step(*m, rand({4, k.channels, k.size, k.size}) * 2 - 1, zeros({4}, {DType::Int64}));
    for (const char* key : {"d_loss", "g_loss", "D(x)", "D(G(z))"}) ASSERT_EQ(l.count(key), 1u) << key;
    EXPECT_GT(l.at("D(x)"), 0);
    EXPECT_LT(l.at("D(G(z))"), 1);
  }

  // dcgan_init: every conv weight ~ N(0, 0.02), batch-norm scales ~ N(1, 0.02) and shifts 0.
  models::Config c;
  c.set("image_size", "64");  // f = 64: 3.6M conv weights
  std::unique_ptr<models::Model> m = build_dcgan(c);
  std::vector<double> w, scales, shifts;
  for (auto& [name, net] : m->modules())
    for (nn::Module* layer : net->modules()) {
      auto append = [](std::vector<double>& to, const Tensor& t) {
        const std::vector<double> v = values(t);
        to.insert(to.end(), v.begin(), v.end());
      };
      if (auto* conv = dynamic_cast<nn::Conv2d*>(layer)) {
        append(w, conv->weight);
        EXPECT_FALSE(conv->bias.defined());
      }
      if (auto* up = dynamic_cast<nn::ConvTranspose2d*>(layer)) {
        append(w, up->weight);
        EXPECT_FALSE(up->bias.defined());
      }
      if (auto* bn = dynamic_cast<nn::BatchNorm*>(layer)) append(scales, bn->weight), append(shifts, bn->bias);
    }
  auto moments = [](const std::vector<double>& v) {
    double s = 0, s2 = 0;
    for (double x : v) s += x, s2 += x * x;
    const double n = static_cast<double>(v.size()), mean = s / n;
    return std::make_pair(mean, std::sqrt(s2 / n - mean * mean));
  };
  ASSERT_GT(w.size(), 3'000'000u);
  EXPECT_NEAR(moments(w).first, 0, 1e-4);
  EXPECT_NEAR(moments(w).second, 0.02, 1e-4);
  ASSERT_EQ(scales.size(), (512u + 256 + 128 + 64) + (128 + 256 + 512));  // G's four, D's three
  EXPECT_NEAR(moments(scales).first, 1, 0.003);
  EXPECT_NEAR(moments(scales).second, 0.02, 0.002);
  EXPECT_EQ(*std::max_element(shifts.begin(), shifts.end()), 0);
  EXPECT_EQ(*std::min_element(shifts.begin(), shifts.end()), 0);

  expect_error([] { build_dcgan(models::Config().set("image_size", "32")); }, {"--image-size", "32"});
}

TEST(Dcgan, InterpolationRowsWalkBetweenTheGeneratorsEndPoints) {
  models::Config c;
  c.set("features", 8).set("latent_dim", 8);
  std::unique_ptr<models::Model> m = build_dcgan(c);
  ASSERT_TRUE(m->conditions().interpolate);
  // Batch norm's running statistics from batches of samples (their initial 0 and 1
  // leave G's eval-mode images nearly constant, which would make equality vacuous).
  Generator warm(1);
  for (int i = 0; i < 30; ++i) m->sample(64, {}, warm);
  m->train(false);
  NoGrad ng;
  models::Condition walk;
  walk.interpolate = true;
  Generator g(5);
  const models::SampleGrid grid = m->sample_grid(20, walk, g);  // ⌈20 / 8⌉ walks of 8
  ASSERT_EQ(grid.columns, 8);
  ASSERT_EQ(grid.images.shape(), (Shape{24, 1, 28, 28}));
  // latent_walks draws z₀ for every row, then z₁, as sample() draws its noise.
  Generator same(5);
  const Tensor g0 = m->sample(3, {}, same), g1 = m->sample(3, {}, same);
  const Tensor rows = reshape(grid.images, {3, 8, 1, 28, 28});
  const std::vector<float> first = reshape(slice(rows, 1, 0, 1), {3, 1, 28, 28}).to_vector<float>(),
                           last = reshape(slice(rows, 1, 7, 8), {3, 1, 28, 28}).to_vector<float>(),
                           want_first = g0.to_vector<float>(), want_last = g1.to_vector<float>();
  ASSERT_GT(std::sqrt(var(g0).item()), 0.005);
  for (size_t i = 0; i < first.size(); ++i) {
    ASSERT_NEAR(first[i], want_first[i], 1e-6) << i;
    ASSERT_NEAR(last[i], want_last[i], 1e-6) << i;
  }
  // The steps between differ from both ends (a walk, not a repeat).
  EXPECT_GT(max(abs(slice(rows, 1, 3, 4) - slice(rows, 1, 0, 1))).item(), 0.01);
  // Without the condition: n independent samples in a square grid.
  EXPECT_EQ(m->sample_grid(5, {}, g).images.size(0), 5);
  EXPECT_EQ(m->sample_grid(5, {}, g).columns, 0);
}

TEST(Dcgan, ResumesBitExactlyAndTrainsOnAnImageFolderAt64) {
  TempDir dir;
  auto options = [&](const std::string& out, int64_t steps) {
    tools::TrainOptions o = tiny_run("dcgan", dir / out, steps, 64, 3);
    o.config.set("features", 4).set("latent_dim", 4);
    return o;
  };
  const auto [straight, resumed] = straight_and_resumed(options, 6);
  EXPECT_EQ(model_tensors(resumed.checkpoint), model_tensors(straight.checkpoint));
  EXPECT_EQ(resumed.eval.at("d_loss"), straight.eval.at("d_loss"));

  // 64×64 RGB from a folder of PNGs of another size (resized on loading), through `--data DIR`.
  const std::string images = dir / "images";
  Generator g(7);
  for (const char* cls : {"a", "b"}) {
    fs::create_directories(images + "/" + cls);
    for (int i = 0; i < 3; ++i)
      save_image_grid(rand({1, 3, 48, 40}, {}, &g), str(images, "/", cls, "/", i, ".png"), {0, 1},
                      {.nrow = 1, .padding = 0, .upscale = 1});
  }
  tools::TrainOptions o;
  o.model = "dcgan";
  o.config.batch_size = 4;
  o.config.set("image_size", "64").set("features", 4).set("latent_dim", 4);
  o.steps = 1;
  o.out_dir = dir / "folder";
  o.data_dir = images;
  o.n_samples = 4;
  o.eval_size = 6;
  o.progress = false;
  const tools::TrainResult r = tools::train(o);
  EXPECT_EQ(r.steps, 1);
  EXPECT_TRUE(std::isfinite(r.eval.at("d_loss")));
  EXPECT_TRUE(fs::exists(r.samples));
  const std::unique_ptr<models::Model> loaded = tools::load_model("dcgan", r.checkpoint, Device::cpu());
  Generator s(0);
  EXPECT_EQ(loaded->sample(2, {}, s).shape(), (Shape{2, 3, 64, 64}));
  // `loom eval` reports the held-out losses; the classifier's features (fd, precision,
  // recall) are for 28×28 grey images, so a 64×64 RGB model goes without them.
  tools::EvalRequest er;
  er.checkpoint = r.checkpoint;
  er.data_dir = images;
  er.images = 6;
  const tools::Evaluation e = tools::evaluate("dcgan", er);
  EXPECT_TRUE(std::isfinite(e.metrics.at("d_loss")));
  EXPECT_EQ(e.metrics.count("fd"), 0u);

  // A folder that is not there, or none given (the command line's default is the Fashion-MNIST IDX folder).
  o.data_dir = dir / "missing";
  expect_error([&] { tools::train(o); }, {"missing", "not a directory"});
  o.data_dir = "";
  expect_error([&] { tools::train(o); }, {"give it with --data DIR"});
  o.data_dir = data::kFashionMnistDir;
  expect_error([&] { tools::train(o); }, {"give it with --data DIR"});
}

TEST(DcganLearning, LearnsFashionMnist) {
  if (!fs::exists(data::kFashionMnistDir)) GTEST_SKIP() << "Fashion-MNIST is not installed";
  const PooledPixelFd pixel_fd;
  TempDir dir;
  tools::TrainOptions o = short_fashion_run("dcgan", dir / "fmnist", 2);
  // A small DCGAN at 5x the paper's rate, to learn in 150 steps (seeds 1-3 reach 4.7-6.7 from 26.7).
  o.config.set("features", 8).set("latent_dim", 16).set("lr", 1e-3);
  const tools::TrainResult r = tools::train(o);
  const double before = pixel_fd(*build_dcgan(o.config));
  const double after = pixel_fd(*tools::load_model("dcgan", r.checkpoint, Device::cpu()));
  EXPECT_LT(after, 0.4 * before);
  EXPECT_TRUE(std::isfinite(r.eval.at("d_loss")));
}
