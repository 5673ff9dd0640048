// The explicit-density pixel models (models/likelihood/): their mathematics,
// checked against values computed here in plain C++ (counting, not the model
// code), and the bernoulli/markov models through the training driver.
#include <cmath>
#include <filesystem>
#include <functional>

#include "models/derive/derive.h"
#include "models/likelihood/likelihood.h"
#include "tests/binary_images.h"
#include "tests/gradcheck.h"
#include "tests/temp_dir.h"
#include "tests/train_fixture.h"
#include "tools/train.h"

using namespace loom;
using namespace loom::testing;
using models::likelihood::DensityModel;
namespace fs = std::filesystem;

namespace {

Tensor labels_tensor(const std::vector<int64_t>& y) { return from_vector(y, {static_cast<int64_t>(y.size())}); }

// A hand-made data set of 3×3 images (rows of a 9-pixel raster): strokes and blobs.
std::vector<Image> hand_made() {
  return {{1, 1, 1, 0, 0, 0, 0, 0, 0}, {0, 0, 0, 1, 1, 1, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 1, 1, 1},
          {1, 0, 0, 1, 0, 0, 1, 0, 0}, {0, 1, 0, 0, 1, 0, 0, 1, 0}, {0, 0, 1, 0, 0, 1, 0, 0, 1},
          {1, 0, 0, 0, 1, 0, 0, 0, 1}, {0, 0, 1, 0, 1, 0, 1, 0, 0}, {1, 1, 0, 1, 1, 0, 0, 0, 0},
          {0, 1, 1, 0, 1, 1, 0, 0, 0}, {0, 0, 0, 1, 1, 0, 1, 1, 0}, {0, 0, 0, 0, 1, 1, 0, 1, 1}};
}

models::Config config(const std::string& fit, double alpha = 0, bool conditional = false) {
  models::Config c;
  c.set("fit", fit).set("alpha", alpha).set("conditional", conditional).set("levels", 2);
  c.set("lr", 0.1).set("b1", 0.9).set("b2", 0.999);
  return c;
}

// Sets every table of m to N(0, 2²) values.
void randomize(DensityModel& m, uint64_t seed) {
  Generator g(seed);
  for (auto& [name, mod] : m.modules()) {
    std::map<std::string, Tensor> state = mod->state_dict();
    for (auto& [n, t] : state) t = randn(t.shape(), {DType::Float64}, &g) * 2.0;
    mod->load_state_dict(state);
  }
}

std::vector<double> vec(const Tensor& t) { return t.to(DType::Float64).to_vector<double>(); }

std::map<std::string, Tensor> tables(DensityModel& m) { return m.modules()[0].second->state_dict(); }

// Plain-C++ maximum likelihood with add-alpha smoothing: the average log-likelihood
// of `test` under the independent-pixel model counted on `train`.
double bernoulli_loglik(const std::vector<Image>& train, const std::vector<Image>& test, double alpha) {
  const size_t n = train[0].size();
  double ll = 0;
  for (const Image& x : test) {
    for (size_t j = 0; j < n; ++j) {
      double ones = 0;
      for (const Image& t : train) ones += t[j];
      const double p1 = (ones + alpha) / (static_cast<double>(train.size()) + 2 * alpha);
      ll += std::log(x[j] ? p1 : 1 - p1);
    }
  }
  return ll / static_cast<double>(test.size());
}

// The same for the first-order chain: p(x_1) and p(x_i | x_{i−1}) from counts.
double markov_loglik(const std::vector<Image>& train, const std::vector<Image>& test, double alpha) {
  const size_t n = train[0].size();
  double ll = 0;
  for (const Image& x : test) {
    double first = 0;
    for (const Image& t : train) first += t[0];
    const double p_first = (first + alpha) / (static_cast<double>(train.size()) + 2 * alpha);
    ll += std::log(x[0] ? p_first : 1 - p_first);
    for (size_t i = 1; i < n; ++i) {
      double context = 0, ones = 0;
      for (const Image& t : train)
        if (t[i - 1] == x[i - 1]) context += 1, ones += t[i];
      const double p1 = (ones + alpha) / (context + 2 * alpha);
      ll += std::log(x[i] ? p1 : 1 - p1);
    }
  }
  return ll / static_cast<double>(test.size());
}

}  // namespace

TEST(LikelihoodModels, ProbabilitiesOfEvery3x3ImageSumToOne) {
  const Tensor every = as_tensor(all_images(9));
  auto total = [&](DensityModel& m) { return sum(exp(m.log_prob(every))).item(); };
  auto bern = models::likelihood::make_bernoulli_model(config("gd"), 9);
  randomize(*bern, 1);
  EXPECT_NEAR(total(*bern), 1.0, 1e-6);
  auto cond = models::likelihood::make_bernoulli_model(config("gd", 0, true), 9);
  randomize(*cond, 2);
  EXPECT_NEAR(total(*cond), 1.0, 1e-6);
  auto markov = models::likelihood::make_markov_model(config("gd"), 9);
  randomize(*markov, 3);
  EXPECT_NEAR(total(*markov), 1.0, 1e-6);

  // And each probability is the chain rule's product, computed here from the tables.
  auto t = tables(*markov);
  const double a = vec(t.at("first"))[0];
  const std::vector<double> cond_logits = vec(t.at("cond"));
  const std::vector<double> lp = vec(markov->log_prob(every));
  auto log_sigmoid = [](double z) { return -std::log1p(std::exp(-z)); };
  const std::vector<Image> images = all_images(9);
  for (size_t b = 0; b < images.size(); ++b) {
    const Image& x = images[b];
    double want = log_sigmoid(x[0] ? a : -a);
    for (int i = 1; i < 9; ++i) {
      const double th = cond_logits[(i - 1) * 2 + x[i - 1]];
      want += log_sigmoid(x[i] ? th : -th);
    }
    ASSERT_NEAR(lp[b], want, 1e-12) << "image " << b;
  }
  EXPECT_EQ(bern->free_parameters(), 9);
  EXPECT_EQ(markov->free_parameters(), 17);
  EXPECT_EQ(cond->free_parameters(), 10 * 9 + 9);
}

TEST(LikelihoodModels, CountFitNllEqualsPlainCounting) {
  const std::vector<Image> data = hand_made();
  const std::vector<Image> held_out = {{1, 1, 1, 1, 1, 1, 1, 1, 1}, {0, 0, 0, 0, 0, 0, 0, 0, 0}, {1, 0, 1, 0, 1, 0, 1, 0, 1}};
  const Tensor x = as_tensor(data), labels = labels_tensor(std::vector<int64_t>(data.size(), 0));
  for (double alpha : {0.0, 0.5}) {
    SCOPED_TRACE(alpha);
    auto bern = models::likelihood::make_bernoulli_model(config("counts", alpha), 9);
    auto markov = models::likelihood::make_markov_model(config("counts", alpha), 9);
    // Two batches: the counts accumulate.
    for (auto* m : {bern.get(), markov.get()}) {
      loom::testing::train_step(*m, slice(x, 0, 0, 5), slice(labels, 0, 0, 5));
      loom::testing::train_step(*m, slice(x, 0, 5, 12), slice(labels, 0, 5, 12));
    }
    NoGrad ng;
    const models::Losses lb = loom::testing::evaluate(*bern, x, labels), lm = loom::testing::evaluate(*markov, x, labels);
    EXPECT_NEAR(lb.at("nll"), -bernoulli_loglik(data, data, alpha), 1e-9);
    EXPECT_NEAR(lm.at("nll"), -markov_loglik(data, data, alpha), 1e-9);
    EXPECT_NEAR(lb.at("bits_per_dim"), lb.at("nll") / (9 * std::log(2.0)), 1e-12);
    EXPECT_EQ(bern->parameter_count(), 9);
    EXPECT_EQ(markov->parameter_count(), 17);
    if (alpha > 0) {  // unseen images need smoothing (the MLE gives some probability 0)
      const Tensor h = as_tensor(held_out);
      EXPECT_NEAR(-mean(bern->log_prob(h)).item(), -bernoulli_loglik(data, held_out, alpha), 1e-9);
      EXPECT_NEAR(-mean(markov->log_prob(h)).item(), -markov_loglik(data, held_out, alpha), 1e-9);
    }
  }
}

TEST(LikelihoodModels, GradientDescentConvergesToTheCountFit) {
  const std::vector<Image> data = hand_made();
  const Tensor x = as_tensor(data), labels = labels_tensor(std::vector<int64_t>(data.size(), 0));
  const double bern_mle = -bernoulli_loglik(data, data, 0), markov_mle = -markov_loglik(data, data, 0);
  auto bern = models::likelihood::make_bernoulli_model(config("gd"), 9);
  auto markov = models::likelihood::make_markov_model(config("gd"), 9);
  for (int step = 0; step < 500; ++step) {
    loom::testing::train_step(*bern, x, labels);
    loom::testing::train_step(*markov, x, labels);
  }
  NoGrad ng;
  EXPECT_NEAR(loom::testing::evaluate(*bern, x, labels).at("nll"), bern_mle, 1e-4);
  // The chain's MLE has probabilities 0 and 1 here (a context always followed by
  // the same value), which gradient descent approaches only as its logits grow.
  EXPECT_NEAR(loom::testing::evaluate(*markov, x, labels).at("nll"), markov_mle, 5e-3);
  // The probabilities themselves, pixel by pixel: p_j = (images with pixel j on) / N.
  const std::vector<double> p = vec(sigmoid(tables(*bern).at("logits")));
  for (int j = 0; j < 9; ++j) {
    double ones = 0;
    for (const Image& im : data) ones += im[j];
    EXPECT_NEAR(p[j], ones / static_cast<double>(data.size()), 1e-3) << "pixel " << j;
  }
  // The chain's conditionals p(x_i = 1 | x_{i−1} = c) = n(c, 1) / n(c), where both values occur.
  const std::vector<double> q = vec(sigmoid(tables(*markov).at("cond")));
  int checked = 0;
  for (int i = 1; i < 9; ++i) {
    for (int c = 0; c < 2; ++c) {
      double context = 0, ones = 0;
      for (const Image& im : data)
        if (im[i - 1] == c) context += 1, ones += im[i];
      if (ones == 0 || ones == context) continue;
      EXPECT_NEAR(q[(i - 1) * 2 + c], ones / context, 1e-3) << "pixel " << i << " after " << c;
      ++checked;
    }
  }
  EXPECT_GE(checked, 8);
}

TEST(LikelihoodModels, ClassConditionalPredictsByBayesRule) {
  // Three classes of 3×3 images (rows, columns, diagonals); smoothing alpha = 1.
  const std::vector<Image> data = hand_made();
  const std::vector<int64_t> y = {0, 0, 0, 1, 1, 1, 2, 2, 0, 0, 1, 1};
  const double alpha = 1;
  auto m = models::likelihood::make_bernoulli_model(config("counts", alpha, true), 9);
  loom::testing::train_step(*m, as_tensor(data), labels_tensor(y));
  const std::vector<Image> queries = {{1, 1, 0, 0, 0, 0, 0, 0, 0}, {0, 1, 0, 0, 1, 0, 0, 0, 0}, {1, 0, 0, 0, 1, 0, 0, 0, 0},
                                      {0, 0, 0, 0, 0, 0, 0, 0, 0}, {1, 0, 1, 0, 1, 0, 1, 0, 1}, {0, 0, 0, 1, 1, 1, 0, 0, 1}};
  const std::vector<int64_t> truth = {0, 1, 2, 0, 2, 0};
  // By hand: log p(y) + Σ_j log p(x_j | y), p(y) = (n_y + α) / (N + 10α), p(x_j = 1 | y) = (n_yj + α) / (n_y + 2α).
  std::vector<int64_t> want;
  std::vector<std::vector<double>> want_joint;
  for (const Image& q : queries) {
    std::vector<double> joint(10);
    for (int k = 0; k < 10; ++k) {
      double ny = 0;
      for (int64_t v : y) ny += v == k;
      double lj = std::log((ny + alpha) / (static_cast<double>(y.size()) + 10 * alpha));
      for (int j = 0; j < 9; ++j) {
        double ones = 0;
        for (size_t b = 0; b < data.size(); ++b) ones += (y[b] == k) * data[b][j];
        const double p1 = (ones + alpha) / (ny + 2 * alpha);
        lj += std::log(q[j] ? p1 : 1 - p1);
      }
      joint[k] = lj;
    }
    want.push_back(std::max_element(joint.begin(), joint.end()) - joint.begin());
    want_joint.push_back(joint);
  }
  NoGrad ng;
  const Tensor q = as_tensor(queries);
  const std::vector<double> got_joint = vec(m->class_log_joint(q));
  for (size_t i = 0; i < queries.size(); ++i)
    for (int k = 0; k < 10; ++k) ASSERT_NEAR(got_joint[i * 10 + k], want_joint[i][k], 1e-9) << i << ", class " << k;
  // Bayes rule picks a class of highest joint; where classes tie (the empty image is as likely under
  // "rows" as under "columns", whose pixel counts are transposes), any of them, as rounding decides.
  const std::vector<int64_t> got = argmax(m->class_log_joint(q), 1).to_vector<int64_t>();
  double correct = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_NEAR(want_joint[i][got[i]], want_joint[i][want[i]], 1e-12) << "query " << i << ": class " << got[i]
                                                                      << " is not a most likely class";
    correct += got[i] == truth[i];
  }
  EXPECT_NEAR(loom::testing::evaluate(*m, q, labels_tensor(truth)).at("acc"), correct / static_cast<double>(want.size()), 1e-12);
  // The marginal log p(x) = log Σ_y p(x, y).
  const std::vector<double> lp = vec(m->log_prob(q));
  for (size_t i = 0; i < queries.size(); ++i) {
    double s = 0;
    for (double v : want_joint[i]) s += std::exp(v);
    EXPECT_NEAR(lp[i], std::log(s), 1e-9);
  }
}

namespace {
data::LabeledImages synthetic(data::Split split) { return synthetic_images(split, 96); }
tools::TrainOptions tiny(const std::string& model, const std::string& out, int64_t steps) {
  return tiny_run(model, out, steps, 96, 3);
}
}  // namespace

TEST(LikelihoodModels, TrainSampleEvalAndResumeThroughTheDriver) {
  TempDir dir;
  const derive::ParamsResult counts = derive::derive_params({.seed = 0, .quick = true});
  const derive::ParamCountRow& n784 = counts.counts.at(783);
  ASSERT_EQ(n784.n, 784);
  struct Case {
    std::string model, fit;
    bool conditional;
    double params;
  };
  for (const Case& c : {Case{"bernoulli", "gd", false, double(n784.independent)},
                        Case{"bernoulli", "counts", false, double(n784.independent)},
                        Case{"bernoulli", "counts", true, 10 * 784 + 9},
                        Case{"markov", "gd", false, double(n784.markov)},
                        Case{"markov", "counts", false, double(n784.markov)}}) {
    SCOPED_TRACE(c.model + " " + c.fit + (c.conditional ? " conditional" : ""));
    const std::string out = str(dir.path(), "/", c.model, "_", c.fit, c.conditional ? "_cond" : "");
    auto opts = [&](const std::string& where, int64_t steps) {
      tools::TrainOptions o = tiny(c.model, out + where, steps);
      o.config.set("fit", c.fit);
      if (c.conditional) o.config.set("conditional", true);
      return o;
    };
    // 6 steps straight vs 3, checkpoint, resume to 6 (96 images / 16: one epoch is 6 steps).
    const auto [straight, resumed] = straight_and_resumed(
        [&](const std::string& tag, int64_t steps) { return opts("/" + tag, steps); }, 6,
        [](tools::TrainOptions& rest) {  // stored in the checkpoint
          rest.config.options.erase("fit");
          rest.config.options.erase("conditional");
        });
    EXPECT_EQ(resumed.steps, 6);
    const auto a = model_tensors(straight.checkpoint);
    ASSERT_FALSE(a.empty());
    EXPECT_EQ(a, model_tensors(resumed.checkpoint));
    EXPECT_TRUE(fs::exists(straight.samples));
    EXPECT_EQ(load_safetensors(straight.checkpoint).metadata.at("fit"), c.fit);
    // The held-out report: NLL in nats and bits/dim, and the notes' parameter count.
    EXPECT_GT(straight.eval.at("nll"), 0);
    EXPECT_NEAR(straight.eval.at("bits_per_dim"), straight.eval.at("nll") / (784 * std::log(2.0)), 1e-9);
    EXPECT_EQ(straight.eval.count("acc"), c.conditional ? 1u : 0u);
    // sample and eval rebuild the model from the checkpoint alone.
    tools::sample(c.model, straight.checkpoint, 9, out + "/grid.png", Device::cpu(), 7);
    EXPECT_TRUE(fs::exists(out + "/grid.png"));
    auto m = tools::load_model(c.model, straight.checkpoint, Device::cpu());
    auto* dm = dynamic_cast<DensityModel*>(m.get());
    ASSERT_NE(dm, nullptr);
    Generator g(1);
    NoGrad ng;
    const Tensor test = data::binarize(slice(synthetic(data::Split::Test).images, 0, 0, 32), g);
    const models::Losses l = loom::testing::evaluate(*m, test, slice(synthetic(data::Split::Test).labels, 0, 0, 32));
    EXPECT_NEAR(l.at("nll"), -mean(dm->log_prob(test)).item(), 1e-9);
    EXPECT_EQ(m->parameter_count(), c.params);
    if (fs::exists(data::kFashionMnistDir)) {
      const tools::Evaluation e = tools::evaluate(c.model, {.checkpoint = straight.checkpoint, .images = 50});
      EXPECT_EQ(e.parameters, c.params);
      EXPECT_EQ(e.kind, models::ModelKind::Likelihood);
    }
  }
}

TEST(LikelihoodModels, OptionsTakeEffectOrAreRefused) {
  TempDir dir;
  auto refused = [&](const std::string& model, const std::function<void(tools::TrainOptions&)>& set) {
    tools::TrainOptions o = tiny(model, dir.path() + "/refused", 1);
    set(o);
    return error_of([&] { tools::train(o); });
  };
  EXPECT_EQ(refused("bernoulli", [](auto& o) { o.config.set("fit", "closed"); }),
            "train: --fit must be one of gd, counts, got 'closed'");
  EXPECT_EQ(refused("bernoulli", [](auto& o) { o.config.set("alpha", -1); }), "train: --alpha must be >= 0, got -1");
  EXPECT_EQ(refused("bernoulli", [](auto& o) { o.config.set("levels", 16); }), "train: --levels must be one of 2, 256, got '16'");
  EXPECT_EQ(refused("markov", [](auto& o) { o.config.set("fit", "counts").set("lr", 0.1); }),
            "markov: --lr tunes gradient descent; --fit counts takes no optimizer");
  EXPECT_EQ(refused("bernoulli", [](auto& o) { o.config.set("alpha", 1); }),
            "bernoulli: --alpha applies to --fit counts (gradient descent fits the unsmoothed MLE)");
  EXPECT_EQ(refused("markov", [](auto& o) { o.config.set("conditional", true); }),
            "train: --conditional does not apply to model 'markov' (it takes --lr, --b1, --b2, --fit, --alpha)");
  EXPECT_EQ(refused("vae", [](auto& o) { o.config.set("fit", "counts"); }),
            "train: --fit does not apply to model 'vae' (it takes --lr, --b1, --b2, --latent-dim, --arch, --iwae-k)");
  EXPECT_FALSE(fs::exists(dir.path() + "/refused"));
  // alpha reaches the counts: a smoothed fit differs from the MLE.
  auto fit = [&](const std::string& name, double alpha) {
    tools::TrainOptions o = tiny("markov", dir.path() + "/" + name, 2);
    o.config.set("fit", "counts");
    o.config.set("alpha", alpha);
    return model_tensors(tools::train(o).checkpoint);
  };
  const auto mle = fit("mle", 0), smooth = fit("smooth", 1);
  EXPECT_EQ(mle.at("model.pixels.ones_counts"), smooth.at("model.pixels.ones_counts"));
  EXPECT_NE(mle.at("model.pixels.cond"), smooth.at("model.pixels.cond"));
  // Resume refuses a contradicting fit.
  tools::TrainOptions r = tiny("markov", dir.path() + "/mle", 3);
  r.config.set("fit", "gd");
  r.resume = dir.path() + "/mle/checkpoint.safetensors";
  EXPECT_EQ(error_of([&] { tools::train(r); }),
            "train --resume: --fit gd contradicts the checkpoint, which stores fit = counts (leave the flag out to "
            "continue with the stored value)");
}

TEST(LikelihoodModels, EightBitCategoricalCountsAndGradientDescentAgree) {
  // 4 "images" of 4 pixels with 256 levels: the count fit is the empirical
  // distribution of each pixel, 255 free parameters per pixel.
  const std::vector<float> v = {0, 255, 7, 7, 0, 255, 7, 100, 3, 255, 9, 100, 0, 1, 7, 100};
  const Tensor x = from_vector(v, {4, 4}) / 255.0;
  const Tensor labels = labels_tensor({0, 0, 0, 0});
  models::Config c = config("counts");
  c.set("levels", 256);
  auto counts = models::likelihood::make_bernoulli_model(c, 4);
  loom::testing::train_step(*counts, x, labels);
  c.set("fit", "gd");
  auto gd = models::likelihood::make_bernoulli_model(c, 4);
  for (int step = 0; step < 600; ++step) loom::testing::train_step(*gd, x, labels);
  EXPECT_EQ(counts->free_parameters(), 4 * 255);
  // By hand: pixel 0 is 0 three times in four, 3 once; pixel 1: 255 ×3, 1 ×1; pixel 2: 7 ×3, 9 ×1; pixel 3: 100 ×3, 7 ×1.
  const double want = -(3 * std::log(0.75) + std::log(0.25)) * 4 / 4;
  NoGrad ng;
  EXPECT_NEAR(loom::testing::evaluate(*counts, x, labels).at("nll"), want, 1e-9);
  EXPECT_NEAR(loom::testing::evaluate(*gd, x, labels).at("nll"), want, 2e-2);
}
