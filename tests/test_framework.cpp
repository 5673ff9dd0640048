// The model framework: declared options, batches drawn inside a step, data
// specifications, conditional sampling, the evaluation protocol and `loom score`.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <set>

#include "models/classifier/classifier.h"
#include "models/image_grid.h"
#include "models/likelihood/likelihood.h"
#include "tests/gradcheck.h"
#include "tests/temp_dir.h"
#include "tests/train_fixture.h"
#include "tools/train.h"

using namespace loom;
using namespace loom::testing;
namespace fs = std::filesystem;

namespace {

// A model that draws `extra` more batches in every step (as a critic trained k
// times per generator step does) and keeps, in a buffer, a running checksum of
// every label it has seen and of where each step was: resuming is exact only if
// the data order and the step count continue exactly.
class ExtraBatches : public models::Model {
 public:
  explicit ExtraBatches(const models::Config& c) : extra_(c.integer("extra")) {
    state_ = std::make_shared<models::likelihood::Tables>();
    state_->add("w", &w_, zeros({1}), true);
    state_->add("checksum", &checksum_, zeros({3}, TensorOptions{DType::Float64}), false);
    opt_ = std::make_unique<optim::Adam>(state_->parameters(), models::adam_from(c));
  }
  models::ModelKind kind() const override { return models::ModelKind::Sampler; }
  models::Losses train_step(const models::Batch& batch, models::Step& step) override {
    std::vector<double> seen = checksum_.to_vector<double>();
    auto see = [&](const models::Batch& b) {
      const std::vector<int64_t> y = b.labels.to_vector<int64_t>();
      for (size_t i = 0; i < y.size(); ++i) seen[0] = std::fmod(seen[0] * 31 + static_cast<double>(y[i] + 1), 1e9);
    };
    see(batch);
    for (int64_t k = 0; k < extra_; ++k) see(step.next_batch());
    seen[1] += static_cast<double>(step.index);
    seen[2] += step.progress();
    models::likelihood::assign(checksum_, seen);
    Tensor loss = square(sum(w_) - mean(batch.images));
    opt_->zero_grad();
    backward(loss);
    opt_->step();
    return {{"loss", loss.item()}};
  }
  Tensor sample(int64_t n, const models::Condition&, Generator&) override { return zeros({n, 1, 28, 28}); }
  models::Losses evaluate(const models::Batch&, const models::EvalOptions&) override { return {}; }
  std::vector<std::pair<std::string, nn::Module*>> modules() override { return {{"state", state_.get()}}; }
  std::vector<std::pair<std::string, optim::Optimizer*>> optimizers() override { return {{"adam", opt_.get()}}; }

 private:
  int64_t extra_;
  std::shared_ptr<models::likelihood::Tables> state_;
  Tensor w_, checksum_;
  std::unique_ptr<optim::Adam> opt_;
};

const models::Registration kExtraBatches{
    "extra_batches", "a test model drawing extra batches",
    [](const models::Config& c) -> std::unique_ptr<models::Model> { return std::make_unique<ExtraBatches>(c); },
    [] {
      std::vector<models::OptionSpec> o = models::adam_options(1e-2, 0.9, 0.999);
      o.push_back(models::integer_option("extra", 2, models::Range::closed(0, 10), "extra batches per step"));
      return o;
    }()};

std::vector<double> checksum(const std::string& checkpoint) {
  for (auto& [name, t] : load_safetensors(checkpoint).tensors)
    if (name == "model.state.checksum") return t.to_vector<double>();
  ADD_FAILURE() << "no checksum in " << checkpoint;
  return {};
}

}  // namespace

namespace {
// A sample condition with one field set.
template <typename T, typename V>
tools::SampleCondition condition(T tools::SampleCondition::*field, const V& value) {
  tools::SampleCondition c;
  c.*field = value;
  return c;
}
}  // namespace

TEST(Framework, EveryModelDeclaresWellFormedOptions) {
  std::map<std::string, models::OptionSpec::Kind> kinds;
  for (const models::Registration& r : models::registry()) {
    SCOPED_TRACE(r.name);
    std::set<std::string> names;
    for (const models::OptionSpec& o : r.options) {
      EXPECT_TRUE(names.insert(o.name).second) << "option " << o.name << " declared twice";
      // The driver's metadata keys, and the flags `loom bench train` takes beside model options.
      for (const char* reserved : {"model", "step", "total_steps", "batches", "batch_size", "seed", "limit_train", "steps",
                                   "warmup", "threads", "device", "data", "json"})
        EXPECT_NE(o.name, reserved);
      EXPECT_EQ(o.canonical(o.default_value), o.default_value) << o.name;  // the default is in range and canonical
      EXPECT_FALSE(o.help.empty()) << o.name;
      // One flag means one kind of value, whichever model takes it.
      auto [it, fresh] = kinds.emplace(o.name, o.kind);
      EXPECT_EQ(it->second, o.kind) << o.name;
    }
    // resolve_config fills in every default, canonically.
    const models::Config c = models::resolve_config(r, {});
    EXPECT_EQ(c.options.size(), r.options.size());
  }
}

TEST(Framework, OptionValuesAreCheckedAndCanonical) {
  const models::OptionSpec lr = models::real_option("lr", 1e-3, models::Range::positive(), "x");
  EXPECT_EQ(lr.canonical("1e-3"), "0.001");
  EXPECT_EQ(lr.canonical("0.0010"), "0.001");
  EXPECT_EQ(error_of([&] { lr.canonical("0"); }), "--lr must be > 0, got 0");
  EXPECT_EQ(error_of([&] { lr.canonical("1e-3x"); }), "--lr must be a finite number, got '1e-3x'");
  EXPECT_EQ(error_of([&] { lr.canonical("inf"); }), "--lr must be a finite number, got 'inf'");
  const models::OptionSpec k = models::integer_option("d_steps", 1, models::Range::closed(1, 100), "x");
  EXPECT_EQ(k.flag(), "--d-steps");
  EXPECT_EQ(k.canonical("007"), "7");
  EXPECT_EQ(error_of([&] { k.canonical("2.5"); }), "--d-steps must be an integer, got '2.5'");
  EXPECT_EQ(error_of([&] { k.canonical("101"); }), "--d-steps must lie in [1, 100], got 101");
  EXPECT_EQ(error_of([&] { k.canonical("99999999999999999999"); }), "--d-steps must lie in [1, 100], got 99999999999999999999");
  const models::OptionSpec loss = models::choice_option("loss", "minimax", {"minimax", "nonsaturating"}, "x");
  EXPECT_EQ(error_of([&] { loss.canonical("hinge"); }), "--loss must be one of minimax, nonsaturating, got 'hinge'");
  const models::OptionSpec sw = models::switch_option("conditional", "x");
  EXPECT_EQ(sw.default_value, "false");
  EXPECT_EQ(error_of([&] { sw.canonical("yes"); }), "--conditional is a switch (true or false), got 'yes'");
  // A model reads its resolved options by kind.
  models::Config c = models::resolve_config(kExtraBatches, models::Config{}.set("extra", 3).set("lr", 0.5));
  EXPECT_EQ(c.integer("extra"), 3);
  EXPECT_EQ(c.real("lr"), 0.5);
  EXPECT_EQ(c.real("b2"), 0.999);
  EXPECT_EQ(error_of([&] { c.real("latent_dim"); }),
            "model option 'latent_dim' is not set (the model does not declare it)");
  EXPECT_EQ(error_of([&] { models::resolve_config(kExtraBatches, models::Config{}.set("latent_dim", 4)); }),
            "--latent-dim does not apply to model 'extra_batches' (it takes --lr, --b1, --b2, --extra)");
}

TEST(Framework, BatchesDrawnInsideAStepAreCountedAndResumeExactly) {
  TempDir dir;
  auto run = [&](const std::string& out, int64_t steps, const std::string& resume = "") {
    tools::TrainOptions o = tiny_run("", dir.path() + out, steps, 96, 3);
    o.registration = &kExtraBatches;
    o.resume = resume;
    return tools::train(o);
  };
  // 96 images, batch 16: 6 batches an epoch; 3 per step, so 5 steps cross two epochs.
  const tools::TrainResult straight = run("/a", 5);
  run("/b", 2);
  const tools::TrainResult resumed = run("/b", 5, dir.path() + "/b/checkpoint.safetensors");
  // The same labels in the same order, at the same step indices (the progress
  // fraction differs: the first part of the resumed run had a total of 2).
  const std::vector<double> a = checksum(straight.checkpoint), b = checksum(resumed.checkpoint);
  EXPECT_EQ(b[0], a[0]);
  EXPECT_EQ(b[1], a[1]);
  EXPECT_EQ(load_safetensors(resumed.checkpoint).metadata.at("batches"), "15");
  const Safetensors ck = load_safetensors(straight.checkpoint);
  EXPECT_EQ(ck.metadata.at("batches"), "15");
  EXPECT_EQ(ck.metadata.at("extra"), "2");
  // The steps saw index 0..4 and progress index / 5.
  const std::vector<double> sum = checksum(straight.checkpoint);
  EXPECT_EQ(sum[1], 0 + 1 + 2 + 3 + 4);
  EXPECT_NEAR(sum[2], (0 + 1 + 2 + 3 + 4) / 5.0, 1e-12);
  // And the custom model loads from its checkpoint like a registered one.
  auto m = tools::load_model(kExtraBatches, straight.checkpoint, Device::cpu());
  EXPECT_EQ(m->parameter_count(), 1);
}

TEST(Framework, DataSpecsLoadTheirDataSets) {
  const data::LabeledImages toy = data::load_dataset({.dataset = data::Dataset::Toy2d, .toy = "moons"},
                                                     data::Split::Test, "");
  EXPECT_EQ(toy.images.shape(), (Shape{10000, 2}));
  EXPECT_EQ(toy.labels.shape(), (Shape{10000}));
  Generator g(0);
  // Toy points pass through prepare unchanged; images are mapped to the model's range.
  EXPECT_EQ(data::prepare_images(toy.images, {.dataset = data::Dataset::Toy2d}, g).to_vector<float>(),
            toy.images.to_vector<float>());
  const Tensor half = full({1, 1, 2, 2}, 0.5);
  EXPECT_EQ(data::prepare_images(half, {.lo = -1, .hi = 1}, g).to_vector<float>(), std::vector<float>(4, 0.0f));

  // An image folder with train/ and test/ sub-folders uses them as the splits,
  // resized and in [0, 1].
  TempDir dir;
  for (const char* split : {"train", "test"})
    for (const char* cls : {"a", "b"}) {
      fs::create_directories(dir.path() + "/" + split + "/" + cls);
      const double v = std::string(cls) == "a" ? 0.0 : 1.0;
      save_image_grid(full({1, 3, 8, 8}, v), str(dir.path(), "/", split, "/", cls, "/x.png"), {0, 1},
                      {.nrow = 1, .padding = 0});
    }
  const data::LabeledImages folder =
      data::load_dataset({.dataset = data::Dataset::ImageFolder, .size = 4, .channels = 3}, data::Split::Test, dir.path());
  EXPECT_EQ(folder.images.shape(), (Shape{2, 3, 4, 4}));
  EXPECT_EQ(folder.labels.to_vector<int64_t>(), (std::vector<int64_t>{0, 1}));
  EXPECT_NEAR(max(folder.images).item(), 1.0, 1e-6);
  EXPECT_NEAR(min(folder.images).item(), 0.0, 1e-6);
  EXPECT_EQ(error_of([&] { data::load_dataset({.dataset = data::Dataset::ImageFolder}, data::Split::Train, ""); }),
            "this model trains on an image folder: give it with --data DIR");

  if (!fs::exists(data::kFashionMnistDir)) GTEST_SKIP() << "Fashion-MNIST is not installed";
  // Fashion-MNIST at another size and as RGB (grey repeated).
  const data::LabeledImages big =
      data::load_dataset({.size = 32, .channels = 3}, data::Split::Test, data::kFashionMnistDir);
  EXPECT_EQ(big.images.shape(), (Shape{10000, 3, 32, 32}));
  EXPECT_EQ(slice(big.images, 1, 0, 1).to_vector<float>(), slice(big.images, 1, 2, 3).to_vector<float>());
}

TEST(Framework, SampleTakesTheConditionsTheModelTakesAndRefusesOthers) {
  EXPECT_EQ(tools::parse_label("sneaker"), 7);
  EXPECT_EQ(tools::parse_label("Ankle boot"), 9);
  EXPECT_EQ(tools::parse_label("t-shirt"), 0);
  EXPECT_EQ(tools::parse_label("top"), 0);
  EXPECT_EQ(tools::parse_label("3"), 3);
  EXPECT_EQ(error_of([] { tools::parse_label("10"); }), "sample: --label 10 is not a class index in [0, 10)");
  EXPECT_NE(error_of([] { tools::parse_label("snekaer"); }).find("did you mean 'sneaker'"), std::string::npos);

  TempDir dir;
  // A class-conditional Bernoulli fitted from counts on images that are class-coloured:
  // class y has every pixel on iff y is odd. Its samples of --label 7 are all on.
  auto odd_on = [](data::Split) {
    data::LabeledImages d;
    std::vector<int64_t> y(40);
    std::vector<float> px(40 * 784);
    for (int64_t i = 0; i < 40; ++i) {
      y[i] = i % 10;
      std::fill(px.begin() + i * 784, px.begin() + (i + 1) * 784, y[i] % 2 ? 1.0f : 0.0f);
    }
    d.images = from_vector(px, {40, 1, 28, 28});
    d.labels = from_vector(y, {40});
    return d;
  };
  tools::TrainOptions o = tiny_run("bernoulli", dir.path() + "/cond", 2, 40, 1);
  o.config.set("fit", "counts").set("conditional", true);
  o.load_data = odd_on;
  const tools::TrainResult r = tools::train(o);
  auto m = tools::load_model("bernoulli", r.checkpoint, Device::cpu());
  Generator g(3);
  models::Condition c;
  c.labels = full({5}, 7, TensorOptions{DType::Int64});
  EXPECT_EQ(sum(m->sample(5, c, g)).item(), 5 * 784);
  c.labels = full({5}, 4, TensorOptions{DType::Int64});
  EXPECT_EQ(sum(m->sample(5, c, g)).item(), 0);
  tools::sample("bernoulli", r.checkpoint, 4, dir.path() + "/sneakers.png", Device::cpu(), 0, "", condition(&tools::SampleCondition::label, "sneaker"));
  EXPECT_TRUE(fs::exists(dir.path() + "/sneakers.png"));

  // A model without that kind of condition says so.
  tools::TrainOptions plain = tiny_run("markov", dir.path() + "/markov", 1, 32, 1);
  const std::string ck = tools::train(plain).checkpoint;
  EXPECT_EQ(error_of([&] { tools::sample("markov", ck, 4, dir.path() + "/x.png", Device::cpu(), 0, "", condition(&tools::SampleCondition::label, "bag")); }),
            "sample: model 'markov' takes no --label (its samples are not class-conditional)");
  EXPECT_EQ(error_of([&] { tools::sample("markov", ck, 4, dir.path() + "/x.png", Device::cpu(), 0, "", condition(&tools::SampleCondition::prompt, "a bag")); }),
            "sample: model 'markov' takes no --prompt (it is not conditioned on text)");
  EXPECT_EQ(error_of([&] { tools::sample("markov", ck, 4, dir.path() + "/x.png", Device::cpu(), 0, "", condition(&tools::SampleCondition::input, dir.path())); }),
            "sample: model 'markov' takes no --input (it does not translate images)");
  EXPECT_EQ(error_of([&] { tools::sample("markov", ck, 4, dir.path() + "/x.png", Device::cpu(), 0, "", condition(&tools::SampleCondition::code, "3")); }),
            "sample: model 'markov' takes no --code (it has no categorical latent code)");
  EXPECT_EQ(error_of([&] { tools::sample("markov", ck, 4, dir.path() + "/x.png", Device::cpu(), 0, "", condition(&tools::SampleCondition::interpolate, true)); }),
            "sample: model 'markov' takes no --interpolate (it has no latent noise to walk)");
}

TEST(Framework, ScoreIsTheLogLikelihoodOfEachImage) {
  TempDir dir;
  tools::TrainOptions o = tiny_run("bernoulli", dir.path() + "/run", 3, 64, 1);
  const std::string ck = tools::train(o).checkpoint;
  // Three images on disk: all black, all white, a gradient.
  fs::create_directories(dir.path() + "/in");
  std::vector<Tensor> images{zeros({1, 1, 28, 28}), ones({1, 1, 28, 28}),
                             reshape(arange(0, 784, 1, TensorOptions{DType::Float32}) / 783.0, {1, 1, 28, 28})};
  for (size_t i = 0; i < images.size(); ++i)
    save_image_grid(images[i], str(dir.path(), "/in/", i, ".png"), {0, 1}, {.nrow = 1, .padding = 0});
  const std::vector<tools::Score> scores = tools::score("bernoulli", ck, Device::cpu(), dir.path() + "/in");
  ASSERT_EQ(scores.size(), 3u);
  auto m = tools::load_model("bernoulli", ck, Device::cpu());
  auto* density = dynamic_cast<models::likelihood::DensityModel*>(m.get());
  ASSERT_NE(density, nullptr);
  for (size_t i = 0; i < images.size(); ++i) {
    SCOPED_TRACE(i);
    NoGrad ng;
    EXPECT_EQ(scores[i].path, str(dir.path(), "/in/", i, ".png"));
    // Binary models see the image thresholded at 1/2 (the PNG's 8-bit rounding aside).
    const Tensor thresholded = ge(images[i], full(images[i].shape(), 0.5)).to(DType::Float32);
    const double want = density->log_prob(thresholded).item();
    EXPECT_NEAR(scores[i].log_px, want, 1e-9);
    EXPECT_NEAR(scores[i].bits_per_dim, -want / (784 * std::log(2.0)), 1e-12);
  }
  // A single file works too; a missing path is named.
  EXPECT_EQ(tools::score("bernoulli", ck, Device::cpu(), dir.path() + "/in/1.png").size(), 1u);
  EXPECT_EQ(error_of([&] { tools::score("bernoulli", ck, Device::cpu(), dir.path() + "/nope"); }),
            str("load_images: ", dir.path(), "/nope: no such file or folder"));
  // A classifier has no density.
  tools::TrainOptions c = tiny_run("classifier", dir.path() + "/clf", 1, 32, 1);
  const std::string clf = tools::train(c).checkpoint;
  EXPECT_EQ(error_of([&] { tools::score("classifier", clf, Device::cpu(), dir.path() + "/in"); }),
            "score: a classifier model has no density to score images with");
}

namespace {
// A sampler that "samples" the held-out images themselves (or noise): its
// Fréchet distance to them is 0 (or clearly not).
class Replay : public models::Model {
 public:
  explicit Replay(const models::Config& c) : noise_(c.flag("noise")) { net_ = std::make_shared<nn::Sequential>(); }
  models::ModelKind kind() const override { return models::ModelKind::Sampler; }
  models::DataSpec data_spec() const override { return {.lo = 0, .hi = 1}; }
  models::Losses train_step(const models::Batch&, models::Step&) override { return {{"loss", 0}}; }
  Tensor sample(int64_t n, const models::Condition&, Generator& g) override {
    if (noise_) return rand({n, 1, 28, 28}, {}, &g);
    Tensor all = synthetic_images(data::Split::Test, 64).images;
    Tensor out = slice(all, 0, next_, next_ + n);
    next_ += n;
    return out;
  }
  models::Losses evaluate(const models::Batch&, const models::EvalOptions&) override { return {}; }
  std::vector<std::pair<std::string, nn::Module*>> modules() override { return {{"net", net_.get()}}; }
  std::vector<std::pair<std::string, optim::Optimizer*>> optimizers() override { return {}; }

 private:
  bool noise_;
  int64_t next_ = 0;
  std::shared_ptr<nn::Sequential> net_;
};
const models::Registration kReplay{
    "replay", "a test sampler",
    [](const models::Config& c) -> std::unique_ptr<models::Model> { return std::make_unique<Replay>(c); },
    {models::switch_option("noise", "sample uniform noise instead")}};
}  // namespace

namespace {
// A conditional sampler whose sample of class (label, prompt "class k", or code k
// standing for class (k + shift) mod 10) is a held-out image of that class, so
// the accuracies `loom eval` reports are the classifier's on those images.
class Oracle : public models::Model {
 public:
  explicit Oracle(const models::Config& c) : shift_(c.integer("shift")) { net_ = std::make_shared<nn::Sequential>(); }
  models::ModelKind kind() const override { return models::ModelKind::Sampler; }
  models::DataSpec data_spec() const override { return {.lo = 0, .hi = 1}; }
  models::Conditions conditions() const override { return {.labels = true, .prompt = true, .codes = 10}; }
  std::string class_prompt(int64_t k) const override { return str("class ", k); }
  models::Losses train_step(const models::Batch&, models::Step&) override { return {{"loss", 0}}; }
  Tensor sample(int64_t n, const models::Condition& c, Generator&) override {
    int64_t k = 0;
    if (c.labels.defined()) k = c.labels.to(Device::cpu()).to_vector<int64_t>()[0];
    if (c.codes.defined()) k = (c.codes.to(Device::cpu()).to_vector<int64_t>()[0] + shift_) % 10;
    if (!c.prompt.empty()) k = std::stoll(c.prompt.substr(6));
    return of_class(k, n);
  }
  // The first n held-out images of class k (they repeat every 10: synthetic_images).
  static Tensor of_class(int64_t k, int64_t n) {
    std::vector<int64_t> rows;
    for (int64_t i = 0; i < n; ++i) rows.push_back(k + 10 * i);
    return index_select(synthetic_images(data::Split::Test, 10 * n).images, 0, from_vector(rows, {n}));
  }
  models::Losses evaluate(const models::Batch&, const models::EvalOptions&) override { return {}; }
  std::vector<std::pair<std::string, nn::Module*>> modules() override { return {{"net", net_.get()}}; }
  std::vector<std::pair<std::string, optim::Optimizer*>> optimizers() override { return {}; }

 private:
  int64_t shift_;
  std::shared_ptr<nn::Sequential> net_;
};
const models::Registration kOracle{
    "oracle", "a test conditional sampler",
    [](const models::Config& c) -> std::unique_ptr<models::Model> { return std::make_unique<Oracle>(c); },
    {models::integer_option("shift", 0, models::Range::closed(0, 9), "code k samples class (k + shift) mod 10")}};
}  // namespace

TEST(Framework, EvalOfAConditionalSamplerIsTheClassifiersAccuracyOnEachCondition) {
  TempDir dir;
  tools::TrainOptions c = tiny_run("classifier", dir.path() + "/clf", 4, 64, 1);
  const std::string classifier = tools::train(c).checkpoint;
  // The reference: the classifier's own verdict on 10 held-out images of each class.
  std::unique_ptr<models::Model> clf = tools::load_model("classifier", classifier, Device::cpu());
  clf->train(false);
  int64_t right = 0;
  {
    NoGrad ng;
    auto& net = *dynamic_cast<models::Classifier&>(*clf).net;
    for (int64_t k = 0; k < 10; ++k) {
      const std::vector<int64_t> pred = argmax(net.forward(Oracle::of_class(k, 10) * 2.0 - 1.0), 1).to_vector<int64_t>();
      right += std::count(pred.begin(), pred.end(), k);
    }
  }
  auto eval = [&](int64_t shift) {
    tools::TrainOptions o = tiny_run("", str(dir.path(), "/oracle", shift), 1, 64, 1);
    o.registration = &kOracle;
    o.config.set("shift", shift);
    tools::EvalRequest r;
    r.checkpoint = tools::train(o).checkpoint;
    r.images = 100;  // 10 samples per class
    r.classifier = classifier;
    r.registration = &kOracle;
    r.load_data = [](data::Split s) { return synthetic_images(s, 100); };
    return tools::evaluate("", r).metrics;
  };
  const models::Losses plain = eval(0), shifted = eval(3);
  EXPECT_DOUBLE_EQ(plain.at("label_accuracy"), static_cast<double>(right) / 100.0);
  EXPECT_DOUBLE_EQ(plain.at("prompt_accuracy"), static_cast<double>(right) / 100.0);
  // An unsupervised code is scored after the best matching of codes to classes:
  // relabelling the codes changes nothing, and the matching does at least as well as
  // the identity.
  EXPECT_DOUBLE_EQ(shifted.at("code_accuracy"), plain.at("code_accuracy"));
  EXPECT_GE(plain.at("code_accuracy"), plain.at("label_accuracy"));
  EXPECT_DOUBLE_EQ(shifted.at("label_accuracy"), plain.at("label_accuracy"));
}

TEST(Framework, EvalOfASamplerIsTheFrechetDistanceOfItsSamples) {
  TempDir dir;
  tools::TrainOptions c = tiny_run("classifier", dir.path() + "/clf", 4, 64, 1);
  const std::string classifier = tools::train(c).checkpoint;
  auto eval = [&](bool noise) {
    tools::TrainOptions o = tiny_run("", str(dir.path(), "/replay", noise), 1, 64, 1);
    o.registration = &kReplay;
    if (noise) o.config.set("noise", true);
    tools::EvalRequest r;
    r.checkpoint = tools::train(o).checkpoint;
    r.images = 64;
    r.classifier = classifier;
    r.registration = &kReplay;
    r.load_data = [](data::Split s) { return synthetic_images(s, 64); };
    return tools::evaluate("", r);
  };
  const tools::Evaluation same = eval(false), noise = eval(true);
  EXPECT_EQ(same.kind, models::ModelKind::Sampler);
  EXPECT_NEAR(same.metrics.at("fd"), 0, 1e-6);
  EXPECT_GT(noise.metrics.at("fd"), 1e-3);
  // Without a classifier the message says how to get one.
  tools::EvalRequest r;
  r.checkpoint = str(dir.path(), "/replay0/checkpoint.safetensors");
  r.registration = &kReplay;
  r.classifier = dir.path() + "/none.safetensors";
  r.load_data = [](data::Split s) { return synthetic_images(s, 64); };
  EXPECT_EQ(error_of([&] { tools::evaluate("", r); }),
            str("eval: the Frechet distance needs a trained classifier: ", dir.path(),
                "/none.safetensors does not exist (train one with 'loom train classifier --epochs 3', or give "
                "--classifier CKPT)"));
  // --importance-samples belongs to latent-variable models.
  tools::TrainOptions b = tiny_run("bernoulli", dir.path() + "/bern", 1, 32, 1);
  tools::EvalRequest rb;
  rb.checkpoint = tools::train(b).checkpoint;
  rb.options.importance_samples = 100;
  rb.load_data = [](data::Split s) { return synthetic_images(s, 32); };
  EXPECT_EQ(error_of([&] { tools::evaluate("bernoulli", rb); }),
            "eval: --importance-samples applies to latent-variable models, not to 'bernoulli' (exact likelihood)");
}
